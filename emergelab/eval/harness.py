"""The task evaluation harness (`emergelab eval`): batched greedy generation, verification, and the
teacher-forced log-probability of the reference answer, per task x shots x format.

Formats. "direct" appends `<answer>` to the prompt and "cot" appends `<think>` (FORMAT_PREFIX), so
the model answers in the format being measured; "free" appends nothing and lets the model choose
(what RL sees). The verifier reads `prefix + completion`.

Continuous metrics (Schaeffer et al. 2023, "Are Emergent Abilities a Mirage?"): each task's own
(character accuracy, edit distance, ...) plus `answer_logprob`, the summed log-probability of the
reference answer and its closing `</answer>` given the prompt (and, for cot, the reference
reasoning), and `answer_nll_per_token`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from emergelab.data.chat import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    FORMAT_PREFIX,
    THINK_CLOSE,
    encode_prompt,
    render_prompt,
    sampling_stops,
)
from emergelab.errors import UserError
from emergelab.eval.metrics import exact_match_summary, mean_and_stderr
from emergelab.model.generate import SamplingParams, generate
from emergelab.tasks.base import Example, Task
from emergelab.tasks.registry import get_task

FORMATS = ("direct", "cot", "free")
PREFIX = {"direct": FORMAT_PREFIX[False], "cot": FORMAT_PREFIX[True], "free": ""}


def prompt_text(task: Task, ex: Example, shots: list[Example], fmt: str, template: str) -> str:
    """The prompt of `ex` in format `fmt` ("direct"/"cot" end with the tag that forces the format)."""
    return render_prompt(task, ex, template, shots, cot=fmt == "cot") + PREFIX[fmt]


def answer_context(ex: Example, fmt: str) -> str:
    """Text between the prompt's format prefix and the reference answer."""
    if fmt == "cot" and ex.cot is not None:
        return f"{ex.cot}{THINK_CLOSE}{ANSWER_OPEN}"
    return "" if fmt == "direct" else ANSWER_OPEN


@torch.no_grad()
def answer_logprobs(model, tokenizer, contexts: list[list[int]], answers: list[list[int]],
                    batch_size: int = 64) -> list[float]:
    """Sum of log p(answer tokens | context) for each pair, by one teacher-forced forward pass per batch."""
    device = model.lm_head.weight.device
    block = model.cfg.block_size
    out: list[float] = []
    for i in range(0, len(contexts), batch_size):
        seqs, starts = [], []
        for ctx, ans in zip(contexts[i:i + batch_size], answers[i:i + batch_size]):
            seq = (ctx + ans)[-block - 1:]  # keep the end: the answer and its nearest context
            seqs.append(seq)
            starts.append(len(seq) - len(ans))
        width = max(len(s) for s in seqs)
        idx = torch.full((len(seqs), width), tokenizer.pad_id or 0, dtype=torch.long, device=device)
        for r, s in enumerate(seqs):
            idx[r, :len(s)] = torch.tensor(s, device=device)
        logp = model(idx[:, :-1]).logits.float().log_softmax(-1)
        for r, (s, start) in enumerate(zip(seqs, starts)):
            pos = torch.arange(start - 1, len(s) - 1, device=device)
            tgt = idx[r, start:len(s)]
            out.append(logp[r, pos, tgt].sum().item())
    return out


def _max_new_tokens(tokenizer, task: Task, examples: list[Example], fmt: str) -> int:
    """Room for the longest reference completion, with slack for a rambling model."""
    longest = max(len(tokenizer.encode(task.render_target(ex, cot=fmt != "direct"))) for ex in examples)
    return int(longest * 1.5) + 8


def greedy_completions(model, tokenizer, prompts: list[list[int]], max_new_tokens: int, batch_size: int,
                       seed: int = 0, desc: str = "eval", progress: bool = True) -> tuple[list[str], list[int]]:
    """Greedy completions (decoded text, token count) for token prompts, in batches, with the task stop rule."""
    texts: list[str] = []
    n_tokens: list[int] = []
    show = progress and os.environ.get("EMERGELAB_NO_PROGRESS") != "1"
    from tqdm import tqdm

    bar = tqdm(total=len(prompts), desc=desc, unit="item", disable=None if show else True)
    block = model.cfg.block_size
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i:i + batch_size]
        room = block - max(len(p) for p in chunk)
        params = SamplingParams(max_new_tokens=max(1, min(max_new_tokens, room)), temperature=0.0, seed=seed,
                                **sampling_stops(tokenizer))
        for c in generate(model, chunk, params, tokenizer=tokenizer):
            texts.append(tokenizer.decode(c.tokens))
            n_tokens.append(len(c.tokens))
        bar.update(len(chunk))
    bar.close()
    return texts, n_tokens


def evaluate_task(model, tokenizer, task: Task | str, shots: int = 0, fmt: str = "direct", n: int = 500,
                  seed: int = 0, batch_size: int = 64, template: str = "plain", split: str = "test",
                  max_new_tokens: int | None = None, keep_items: bool = False, n_examples: int = 5,
                  progress: bool = True) -> dict[str, Any]:
    """Score one task in one setting; returns exact match + Wilson CI, continuous metrics, chance,
    the formats the model used, completion lengths and a few example transcripts."""
    task = get_task(task)
    if fmt not in FORMATS:
        raise UserError(f"format: {fmt!r} — use one of {', '.join(FORMATS)}")
    if fmt == "cot" and not task.supports_cot:
        raise UserError(f"--cot: task {task.spec} has no chain-of-thought format")
    examples = task.generate(n, split, seed=seed, allow_fewer=True)  # small item spaces: all test items
    shot_lists = [task.shots_for(ex, shots, seed=seed + i) for i, ex in enumerate(examples)]
    prompts = [encode_prompt(tokenizer, prompt_text(task, ex, sh, fmt, template))
               for ex, sh in zip(examples, shot_lists)]
    block = model.cfg.block_size
    budget = max_new_tokens or _max_new_tokens(tokenizer, task, examples, fmt)
    too_long = max(len(p) for p in prompts)
    if too_long >= block:
        raise UserError(f"--shots: a {shots}-shot prompt of {task.spec} is {too_long} tokens, more than the "
                        f"model's block_size {block} — use fewer shots")

    texts, n_tokens = greedy_completions(model, tokenizer, prompts, budget, batch_size, seed,
                                         f"eval {task.spec} {shots}-shot {fmt}", progress)
    completions = [PREFIX[fmt] + t for t in texts]

    verdicts = [task.verify(ex, text) for ex, text in zip(examples, completions)]
    per_item = [task.continuous_metrics(ex, text) for ex, text in zip(examples, completions)]
    contexts = [p + tokenizer.encode(answer_context(ex, fmt)) for p, ex in zip(prompts, examples)]
    answers = [tokenizer.encode(ex.answer + ANSWER_CLOSE) for ex in examples]
    logps = answer_logprobs(model, tokenizer, contexts, answers, batch_size)
    for m, lp, ans in zip(per_item, logps, answers):
        m["answer_logprob"] = lp
        m["answer_nll_per_token"] = -lp / len(ans)

    scores = [v.score for v in verdicts]
    row: dict[str, Any] = {"task": task.spec, "shots": shots, "format": fmt, "split": split,
                           **exact_match_summary(scores, task.chance)}
    row["metrics"] = {}
    for name in per_item[0]:
        mean, se = mean_and_stderr([m[name] for m in per_item])
        row["metrics"][name] = {"mean": mean, "stderr": se}
    used = [v.format for v in verdicts]
    row["formats_used"] = {f: used.count(f) / len(used) for f in sorted(set(used))}
    row["accuracy_by_format"] = {f: sum(s for s, u in zip(scores, used) if u == f) / used.count(f)
                                 for f in sorted(set(used))}
    row["mean_completion_tokens"] = sum(n_tokens) / len(n_tokens)
    for label, keep in (("correct", 1.0), ("wrong", 0.0)):
        lens = [t for t, s in zip(n_tokens, scores) if (s >= 1.0) == (keep == 1.0)]
        row[f"mean_tokens_{label}"] = sum(lens) / len(lens) if lens else None
    cut = len(PREFIX[fmt])  # transcripts show the generated text; the prompt already ends with the prefix
    row["examples"] = [_transcript(ex, tokenizer.decode(p), c[cut:], v)
                       for ex, p, c, v in list(zip(examples, prompts, completions, verdicts))[:n_examples]]
    if keep_items:
        row["items"] = [{**_transcript(ex, None, c[cut:], v), **m}
                        for ex, c, v, m in zip(examples, completions, verdicts, per_item)]
    return row


def _transcript(ex: Example, prompt: str | None, completion: str, verdict) -> dict[str, Any]:
    out = {"answer": ex.answer, "completion": completion, "score": verdict.score, "reason": verdict.reason,
           "predicted": verdict.predicted, "format": verdict.format}
    if prompt is not None:
        out["prompt"] = prompt
    return out


def evaluate(model, tokenizer, tasks: Sequence[Task | str] | str, shots: Sequence[int] = (0,), cot: bool = False,
             n: int = 500, seed: int = 0, batch_size: int = 64, formats: Sequence[str] | None = None,
             template: str = "plain", max_new_tokens: int | None = None, keep_items: bool = False,
             progress: bool = True) -> dict[str, Any]:
    """Evaluate every task x shots x format. `cot=True` adds the chain-of-thought format next to direct
    (tasks without one are scored direct only); `formats` overrides (e.g. ("free",)).
    `max_new_tokens` defaults per task to 1.5x the longest reference completion.

    Returns {"settings": {...}, "results": {task spec: {"<k>shot_<format>": row}}}; a row has
    exact_match, ci95, n, chance, centered, metrics{name: {mean, stderr}}, formats_used (share of
    items per format the model wrote: cot, direct, plain, malformed), accuracy_by_format,
    mean_completion_tokens (overall / correct / wrong) and example transcripts."""
    from emergelab.tasks.registry import get_tasks

    task_objs = get_tasks(tasks) if isinstance(tasks, str) else [get_task(t) for t in tasks]
    fmts = tuple(formats) if formats else (("direct", "cot") if cot else ("direct",))
    results: dict[str, dict[str, Any]] = {}
    for task in task_objs:
        rows = results.setdefault(task.spec, {})
        for k in shots:
            for fmt in fmts:
                if fmt == "cot" and not task.supports_cot:
                    continue
                rows[f"{k}shot_{fmt}"] = evaluate_task(model, tokenizer, task, k, fmt, n, seed, batch_size,
                                                       template, max_new_tokens=max_new_tokens,
                                                       keep_items=keep_items, progress=progress)
    settings = {"shots": list(shots), "formats": list(fmts), "n": n, "seed": seed, "template": template,
                "decoding": "greedy", "split": "test"}
    return {"settings": settings, "results": results}
