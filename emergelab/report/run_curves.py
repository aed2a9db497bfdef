"""Training curves of several runs in one picture: loss and validation loss from each run's metrics.jsonl.

`emergelab plot RUN [RUN ...] --out curves.png` — one line per run, against steps or training tokens,
so runs of different batch sizes compare on the tokens axis.
"""

from __future__ import annotations

import json
from pathlib import Path

from emergelab.errors import UserError

AXES = ("step", "tokens")


def read_curves(run: str | Path, x: str = "step") -> dict[str, list[tuple[float, float]]]:
    """{"loss": [(x, loss)], "val_loss": [(x, val_loss)]} from RUN/metrics.jsonl."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        raise UserError(f"plot: {path} not found — give run directories written by pretrain, sft or rl")
    curves: dict[str, list[tuple[float, float]]] = {"loss": [], "val_loss": []}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a killed run
            continue
        if x not in row:
            if x == "tokens":
                raise UserError(f"plot: {path} records no tokens per step — use --x step")
            continue
        for key in curves:
            if isinstance(row.get(key), int | float):
                curves[key].append((float(row[x]), float(row[key])))
    if not curves["loss"]:
        raise UserError(f"plot: {path} has no loss records yet")
    return curves


def run_labels(runs: list[Path]) -> list[str]:
    """Directory names, with the parent added where two runs share a name."""
    names = [r.resolve().name for r in runs]
    return [f"{r.resolve().parent.name}/{n}" if names.count(n) > 1 else n for r, n in zip(runs, names)]


def plot_runs(runs: list[str | Path], out: str | Path, x: str = "step", log_y: bool = False) -> Path:
    """Write a PNG (or SVG, by suffix) with the train and validation loss of every run; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if x not in AXES:
        raise UserError(f"--x: {x!r} must be one of {', '.join(AXES)}")
    paths = [Path(r) for r in runs]
    data = [read_curves(r, x) for r in paths]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for label, curves in zip(run_labels(paths), data):
        for ax, key in zip(axes, ("loss", "val_loss")):
            if curves[key]:
                xs, ys = zip(*curves[key])
                ax.plot(xs, ys, label=label, marker="o" if key == "val_loss" and len(xs) < 30 else None)
    for ax, title in zip(axes, ("training loss", "validation loss")):
        ax.set_title(title)
        ax.set_xlabel("training tokens" if x == "tokens" else "step")
        ax.set_ylabel("nats per scored token")
        if log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
