"""Diagnostics of sampled completions: self-check phrase rate, lengths by correctness (pass@k: eval.metrics)."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Phrases by which a model checks or corrects itself. Arithmetic's self-corrected worked solutions
# write "wait, check:"; R1-Zero's "aha moment" (DeepSeek-R1 §2.2.4) is "Wait, wait. ... re-evaluate".
# An "aha" only counts when the rate rises above the *step-0 model's own* rate: Liu et al. 2025
# (Dr. GRPO) found such phrases already in base models before any RL.
SELF_CHECK_RE = re.compile(r"\b(wait|check|re-?check|verify|re-?evaluate|mistake|actually|hmm)\b", re.I)


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
