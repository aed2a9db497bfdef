"""The essays' "three S-curves" side by side on one compute axis.

Pretraining loss vs. training FLOPs, RL accuracy vs. RL FLOPs, accuracy vs. test-time FLOPs: the three
ways of spending compute on a model that the seed essays (003, 004) contrast. A panel whose stage did
not run says so instead of being left out, so the figure always has the same shape.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from emergelab.report.schema import S_CURVES  # noqa: E402

PANELS = {  # panel -> (title, x label, y label, colour)
    "pretrain": ("Pretraining", "training FLOPs", "validation loss", "C0"),
    "rl": ("Reinforcement learning", "RL FLOPs", "accuracy", "C1"),
    "tts": ("Test-time compute", "test-time FLOPs", "accuracy", "C2"),
}


def curve_points(curve: Any, ykey: str) -> list[tuple[float, float]]:
    """The plottable (flops, y) points of one panel, sorted by flops: finite numbers with flops > 0."""
    if not isinstance(curve, dict) or not isinstance(curve.get("flops"), list) or not isinstance(curve.get(ykey), list):
        return []
    points = []
    for x, y in zip(curve["flops"], curve[ykey]):
        try:
            x, y = float(x), float(y)
        except (TypeError, ValueError):
            continue
        if math.isfinite(x) and math.isfinite(y) and x > 0:
            points.append((x, y))
    return sorted(points)


def plot_s_curves(s_curves: dict[str, Any], path_stem: str | Path) -> list[Path]:
    """Draw the three panels; write `path_stem.png` and `.svg` and return both paths."""
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.8))
    for ax, (panel, ykey) in zip(axes, S_CURVES.items()):
        title, xlabel, ylabel, colour = PANELS[panel]
        points = curve_points(s_curves.get(panel), ykey)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", markersize=3, color=colour)
            ax.set_xscale("log")
        else:
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes, color="0.5")
            ax.set(xticks=[], yticks=[])
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return paths
