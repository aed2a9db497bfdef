"""`emergelab demo`: sweep → analysis → ICL → grokking → classics → R1-Zero → test-time scaling →
distillation → CoT bridge → attention picture → report. Each stage is resumable (see stages.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from emergelab.demo.profiles import ABILITIES, ADD6, get_profile
from emergelab.demo.stages import Stage, run_stages
from emergelab.errors import UserError


def _sweep_recipe(p: dict) -> dict:
    pre = p["pretrain"]
    overrides = {f"train.{k}": v for k, v in pre.items() if k not in ("block_size", "loss_on")}
    overrides["model.block_size"] = pre["block_size"]
    overrides["data.loss_on"] = pre.get("loss_on", "all")
    overrides["train.ckpt_every"] = pre["max_steps"]
    overrides.pop("train.max_steps")
    return {"corpus_recipe": p["corpus"], "sizes": p["sizes"], "steps": [pre["max_steps"]], "seeds": [0],
            "pretrain": overrides, "eval": {"n": p["eval_n"], "seed": 0, "abilities": ABILITIES},
            "threads": p["threads"]}


def sweep_runs(out: Path) -> list[dict]:
    """Rows of the finished sweep (one per size), smallest model first."""
    rows = json.loads((out / "sweep" / "sweep.json").read_text())["rows"]
    return sorted(rows, key=lambda r: r["params"])


def build_stages(profile_name: str, jobs: int) -> list[Stage]:
    p = get_profile(profile_name)
    exp_profile = p["experiments"]

    def sweep(out: Path, _: dict) -> dict:
        from emergelab.science.sweep import run_sweep

        result = run_sweep(_sweep_recipe(p), out / "sweep", jobs=jobs)
        return {"runs": [r["run"] for r in result["rows"]]}

    def analysis(out: Path, _: dict) -> dict:
        from emergelab.science.sweep import analyse_sweep

        return analyse_sweep(out / "sweep", n_boot=50 if profile_name == "tiny" else 200)

    def experiment(name: str, sub: str, overrides=lambda out: None):
        """A stage running a registered experiment; `overrides(out)` may refer to earlier outputs."""
        def run(out: Path, _: dict) -> dict:
            from emergelab.science.experiments import run_experiment

            return run_experiment(name, out / sub, exp_profile, overrides(out), threads=p["threads"])
        return run

    def classics(out: Path, _: dict) -> dict:
        from emergelab.science.experiments import run_experiment

        return {name: run_experiment(name, out / "classics" / name, exp_profile, threads=p["threads"])
                for name in ("xor", "fgsm")}

    def r1_zero(out: Path, _: dict) -> dict:
        from emergelab.rl.recipes import run_recipe

        strongest = out / "sweep" / "runs" / sweep_runs(out)[-1]["run"]
        overrides = [f"{k}={v}" for k, v in p["rl"].items()]
        return run_recipe("r1-zero", strongest, out / "r1_zero", overrides)

    def tts(out: Path, _: dict) -> dict:
        from emergelab.eval.tts import test_time_scaling

        t = p["tts"]
        result = test_time_scaling(out / "r1_zero" / "rl", ADD6, n_items=t["n_items"],
                                   samples=t["samples"], budgets=t["budgets"], max_new_tokens=t["max_new_tokens"],
                                   out=out / "tts")
        return {"summary": result["summary"]}

    def distill(out: Path, _: dict) -> dict:
        from emergelab.rl.distill import distill as run_distill

        d = p["distill"]
        student = next(r for r in sweep_runs(out) if r["size"] == d["student_size"])
        try:
            return run_distill(out / "r1_zero" / "rl", out / "sweep" / "runs" / student["run"], out / "distill",
                               task=d["task"], n=d["n"], samples=d["samples"], overrides=d["sft"],
                               compare_rl=True)
        except UserError as e:  # a teacher with nothing verified to teach is a result, not a crash
            if "no verified answers" not in str(e):
                raise
            return {"skipped": str(e)}

    def attention(out: Path, _: dict) -> dict:
        from emergelab.demo.attention import attention_picture, hf_max_abs_diff

        strongest = out / "sweep" / "runs" / sweep_runs(out)[-1]["run"]
        return {**attention_picture(strongest, out / "attention"),
                "hf_max_abs_diff": hf_max_abs_diff(strongest, out / "attention")}

    def report(out: Path, results: dict) -> dict:
        from emergelab.demo.report_data import build_report

        return build_report(out, profile_name, results)

    scale = {"tiny": 0.1, "quick": 1.0, "gpu": 1.0}[profile_name]
    return [
        Stage("sweep", sweep, 420 * scale),
        Stage("analysis", analysis, 30 * scale),
        Stage("icl", experiment("icl", "icl"), 200 * scale, "icl"),
        Stage("grokking", experiment("grokking", "grokking"), 120 * scale, "grokking"),
        Stage("classics", classics, 20 * scale, "classics"),
        Stage("r1_zero", r1_zero, 240 * scale, "r1_zero"),
        Stage("tts", tts, 60 * scale, "tts"),
        Stage("distill", distill, 120 * scale, "distill"),
        Stage("cot_bridge", experiment("cot-bridge", "cot_bridge",
                                       lambda out: {"sweep": str(out / "sweep"), "n": p["cot_bridge_n"],
                                                    "task": ADD6}),
              30 * scale, "cot_bridge"),
        Stage("attention", attention, 5 * scale, "attention"),
        Stage("report", report, 5 * scale, always=True),
    ]


def run_demo(profile: str = "quick", out: str | Path = "runs/demo", jobs: int = 1,
             progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the demo into `out`; returns the stage results. The report is OUT/report.html."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stages = build_stages(profile, jobs)
    t0 = time.time()
    results = run_stages(stages, out, progress=progress)
    (out / "demo.json").write_text(json.dumps({"profile": profile, "seconds_this_invocation": time.time() - t0,
                                               "stages": {k: v.get("status") for k, v in results.items()}},
                                              indent=1))
    return results

