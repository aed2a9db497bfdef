"""Each verdict rule of docs/verdicts.md against synthetic inputs whose answer is known: a positive and a
negative control per rule, and the noise model against independent oracles (scipy, normal theory)."""

import math

import numpy as np
import pytest
from scipy import stats

from emergelab.science.verdicts import noise
from emergelab.science.verdicts import rules as R


def items(p: float, n: int = 200, seed: int = 0) -> list[float]:
    """n 0/1 items with exactly round(p·n) ones, shuffled."""
    k = round(p * n)
    x = np.array([1.0] * k + [0.0] * (n - k))
    np.random.default_rng(seed).shuffle(x)
    return x.tolist()


# ---- noise ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k,n", [(0, 20), (3, 20), (100, 200), (200, 200)])
def test_wilson_matches_scipy(k, n):
    ci = stats.binomtest(k, n).proportion_ci(method="wilson")
    assert noise.wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_item_bootstrap_matches_normal_theory_for_a_large_sample():
    x = np.random.default_rng(1).normal(0.3, 0.2, 4000)
    m, lo, hi = noise.mean_interval([x.tolist()])
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert m == pytest.approx(x.mean())
    assert lo == pytest.approx(m - 1.96 * se, abs=0.15 * se)
    assert hi == pytest.approx(m + 1.96 * se, abs=0.15 * se)


def test_seed_bootstrap_widens_the_interval_when_seeds_disagree():
    agree = [items(0.5, seed=s) for s in range(3)]
    disagree = [items(p, seed=s) for s, p in enumerate((0.1, 0.5, 0.9))]
    _, lo1, hi1 = noise.mean_interval(agree)
    _, lo2, hi2 = noise.mean_interval(disagree)
    assert hi2 - lo2 > 3 * (hi1 - lo1)


def test_seed_bootstrap_spread_matches_theory_when_seeds_dominate():
    # seed means 0, 1, 2 with negligible item noise: resampling 3 seeds gives sd = pop. sd / √3
    rng = np.random.default_rng(0)
    data = [(v + 0.001 * rng.random(100)).tolist() for v in (0.0, 1.0, 2.0)]
    assert np.std(noise.bootstrap_means(data)) == pytest.approx(np.std([0, 1, 2]) / math.sqrt(3), rel=0.1)


def test_paired_difference_uses_the_pairing():
    # b = a with 10 of 200 items flipped to correct: paired, the gain is clearly positive; unpaired, it is not
    a = items(0.5)
    b = list(a)
    flipped = [i for i, v in enumerate(a) if v == 0][:10]
    for i in flipped:
        b[i] = 1.0
    d, lo, _ = noise.paired_diff_interval([b], [a])
    assert d == pytest.approx(0.05) and lo > 0
    _, ulo, _ = noise.newcombe_diff(sum(b), 200, sum(a), 200)
    assert ulo < 0


def test_bounded_mean_sigma_is_the_bernoulli_worst_case():
    assert noise.bounded_mean_sigma(0.5, 100) == pytest.approx(math.sqrt(0.5 * 0.5 / 100), rel=0.01)


# ---- lm, scaling ------------------------------------------------------------------------------------------


def test_lm_without_validation_loss_is_not_run():
    assert R.lm_rule({}, math.log(64)).verdict == R.NOT_RUN
    assert R.lm_rule({"10k": [3.0]}, math.log(64)).verdict == R.NOT_RUN


def test_lm_positive_and_negative_controls():
    assert R.lm_rule({"a": [4.1, 2.0], "b": [4.1, 1.5]}, math.log(64)).verdict == R.REPRODUCED
    assert R.lm_rule({"a": [4.1, 4.15]}, math.log(64)).verdict == R.NOT_REPRODUCED  # never left uniform
    assert R.lm_rule({"a": [4.1, 2.0], "b": [4.1, 4.2]}, math.log(64)).verdict == R.INCONCLUSIVE


def test_scaling_needs_the_held_out_prediction():
    good = R.scaling_rule(0.3, (0.2, 0.4), predicted=2.05, observed=2.0, n_fit=4)
    assert good.verdict == R.REPRODUCED
    # α > 0 with its interval above 0 is no longer enough: the largest run is 2.7x below the law
    bad = R.scaling_rule(0.35, (0.2, 1.74), predicted=0.291, observed=0.109, n_fit=4)
    assert bad.verdict == R.NOT_REPRODUCED
    assert R.scaling_rule(0.3, (-0.1, 0.6), 2.05, 2.0, 4).verdict == R.INCONCLUSIVE
    assert R.scaling_rule(0.3, (0.2, 0.4), 2.05, 2.0, 2).verdict == R.NOT_RUN


# ---- in-context learning ----------------------------------------------------------------------------------


def _icl_history(abrupt: bool, steps: int = 2000, every: int = 100):
    xs = list(range(0, steps + 1, every))
    if abrupt:  # plateau at ln 64, then a fall of ~2.8 nats over 300 steps, with a head forming
        loss = [4.15 - 2.8 / (1 + math.exp(-(s - 1200) / 60)) for s in xs]
        pm = [0.1 + 0.7 / (1 + math.exp(-(s - 1200) / 60)) for s in xs]
    else:  # the same total decline spread evenly over training
        loss = [4.15 - 2.8 * s / steps for s in xs]
        pm = [0.1 + 0.7 * s / steps for s in xs]
    return xs, loss, pm


def test_abrupt_drop_tells_a_phase_change_from_a_slope():
    assert R.abrupt_drop(*_icl_history(True))["phase_change"]
    assert not R.abrupt_drop(*_icl_history(False))["phase_change"]


def test_abrupt_drop_needs_the_prefix_matching_head():
    xs, loss, _ = _icl_history(True)
    assert not R.abrupt_drop(xs, loss, [0.1] * len(xs))["phase_change"]


def test_icl_rule_controls():
    change, slope = R.abrupt_drop(*_icl_history(True)), R.abrupt_drop(*_icl_history(False))
    assert R.icl_rule([change, change], slope, (0.2, 0.1, 0.3)).verdict == R.REPRODUCED
    assert R.icl_rule([slope, slope], slope, (0.0, -0.05, 0.05)).verdict == R.NOT_REPRODUCED
    assert R.icl_rule([change, slope], slope, (0.2, 0.1, 0.3)).verdict == R.INCONCLUSIVE  # seeds disagree
    assert R.icl_rule([change], slope, (0.2, 0.1, 0.3)).verdict == R.INCONCLUSIVE  # one seed is not enough
    assert R.icl_rule([], None, None).verdict == R.NOT_RUN


# ---- syllogisms, CoT --------------------------------------------------------------------------------------


def test_chance_level_syllogisms_are_not_reproduced():
    # the quick run's pattern: nonce 0.01 → 0.26 on a 4-option task is chance, not "partly"
    sizes = ["5k", "100k"]
    v = R.syllogism_rule(sizes, [[items(0.25)], [items(0.26)]], [[items(0.5)], [items(0.5)]],
                         [[items(0.5)], [items(0.5)]], chance=0.25)
    assert v.verdict == R.NOT_REPRODUCED


def test_form_up_and_content_effect_down_is_reproduced():
    sizes = ["5k", "100k"]
    v = R.syllogism_rule(sizes, [[items(0.3)], [items(0.8)]], [[items(0.9)], [items(0.9)]],
                         [[items(0.3)], [items(0.85)]], chance=0.25)
    assert v.verdict == R.REPRODUCED
    assert v.numbers["nonce_100k_chance_corrected"] == pytest.approx((0.8 - 0.25) / 0.75)


def test_cot_controls():
    assert R.cot_rule([items(0.5)], [items(0.9)], 1.0).verdict == R.REPRODUCED
    assert R.cot_rule([items(0.9)], [items(0.5)], -1.0).verdict == R.NOT_REPRODUCED
    # seeds reverse the sign (the README's seed 2): inconclusive
    seeds_direct = [items(0.7, seed=0), items(0.4, seed=1), items(0.3, seed=2)]
    seeds_cot = [items(0.9, seed=3), items(0.9, seed=4), items(0.1, seed=5)]
    assert R.cot_rule(seeds_direct, seeds_cot, 1.0).verdict == R.INCONCLUSIVE


# ---- post-training ----------------------------------------------------------------------------------------


def test_r1_zero_selecting_an_existing_mode_is_not_reproduced():
    base, forced, rl = items(0.715), items(0.91, seed=1), items(0.90, seed=2)
    v = R.r1_zero_rule(base, forced, rl, 0.33, 0.84)
    assert v.verdict == R.NOT_REPRODUCED and "selected an existing mode" in v.reason


def test_r1_zero_new_ability_is_reproduced():
    v = R.r1_zero_rule(items(0.3), items(0.3, seed=1), items(0.9, seed=2), 0.3, 0.9)
    assert v.verdict == R.REPRODUCED and "new ability" in v.reason


def test_flat_vote_curve_and_truncated_budgets_are_not_test_time_scaling():
    greedy = items(0.90)
    settings = {"vote@4": items(0.80, seed=1), "vote@16": items(0.89, seed=2),
                **{f"budget@{b}": [0.0] * 200 for b in (8, 16, 32, 64)}, "budget@120": list(greedy)}
    assert R.tts_rule(greedy, settings).verdict == R.NOT_REPRODUCED


def test_a_setting_beyond_greedy_is_test_time_scaling():
    greedy = items(0.6)
    better = [1.0 if v == 0 and i % 2 == 0 else v for i, v in enumerate(greedy)]  # fixes half the errors
    v = R.tts_rule(greedy, {"vote@16": better, "budget@8": [0.0] * 200})
    assert v.verdict == R.REPRODUCED and "vote@16" in v.reason


def test_distill_controls():
    up = R.fewshot_gain([items(0.4, seed=1)], [items(0.8)])  # any paired difference with its interval
    down = R.fewshot_gain([items(0.8, seed=1)], [items(0.4)])
    assert R.distill_rule(0.2, up, matched=True).verdict == R.REPRODUCED
    assert R.distill_rule(0.2, down, matched=True).verdict == R.NOT_REPRODUCED
    assert R.distill_rule(0.2, up, matched=False).verdict == R.INCONCLUSIVE
    assert R.distill_rule(0.0, up, matched=True).verdict == R.INCONCLUSIVE


# ---- the rest ---------------------------------------------------------------------------------------------


def test_other_rules_controls():
    assert R.transformer_rule(4.8e-6).verdict == R.REPRODUCED
    assert R.transformer_rule(1e-2).verdict == R.NOT_REPRODUCED
    assert R.grokking_rule(True).verdict == R.REPRODUCED and R.grokking_rule(False).verdict == R.NOT_REPRODUCED
    assert R.classics_rule(True, True, True).verdict == R.REPRODUCED
    assert R.classics_rule(True, True, False).verdict == R.INCONCLUSIVE
    assert R.classics_rule(False, True, True).verdict == R.NOT_REPRODUCED
    assert R.attention_rule(0.9, 0.05).verdict == R.INCONCLUSIVE
    assert R.attention_rule(0.1, 0.05).verdict == R.NOT_REPRODUCED


def test_emergence_aggregation_controls():
    real = {"emergent": True, "mirage": False}
    mirage = {"emergent": True, "mirage": True}
    flat = {"emergent": False, "mirage": None}
    assert R.emergence_rule({"a": real, "b": flat}).verdict == R.REPRODUCED
    assert R.emergence_rule({"a": mirage, "b": flat}).verdict == R.NOT_REPRODUCED
    assert R.emergence_rule({"a": flat}).verdict == R.NOT_REPRODUCED
    assert R.emergence_rule({"a": {"emergent": True, "mirage": None}}).verdict == R.INCONCLUSIVE
    assert R.emergence_rule({"a": {**real, "seeds_agree": False}}).verdict == R.INCONCLUSIVE
    assert R.emergence_rule({}).verdict == R.NOT_RUN
    assert R.emergence_rule({"a": {"emergent": None, "mirage": None}}).verdict == R.NOT_RUN  # 2 sizes


def test_form_falling_and_content_effect_growing_is_not_reproduced():
    # the rule's second negative branch: form above chance but falling, content effect growing
    sizes = ["5k", "100k"]
    v = R.syllogism_rule(sizes, [[items(0.8)], [items(0.6)]], [[items(0.9)], [items(0.9)]],
                         [[items(0.85)], [items(0.3)]], chance=0.25)
    assert v.verdict == R.NOT_REPRODUCED and "at chance" not in v.reason


def test_r1_zero_unresolved_against_the_forced_scratchpad_is_inconclusive():
    v = R.r1_zero_rule(items(0.5), items(0.7, seed=1), items(0.78, seed=2), 0.3, 0.9)
    assert v.numbers["rl_minus_base_forced_ci"][0] <= 0 and v.numbers["rl_minus_base_forced"] >= R.SIZEABLE
    assert v.verdict == R.INCONCLUSIVE


def test_cot_without_a_measured_bridge_is_not_reproduced_by_the_gain_alone():
    # rule v2: "reproduced" needs the bridge as well as the accuracy gain
    assert R.cot_rule([items(0.5)], [items(0.9)], None).verdict == R.INCONCLUSIVE
    assert R.cot_rule([items(0.5)], [items(0.9)], float("nan")).verdict == R.INCONCLUSIVE
