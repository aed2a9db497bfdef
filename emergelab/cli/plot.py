"""Command: plot — loss and validation-loss curves of several runs in one PNG."""

from __future__ import annotations

import argparse


def cmd_plot(args: argparse.Namespace) -> int:
    from emergelab.report.run_curves import plot_runs

    print(f"wrote {plot_runs(args.runs, args.out, args.x, args.log)}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("plot", help="loss and validation-loss curves of several runs in one PNG",
                              description="Reads RUN/metrics.jsonl of every run and draws training loss and "
                                          "validation loss side by side, one line per run.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (pretrain, sft, rl, ...)")
    p.add_argument("--out", default="curves.png", help="output image (.png or .svg)")
    p.add_argument("--x", default="step", choices=("step", "tokens"),
                   help="horizontal axis: optimizer steps or training tokens (compares different batch sizes)")
    p.add_argument("--log", action="store_true", help="logarithmic loss axis")
    p.set_defaults(func=cmd_plot)
