"""Command: report — re-render DIR/report.html from DIR/report.json and list its problems."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emergelab.errors import UserError


def cmd_report(args: argparse.Namespace) -> int:
    from emergelab.report import load_report, render_report, validate_report

    out = Path(args.dir)
    problems = validate_report(load_report(out), out)
    path = render_report(out)
    print(path)
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    if problems:
        raise UserError(f"{out / 'report.json'}: {len(problems)} problem(s), listed above and at the top of "
                        f"{path.name} — fix the stage that wrote them and re-run `emergelab report {out}`")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="re-render DIR/report.html from DIR/report.json",
                              description="Validate DIR/report.json (keys, verdicts, finite numbers, readable "
                              "PNG plots) and write the self-contained DIR/report.html. Exits 2 on problems.")
    p.add_argument("dir", help="the demo's output directory (holds report.json)")
    p.set_defaults(func=cmd_report)
