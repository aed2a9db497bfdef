"""Test-time scaling: more samples (majority vote, best-of-N, pass@k) and more thinking tokens.

    emergelab tts RUN --task add:digits=6 [--n 100] [--samples 1,2,4,8,16] [--budgets 8,16,32,64]

* vote@N — sample N completions per item and answer with the most common extracted answer
  (self-consistency, Wang et al. 2023; ties go to the answer seen first).
* best-of-N — keep the sample the verifier scores highest. With the task's exact verifier as the
  judge this is the oracle upper bound and equals "any of N correct" (what a perfect reward model
  could select), so it is reported next to the unbiased pass@k estimate from the largest N.
* thinking budget — budget forcing (Muennighoff et al. 2025, s1): the model thinks after a forced
  `<think>` for at most B tokens (stopping early if it closes `</think>` itself); then `</think><answer>`
  is appended and it writes the answer. Greedy decoding, so only the budget varies.
* greedy — the same model's greedy answer on the same items: the baseline a test-time setting must beat
  (docs/verdicts.md#tts). Every setting records per-item correctness, so comparisons are paired.
Each setting is a separate timed generation, so the latencies are measured, not estimated.
Writes DIR/tts.json and DIR/tts.{png,svg} (DIR = RUN/tts by default).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import torch
from tqdm import tqdm

from emergelab.data.chat import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    cut_at_stop,
    encode_prompt,
    render_prompt,
    sampling_stops,
)
from emergelab.errors import UserError
from emergelab.eval.metrics import pass_at_k
from emergelab.model import SamplingParams, generate


def majority_vote(answers: list[str | None]) -> str | None:
    """The most common non-None answer; ties broken by first occurrence; None if all are None."""
    valid = [a for a in answers if a is not None]
    if not valid:
        return None
    counts = Counter(valid)
    best = max(counts.values())
    return next(a for a in valid if counts[a] == best)


def _timed_generate(model, prompts, params, tok):
    t0 = time.perf_counter()
    comps = generate(model, prompts, params, tokenizer=tok)
    return comps, time.perf_counter() - t0


def sample_scaling(model, tok, task, examples, prompts, n: int, max_new_tokens: int, temperature: float,
                   seed: int) -> dict:
    """vote@n, best-of-n (oracle verifier) and pass@1 for n samples per item, with wall time."""
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, num_samples=n,
                            **sampling_stops(tok))
    comps, secs = _timed_generate(model, prompts, params, tok)
    vote, best, p1, counts = [], [], [], []
    for i, ex in enumerate(examples):
        texts = [cut_at_stop(tok.decode(c.tokens)) for c in comps[i * n:(i + 1) * n]]
        verdicts = [task.verify(ex, t) for t in texts]
        voted = majority_vote([v.predicted for v in verdicts])
        vote.append(voted is not None and task.verify(ex, f"{ANSWER_OPEN}{voted}{ANSWER_CLOSE}").score >= 1)
        correct = sum(v.score >= 1 for v in verdicts)
        best.append(correct > 0)
        counts.append(correct)
        p1.append(pass_at_k(n, correct, 1))
    return {"n": n, "vote_accuracy": sum(vote) / len(vote), "best_of_n_accuracy": sum(best) / len(best),
            "pass_at_1": sum(p1) / len(p1), "latency_s": secs, "latency_per_item_s": secs / len(examples),
            "tokens": sum(len(c.tokens) for c in comps), "correct_counts": counts,
            "vote_correct": [int(v) for v in vote]}


def greedy_baseline(model, tok, task, examples, prompts, max_new_tokens: int) -> dict:
    """Greedy decoding of the same model on the same items: per-item correctness and accuracy."""
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0, **sampling_stops(tok))
    comps, secs = _timed_generate(model, prompts, params, tok)
    correct = [int(task.verify(ex, cut_at_stop(tok.decode(c.tokens))).score >= 1) for ex, c in zip(examples, comps)]
    return {"accuracy": sum(correct) / len(correct), "correct": correct, "latency_s": secs,
            "tokens": sum(len(c.tokens) for c in comps)}


def budget_scaling(model, tok, task, examples, prompts, budget: int, answer_tokens: int = 24) -> dict:
    """Greedy accuracy when thinking is cut at `budget` tokens and the answer is then forced."""
    think_open, think_close = tok.encode(THINK_OPEN), tok.token_to_id(THINK_CLOSE)
    if think_close is None:
        raise UserError(f"tts --budgets: this model's tokenizer has no {THINK_CLOSE} token, so thinking cannot be "
                        "cut at a budget — drop --budgets (vote@N and best-of-N still work)")
    stops = sampling_stops(tok)
    t0 = time.perf_counter()
    stage1 = generate(model, [p + think_open for p in prompts], SamplingParams(
        max_new_tokens=budget, temperature=0.0, stop_token_ids=(*stops["stop_token_ids"], think_close)),
        tokenizer=tok)
    thoughts = []
    for c in stage1:
        toks = list(c.tokens)
        while toks and toks[-1] in (*stops["stop_token_ids"], think_close):
            toks.pop()  # the model's own close / stop: we close the thought ourselves below
        thoughts.append(toks)
    forced = tok.encode(THINK_CLOSE + ANSWER_OPEN)
    stage2 = generate(model, [p + think_open + t + forced for p, t in zip(prompts, thoughts)],
                      SamplingParams(max_new_tokens=answer_tokens, temperature=0.0, **stops), tokenizer=tok)
    secs = time.perf_counter() - t0
    correct = []
    for ex, t, c in zip(examples, thoughts, stage2):
        text = THINK_OPEN + tok.decode(t) + THINK_CLOSE + ANSWER_OPEN + cut_at_stop(tok.decode(c.tokens))
        correct.append(int(task.verify(ex, text).score >= 1))
    return {"budget": budget, "accuracy": sum(correct) / len(examples), "correct": correct,
            "mean_think_tokens": sum(len(t) for t in thoughts) / len(thoughts),
            "latency_s": secs, "latency_per_item_s": secs / len(examples)}


def test_time_scaling(run: str | Path, task_spec: str, n_items: int = 100, samples: list[int] | None = None,
                      budgets: list[int] | None = None, template: str = "plain", max_new_tokens: int = 96,
                      temperature: float = 1.0, seed: int = 0, out: str | Path | None = None) -> dict:
    """Measure accuracy vs N and vs thinking budget on held-out items; write tts.json and plots."""
    from emergelab.runs import load_model
    from emergelab.tasks.registry import get_task

    samples = samples or [1, 2, 4, 8, 16]
    budgets = budgets or []
    if any(n < 1 for n in samples) or any(b < 1 for b in budgets):
        raise UserError("tts: --samples and --budgets must be positive integers, e.g. --samples 1,4,16")
    model, tok, _ = load_model(run)
    task = get_task(task_spec)
    examples = task.generate(n_items, "test", seed=seed)
    prompts = [encode_prompt(tok, render_prompt(task, ex, template)) for ex in examples]
    torch.manual_seed(seed)
    # one step per generation pass (greedy, each N, each budget); off when not a TTY or EMERGELAB_NO_PROGRESS=1
    bar = tqdm(total=1 + len(samples) + len(budgets), desc=f"tts {task.spec}", unit="pass",
               disable=True if os.environ.get("EMERGELAB_NO_PROGRESS") == "1" else None)
    bar.set_postfix_str("greedy")
    greedy = greedy_baseline(model, tok, task, examples, prompts, max_new_tokens)
    bar.update(1)
    by_n = []
    for n in samples:
        bar.set_postfix_str(f"{n} samples per item")
        by_n.append(sample_scaling(model, tok, task, examples, prompts, n, max_new_tokens, temperature, seed + n))
        bar.update(1)
    largest = max(by_n, key=lambda r: r["n"])  # unbiased pass@k from the largest sample set
    pass_k = {k: sum(pass_at_k(largest["n"], c, k) for c in largest["correct_counts"]) / n_items
              for k in samples if k <= largest["n"]}
    by_budget = []
    for b in budgets:
        bar.set_postfix_str(f"thinking budget {b}")
        by_budget.append(budget_scaling(model, tok, task, examples, prompts, b))
        bar.update(1)
    bar.close()
    result = {"run": str(run), "task": task.spec, "items": n_items, "temperature": temperature,
              "greedy": greedy, "samples": by_n, "pass_at_k": pass_k, "budgets": by_budget,
              "summary": {"greedy": greedy["accuracy"], "vote": {r["n"]: r["vote_accuracy"] for r in by_n},
                          "best_of_n": {r["n"]: r["best_of_n_accuracy"] for r in by_n}, "pass_at_k": pass_k,
                          "budget": {r["budget"]: r["accuracy"] for r in by_budget}}}
    out_dir = Path(out) if out else Path(run) / "tts"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tts.json").write_text(json.dumps(result, indent=1))
    plot_tts(result, out_dir)
    return result


def plot_tts(result: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    ns = [r["n"] for r in result["samples"]]
    for key, label in (("vote_accuracy", "majority vote@N"), ("best_of_n_accuracy", "best-of-N (verifier)"),
                       ("pass_at_1", "single sample")):
        axes[0].plot(ns, [r[key] for r in result["samples"]], marker="o", label=label)
    if "greedy" in result:
        for ax in axes:
            ax.axhline(result["greedy"]["accuracy"], color="gray", ls=":", lw=1, label="greedy (baseline)")
    axes[0].set_xscale("log", base=2)
    axes[0].set(xlabel="samples N", ylabel="accuracy", title="more samples")
    axes[0].legend(fontsize=7)
    if result["budgets"]:
        bs = [r["budget"] for r in result["budgets"]]
        axes[1].plot(bs, [r["accuracy"] for r in result["budgets"]], marker="o")
        axes[1].set_xscale("log", base=2)
    axes[1].set(xlabel="thinking budget (tokens)", ylabel="accuracy", title="more thinking (greedy)")
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(out_dir / f"tts.{ext}", dpi=110)
    plt.close(fig)

