"""One function per claim: the rule of docs/verdicts.md (version `RULES_VERSION`) applied to measured numbers.

Inputs are plain numbers and per-seed, per-item lists (see `noise`), so the same rule judges one seed
today and several seeds when the sweep has them. Each returns a `Verdict`; the report shows its reason
and links its `rule` to the section of docs/verdicts.md with the same anchor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from emergelab.science.verdicts.noise import (
    SeedItems,
    bootstrap_means,
    grand_mean,
    mean_interval,
    newcombe_diff,
    paired_diff_interval,
    wilson,
)

RULES_VERSION = 2  # docs/verdicts.md "Changes": v2 specifies cases v1 left open
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN = "reproduced", "not reproduced", "inconclusive", "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)
SIZEABLE = 0.05  # a point gain this large with an interval straddling 0 is "inconclusive", not "no"
SCALING_MAX_ERROR = 0.10
ICL_MIN_DROP_NATS, ICL_MAX_WINDOW, ICL_MIN_SHARE, ICL_MIN_PM_RISE = 1.0, 0.25, 0.5, 0.2


@dataclass
class Verdict:
    """A claim's verdict, why, the rule (an anchor of docs/verdicts.md) and the numbers it used."""

    verdict: str
    reason: str
    rule: str
    numbers: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")


def combine_seeds(verdicts: Sequence[str]) -> str:
    """One verdict from per-seed verdicts: their common value, else inconclusive."""
    return verdicts[0] if verdicts and all(v == verdicts[0] for v in verdicts) else INCONCLUSIVE


def _gain_verdict(lo: float, hi: float, point: float) -> str:
    if lo > 0:
        return REPRODUCED
    return INCONCLUSIVE if point >= SIZEABLE else NOT_REPRODUCED


# ---- lm, scaling ------------------------------------------------------------------------------------------


def lm_rule(val_losses: Mapping[str, Sequence[float]], ln_vocab: float) -> Verdict:
    """Every run's validation loss falls and ends below ln V; `val_losses` maps run → logged losses."""
    logged = {run: list(v) for run, v in val_losses.items() if len(v) >= 2}
    if not logged:
        return Verdict(NOT_RUN, "no run logged a validation loss twice", "lm")
    good = [run for run, v in logged.items() if v[-1] < v[0] and v[-1] < ln_vocab]
    verdict = REPRODUCED if len(good) == len(logged) else NOT_REPRODUCED if not good else INCONCLUSIVE
    return Verdict(verdict, f"{len(good)} of {len(logged)} runs end with a validation loss below both their first "
                            f"and ln V = {ln_vocab:.2f}", "lm",
                   {"runs_ok": len(good), "runs": len(logged)})


def scaling_rule(alpha: float, alpha_ci: tuple[float, float], predicted: float, observed: float,
                 n_fit: int) -> Verdict:
    """The law fitted without the largest run predicts it within SCALING_MAX_ERROR, and α's interval is > 0."""
    if n_fit < 4 or not all(math.isfinite(v) for v in (alpha, predicted, observed)):
        return Verdict(NOT_RUN, f"{n_fit} runs to fit (need ≥ 4 plus the held-out largest)", "scaling")
    err = abs(predicted - observed) / observed
    numbers = {"alpha": alpha, "alpha_ci": list(alpha_ci), "predicted_largest": predicted,
               "observed_largest": observed, "relative_error": err}
    text = (f"fitted without the largest run, the law predicts its held-out loss {predicted:.3f} vs "
            f"{observed:.3f} observed ({100 * err:.1f}% off; rule: ≤ {100 * SCALING_MAX_ERROR:.0f}%); "
            f"α = {alpha:.3f} [{alpha_ci[0]:.3f}, {alpha_ci[1]:.3f}]")
    if err > SCALING_MAX_ERROR or (alpha_ci[0] <= 0 and alpha <= 0):
        return Verdict(NOT_REPRODUCED, text, "scaling", numbers)
    return Verdict(REPRODUCED if alpha_ci[0] > 0 else INCONCLUSIVE, text, "scaling", numbers)


# ---- emergence --------------------------------------------------------------------------------------------


def emergence_rule(abilities: Mapping[str, Mapping]) -> Verdict:
    """Abilities judged by `emergence.analyse_ability` (`emergent`, `mirage`, `seeds_agree`) → one verdict."""
    if not abilities:
        return Verdict(NOT_RUN, "no ability was scored at several sizes", "emergence")
    if all(v.get("emergent") is None for v in abilities.values()):
        return Verdict(NOT_RUN, "too few sizes to tell a step from a trend (the step test needs ≥ 4)", "emergence")
    emergent = [a for a, v in abilities.items() if v.get("emergent")]
    real = [a for a in emergent if _is(abilities[a], "mirage", False)]
    mirages = [a for a in emergent if _is(abilities[a], "mirage", True)]
    unsure = [a for a, v in abilities.items() if v.get("emergent") is None or v.get("seeds_agree") is False
              or (v.get("emergent") and v.get("mirage") is None)]
    text = (f"emergent under exact match: {', '.join(emergent) or 'none'}; real jumps (continuous metrics jump "
            f"too): {', '.join(real) or 'none'}; mirages: {', '.join(mirages) or 'none'}; undetermined: "
            f"{', '.join(unsure) or 'none'}")
    numbers = {"emergent": len(emergent), "real": len(real), "mirage": len(mirages), "undetermined": len(unsure)}
    if real and not any(abilities[a].get("seeds_agree") is False for a in real):
        return Verdict(REPRODUCED, text, "emergence", numbers)
    if unsure:
        return Verdict(INCONCLUSIVE, text, "emergence", numbers)
    return Verdict(NOT_REPRODUCED, text, "emergence", numbers)


def _is(d: Mapping, key: str, value: bool) -> bool:
    return key in d and d[key] is value


# ---- in-context learning ----------------------------------------------------------------------------------


def abrupt_drop(steps: Sequence[int], loss: Sequence[float], pm: Sequence[float]) -> dict:
    """The largest loss drop inside a window of ≤ ICL_MAX_WINDOW of training, and whether it is a phase
    change: ≥ ICL_MIN_DROP_NATS, ≥ ICL_MIN_SHARE of the whole decline, and the prefix-matching score rising
    by ≥ ICL_MIN_PM_RISE over the same window widened by one evaluation on each side."""
    total_steps = max(steps[-1] - steps[0], 1)
    best = (0.0, 0, 0)
    for i in range(len(steps)):
        for j in range(i + 1, len(steps)):
            if steps[j] - steps[i] > ICL_MAX_WINDOW * total_steps:
                break
            if loss[i] - loss[j] > best[0]:
                best = (loss[i] - loss[j], i, j)
    drop, i, j = best
    decline = max(loss) - min(loss)
    lo, hi = max(i - 1, 0), min(j + 1, len(steps) - 1)
    pm_rise = max(pm[lo:hi + 1]) - min(pm[lo:i + 1])
    return {"drop_nats": drop, "window": [steps[i], steps[j]], "share_of_decline": drop / decline if decline else 0,
            "prefix_matching_rise": pm_rise,
            "phase_change": bool(drop >= ICL_MIN_DROP_NATS and decline > 0 and drop >= ICL_MIN_SHARE * decline
                                 and pm_rise >= ICL_MIN_PM_RISE)}


def icl_rule(deep_seeds: Sequence[dict], shallow: dict | None, gain: tuple[float, float, float] | None) -> Verdict:
    """`deep_seeds`/`shallow`: `abrupt_drop` results per seed of the ≥2-layer model / of the 1-layer control;
    `gain`: (3-shot − 0-shot, lo, hi) at the largest size."""
    if not deep_seeds:
        return Verdict(NOT_RUN, "the induction-head experiment did not run", "icl")
    n_change = sum(d["phase_change"] for d in deep_seeds)
    control_ok = shallow is None or not shallow["phase_change"]
    phase = n_change == len(deep_seeds) and len(deep_seeds) >= 2 and control_ok
    no_phase = n_change == 0
    text = (f"phase change (≥ {ICL_MIN_DROP_NATS:g} nat within {100 * ICL_MAX_WINDOW:.0f}% of training, with a "
            f"prefix-matching head) in {n_change} of {len(deep_seeds)} seeds of the deep model; 1-layer control "
            + ("none" if shallow is None else "has one" if shallow["phase_change"] else "has none"))
    numbers = {"seeds_with_phase_change": n_change, "seeds": len(deep_seeds)}
    if gain is not None:
        text += f"; 3-shot − 0-shot at the largest size {gain[0]:+.2f} [{gain[1]:+.2f}, {gain[2]:+.2f}]"
        numbers["fewshot_gain"], numbers["fewshot_gain_ci"] = gain[0], [gain[1], gain[2]]
    gain_up = gain is not None and gain[1] > 0
    gain_none = gain is not None and gain[1] <= 0 and gain[0] < SIZEABLE
    if phase and gain_up:
        return Verdict(REPRODUCED, text, "icl", numbers)
    if no_phase and (gain is None or gain_none):
        return Verdict(NOT_REPRODUCED, text, "icl", numbers)
    return Verdict(INCONCLUSIVE, text, "icl", numbers)


def fewshot_gain(zero: SeedItems | tuple[float, int], few: SeedItems | tuple[float, int]) -> tuple[float, float, float]:
    """3-shot − 0-shot with a 95% interval: paired bootstrap on items, or Newcombe from (accuracy, n)."""
    if isinstance(zero, tuple) and isinstance(few, tuple):
        (p0, n0), (p1, n1) = zero, few
        return newcombe_diff(p1 * n1, n1, p0 * n0, n0)
    return paired_diff_interval(few, zero)


# ---- syllogisms, CoT --------------------------------------------------------------------------------------


def syllogism_rule(sizes: Sequence[str], nonce: Sequence[SeedItems], agree: Sequence[SeedItems],
                   conflict: Sequence[SeedItems], chance: float) -> Verdict:
    """Per size (smallest first), multiple-choice correctness per seed and item on nonce, belief-consistent
    (agree) and belief-violating (conflict) items; `chance`: the nonce items' chance level (the larger of
    1/k and the commonest answer's share)."""
    if len(sizes) < 2:
        return Verdict(NOT_RUN, "syllogisms need at least two sizes", "syllogisms")
    nonce_ci = [mean_interval(x) for x in nonce]
    effect = [_unpaired_diff(a, c) for a, c in zip(agree, conflict)]
    numbers = {"chance": chance}
    for s, (m, lo, hi), (e, elo, ehi) in zip(sizes, nonce_ci, effect):
        numbers[f"nonce_{s}"], numbers[f"nonce_{s}_ci"] = m, [lo, hi]
        numbers[f"nonce_{s}_chance_corrected"] = (m - chance) / (1 - chance)
        numbers[f"content_effect_{s}"], numbers[f"content_effect_{s}_ci"] = e, [elo, ehi]
    form_up = _unpaired_diff(nonce[-1], nonce[0])
    shrink = (effect[0][0] - effect[-1][0],
              *_diff_of_diffs(agree[0], conflict[0], agree[-1], conflict[-1]))
    above_chance = nonce_ci[-1][1] > chance
    text = ("nonce (form) accuracy by size: " + ", ".join(f"{s} {m:.2f} [{lo:.2f}, {hi:.2f}]"
                                                             for s, (m, lo, hi) in zip(sizes, nonce_ci))
            + f" (chance {chance:.2f}); content effect (agree − conflict): "
            + ", ".join(f"{s} {e:+.2f} [{lo:+.2f}, {hi:+.2f}]" for s, (e, lo, hi) in zip(sizes, effect)))
    if all(lo <= chance for _, lo, _ in nonce_ci):
        return Verdict(NOT_REPRODUCED, text + " — form at chance at every size", "syllogisms", numbers)
    if above_chance and form_up[1] > 0 and shrink[1] > 0:
        return Verdict(REPRODUCED, text, "syllogisms", numbers)
    if form_up[2] <= 0 and shrink[2] <= 0:
        return Verdict(NOT_REPRODUCED, text, "syllogisms", numbers)
    return Verdict(INCONCLUSIVE, text, "syllogisms", numbers)


def _unpaired_diff(a: SeedItems, b: SeedItems) -> tuple[float, float, float]:
    """Mean a − mean b with a 95% interval from independent seeds × items bootstraps."""
    reps = bootstrap_means(a, seed=1) - bootstrap_means(b, seed=2)
    lo, hi = (float(v) for v in np.percentile(reps, [2.5, 97.5]))
    return grand_mean(a) - grand_mean(b), lo, hi


def _diff_of_diffs(a0: SeedItems, c0: SeedItems, a1: SeedItems, c1: SeedItems) -> tuple[float, float]:
    """95% interval of (a0 − c0) − (a1 − c1), independent bootstraps."""
    reps = (bootstrap_means(a0, seed=3) - bootstrap_means(c0, seed=4)) - \
        (bootstrap_means(a1, seed=5) - bootstrap_means(c1, seed=6))
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return float(lo), float(hi)


def cot_rule(direct: SeedItems, cot: SeedItems, bridge_nats: float | None) -> Verdict:
    """Scratchpad − direct exact match at the largest size, paired on items (and seeds)."""
    d, lo, hi = paired_diff_interval(cot, direct)
    per_seed = [paired_diff_interval([c], [x])[0] for c, x in zip(cot, direct)]
    text = f"scratchpad − direct: {d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    if len(per_seed) > 1:
        text += " (per seed " + ", ".join(f"{v:+.2f}" for v in per_seed) + ")"
    numbers = {"cot_minus_direct": d, "cot_minus_direct_ci": [lo, hi]}
    if bridge_nats is not None and math.isfinite(bridge_nats):
        text += f"; bridge {bridge_nats:+.2f} nats"
        numbers["bridge_nats"] = bridge_nats
    signs = {v > 0 for v in per_seed if v != 0}
    if len(signs) > 1 or (lo <= 0 < hi):
        return Verdict(INCONCLUSIVE, text, "cot", numbers)
    if lo > 0 and "bridge_nats" not in numbers:  # v2: the rule needs the bridge; without it, inconclusive
        return Verdict(INCONCLUSIVE, text + "; the bridge was not measured", "cot", numbers)
    if lo > 0 and bridge_nats > 0:
        return Verdict(REPRODUCED, text, "cot", numbers)
    return Verdict(NOT_REPRODUCED if hi <= 0 or (bridge_nats is not None and bridge_nats <= 0) else INCONCLUSIVE,
                   text, "cot", numbers)


# ---- post-training ----------------------------------------------------------------------------------------


def r1_zero_rule(base_greedy: Sequence[float], base_forced: Sequence[float], rl_greedy: Sequence[float],
                 think_rate_base: float, think_rate_rl: float) -> Verdict:
    """Per-item correctness on the same items: base greedy, base forced to think, RL model greedy."""
    g, glo, ghi = paired_diff_interval([rl_greedy], [base_greedy])
    f, flo, fhi = paired_diff_interval([rl_greedy], [base_forced])
    numbers = {"rl_minus_base_greedy": g, "rl_minus_base_greedy_ci": [glo, ghi], "rl_minus_base_forced": f,
               "rl_minus_base_forced_ci": [flo, fhi], "think_rate_base": think_rate_base,
               "think_rate_rl": think_rate_rl}
    text = (f"RL − base greedy {g:+.2f} [{glo:+.2f}, {ghi:+.2f}]; RL − base forced to write the scratchpad "
            f"{f:+.2f} [{flo:+.2f}, {fhi:+.2f}]; chain-of-thought rate {think_rate_base:.2f} → {think_rate_rl:.2f}")
    if glo > 0 and flo > 0 and think_rate_rl > think_rate_base:
        return Verdict(REPRODUCED, text + " — RL taught a new ability", "r1_zero", numbers)
    if glo > 0 and fhi > 0 and f >= SIZEABLE:
        return Verdict(INCONCLUSIVE, text + " — beyond base greedy; vs the forced scratchpad unresolved",
                       "r1_zero", numbers)
    if glo > 0:
        return Verdict(NOT_REPRODUCED, text + " — RL selected an existing mode (the base model already reasons "
                                              "this well when made to)", "r1_zero", numbers)
    return Verdict(NOT_REPRODUCED, text + " — RL did not beat the base model's own greedy answers", "r1_zero",
                   numbers)


def tts_rule(greedy: Sequence[float], settings: Mapping[str, Sequence[float]]) -> Verdict:
    """Per-item correctness of greedy decoding and of each test-time setting (vote@N, budget B) on the same
    items; Bonferroni over the settings."""
    if not settings:
        return Verdict(NOT_RUN, "no test-time setting was measured", "tts")
    alpha = 0.05 / len(settings)
    diffs = {name: paired_diff_interval([v], [greedy], alpha=alpha) for name, v in settings.items()}
    best = max(diffs, key=lambda k: diffs[k][0])
    d, lo, hi = diffs[best]
    g = sum(greedy) / len(greedy)
    numbers = {"greedy": g, **{f"{k}_minus_greedy": v[0] for k, v in diffs.items()},
               "best_minus_greedy_ci": [lo, hi]}
    text = (f"greedy {g:.2f}; best setting {best}: {d:+.2f} vs greedy, {100 * (1 - alpha):.1f}% interval "
            f"[{lo:+.2f}, {hi:+.2f}] (Bonferroni over {len(settings)} settings)")
    winners = [k for k, v in diffs.items() if v[1] > 0]
    if winners:
        return Verdict(REPRODUCED, text + f"; beat greedy: {', '.join(winners)}", "tts", numbers)
    return Verdict(INCONCLUSIVE if d >= SIZEABLE else NOT_REPRODUCED, text, "tts", numbers)


def distill_rule(student_base: float, gain: tuple[float, float, float], matched: bool) -> Verdict:
    """`gain`: distilled − RL student accuracy with its 95% interval (paired on items when recorded);
    `matched`: both arms chose their lr from the same grid on a validation split, at matched tokens."""
    d, lo, hi = gain
    numbers = {"student_base": student_base, "distilled_minus_rl": d, "distilled_minus_rl_ci": [lo, hi]}
    text = f"distilled − RL student {d:+.2f} [{lo:+.2f}, {hi:+.2f}]; student before either arm {student_base:.2f}"
    if not matched:
        return Verdict(INCONCLUSIVE, text + " — arms not matched (tuning budget, tokens)", "distill", numbers)
    if student_base <= 0:
        return Verdict(INCONCLUSIVE, text + " — the student starts at 0, so RL has no reward signal", "distill",
                       numbers)
    return Verdict(_gain_verdict(lo, hi, d), text, "distill", numbers)


# ---- the rest ---------------------------------------------------------------------------------------------


def transformer_rule(max_abs_logit_diff: float) -> Verdict:
    ok = max_abs_logit_diff < 1e-4
    return Verdict(REPRODUCED if ok else NOT_REPRODUCED, f"max |logit difference| vs Hugging Face "
                   f"{max_abs_logit_diff:.1e} (rule: < 1e-4)", "others", {"hf_max_abs_logit_diff": max_abs_logit_diff})


def attention_rule(best_score: float, uniform: float) -> Verdict:
    ratio = best_score / uniform
    return Verdict(INCONCLUSIVE if ratio > 3 else NOT_REPRODUCED,
                   f"best head routes {ratio:.1f}× uniform attention to the token after an earlier occurrence "
                   "(context routing; word-sense disambiguation needs a real model)", "attention",
                   {"routing_ratio": ratio})


def classics_rule(xor_holds: bool, attack_works: bool, off_manifold: bool) -> Verdict:
    text = (f"XOR needs a hidden layer: {xor_holds}; FGSM beats random noise: {attack_works}; "
            f"off-manifold part does more damage: {off_manifold}")
    if xor_holds and attack_works:
        return Verdict(REPRODUCED if off_manifold else INCONCLUSIVE, text, "others")
    return Verdict(NOT_REPRODUCED, text, "others")


def grokking_rule(grokked: bool) -> Verdict:
    return Verdict(REPRODUCED if grokked else NOT_REPRODUCED, f"grokked by the experiment's criterion: {grokked}",
                   "others")


def proportion_text(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{k / n:.2f} [{lo:.2f}, {hi:.2f}]"
