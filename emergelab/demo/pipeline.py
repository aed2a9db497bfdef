"""`emergelab demo`: sweep → analysis → ICL → grokking → classics → R1-Zero → test-time scaling →
distillation → CoT bridge → attention picture → report. Each stage is resumable (see stages.py), finds
earlier stages' outputs through `DemoLayout` (layout.py) and returns the paths it wrote under "paths"."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from emergelab.demo.layout import DemoLayout
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
            "budget_grid": p.get("budget_grid"), "pretrain": overrides,
            "eval": {"n": p["eval_n"], "seed": 0, "abilities": ABILITIES}}


def sections(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A profile's {"rl.steps": 3, "halluc.halluc_n": 8} as {"rl": {"steps": 3}, "halluc": {"halluc_n": 8}}."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        section, name = key.split(".", 1)
        out.setdefault(section, {})[name] = value
    return out


def build_stages(profile_name: str, jobs: int | None = None, threads: int | None = None) -> list[Stage]:
    p = get_profile(profile_name)
    exp_profile = p["experiments"]

    def sweep(out: Path, _: dict) -> dict:
        from emergelab.science.sweep import run_sweep

        layout = DemoLayout(out)
        result = run_sweep(_sweep_recipe(p), layout.sweep, jobs=jobs, threads=threads)
        return {"runs": [r["run"] for r in result["rows"]], "paths": {"sweep": str(layout.sweep)}}

    def analysis(out: Path, _: dict) -> dict:
        from emergelab.science.sweep_analysis import analyse_sweep

        return analyse_sweep(DemoLayout(out).sweep, n_boot=50 if profile_name == "tiny" else 200)

    def experiment(name: str, sub: str, overrides=lambda out: None):
        """A stage running a registered experiment; `overrides(out)` may refer to earlier outputs."""
        def run(out: Path, _: dict) -> dict:
            from emergelab.science.experiments import run_experiment

            return run_experiment(name, DemoLayout(out).stage_dir(sub), exp_profile, overrides(out), threads=threads)
        return run

    def classics(out: Path, _: dict) -> dict:
        from emergelab.science.experiments import run_experiment

        return {name: run_experiment(name, DemoLayout(out).classic(name), exp_profile, threads=threads)
                for name in ("xor", "fgsm")}

    def r1_zero(out: Path, _: dict) -> dict:
        from emergelab.rl.recipes import run_recipe

        layout = DemoLayout(out)
        result = run_recipe("r1-zero", layout.strongest_run(), layout.r1_zero, sections(p["rl"]))
        return {**result, "paths": {"recipe": str(layout.r1_zero_recipe), "rl_run": str(layout.rl_run)}}

    def r1(out: Path, _: dict) -> dict:
        from emergelab.rl.recipes import run_recipe

        layout = DemoLayout(out)
        return run_recipe("r1", layout.strongest_run(), layout.stage_dir("r1"), sections(p["r1"]))

    def tts(out: Path, _: dict) -> dict:
        from emergelab.eval.tts import test_time_scaling

        t, layout = p["tts"], DemoLayout(out)
        result = test_time_scaling(layout.rl_run, ADD6, n_items=t["n_items"],
                                   samples=t["samples"], budgets=t["budgets"], max_new_tokens=t["max_new_tokens"],
                                   out=layout.stage_dir("tts"))
        return {"summary": result["summary"], "paths": {"tts": str(layout.stage_dir("tts"))}}

    def distill(out: Path, _: dict) -> dict:
        from emergelab.rl.distill import distill as run_distill

        d, layout = p["distill"], DemoLayout(out)
        try:
            if d.get("fair"):  # both arms tuned on one lr grid by validation accuracy (docs/verdicts.md#distill)
                from emergelab.rl.distill_fair import fair_distill

                result = fair_distill(layout.rl_run, layout.run_of_size(d["student_size"]),
                                      layout.stage_dir("distill"), d["task"], n=d["n"], samples=d["samples"],
                                      sft_overrides=[o for o in d["sft"] if not o.startswith("train.lr=")])
            else:
                result = run_distill(layout.rl_run, layout.run_of_size(d["student_size"]),
                                     layout.stage_dir("distill"), task=d["task"], n=d["n"], samples=d["samples"],
                                     overrides=d["sft"], compare_rl=True)
            return {**result, "paths": {"distill": str(layout.stage_dir("distill"))}}
        except UserError as e:  # a teacher with nothing verified to teach is a result, not a crash
            if "no verified answers" not in str(e):
                raise
            return {"skipped": str(e)}

    def attention(out: Path, _: dict) -> dict:
        from emergelab.demo.attention import attention_picture, hf_max_abs_diff

        layout = DemoLayout(out)
        strongest, where = layout.strongest_run(), layout.stage_dir("attention")
        return {**attention_picture(strongest, where), "hf_max_abs_diff": hf_max_abs_diff(strongest, where),
                "paths": {"attention": str(where)}}

    def verdict_inputs(out: Path, _: dict) -> dict:
        from emergelab.demo.measures import measure_verdict_inputs

        return measure_verdict_inputs(out, p)

    def real_model(out: Path, _: dict) -> dict:
        from emergelab.science.real_model.stage import run_real_model

        if not p.get("real_model"):
            return {"skipped": f"not run — the {profile_name} profile leaves the real model out"}
        return run_real_model(DemoLayout(out).stage_dir("real_model"), p["real_model"])

    def real_model_rl(out: Path, _: dict) -> dict:
        from emergelab.rl.recipes import run_recipe

        layout = DemoLayout(out)
        smol = layout.stage_dir("real_model") / "smollm2"
        if not p.get("real_model_rl"):
            return {"skipped": f"not run — the {profile_name} profile runs R1-Zero on the real model only on a GPU"}
        if not (smol / "checkpoints").exists():
            return {"skipped": "not run — the real_model stage did not import SmolLM2 (install it: `make extras`)"}
        return run_recipe("r1-zero", smol, layout.stage_dir("real_model_rl"), {"rl": p["real_model_rl"]})

    def cot_bridge_inputs(out: Path) -> dict:
        layout = DemoLayout(out)
        return {"runs": [str(layout.sweep_run(r)) for r in layout.sweep_rows()], "n": p["cot_bridge_n"], "task": ADD6}

    def report(out: Path, results: dict) -> dict:
        from emergelab.demo.report_data import build_report

        return build_report(out, profile_name, results)

    scale = {"tiny": 0.1}.get(profile_name, 1.0)
    # the four-stage R1 recipe (full, gpu): OUT/r1, after R1-Zero
    r1_stage = [Stage("r1", r1, 240 * scale, "r1")] if p.get("r1") else []
    return [
        Stage("sweep", sweep, p["sweep_estimate_s"], "sweep", resumable=True, settings=_sweep_recipe(p)),
        Stage("analysis", analysis, 30 * scale, settings={}),
        Stage("icl", experiment("icl", "icl"), 200 * scale, "icl"),
        Stage("grokking", experiment("grokking", "grokking"), 120 * scale, "grokking"),
        Stage("classics", classics, 20 * scale, "classics"),
        Stage("r1_zero", r1_zero, 240 * scale, "r1_zero"),
        *r1_stage,
        Stage("tts", tts, 60 * scale, "tts"),
        Stage("distill", distill, 120 * scale, "distill"),
        Stage("cot_bridge", experiment("cot-bridge", "cot_bridge",
                                       cot_bridge_inputs),
              30 * scale, "cot_bridge"),
        Stage("attention", attention, 5 * scale, "attention"),
        # re-run every time, like the report: it reads other stages' outputs and caches its own work
        Stage("verdict_inputs", verdict_inputs, 60 * scale, always=True),
        Stage("real_model", real_model, 180 if p.get("real_model") else 1, "real_model"),
        Stage("real_model_rl", real_model_rl, 3600 if p.get("real_model_rl") else 1, "real_model_rl"),
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
    stages = build_stages(profile, jobs, threads)
    t0 = time.time()
    # stages other than the sweep run alone: all cores as threads if the machine is idle at that moment
    results = run_stages(stages, out, progress=progress, profile=profile, settings=get_profile(profile),
                         before_each=lambda _: set_torch_threads(choose(jobs=1, threads=threads).threads))
    (out / "demo.json").write_text(json.dumps({"profile": profile, "seconds_this_invocation": time.time() - t0,
                                               "stages": {k: v.get("status") for k, v in results.items()}},
                                              indent=1))
    return results

