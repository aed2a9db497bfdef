"""Per-claim figures of the demo report: each plots numbers a verdict uses, with their intervals."""

from __future__ import annotations

from pathlib import Path


def plot_val_loss(curves: dict[str, tuple[list[float], list[float]]], stem: Path) -> list[str]:
    """Validation loss vs training tokens, one line per run."""
    from emergelab.science.plots import new_figure, save_figure

    fig, (ax,) = new_figure()
    for name, (tokens, loss) in curves.items():
        ax.plot(tokens, loss, marker="o", label=name)
    ax.set_xlabel("training tokens")
    ax.set_ylabel("validation loss (nats/token)")
    ax.legend(fontsize=7)
    return save_figure(fig, stem)


def plot_with_intervals(series: dict[str, list[tuple[float, float, float, float]]], xlabel: str, ylabel: str,
                        stem: Path, chance: float | None = None, log_x: bool = True) -> list[str]:
    """One line per series of (x, estimate, lo, hi) points, with error bars; a dotted chance line."""
    from emergelab.science.plots import new_figure, save_figure

    fig, (ax,) = new_figure()
    for label, pts in series.items():
        xs, ys, los, his = zip(*pts)
        ax.errorbar(xs, ys, yerr=[[y - lo for y, lo in zip(ys, los)], [hi - y for y, hi in zip(ys, his)]],
                    marker="o", capsize=3, label=label)
    if chance is not None:
        ax.axhline(chance, color="gray", ls=":", lw=1, label="chance")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return save_figure(fig, stem)
