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


def plot_seed_curve(ax, groups: list[dict], column: str) -> None:
    """`column` vs parameters on a log axis: every seed's value as a dot, the across-seed mean as a line and
    its 95% bootstrap interval as a band (`groups` from sweep_analysis.seed_groups)."""
    from emergelab.science.sweep_analysis import across_seeds

    xs, means, los, his = [], [], [], []
    for g in groups:
        values = [r.get(column) for r in g["rows"]]
        pts = [v for v in values if v is not None]
        if not pts or not g["params"]:
            continue
        ax.scatter([g["params"]] * len(pts), pts, s=12, color="tab:blue", alpha=0.55, zorder=3)
        a = across_seeds(pts)
        xs.append(g["params"])
        means.append(a["mean"])
        los.append(a["ci95"][0])
        his.append(a["ci95"][1])
    if xs:
        ax.plot(xs, means, color="tab:blue", lw=1.5)
        ax.fill_between(xs, los, his, color="tab:blue", alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_title(column.split("/", 1)[-1], fontsize=9)
