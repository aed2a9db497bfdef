"""Command: demo — the main job, from nothing to report.html."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_demo(args: argparse.Namespace) -> int:
    from emergelab.demo.pipeline import run_demo

    results = run_demo(args.profile, args.out, jobs=args.jobs)
    failed = [name for name, r in results.items() if r.get("status") != "ok"]
    report = Path(args.out) / "report.html"
    if report.exists():
        print(f"report: {report.resolve()}")
    if failed:
        print(f"stages that failed (details in {args.out}/stages/*.failed.json; re-run to retry): {', '.join(failed)}")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job: train model families, measure the essays' claims, write a report",
                       description="Build the embedded corpus, sweep model sizes, evaluate every ability, fit "
                                   "scaling laws, analyse emergence, run the ICL / grokking / classic experiments, "
                                   "post-train the strongest model (R1-Zero GRPO), measure test-time scaling, "
                                   "distill, and write OUT/report.html. Re-running skips finished stages.")
    p.add_argument("--profile", default="quick", choices=["tiny", "quick", "gpu"],
                   help="tiny: every stage in minutes, no claims; quick (default): the CPU recipe; gpu: larger")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--jobs", type=int, default=1, help="sweep runs trained at once (local processes)")
    p.set_defaults(func=cmd_demo)
