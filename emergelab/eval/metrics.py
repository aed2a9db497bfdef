"""Aggregate metrics for task evaluation: exact match with a Wilson 95% interval, means of
continuous metrics with standard errors, accuracy centred on chance, and unbiased pass@k."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927); well-behaved at 0 and 1,
    unlike the normal approximation."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_and_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Sample mean and its standard error (0 for fewer than two values)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(values) / n
    if n < 2:
        return m, 0.0
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    return m, math.sqrt(var / n)


def centered_accuracy(acc: float, chance: float) -> float:
    """(acc - chance) / (1 - chance): 0 at chance, 1 when perfect (nanochat's chance-centred score)."""
    return (acc - chance) / (1 - chance) if chance < 1 else 0.0


def exact_match_summary(scores: Sequence[float], chance: float) -> dict[str, float | list[float]]:
    """Exact match (mean of 0/1 scores), its Wilson 95% interval, chance and centred accuracy."""
    n = len(scores)
    k = sum(1 for s in scores if s >= 1.0)
    acc = k / n if n else float("nan")
    lo, hi = wilson_interval(k, n)
    return {"exact_match": acc, "ci95": [lo, hi], "n": n, "chance": chance,
            "centered": centered_accuracy(acc, chance) if n else float("nan")}


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 − C(n−c, k)/C(n, k) (Chen et al. 2021, eq. 1)."""
    if k > n:
        raise ValueError(f"pass@k needs k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)
