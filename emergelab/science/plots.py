"""Small plotting helpers shared by the science modules: Agg backend, PNG + SVG side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6):
    """A figure with `nrows × ncols` axes (always a flat list of axes)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, list(axes.flat)


def save_figure(fig, path_stem: str | Path) -> list[str]:
    """Write `path_stem.png` and `path_stem.svg`, close the figure, return the two paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = []
    for ext in ("png", "svg"):
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, dpi=120)
        paths.append(str(path))
    plt.close(fig)
    return paths


def plot_seed_curve(ax, params: list[float], seed_values: list[list[float]], mean: list[float],
                    ci95: list[tuple[float, float]], title: str = "") -> None:
    """One metric vs parameters on a log axis: every seed's value as a dot, the across-seed mean as a
    line and its 95% interval as a band (one entry per size in each list)."""
    for x, values in zip(params, seed_values):
        ax.scatter([x] * len(values), values, s=12, color="tab:blue", alpha=0.55, zorder=3)
    if params:
        ax.plot(params, mean, color="tab:blue", lw=1.5)
        ax.fill_between(params, [c[0] for c in ci95], [c[1] for c in ci95], color="tab:blue", alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_title(title, fontsize=9)
