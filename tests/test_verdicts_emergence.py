"""The emergence / mirage rule (docs/verdicts.md#emergence) on synthetic sweeps with a known answer:
the same step test on every metric, noise from the items, power before "smooth", seeds pooled."""

import numpy as np

from emergelab.science import emergence
from emergelab.science.verdicts.mirage import simulate_mirage_rates

SCALES = np.array([5e3, 15e3, 30e3, 50e3, 100e3])


def _rows(metric, values, n=200, seed=0, items=None, scales=SCALES):
    return [{"ability": "a", "metric": metric, "scale": s, "value": v, "n": n, "seed": seed,
             **({"items": it} if items else {})}
            for s, v, it in zip(scales, values, items or [None] * len(values))]


def test_a_two_point_rise_in_character_accuracy_is_not_emergent():
    # the case: 0.50, 0.50, 0.50, 0.50, 0.52 was "emergent" under a 2%-of-range noise
    out = emergence.analyse_curve(SCALES, [0.50, 0.50, 0.50, 0.50, 0.52], np.full(5, 200), metric="char_accuracy",
                                  n_boot=0)
    assert out["emergent"] is False and not out["evidence"]["rises"]


def test_the_same_rise_with_per_item_noise_is_not_emergent_either():
    rng = np.random.default_rng(0)
    items = [rng.uniform(0.0, 1.0, 200) for _ in SCALES]
    items = [it - it.mean() + m for it, m in zip(items, [0.50, 0.50, 0.50, 0.50, 0.52])]
    rows = _rows("char_accuracy", [it.mean() for it in items], items=[it.tolist() for it in items])
    curve = emergence.pool_seeds(rows)
    assert curve["sigma"][0] > 0.015  # ≈ sd/√n ≈ 0.29/√200 ≈ 0.02: the data's noise, not 2% of 0.02
    out = emergence.analyse_curve(curve["scale"], curve["value"], sigma=curve["sigma"], metric="char_accuracy",
                                  n_boot=0)
    assert out["emergent"] is False


def test_a_jump_in_exact_match_and_character_accuracy_is_a_real_jump():
    em = _rows("exact_match", [0, 0, 0, 1.0, 1.0])
    char = _rows("char_accuracy", [0.22, 0.21, 0.23, 1.0, 1.0])
    out = emergence.analyse_table(em + char, n_boot=20)["a"]
    assert out["emergent"] is True and out["mirage"] is False
    assert out["continuous_status"] == {"char_accuracy": "jumps"}


def test_exact_match_jumping_over_a_smooth_character_accuracy_is_a_mirage():
    # Schaeffer et al.: per-character error falls as a power law in scale; exact match over 10 characters
    # is p^10, which looks like a jump over six decades (five sizes over 1.3 decades cannot tell it from a trend)
    scales = np.geomspace(1e4, 1e10, 13)
    p = 1 - 0.5 * (scales / 1e4) ** -1.0
    em = _rows("exact_match", list(np.round(p**10, 3)), n=1000, scales=scales)
    char = _rows("char_accuracy", list(p), n=1000, scales=scales)
    out = emergence.analyse_table(em + char, n_boot=20)["a"]
    assert out["emergent"] is True
    assert out["continuous_status"]["char_accuracy"] == "smooth"
    assert out["mirage"] is True


def test_a_flat_continuous_metric_without_power_does_not_make_a_mirage():
    em = _rows("exact_match", [0, 0, 0, 1.0, 1.0])
    flat = _rows("char_accuracy", [0.50, 0.50, 0.50, 0.50, 0.52])  # too small a range to have seen a jump
    out = emergence.analyse_table(em + flat, n_boot=20)["a"]
    assert out["emergent"] is True and out["mirage"] is None
    assert out["continuous_status"]["char_accuracy"].startswith("underpowered")


def test_seeds_that_disagree_are_flagged():
    jump = _rows("exact_match", [0, 0, 0, 1.0, 1.0], seed=0)
    none = _rows("exact_match", [0, 0, 0, 0.0, 0.01], seed=1)
    out = emergence.analyse_table(jump + none, n_boot=0)["a"]
    assert out["seeds_agree"] is False
    agree = emergence.analyse_table(jump + _rows("exact_match", [0, 0, 0, 0.98, 1.0], seed=1), n_boot=0)["a"]
    assert agree["emergent"] is True and agree["seeds_agree"] is True


def test_a_threshold_interval_at_the_largest_scale_says_beyond_the_tested_range():
    out = emergence.analyse_curve(SCALES, [0, 0, 0, 0.0, 1.0], np.full(5, 200), metric="exact_match", n_boot=20)
    if out["emergent"]:
        assert out["threshold_beyond"] == "above" and out["threshold_ci95"][1] <= SCALES[-1]
    else:  # a jump at the last scale alone may fail "inside the data"; then there is no threshold to report
        assert out["threshold"] is None


def test_simulated_error_rates_are_low_for_a_clear_design_and_reported_in_full():
    rates = simulate_mirage_rates(SCALES, n_items=200, seeds=1, worlds=12, seed=0)
    assert set(rates) >= {"false_mirage_rate", "missed_mirage_rate", "worlds"}
    assert rates["false_mirage_rate"] <= 0.25
    assert 0 <= rates["missed_mirage_rate"] <= 1


def test_a_large_smooth_rise_in_log_scale_is_not_emergent():
    # negative control of the step test: a 0.1 → 0.9 rise, linear in log-scale, passes "rises" but not the
    # step's BIC margin or sharpness
    x = np.log10(SCALES)
    value = 0.1 + 0.8 * (x - x[0]) / (x[-1] - x[0])
    out = emergence.analyse_curve(SCALES, value, np.full(5, 200), metric="exact_match", n_boot=0)
    assert out["emergent"] is False and out["evidence"]["rises"]
    assert not out["evidence"]["step_beats_smooth"]
