"""Distillation: a teacher's verified reasoning traces become a student's SFT set (DeepSeek-R1 §2.4).

    emergelab distill --teacher RUN --student RUN|CONFIG.yaml --out OUT [--compare-rl] [sft.key=value ...]

The teacher samples `samples` completions for each of `n` training prompts; completions the task's
verifier scores correct and that are well-formed (not "malformed") are kept, deduplicated per prompt,
and written to OUT/teacher_traces.jsonl; the student is fine-tuned on them (OUT/student_sft). A
student given as a CONFIG.yaml is first pretrained into OUT/student_base.

`--compare-rl` runs the R1 paper's comparison "distillation vs. RL on the small model" at matched
compute: GRPO on the same student (OUT/student_rl) for as many steps as make its forward+backward
token count equal the SFT's (generation cost not counted, which favours RL), then scores both
students greedily on the same held-out items (OUT/distill.json).
"""

from __future__ import annotations

import json
from pathlib import Path

from emergelab.data.chat import MAX_NEW_TOKENS, encode_pair
from emergelab.errors import UserError
from emergelab.eval.completions import complete_and_verify, greedy_accuracy, task_prompts
from emergelab.train.sft import write_jsonl_pairs


def parent_setting(run: str | Path, key: str, default=None):
    """`key` from the rl: or sft: section of a run's config.yaml (the stage that produced it)."""
    from emergelab.runs import read_run_config

    cfg = read_run_config(run)
    for section in ("rl", "sft", "dpo"):
        if isinstance(cfg.get(section), dict) and cfg[section].get(key) is not None:
            return cfg[section][key]
    return default


def teacher_traces(model, tok, task, n: int, samples: int, template: str, max_new_tokens: int, seed: int
                   ) -> tuple[list[tuple[str, str]], dict]:
    """Verified, well-formed, deduplicated (prompt, response) pairs, and counts."""
    examples = task.generate(n, "train", seed=seed)
    checked = complete_and_verify(model, tok, task, examples, task_prompts(tok, task, examples, template),
                                  max_new_tokens=max_new_tokens, temperature=1.0, seed=seed, num_samples=samples)
    pairs, seen, correct = [], set(), 0
    for c in checked:
        ex, text = c.example, c.text.strip()
        if c.verdict.score < 1 or c.verdict.format == "malformed":
            continue
        correct += 1
        if (ex.prompt, text) not in seen:
            seen.add((ex.prompt, text))
            pairs.append((task.render_prompt(ex), text))
    return pairs, {"sampled": len(checked), "verified": correct, "kept": len(pairs)}


def _fitting_seq_len(student: Path, pairs: list[tuple[str, str]], template: str) -> int:
    """SFT row length that holds the longest trace whole (a truncated trace would lose its answer)."""
    from emergelab.data.tokenizer import Tokenizer
    from emergelab.runs import read_run_config

    tok = Tokenizer.load(student / "tokenizer.json")
    longest = max(len(encode_pair(tok, p, r, template)[0]) for p, r in pairs)
    return min(int(read_run_config(student)["model"]["block_size"]), -(-longest // 32) * 32)


def distill(teacher: str | Path, student: str | Path, out: str | Path, task: str | None = None, n: int = 1000,
            samples: int = 4, overrides: list[str] | None = None, compare_rl: bool = False,
            max_new_tokens: int | None = None, seed: int = 0) -> dict:
    from emergelab.config import TrainConfig, load
    from emergelab.rl.trainer import RLConfig, train_grpo
    from emergelab.runs import load_model
    from emergelab.tasks.registry import get_task
    from emergelab.train.sft import SFTConfig, SFTDataConfig, train_sft

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    task_spec = task or parent_setting(teacher, "task")
    if not task_spec:
        raise UserError("distill --task: the teacher run records no task — pass --task, e.g. add:digits=6")
    template = parent_setting(teacher, "template", "plain")
    max_new = max_new_tokens or int(parent_setting(teacher, "max_new_tokens", MAX_NEW_TOKENS))
    student_path = Path(student)
    if student_path.is_file():  # a pretraining config: build the student first
        from emergelab.train.pretrain import pretrain

        pretrain(str(student_path), out / "student_base")
        student_path = out / "student_base"
    elif not (student_path / "config.yaml").exists():
        raise UserError(f"distill --student: {student} is neither a run directory nor a config file")

    tmodel, ttok, _ = load_model(teacher)
    t = get_task(task_spec)
    pairs, counts = teacher_traces(tmodel, ttok, t, n, samples, template, max_new, seed)
    if not pairs:
        raise UserError("distill: the teacher produced no verified answers — train it further or raise --samples")
    write_jsonl_pairs(pairs, out / "teacher_traces.jsonl")
    # train: TrainConfig's own defaults with rows that hold the longest trace (as distillation has always run)
    base = SFTConfig(SFTDataConfig(task=task_spec, jsonl=[str(out / "teacher_traces.jsonl")], template=template,
                                   max_new_tokens=max_new),
                     TrainConfig(seq_len=_fitting_seq_len(student_path, pairs, template)))
    sft_cfg = load(SFTConfig, None, overrides, base=base)
    sft_summary = train_sft(sft_cfg, student_path, out / "student_sft", pairs=pairs)
    result = {"teacher": str(teacher), "student": str(student_path), "task": task_spec, "traces": counts,
              "sft": {k: sft_summary[k] for k in ("conversations", "assistant_tokens", "steps")}}

    eval_set = t.generate(200, "test", seed=seed)
    scores, chars = {}, {}

    def score(name: str, run: Path) -> None:
        m, tok, _ = load_model(run)
        g = greedy_accuracy(m, tok, t, eval_set, template, max_new)
        scores[name], chars[name] = g["val_accuracy"], g.get("val_char_accuracy")

    score("student_base", student_path)
    score("student_distilled", out / "student_sft")
    if compare_rl:
        sft_tokens = sft_summary["steps"] * sft_cfg.train.batch_size * sft_cfg.train.seq_len
        avg_prompt = sum(map(len, task_prompts(ttok, t, eval_set, template))) / len(eval_set)
        rl_cfg = RLConfig(task=task_spec, template=template, max_new_tokens=max_new, progress=True)
        per_step = rl_cfg.prompts_per_step * rl_cfg.group_size * (avg_prompt + max_new / 2)
        rl_cfg.steps = max(1, round(sft_tokens / per_step))
        train_grpo(rl_cfg, student_path, out / "student_rl")
        score("student_rl", out / "student_rl")
        result["rl"] = {"steps": rl_cfg.steps, "matched_tokens": sft_tokens}
    result["heldout_greedy_accuracy"] = scores
    result["heldout_char_accuracy"] = chars
    (out / "distill.json").write_text(json.dumps(result, indent=1))
    return result
