"""The demo's extra measurements that its verdict rules need (docs/verdicts.md), beyond what the stages record:

- the all-token held-out loss of every sweep run (scaling; `science.heldout`);
- multiple-choice syllogism scores of every sweep run (syllogisms; `eval.choice`);
- R1-Zero's two baselines and the RL model on the same items, per item (r1_zero).

Written to OUT/verdict_inputs/inputs.json. Each part is skipped (with the reason) when its inputs are missing.
The stage runs every time (its inputs may have been re-made); each part caches its own results, so a re-run
only measures what changed.
"""

from __future__ import annotations

import json
from pathlib import Path

SYLLOGISM_SETS = {"nonce": "syllogism:hops=1-3,vocab=nonce",
                  "agree": "syllogism:hops=1-3,vocab=real,content=agree",
                  "conflict": "syllogism:hops=1-3,vocab=real,content=conflict"}


def _sweep_runs(out: Path) -> list[dict]:
    path = out / "sweep" / "sweep.json"
    return sorted(json.loads(path.read_text())["rows"], key=lambda r: r["params"]) if path.exists() else []


def heldout_losses(out: Path, max_tokens: int) -> dict:
    from emergelab.science.heldout import heldout_loss

    return {r["run"]: heldout_loss(out / "sweep" / "runs" / r["run"], max_tokens) for r in _sweep_runs(out)}


def syllogism_choices(out: Path, n: int) -> dict:
    """run → set → {accuracy, chance, items}, cached in each run directory as choice_eval.json."""
    from emergelab.eval.choice import evaluate_choice
    from emergelab.runs import load_model

    result = {}
    for r in _sweep_runs(out):
        run = out / "sweep" / "runs" / r["run"]
        cache = run / "choice_eval.json"
        cached = json.loads(cache.read_text()) if cache.exists() else {}
        if cached.get("n") == n:
            result[r["run"]] = cached["sets"]
            continue
        model, tok, _ = load_model(run, device="cpu")
        model.eval()
        sets = {name: evaluate_choice(model, tok, spec, n=n) for name, spec in SYLLOGISM_SETS.items()}
        cache.write_text(json.dumps({"n": n, "sets": sets}))
        result[r["run"]] = sets
    return result


def r1_zero_baselines(out: Path, task: str, n: int) -> dict:
    """Per-item correctness on the same held-out items: base greedy (its own mode), base forced to open
    `<think>`, and the RL model greedy; with each arm's chain-of-thought rate."""
    from emergelab.eval.harness import evaluate_task
    from emergelab.runs import load_model

    recipe = out / "r1_zero" / "recipe.json"
    if not recipe.exists():
        return {"skipped": "the R1-Zero stage did not run"}
    cache = out / "verdict_inputs" / "r1_zero.json"
    key = {"task": task, "n": n, "recipe_mtime": recipe.stat().st_mtime}
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    if cached.get("key") == key:
        return cached["result"]
    stages = json.loads(recipe.read_text())["stages"]
    arms = {"base_greedy": (stages["base"]["run"], "free"), "base_forced_think": (stages["base"]["run"], "cot"),
            "rl_greedy": (stages["rl"]["run"], "free")}
    result = {"task": task, "n": n}
    for arm, (run, fmt) in arms.items():
        model, tok, _ = load_model(run, device="cpu")
        model.eval()
        row = evaluate_task(model, tok, task, fmt=fmt, n=n, seed=1, keep_items=True, n_examples=0, progress=False)
        result[arm] = {"accuracy": row["exact_match"], "items": [int(it["score"] >= 1) for it in row["items"]],
                       "think_rate": row["formats_used"].get("cot", 0.0),
                       "mean_completion_tokens": row["mean_completion_tokens"]}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "result": result}))
    return result


def measure_verdict_inputs(out: Path, profile: dict) -> dict:
    """Run every part and write OUT/verdict_inputs/inputs.json; returns a short summary."""
    n = int(profile.get("eval_n", 200))
    result: dict = {}
    parts = {"heldout_loss": lambda: heldout_losses(out, max_tokens=8192 if n < 100 else 32768),
             "syllogism_choice": lambda: syllogism_choices(out, n),
             "r1_zero": lambda: r1_zero_baselines(out, profile["rl"].get("rl.task", ""),
                                                  int(profile["tts"]["n_items"]) * 2)}
    swept = bool(_sweep_runs(out))
    for name, fn in parts.items():
        result[name] = fn() if swept else {"skipped": "the sweep did not run"}
    (out / "verdict_inputs").mkdir(parents=True, exist_ok=True)
    (out / "verdict_inputs" / "inputs.json").write_text(json.dumps(result))
    return {k: sorted(v)[:3] if isinstance(v, dict) else v for k, v in result.items()}
