"""Intervals from the data: Wilson for proportions, bootstrap over items, and over seeds and items together.

Per-seed, per-item data is a list with one list of item values per seed (`[[0, 1, 1, …], …]`); one seed is
`[[…]]`. Paired comparisons need the same items in the same order on both sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from emergelab.eval.metrics import wilson_interval

N_BOOT = 2000
SeedItems = Sequence[Sequence[float]]


def z_value(alpha: float = 0.05) -> float:
    """Two-sided normal quantile: 1.96 for alpha = 0.05."""
    return NormalDist().inv_cdf(1 - alpha / 2)


def wilson(k: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (Wilson 1927); (0, 1) when n = 0."""
    return wilson_interval(k, n, z_value(alpha))


def newcombe_diff(k1: float, n1: int, k2: float, n2: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """p1 − p2 of two independent proportions with Newcombe's hybrid Wilson interval (method 10, 1998)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, alpha)
    l2, u2 = wilson(k2, n2, alpha)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def _as_arrays(data: SeedItems) -> list[np.ndarray]:
    arrays = [np.asarray(s, dtype=float) for s in data]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ValueError("per-seed item lists must be non-empty")
    return arrays


def bootstrap_means(data: SeedItems, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates of the grand mean: resample seeds, then items within each drawn seed.

    With one seed this is the ordinary item bootstrap. Vectorised: every (slot, seed) pair gets its own
    item resample, so a seed drawn twice in one replicate is resampled twice, as the two-level scheme says."""
    arrays = _as_arrays(data)
    rng = np.random.default_rng(seed)
    k = len(arrays)
    # means[j, s, b]: replicate b's item-resampled mean of seed s, for seed slot j
    means = np.stack([np.stack([a[rng.integers(a.size, size=(n_boot, a.size))].mean(1) for a in arrays])
                      for _ in range(k)])
    picks = rng.integers(k, size=(n_boot, k)) if k > 1 else np.zeros((n_boot, 1), dtype=int)
    return means[np.arange(k)[None, :], picks, np.arange(n_boot)[:, None]].mean(1)


def grand_mean(data: SeedItems) -> float:
    """Mean over seeds of each seed's item mean."""
    return float(np.mean([a.mean() for a in _as_arrays(data)]))


def mean_interval(data: SeedItems, alpha: float = 0.05, n_boot: int = N_BOOT,
                  seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi): Wilson for one seed of 0/1 items, else the seeds × items percentile bootstrap."""
    arrays = _as_arrays(data)
    m = grand_mean(arrays)
    if len(arrays) == 1 and np.isin(arrays[0], (0.0, 1.0)).all():
        return (m, *wilson(float(arrays[0].sum()), arrays[0].size, alpha))
    reps = bootstrap_means(arrays, n_boot, seed)
    lo, hi = np.percentile(reps, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return m, float(lo), float(hi)


def mean_sigma(data: SeedItems, n_boot: int = 400, seed: int = 0) -> float:
    """Standard error of the grand mean (seeds × items bootstrap); for 0/1 items of one seed, binomial."""
    arrays = _as_arrays(data)
    if len(arrays) == 1 and np.isin(arrays[0], (0.0, 1.0)).all():
        n = arrays[0].size
        p = (arrays[0].sum() + 0.5) / (n + 1.0)  # shrunk so 0 and 1 keep a little variance
        return math.sqrt(p * (1 - p) / n)
    return float(np.std(bootstrap_means(arrays, n_boot, seed), ddof=1))


def bounded_mean_sigma(mean: float, n: int) -> float:
    """Worst-case standard error of a mean of n values in [0, 1] with this mean: √(p(1−p)/n)."""
    p = min(max((mean * n + 0.5) / (n + 1.0), 0.0), 1.0)
    return math.sqrt(p * (1 - p) / max(n, 1))


def paired_diff_interval(a: SeedItems, b: SeedItems, alpha: float = 0.05, n_boot: int = N_BOOT,
                         seed: int = 0) -> tuple[float, float, float]:
    """(mean of a − b, lo, hi) on the same items of the same seeds, resampling (seed, item) pairs."""
    arrays_a, arrays_b = _as_arrays(a), _as_arrays(b)
    if [x.size for x in arrays_a] != [x.size for x in arrays_b]:
        raise ValueError("a paired comparison needs the same items on both sides")
    diffs = [x - y for x, y in zip(arrays_a, arrays_b)]
    reps = bootstrap_means(diffs, n_boot, seed)
    lo, hi = np.percentile(reps, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return grand_mean(diffs), float(lo), float(hi)
