"""Emergence and "mirage" analysis of metric-vs-scale curves (Wei et al. 2022; Schaeffer et al. 2023).

Input: a long table with one row per (scale, metric) measurement — see `read_emergence_csv`.

The criterion (applied per ability and metric; x = log10(scale), y oriented so higher is better):

1. **Step beats smooth.** Two families are fitted by weighted least squares:
   - smooth: a straight line in log-scale, y = a + b·x, and a power law with offset,
     y = c + a·scale^k (|k| ≤ 3; covers loss-like decay and saturating accuracy);
   - step: a logistic in log-scale, y = lo + (hi − lo)·σ((x − x0)/w).
   Each point is weighted by its noise from the data: σ_i given by the caller (an item-level or
   seeds × items bootstrap, see `emergelab.science.verdicts.noise`), else the binomial variance
   ŷ(1−ŷ)/n for a proportion (the Bernoulli worst case for any mean of n values in [0, 1]), else — a
   published table with no n — a floor of 2% of the curve's range. The step must win by the Bayesian
   information criterion: ΔBIC = BIC_smooth − BIC_step > 2 ("positive evidence", Kass & Raftery 1995).
2. **Sharp.** The fitted rise from 10% to 90% (4.39·w decades) spans at most a third of the observed
   log-scale range.
3. **From a plateau, inside the data.** The threshold x0 lies between the smallest and largest scale
   with at least two distinct scales below it and one above, and the rise hi − lo is at least 0.1 for
   metrics bounded in [0, 1] (exact match, character accuracy …) and at least 10% of the metric's largest
   magnitude otherwise (0.50 → 0.52 is never emergent). The same test is applied to every metric.

The threshold is the scale 10^x0 where the logistic is halfway. Its 95% interval is the wider of the
profile-likelihood interval of x0 (every x0 whose best fit is within Δχ² = 3.84 of the optimum — this
covers the whole gap when a jump falls between two measured scales) and a parametric-bootstrap
percentile interval: each value is redrawn as Binomial(n, y)/n when n is known, else y + N(0, σ_i),
and everything is refitted. `p_emergent` is the fraction of bootstrap replicates meeting the criterion.
An interval reaching the smallest or largest tested scale is cut there and flagged (`threshold_beyond`:
"below" / "above" the tested range).

**Mirage verdict** (Schaeffer et al.), symmetric (docs/verdicts.md): where the ability's exact match
is emergent, each continuous metric of the same outputs is *jumps* (emergent), *smooth* (not emergent,
and a simulated jump of its own size and noise at the exact-match threshold would have been detected in
≥ 80% of trials — `power_to_see_jump`) or *underpowered*. `mirage` is true when every decided continuous
metric is smooth, false when every one jumps, and null when they disagree or none is decided.

Seeds: rows of several seeds at a scale are pooled (the mean; noise from seeds and items), and the
discrete metric is also judged seed by seed: `seeds_agree` is false when a seed's verdict differs.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from emergelab.errors import UserError

BIC_MARGIN = 2.0
MAX_WIDTH_FRACTION = 1 / 3
MIN_PROPORTION_RISE = 0.1
MIN_RELATIVE_RISE = 0.1  # unbounded metrics (NLL, log-prob): the rise must be ≥ 10% of the largest |value|
NOISE_FLOOR = 0.02  # only for tables without n or per-item noise (published curves)
MIN_POWER = 0.8
POWER_TRIALS = 40
MAX_EXPONENT = 3.0
WIDTH_10_90 = 2 * math.log(9)  # σ((x−x0)/w) goes from 0.1 to 0.9 over 2·ln 9·w

# Metric names, split into words: which are continuous, which are lower-is-better, which are proportions.
_CONTINUOUS_WORDS = {"digit", "token", "char", "edit", "logprob", "log", "nll", "loss", "brier", "bpb",
                     "perplexity", "ppl", "distance", "partial", "f1", "bleu", "rouge", "prob", "score"}
_LOWER_IS_BETTER_WORDS = {"nll", "loss", "edit", "distance", "error", "bpb", "perplexity", "ppl", "brier"}
_DISCRETE_WORDS = {"exact", "em", "acc", "accuracy", "pass", "correct", "match"}


def _words(name: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", name.lower())) - {""}


def metric_kind(name: str) -> str:
    """"discrete" (exact match, accuracy, pass@k) or "continuous" (per-digit accuracy, log-prob, NLL …)."""
    words = _words(name)
    if words & _CONTINUOUS_WORDS:
        return "continuous"
    return "discrete" if words & _DISCRETE_WORDS else "continuous"


def higher_is_better(name: str) -> bool:
    return not (_words(name) & _LOWER_IS_BETTER_WORDS)


def is_bounded(name: str, value: np.ndarray) -> bool:
    """A mean of per-item values in [0, 1] (exact match, character accuracy), not a log-prob or a loss."""
    return bool(np.all((value >= 0) & (value <= 1))) and higher_is_better(name) \
        and not (_words(name) & {"log", "logprob", "nll", "prob", "score"})


# ---- the two model families (variable projection: amplitudes are linear, solved exactly) ------------


def _batched_two_param(basis: np.ndarray, y: np.ndarray, wt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form WLS of y ≈ c0 + c1·basis_g for every row g of `basis` (g, m). Returns (g, 2), (g,)."""
    sw = wt.sum()
    sx, sy = basis @ wt, (y * wt).sum()
    sxx, sxy = (basis**2) @ wt, basis @ (wt * y)
    det = sw * sxx - sx**2
    ok = det > 1e-12 * sw * np.maximum(sxx, 1e-300)
    c1 = np.where(ok, (sw * sxy - sx * sy) / np.where(ok, det, 1), 0.0)
    c0 = np.where(ok, (sy - c1 * sx) / sw, sy / sw)
    pred = c0[:, None] + c1[:, None] * basis
    chi2 = (((y[None] - pred) ** 2) * wt[None]).sum(1)
    return np.stack([c0, c1], 1), chi2


@dataclass
class CurveFit:
    """Fits of one metric curve and the emergence criterion's ingredients."""

    chi2_linear: float
    chi2_power: float
    power_exponent: float
    chi2_step: float
    lo: float
    hi: float
    x0: float
    width: float  # 10%→90% rise, in decades of scale
    x0_interval: tuple[float, float]  # profile-likelihood 95% interval of x0 (Δχ² ≤ 3.84)

    def delta_bic(self, m: int) -> float:
        bic_smooth = min(self.chi2_linear + 2 * math.log(m), self.chi2_power + 3 * math.log(m))
        return bic_smooth - (self.chi2_step + 4 * math.log(m))


def fit_curve(x: np.ndarray, y: np.ndarray, sigma: np.ndarray, refine: bool = True) -> CurveFit:
    """Fit the smooth (line, power law with offset) and step (logistic) families to y(x), x = log10 scale.
    `refine=False` keeps the logistic's grid optimum (10× faster; for simulations)."""
    wt = 1.0 / sigma**2
    span = max(x.max() - x.min(), 1e-9)
    chi2_linear = float(_batched_two_param(x[None], y, wt)[1][0])
    # Power law with offset: y = c + a·10^(k·x) — for a fixed exponent k, c and a are linear.
    ks = np.linspace(-MAX_EXPONENT, MAX_EXPONENT, 241)
    ks = ks[np.abs(ks) > 1e-6]
    xc = x - x.mean()  # centred: 10^(k·x) stays in range
    _, chi2_pow = _batched_two_param(10.0 ** (ks[:, None] * xc[None]), y, wt)
    i = int(np.argmin(chi2_pow))
    # Logistic: for fixed (x0, w), lo and hi are linear. Grid over x0 and w, then refine.
    x0s = np.linspace(x.min() - 0.25 * span, x.max() + 0.25 * span, 161)
    ws = np.geomspace(span * 1e-3, span * 2, 24)
    grid_x0, grid_w = np.meshgrid(x0s, ws, indexing="ij")
    grid_x0, grid_w = grid_x0.ravel(), grid_w.ravel()
    sig = 1.0 / (1.0 + np.exp(-np.clip((x[None] - grid_x0[:, None]) / grid_w[:, None], -60, 60)))
    coef, chi2_step = _batched_two_param(sig, y, wt)
    j = int(np.argmin(chi2_step))
    profile = chi2_step.reshape(len(x0s), len(ws)).min(1)
    inside = x0s[profile <= chi2_step[j] + 3.84]
    x0, w = _refine_logistic(x, y, wt, grid_x0[j], grid_w[j], span) if refine else (grid_x0[j], grid_w[j])
    sig = 1.0 / (1.0 + np.exp(-np.clip((x - x0) / w, -60, 60)))
    coef1, chi2_1 = _batched_two_param(sig[None], y, wt)
    c0, c1, chi2 = float(coef1[0, 0]), float(coef1[0, 1]), float(chi2_1[0])
    if chi2 > chi2_step[j]:  # refinement did not help: keep the grid point
        x0, w, c0, c1, chi2 = grid_x0[j], grid_w[j], float(coef[j, 0]), float(coef[j, 1]), float(chi2_step[j])
    interval = (float(min(inside.min(), x0)), float(max(inside.max(), x0)))
    return CurveFit(chi2_linear, float(chi2_pow[i]), float(ks[i]), chi2, c0, c0 + c1, float(x0),
                    float(WIDTH_10_90 * w), interval)


def _refine_logistic(x, y, wt, x0, w, span) -> tuple[float, float]:
    from scipy.optimize import minimize

    def profile(p):
        sig = 1.0 / (1.0 + np.exp(-np.clip((x - p[0]) / math.exp(p[1]), -60, 60)))
        return float(_batched_two_param(sig[None], y, wt)[1][0])

    opts = {"xatol": 1e-3, "fatol": 1e-9, "maxiter": 150}
    res = minimize(profile, [x0, math.log(w)], method="Nelder-Mead", options=opts)
    lw = float(np.clip(res.x[1], math.log(span * 1e-3), math.log(span * 2)))
    return float(res.x[0]), math.exp(lw)


# ---- the verdict for one curve ---------------------------------------------------------------------------


def _sigma(y: np.ndarray, n: np.ndarray | None, bounded: bool, noise_floor: float,
           given: np.ndarray | None = None) -> np.ndarray:
    """Noise from the data (`given`, or the Bernoulli worst case of a bounded mean of n items) plus, in
    quadrature, a floor of `noise_floor` × the curve's range for the fitted families' misspecification (it
    keeps a jump between two measured scales from being pinned by the logistic's shape alone)."""
    floor = noise_floor * max(float(np.ptp(y)), 1e-6)
    var = np.full_like(y, floor**2)
    if given is not None:
        var = var + np.asarray(given, dtype=float) ** 2
    elif n is not None and bounded:
        p = np.clip((y * n + 0.5) / (n + 1.0), 0, 1)  # shrunk so 0 and 1 keep a little variance
        var = var + p * (1 - p) / n
    return np.sqrt(var)


def _min_rise(value: np.ndarray, bounded: bool) -> float:
    return MIN_PROPORTION_RISE if bounded else MIN_RELATIVE_RISE * max(float(np.abs(value).max()), 1e-12)


def _criterion(fit: CurveFit, x: np.ndarray, min_rise: float) -> dict:
    m = len(x)
    scales = np.unique(x)
    span = scales.max() - scales.min()
    below = int((scales < fit.x0).sum())
    above = int((scales > fit.x0).sum())
    checks = {
        "step_beats_smooth": bool(fit.delta_bic(m) > BIC_MARGIN),
        "sharp": bool(fit.width <= MAX_WIDTH_FRACTION * span),
        "threshold_inside": below >= 2 and above >= 1,
        "rises": bool((fit.hi - fit.lo) >= min_rise),
    }
    return checks


def analyse_curve(scale, value, n=None, *, sigma=None, metric: str = "value", n_boot: int = 200, seed: int = 0,
                  noise_floor: float = NOISE_FLOOR, refine: bool = True) -> dict:
    """Emergence verdict for one metric curve: `emergent`, the threshold with its 95% interval, the evidence.
    `sigma`: each point's standard error from the data, when known (overrides the binomial / floor noise)."""
    with threadpool_limits(1):  # tiny arrays: BLAS threads only add wake-up latency on a busy machine
        return _analyse_curve(scale, value, n, sigma, metric, n_boot, seed, noise_floor, refine)


def _analyse_curve(scale, value, n, sigma, metric: str, n_boot: int, seed: int, noise_floor: float,
                   refine: bool) -> dict:
    scale = np.asarray(scale, dtype=float)
    value = np.asarray(value, dtype=float)
    n_arr = None if n is None else np.asarray(n, dtype=float)
    up = higher_is_better(metric)
    y = value if up else -value
    proportion = bool(np.all((value >= 0) & (value <= 1))) and metric_kind(metric) == "discrete"
    bounded = proportion or is_bounded(metric, value)
    min_rise = _min_rise(value, bounded)
    given = sigma is not None
    noise = "from the data" if given else "binomial bound from n" if n_arr is not None and bounded else \
        f"assumed ({100 * noise_floor:.0f}% of the range; no n or items)"
    result = {"metric": metric, "kind": metric_kind(metric), "higher_is_better": up, "n_scales": 0, "noise": noise}
    if np.any(scale <= 0):
        raise UserError(f"scale: metric {metric} has non-positive scales — scales must be > 0 (params, FLOPs…)")
    x = np.log10(scale)
    result["n_scales"] = int(len(np.unique(x)))
    if result["n_scales"] < 4:
        return {**result, "emergent": None, "reason": "fewer than 4 distinct scales: cannot tell a step from a trend"}
    if np.ptp(y) == 0:
        return {**result, "emergent": False, "reason": "flat curve", "threshold": None, "threshold_ci95": None,
                "p_emergent": 0.0}
    sigma = _sigma(value, n_arr, bounded, noise_floor, sigma)
    fit = fit_curve(x, y, sigma, refine)
    checks = _criterion(fit, x, min_rise)
    emergent = all(checks.values())

    # Parametric bootstrap: redraw each value from its noise model and redo everything.
    rng = np.random.default_rng(seed)
    x0s, hits = [], 0
    for _ in range(n_boot):
        if n_arr is not None and proportion and not given:
            v = rng.binomial(n_arr.astype(int), np.clip(value, 0, 1)) / n_arr
        else:
            v = value + rng.normal(0, sigma)
        yb = v if up else -v
        if np.ptp(yb) == 0:
            continue
        fb = fit_curve(x, yb, sigma if given else _sigma(v, n_arr, bounded, noise_floor), refine)
        hits += all(_criterion(fb, x, min_rise).values())
        x0s.append(fb.x0)
    threshold, threshold_ci, beyond = None, None, None
    if emergent:
        # The wider of the profile-likelihood interval (which covers a gap between two measured scales
        # that the data cannot resolve) and the bootstrap percentile interval.
        lo, hi = np.percentile(x0s, [2.5, 97.5]) if x0s else (fit.x0, fit.x0)
        lo, hi = min(lo, fit.x0_interval[0]), max(hi, fit.x0_interval[1])
        # the search grid runs past the data; an interval reaching the data's edge says so instead
        beyond = "below" if lo <= x.min() else "above" if hi >= x.max() else None
        lo, hi = max(lo, x.min()), min(hi, x.max())
        threshold, threshold_ci = 10**fit.x0, [10 ** float(lo), 10 ** float(hi)]
    return {
        **result,
        "emergent": emergent,
        "p_emergent": hits / n_boot if n_boot else None,
        "threshold": threshold,
        "threshold_ci95": threshold_ci,
        "threshold_beyond": beyond,
        "evidence": {
            **checks,
            "delta_bic": fit.delta_bic(len(x)),
            "width_decades": fit.width,
            "log10_scale_range": float(np.ptp(x)),
            "rise": (fit.hi - fit.lo) * (1 if up else -1),
            "power_exponent": fit.power_exponent,
        },
        "fit": {"lo": fit.lo if up else -fit.lo, "hi": fit.hi if up else -fit.hi, "log10_x0": fit.x0,
                "width_decades": fit.width},
        "sigma": [float(v) for v in sigma],
    }


def power_to_see_jump(scale, value, sigma, *, metric: str, log10_x0: float, width_decades: float,
                      trials: int = POWER_TRIALS, seed: int = 0) -> float:
    """How often the step test would call this metric emergent had it jumped — by its own observed range,
    with its own noise, at the given threshold and width — rather than moved as it did."""
    scale, value, sigma = (np.asarray(a, dtype=float) for a in (scale, value, sigma))
    x = np.log10(scale)
    lo, hi = (value.min(), value.max()) if higher_is_better(metric) else (value.max(), value.min())
    w = max(width_decades, 1e-3) / WIDTH_10_90
    clean = lo + (hi - lo) / (1 + np.exp(-np.clip((x - log10_x0) / w, -60, 60)))
    bounded = is_bounded(metric, value) or metric_kind(metric) == "discrete"
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(trials):
        v = clean + rng.normal(0, sigma)
        v = np.clip(v, 0, 1) if bounded else v
        hits += bool(analyse_curve(scale, v, sigma=sigma, metric=metric, n_boot=0, refine=False)["emergent"])
    return hits / trials


# ---- abilities, the mirage verdict, input ---------------------------------------------------------------


def analyse_ability(curves: dict[str, dict[str, np.ndarray]], *, n_boot: int = 200, seed: int = 0,
                    noise_floor: float = NOISE_FLOOR, per_seed: dict[str, dict] | None = None) -> dict:
    """Verdicts for one ability: `curves` maps metric name → {"scale", "value", optional "n", "sigma"};
    `per_seed` (optional) maps seed → the discrete metric's own curve {"scale", "value", "n"}."""
    metrics = {
        name: analyse_curve(c["scale"], c["value"], c.get("n"), sigma=c.get("sigma"), metric=name, n_boot=n_boot,
                            seed=seed, noise_floor=noise_floor)
        for name, c in curves.items()
    }
    discrete = [m for m in metrics if metrics[m]["kind"] == "discrete"]
    continuous = [m for m in metrics if metrics[m]["kind"] == "continuous"]
    primary = discrete[0] if discrete else next(iter(metrics))
    p = metrics[primary]
    mirage, reason, status = _mirage(primary, p, continuous, metrics, curves, seed)
    seeds_agree = None
    if per_seed and len(per_seed) > 1 and p["emergent"] is not None:
        each = {s: analyse_curve(c["scale"], c["value"], c.get("n"), metric=primary, n_boot=0)["emergent"]
                for s, c in per_seed.items()}
        seeds_agree = all(v == p["emergent"] for v in each.values())
        p["per_seed_emergent"] = {str(s): v for s, v in each.items()}
    return {
        "metric": primary,
        "emergent": p["emergent"],
        "p_emergent": p.get("p_emergent"),
        "threshold": p.get("threshold"),
        "threshold_ci95": p.get("threshold_ci95"),
        "threshold_beyond": p.get("threshold_beyond"),
        "seeds_agree": seeds_agree,
        "mirage": mirage,
        "mirage_reason": reason,
        "continuous_status": status,
        "metrics": metrics,
    }


def _mirage(primary: str, p: dict, continuous: list[str], metrics: dict, curves: dict,
            seed: int) -> tuple[bool | None, str, dict]:
    """The symmetric mirage call: each continuous metric jumps, is smooth (with power) or is underpowered."""
    if not continuous or metrics[primary]["kind"] != "discrete":
        return None, "no continuous metric to compare with" if not continuous else "no exact-match metric", {}
    if p["emergent"] is None:
        return None, f"{primary}: {p['reason']}", {}
    if not p["emergent"]:
        return None, f"{primary} is not emergent: no jump to explain", {}
    status = {}
    for m in continuous:
        v = metrics[m]
        if v["emergent"] is None:
            status[m] = "too few scales"
        elif v["emergent"]:
            status[m] = "jumps"
        else:
            c = curves[m]
            power = power_to_see_jump(c["scale"], c["value"], v["sigma"], metric=m, log10_x0=p["fit"]["log10_x0"],
                                      width_decades=p["fit"]["width_decades"], seed=seed)
            v["power_to_see_jump"] = power
            status[m] = "smooth" if power >= MIN_POWER else f"underpowered (power {power:.2f})"
    decided = {m: s for m, s in status.items() if s in ("jumps", "smooth")}
    text = "; ".join(f"{m}: {s}" for m, s in status.items())
    if decided and all(s == "smooth" for s in decided.values()):
        return True, f"{primary} jumps but the continuous metrics of the same outputs change smoothly ({text})", status
    if decided and all(s == "jumps" for s in decided.values()):
        return False, f"{primary} and the continuous metrics jump together ({text})", status
    return None, f"undetermined ({text})", status


def pool_seeds(points: list[dict]) -> dict[str, np.ndarray]:
    """Rows {scale, value, n, seed, optional items} of one metric → one curve: the mean over seeds at each
    scale, with σ from seeds × items (per-item values) or from n and the spread over seeds (means only)."""
    from emergelab.science.verdicts.noise import bounded_mean_sigma, mean_sigma

    by_scale: dict[float, list[dict]] = defaultdict(list)
    for r in points:
        by_scale[float(r["scale"])].append(r)
    scales = sorted(by_scale)
    values, sigmas, ns = [], [], []
    known = True
    for sc in scales:
        rows = by_scale[sc]
        vals = np.array([float(r["value"]) for r in rows])
        values.append(vals.mean())
        ns.append(sum(int(r["n"]) for r in rows) if all(r.get("n") for r in rows) else None)
        finite = [[v for v in r["items"] if math.isfinite(v)] for r in rows if r.get("items")]
        if len(finite) == len(rows) and all(finite):
            sigmas.append(mean_sigma(finite))
        elif ns[-1] and np.all((vals >= 0) & (vals <= 1)):
            within = np.mean([bounded_mean_sigma(float(r["value"]), int(r["n"])) ** 2 for r in rows]) / len(rows)
            between = vals.var(ddof=1) / len(rows) if len(rows) > 1 else 0.0
            sigmas.append(math.sqrt(within + between))
        elif len(rows) > 2:
            sigmas.append(float(vals.std(ddof=1) / math.sqrt(len(rows))))
        else:
            known = False
            sigmas.append(float("nan"))
    out = {"scale": np.array(scales), "value": np.array(values)}
    if all(n is not None for n in ns):
        out["n"] = np.array(ns, dtype=float)
    if known and any(r.get("items") or len(by_scale[float(r["scale"])]) > 1 for r in points):
        out["sigma"] = np.array(sigmas)
    return out


def analyse_table(rows: list[dict], **kw) -> dict[str, dict]:
    """Group rows (ability, metric, scale, value, n[, seed, items]) into curves — seeds pooled — and analyse
    each ability."""
    groups: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[r["ability"]][r["metric"]].append(r)
    out = {}
    for ability, metrics in groups.items():
        arrays = {name: pool_seeds(points) for name, points in metrics.items()}
        seeds = sorted({r.get("seed") for pts in metrics.values() for r in pts} - {None})
        per_seed = None
        discrete = [m for m in metrics if metric_kind(m) == "discrete"]
        if len(seeds) > 1 and discrete:
            per_seed = {s: pool_seeds([r for r in metrics[discrete[0]] if r.get("seed") == s]) for s in seeds}
        out[ability] = analyse_ability(arrays, per_seed=per_seed, **kw)
    return out


def read_emergence_csv(path: str | Path) -> list[dict]:
    """Read a long table: columns `scale`, `metric`, `value`; optional `n` (examples behind the value),
    `ability` (or `task`; default: one ability called "all") and `seed`. Extra columns are ignored."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"csv: {path} does not exist — pass a table with columns scale,metric,value[,n][,ability]")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in ("scale", "metric", "value") if c not in header]
        if missing:
            raise UserError(f"csv: {path} lacks column(s) {', '.join(missing)} — the header must include "
                            "scale,metric,value (optional n, ability)")
        ability_col = "ability" if "ability" in header else ("task" if "task" in header else None)
        rows = []
        for i, r in enumerate(reader, start=2):
            try:
                value = float(r["value"])
                scale = float(r["scale"])
                n = float(r["n"]) if r.get("n") not in (None, "") else None
            except ValueError as e:
                raise UserError(f"csv: {path} line {i}: {e}") from None
            if math.isnan(value):
                continue
            row = {"ability": r[ability_col] if ability_col else "all", "metric": r["metric"],
                   "scale": scale, "value": value, "n": n}
            if r.get("seed") not in (None, ""):
                row["seed"] = r["seed"]
            rows.append(row)
    if not rows:
        raise UserError(f"csv: {path} has no data rows")
    return rows


def raw_curves(rows: list[dict], ability: str) -> dict[str, dict[str, list]]:
    """The raw points of one ability's metrics, in row order, as `plot_ability` draws them: {metric: {scale, value}}."""
    curves: dict[str, dict[str, list]] = {}
    for r in rows:
        if r["ability"] == ability:
            c = curves.setdefault(r["metric"], {"scale": [], "value": []})
            c["scale"].append(r["scale"])
            c["value"].append(r["value"])
    return curves


def plot_ability(ability: str, curves: dict[str, dict[str, np.ndarray]], verdict: dict, path_stem) -> list[str]:
    """One panel per metric: the points, the logistic step fit, and the threshold with its interval."""
    from emergelab.science.plots import new_figure, save_figure

    fig, axes = new_figure(ncols=len(curves), width=4.0)
    for ax, (name, c) in zip(axes, curves.items()):
        v = verdict["metrics"][name]
        ax.scatter(c["scale"], c["value"], color="k", s=16, zorder=3)
        if v.get("fit"):
            f = v["fit"]
            xs = np.linspace(np.log10(c["scale"]).min(), np.log10(c["scale"]).max(), 200)
            w = f["width_decades"] / WIDTH_10_90
            z = np.clip(-(xs - f["log10_x0"]) / w, -60, 60)  # a near-step fit would overflow exp
            ax.plot(10**xs, f["lo"] + (f["hi"] - f["lo"]) / (1 + np.exp(z)), color="C1")
        if v.get("threshold"):
            ax.axvline(v["threshold"], color="C3", ls="--", lw=1)
            ax.axvspan(*v["threshold_ci95"], color="C3", alpha=0.12)
        ax.set_xscale("log")
        ax.set_xlabel("scale")
        tag = {True: "emergent", False: "smooth", None: "too few points"}[v["emergent"]]
        ax.set_title(f"{name}: {tag}", fontsize=9)
    mirage = verdict["mirage"]
    fig.suptitle(f"{ability}" + ("" if mirage is None else f" — mirage: {str(mirage).lower()}"), fontsize=10)
    return save_figure(fig, path_stem)
