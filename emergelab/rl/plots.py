"""Plots of an RL run's metrics.jsonl: reward/accuracy, lengths, self-check rate vs base, KL/entropy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float) and math.isfinite(r[key])]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_rl_metrics(run_dir: str | Path) -> list[Path]:
    """Write plots/rl_curves.{png,svg}; returns the written paths (none if there are no metrics)."""
    rows = read_metrics(run_dir)
    if not rows:
        return []
    panels = [
        ("reward and accuracy", ["reward", "accuracy", "val_accuracy", "think_rate"]),
        ("response length (tokens)", ["len_mean", "len_correct", "len_incorrect"]),
        ("self-check phrase rate", ["self_check_rate", "val_self_check_rate", "self_check_base"]),
        ("KL to initial / entropy", ["kl", "entropy"]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            x, y = _series(rows, key)
            if x:
                ax.plot(x, y, marker="o" if key.startswith("val_") else None, ms=3,
                        ls="--" if key == "self_check_base" else "-", label=key)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(run_dir) / "plots"
    out.mkdir(exist_ok=True)
    paths = [out / "rl_curves.png", out / "rl_curves.svg"]
    for p in paths:
        fig.savefig(p, dpi=110)
    plt.close(fig)
    return paths
