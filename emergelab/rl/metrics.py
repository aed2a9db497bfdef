"""Diagnostics of sampled completions: pass@k, self-check phrase rate, lengths by correctness."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

# Phrases by which a model checks or corrects itself. Arithmetic's self-corrected worked solutions
# write "wait, check:"; R1-Zero's "aha moment" (DeepSeek-R1 §2.2.4) is "Wait, wait. ... re-evaluate".
# An "aha" only counts when the rate rises above the *step-0 model's own* rate: Liu et al. 2025
# (Dr. GRPO) found such phrases already in base models before any RL.
SELF_CHECK_RE = re.compile(r"\b(wait|check|re-?check|verify|re-?evaluate|mistake|actually|hmm)\b", re.I)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 − C(n−c, k)/C(n, k) (Chen et al. 2021, eq. 1)."""
    if k > n:
        raise ValueError(f"pass@k needs k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def self_check_rate(completions: Sequence[str]) -> float:
    """Share of completions containing at least one self-check phrase."""
    if not completions:
        return 0.0
    return sum(bool(SELF_CHECK_RE.search(c)) for c in completions) / len(completions)


def mean_or_nan(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def completion_stats(texts: Sequence[str], scores: Sequence[float], formats: Sequence[str],
                     lengths: Sequence[int], finish: Sequence[str]) -> dict[str, float]:
    """Accuracy, lengths (tokens) for correct vs incorrect answers, think and truncation rates."""
    correct = [n for n, s in zip(lengths, scores) if s >= 1.0]
    wrong = [n for n, s in zip(lengths, scores) if s < 1.0]
    return {
        "accuracy": mean_or_nan(scores),
        "len_mean": mean_or_nan(lengths),
        "len_correct": mean_or_nan(correct),
        "len_incorrect": mean_or_nan(wrong),
        "think_rate": mean_or_nan([f == "cot" for f in formats]),
        "malformed_rate": mean_or_nan([f == "malformed" for f in formats]),
        "trunc_rate": mean_or_nan([f == "length" for f in finish]),
        "self_check_rate": self_check_rate(texts),
    }
