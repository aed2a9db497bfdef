"""The scale dial: one name per model size, deriving depth, width, heads, learning rate and token budget.

Names give the approximate number of non-embedding parameters (embeddings depend on the vocabulary).
A sweep is a list of names; any derived field can still be overridden in the config.
"""

from __future__ import annotations

import math

from emergelab.errors import UserError

# name → (n_layer, n_embd, n_head). One head at the smallest widths: on the CPU a training step's attention
# costs ∝ heads × T² whatever the head size, and there it was most of the step (1 thread, 16×256-token
# document-masked batches of the quick corpus, process CPU ms per step, bench/bench_sweep.py
# --step-costs-only): 5k 15.7 → 11.8 (2 → 1 head), 10k 15.4 → 13.0, 15k 31.6 → 26.1. From 30k up, around the
# reversed-addition jump, the heads stay as they were: with 3 heads instead of 4, 50k seed 1 reached exact
# match 0.01 instead of 0.21 (and a higher loss) after 2,000 steps (docs/sweeps.md).
SIZES: dict[str, tuple[int, int, int]] = {
    "3k": (1, 12, 1),
    "5k": (1, 16, 1),
    "10k": (1, 24, 1),
    "15k": (2, 24, 1),
    "30k": (2, 32, 4),
    "40k": (2, 40, 4),
    "50k": (2, 48, 4),
    "70k": (2, 56, 4),
    "100k": (2, 64, 4),
    "150k": (2, 80, 4),
    "300k": (3, 96, 4),
    "1m": (4, 128, 4),
    "3m": (6, 192, 6),
    "10m": (8, 320, 8),
    "30m": (12, 448, 8),
    "100m": (16, 704, 11),
}

TOKENS_PER_PARAM = 20  # Chinchilla's compute-optimal ratio (Hoffmann et al. 2022)
MIN_TOKENS = 200_000


def size_lr(n_embd: int) -> float:
    """Peak AdamW learning rate: ∝ 1/sqrt(width) (a common μP-flavoured heuristic), clipped to [3e-4, 3e-3]."""
    return float(min(3e-3, max(3e-4, 1.5e-3 * math.sqrt(128 / n_embd))))


def approx_params(n_layer: int, n_embd: int) -> int:
    """Non-embedding parameters with a SwiGLU MLP of hidden ≈ 8/3·d: 4d² (attention) + 8d² (MLP) per layer."""
    return 12 * n_layer * n_embd * n_embd


def size_defaults(name: str) -> dict:
    """Config fields (as a nested dict) implied by a named size."""
    key = name.lower()
    if key not in SIZES:
        raise UserError(f"size={name!r} is not a named size — choose one of {', '.join(SIZES)}")
    n_layer, n_embd, n_head = SIZES[key]
    tokens = max(MIN_TOKENS, TOKENS_PER_PARAM * approx_params(n_layer, n_embd))
    return {
        "model": {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_head},
        "train": {"lr": size_lr(n_embd), "tokens": tokens},
    }
