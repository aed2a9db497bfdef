"""Distillation vs RL on a small student, compared fairly (docs/verdicts.md#distill).

Both arms get the same tuning budget: each trains once per learning rate of the same small grid, and the
run with the best greedy accuracy on a validation set (train-split items under another seed, disjoint from
the test split) is kept. The RL arm trains on as many tokens as the distillation arm did (prompt plus half
the generation budget per sample, as `rl.distill`). Both kept runs are then scored on the same test items,
per item, so the comparison is paired. The student's accuracy before either arm is recorded: a student at 0
gives GRPO no reward signal, and the verdict rule says so.

Writes OUT/distill.json in the layout of `rl.distill` plus `fairness` and per-item `heldout_items`.
"""

from __future__ import annotations

import json
from pathlib import Path

from emergelab.errors import UserError

LR_GRID = (3e-4, 1e-3, 3e-3)  # SFT; GRPO uses the same grid scaled by RL_LR_SCALE
RL_LR_SCALE = 0.1  # GRPO steps are noisier than SFT's: a tenth of the SFT rates (1e-4 is the reference setting)


def _per_item(run: Path, task, examples, template: str, max_new: int) -> list[int]:
    from emergelab.eval.completions import complete_and_verify, task_prompts
    from emergelab.runs import load_model

    model, tok, _ = load_model(run)
    checked = complete_and_verify(model, tok, task, examples, task_prompts(tok, task, examples, template),
                                  max_new_tokens=max_new, temperature=0.0)
    return [int(c.verdict.score >= 1) for c in checked]


def fair_distill(teacher: str | Path, student: str | Path, out: str | Path, task: str, n: int = 1000,
                 samples: int = 4, lr_grid: tuple[float, ...] = LR_GRID, val_n: int = 100, test_n: int = 200,
                 sft_overrides: list[str] | None = None, seed: int = 0) -> dict:
    """Tune both arms on the same lr grid by validation accuracy at matched tokens; score both on test items."""
    from emergelab.config import TrainConfig, load
    from emergelab.data.chat import MAX_NEW_TOKENS
    from emergelab.rl.distill import _fitting_seq_len, parent_setting, teacher_traces
    from emergelab.rl.trainer import RLConfig, train_grpo
    from emergelab.runs import load_model
    from emergelab.tasks.registry import get_task
    from emergelab.train.sft import SFTConfig, SFTDataConfig, train_sft, write_jsonl_pairs

    out, student = Path(out), Path(student)
    out.mkdir(parents=True, exist_ok=True)
    template = parent_setting(teacher, "template", "plain")
    max_new = int(parent_setting(teacher, "max_new_tokens", MAX_NEW_TOKENS))
    t = get_task(task)
    tmodel, ttok, _ = load_model(teacher)
    pairs, counts = teacher_traces(tmodel, ttok, t, n, samples, template, max_new, seed)
    if not pairs:
        raise UserError("distill: the teacher produced no verified answers — train it further or raise --samples")
    write_jsonl_pairs(pairs, out / "teacher_traces.jsonl")
    val_set = t.generate(val_n, "train", seed=seed + 10_000)
    test_set = t.generate(test_n, "test", seed=seed)
    base_val = _per_item(student, t, val_set, template, max_new)

    def val_acc(run: Path) -> float:
        items = _per_item(run, t, val_set, template, max_new)
        return sum(items) / len(items)

    base = SFTConfig(SFTDataConfig(task=task, jsonl=[str(out / "teacher_traces.jsonl")], template=template,
                                   max_new_tokens=max_new),
                     TrainConfig(seq_len=_fitting_seq_len(student, pairs, template)))
    sft_runs, sft_tokens = {}, None
    for lr in lr_grid:
        cfg = load(SFTConfig, None, [*(sft_overrides or []), f"train.lr={lr}"], base=base)
        summary = train_sft(cfg, student, out / f"sft_lr{lr:g}", pairs=pairs)
        sft_tokens = summary["steps"] * cfg.train.batch_size * cfg.train.seq_len
        sft_runs[lr] = val_acc(out / f"sft_lr{lr:g}")
    avg_prompt = sum(len(ttok.encode(p)) for p, _ in pairs) / len(pairs)
    rl_runs = {}
    for rl_lr in (float(f"{lr * RL_LR_SCALE:.3g}") for lr in lr_grid):
        rl_cfg = RLConfig(task=task, template=template, max_new_tokens=max_new, lr=rl_lr, progress=False)
        rl_cfg.steps = max(1, round(sft_tokens / (rl_cfg.prompts_per_step * rl_cfg.group_size
                                                  * (avg_prompt + max_new / 2))))
        train_grpo(rl_cfg, student, out / f"rl_lr{rl_lr:g}")
        rl_runs[rl_lr] = val_acc(out / f"rl_lr{rl_lr:g}")
    best_sft, best_rl = max(sft_runs, key=sft_runs.get), max(rl_runs, key=rl_runs.get)
    items = {"student_base": _per_item(student, t, test_set, template, max_new),
             "student_distilled": _per_item(out / f"sft_lr{best_sft:g}", t, test_set, template, max_new),
             "student_rl": _per_item(out / f"rl_lr{best_rl:g}", t, test_set, template, max_new)}
    result = {"teacher": str(teacher), "student": str(student), "task": t.spec, "traces": counts,
              "heldout_greedy_accuracy": {k: sum(v) / len(v) for k, v in items.items()},
              "heldout_items": items, "heldout_n": test_n,
              "fairness": {"matched": True, "lr_grid_sft": list(lr_grid), "lr_grid_rl": list(rl_runs),
                           "val_accuracy_sft": {f"{k:g}": v for k, v in sft_runs.items()},
                           "val_accuracy_rl": {f"{k:g}": v for k, v in rl_runs.items()},
                           "chosen_lr": {"sft": best_sft, "rl": best_rl}, "matched_tokens": sft_tokens,
                           "student_val_accuracy_before": sum(base_val) / len(base_val)},
              "rl": {"matched_tokens": sft_tokens}}
    (out / "distill.json").write_text(json.dumps(result, indent=1))
    return result
