"""Command: demo — the main job, from nothing to report.html."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_demo(args: argparse.Namespace) -> int:
    from emergelab.demo.pipeline import run_demo
    from emergelab.threads import choose

    # a bad --jobs / --threads is one line, before any stage (busy=0: only checked, so no 0.25 s load probe)
    choose(jobs=args.jobs, threads=args.threads, busy=0)
    results = run_demo(args.profile, args.out, jobs=args.jobs, threads=args.threads)
    failed = [name for name, r in results.items() if r.get("status") != "ok"]
    report = Path(args.out) / "report.html"
    if report.exists():
        print(f"report: {report.resolve()}")
    if failed:
        print(f"stages that failed (details in {args.out}/stages/*.failed.json; re-run to retry): {', '.join(failed)}")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from emergelab.demo.profiles import PROFILES

    p = sub.add_parser("demo", help="the main job: train model families, measure the essays' claims, write a report",
                       description="Build the embedded corpus, sweep model sizes × seeds, evaluate every ability, "
                                   "fit scaling laws, analyse emergence, run the ICL / grokking / classic "
                                   "experiments, post-train the strongest model (R1-Zero GRPO), measure test-time "
                                   "scaling, distill, and write OUT/report.html. Re-running skips stages finished "
                                   "under the same profile and settings; a folder of another profile is refused.")
    p.add_argument("--profile", default="quick", choices=list(PROFILES),
                   help="tiny: every stage in minutes, no claims; quick (default): the CPU recipe (~20 min); "
                        "full: the CPU recipe for an hour; gpu: larger sizes on CUDA")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--jobs", type=int, default=None,
                   help="sweep runs trained at once in local processes (default: one per core)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per job (default: chosen from the cores available and the load)")
    p.set_defaults(func=cmd_demo)
