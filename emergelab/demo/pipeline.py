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
    return {"corpus_recipe": p["corpus"], "sizes": p["sizes"], "steps": [pre["max_steps"]], "seeds": p["seeds"],
            "pretrain": overrides, "eval": {"n": p["eval_n"], "seed": 0, "abilities": ABILITIES}}


def sweep_runs(out: Path) -> list[dict]:
    """Rows of the finished sweep, one per size (its first seed), smallest model first; every seed's rows:
    science.sweep_analysis.seed_groups."""
    rows = json.loads((out / "sweep" / "sweep.json").read_text())["rows"]
    first = min(r["seed"] for r in rows)
    return sorted((r for r in rows if r["seed"] == first), key=lambda r: r["params"])


def build_stages(profile_name: str, jobs: int | None = None, threads: int | None = None) -> list[Stage]:
    p = get_profile(profile_name)
    exp_profile = p["experiments"]

    def sweep(out: Path, _: dict) -> dict:
        from emergelab.science.sweep import run_sweep

        result = run_sweep(_sweep_recipe(p), out / "sweep", jobs=jobs, threads=threads)
        return {"runs": [r["run"] for r in result["rows"]]}

    def analysis(out: Path, _: dict) -> dict:
        from emergelab.science.sweep_analysis import analyse_sweep

        return analyse_sweep(out / "sweep", n_boot=50 if profile_name == "tiny" else 200)

    def experiment(name: str, sub: str, overrides=lambda out: None):
        """A stage running a registered experiment; `overrides(out)` may refer to earlier outputs."""
        def run(out: Path, _: dict) -> dict:
            from emergelab.science.experiments import run_experiment

            return run_experiment(name, out / sub, exp_profile, overrides(out), threads=threads)
        return run

    def classics(out: Path, _: dict) -> dict:
        from emergelab.science.experiments import run_experiment

        return {name: run_experiment(name, out / "classics" / name, exp_profile, threads=threads)
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

    def verdict_inputs(out: Path, _: dict) -> dict:
        from emergelab.demo.measures import measure_verdict_inputs

        return measure_verdict_inputs(out, p)

    def real_model(out: Path, _: dict) -> dict:
        from emergelab.science.real_model.stage import run_real_model

        if not p.get("real_model"):
            return {"skipped": f"not run — the {profile_name} profile leaves the real model out"}
        return run_real_model(out / "real_model", p["real_model"])

    def report(out: Path, results: dict) -> dict:
        from emergelab.demo.report_data import build_report

        return build_report(out, profile_name, results)

    scale = {"tiny": 0.1, "quick": 1.0, "gpu": 1.0}[profile_name]
    return [
        Stage("sweep", sweep, p["sweep_estimate_s"], "sweep", resumable=True),
        Stage("analysis", analysis, 30 * scale),
        Stage("icl", experiment("icl", "icl"), 200 * scale, "icl"),
        Stage("grokking", experiment("grokking", "grokking"), 120 * scale, "grokking"),
        Stage("classics", classics, 20 * scale, "classics"),
        Stage("r1_zero", r1_zero, 240 * scale, "r1_zero"),
        Stage("tts", tts, 60 * scale, "tts"),
        Stage("distill", distill, 120 * scale, "distill"),
        Stage("cot_bridge", experiment("cot-bridge", "cot_bridge",
                                       lambda out: {"runs": [str(out / "sweep" / "runs" / r["run"])
                                                             for r in sweep_runs(out)],
                                                    "n": p["cot_bridge_n"], "task": ADD6}),
              30 * scale, "cot_bridge"),
        Stage("attention", attention, 5 * scale, "attention"),
        Stage("verdict_inputs", verdict_inputs, 60 * scale, "verdict_inputs"),
        Stage("real_model", real_model, 180 if p.get("real_model") else 1, "real_model"),
        Stage("report", report, 5 * scale, always=True),
    ]


def run_demo(profile: str = "quick", out: str | Path = "runs/demo", jobs: int | None = None,
             progress: bool = True, threads: int | None = None) -> dict[str, Any]:
    """Run (or resume) the demo into `out`; returns the stage results. The report is OUT/report.html.

    The sweep trains `jobs` runs at once with `threads` torch threads each, every other stage runs alone
    with all cores (unset: emergelab.threads.choose)."""
    from emergelab.threads import choose, set_torch_threads

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    single = choose(jobs=1, threads=threads)
    set_torch_threads(single.threads)
    stages = build_stages(profile, jobs, threads)
    t0 = time.time()
    results = run_stages(stages, out, progress=progress, profile=profile, settings=get_profile(profile))
    (out / "demo.json").write_text(json.dumps({"profile": profile, "seconds_this_invocation": time.time() - t0,
                                               "stages": {k: v.get("status") for k, v in results.items()}},
                                              indent=1))
    return results

