"""How often the emergence rule calls a mirage wrongly, simulated at a design's scales, items and seeds.

Two worlds, each a per-character correctness model with answers of L characters (exact match = all L right):
- *real jump*: per-character accuracy itself jumps (0.25 → 1 within a few hundredths of a decade between
  the middle scales), so exact match and character accuracy jump together. Calling this a mirage is a
  **false mirage**.
- *smooth* (Schaeffer et al. 2023): per-character accuracy rises linearly in log-scale from 0.5 to 0.995,
  and exact match ≈ p^L looks like a jump. Calling this a real jump is a **missed mirage**.
Each simulated sweep goes through `emergence.analyse_table` exactly as a real one (per-item noise,
seeds pooled, the power check), so the rates are those of the rule as implemented.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

ANSWER_CHARS = 5


def _world_rows(scales: np.ndarray, char_p: np.ndarray, n_items: int, seeds: int, rng) -> list[dict]:
    rows = []
    for seed in range(seeds):
        for sc, p in zip(scales, char_p):
            right = rng.random((n_items, ANSWER_CHARS)) < p
            em, char = right.all(1).astype(float), right.mean(1)
            for metric, items in (("exact_match", em), ("char_accuracy", char)):
                rows.append({"ability": "sim", "metric": metric, "scale": float(sc), "value": float(items.mean()),
                             "n": n_items, "seed": seed, "items": items.tolist()})
    return rows


def simulate_mirage_rates(scales: Sequence[float], n_items: int, seeds: int = 1, worlds: int = 25,
                          seed: int = 0) -> dict:
    """False-mirage and missed-mirage rates of the rule over `worlds` simulated sweeps of each kind."""
    from emergelab.science.emergence import analyse_table

    scales = np.sort(np.asarray(scales, dtype=float))
    x = np.log10(scales)
    mid = (x[len(x) // 2] + x[len(x) // 2 - 1]) / 2 if len(x) > 1 else x[0]
    jump = 0.25 + 0.75 / (1 + np.exp(-np.clip((x - mid) / 0.01, -60, 60)))
    smooth = 0.5 + 0.495 * (x - x[0]) / max(x[-1] - x[0], 1e-9)
    rng = np.random.default_rng(seed)
    calls: dict[str, list] = {"jump": [], "smooth": []}
    for _ in range(worlds):
        for world, p in (("jump", jump), ("smooth", smooth)):
            v = analyse_table(_world_rows(scales, p, n_items, seeds, rng), n_boot=0)["sim"]
            calls[world].append((v["emergent"], v["mirage"]))
    frac = lambda world, cond: sum(cond(e, m) for e, m in calls[world]) / worlds  # noqa: E731
    return {
        "worlds": worlds, "n_items": n_items, "seeds": seeds, "scales": [float(s) for s in scales],
        "answer_chars": ANSWER_CHARS,
        "false_mirage_rate": frac("jump", lambda e, m: m is True),
        "missed_mirage_rate": frac("smooth", lambda e, m: m is False),
        "jump_world_emergent_rate": frac("jump", lambda e, m: bool(e)),
        "smooth_world_emergent_rate": frac("smooth", lambda e, m: bool(e)),
        "jump_world_undetermined_rate": frac("jump", lambda e, m: bool(e) and m is None),
        "smooth_world_undetermined_rate": frac("smooth", lambda e, m: bool(e) and m is None),
        "rate_resolution": 1 / worlds if worlds else math.nan,
    }
