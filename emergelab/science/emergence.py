"""Emergence and "mirage" analysis of metric-vs-scale curves (Wei et al. 2022; Schaeffer et al. 2023).

Input: a long table with one row per (scale, metric) measurement — see `read_emergence_csv`.

The criterion (applied per ability and metric; x = log10(scale), y oriented so higher is better):

1. **Step beats smooth.** Two families are fitted by weighted least squares:
   - smooth: a straight line in log-scale, y = a + b·x, and a power law with offset,
     y = c + a·scale^k (|k| ≤ 3; covers loss-like decay and saturating accuracy);
   - step: a logistic in log-scale, y = lo + (hi − lo)·σ((x − x0)/w).
   Each point is weighted by σ_i² = binomial variance ŷ(1−ŷ)/n (when n is given and the metric is a
   proportion) + (noise_floor · range of y)². The step must win by the Bayesian information criterion:
   ΔBIC = BIC_smooth − BIC_step > 2 ("positive evidence", Kass & Raftery 1995).
2. **Sharp.** The fitted rise from 10% to 90% (4.39·w decades) spans at most a third of the observed
   log-scale range.
3. **From a plateau, inside the data.** The threshold x0 lies between the smallest and largest scale
   with at least two distinct scales below it and one above, and the rise hi − lo is at least 0.1 for
   proportions (exact match, accuracy) and positive otherwise.

The threshold is the scale 10^x0 where the logistic is halfway. Its 95% interval is the wider of the
profile-likelihood interval of x0 (every x0 whose best fit is within Δχ² = 3.84 of the optimum — this
covers the whole gap when a jump falls between two measured scales) and a parametric-bootstrap
percentile interval: each value is redrawn as Binomial(n, y)/n when n is known, else y + N(0, σ_i),
and everything is refitted. `p_emergent` is the fraction of bootstrap replicates meeting the criterion.

**Mirage verdict** (Schaeffer et al.): where the ability's discrete metric (exact match, accuracy) is
emergent and a continuous metric of the same ability exists (per-digit accuracy, answer log-prob, NLL,
edit distance …), `mirage` is true if at least one continuous metric is *not* emergent (smooth where
exact match jumps) and false if every continuous metric jumps too (the emergence survives the metric
change). It is null when there is no continuous metric or when the discrete metric is not emergent.
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
NOISE_FLOOR = 0.02
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


def fit_curve(x: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> CurveFit:
    """Fit the smooth (line, power law with offset) and step (logistic) families to y(x), x = log10 scale."""
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
    x0, w = _refine_logistic(x, y, wt, grid_x0[j], grid_w[j], span)
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


def _sigma(y: np.ndarray, n: np.ndarray | None, proportion: bool, noise_floor: float) -> np.ndarray:
    floor = noise_floor * max(float(np.ptp(y)), 1e-6)
    var = np.full_like(y, floor**2)
    if n is not None and proportion:
        p = np.clip((y * n + 0.5) / (n + 1.0), 0, 1)  # shrunk so 0 and 1 keep a little variance
        var = var + p * (1 - p) / n
    return np.sqrt(var)


def _criterion(fit: CurveFit, x: np.ndarray, proportion: bool) -> dict:
    m = len(x)
    scales = np.unique(x)
    span = scales.max() - scales.min()
    below = int((scales < fit.x0).sum())
    above = int((scales > fit.x0).sum())
    checks = {
        "step_beats_smooth": bool(fit.delta_bic(m) > BIC_MARGIN),
        "sharp": bool(fit.width <= MAX_WIDTH_FRACTION * span),
        "threshold_inside": below >= 2 and above >= 1,
        "rises": bool((fit.hi - fit.lo) >= (MIN_PROPORTION_RISE if proportion else 1e-12)),
    }
    return checks


def analyse_curve(scale, value, n=None, *, metric: str = "value", n_boot: int = 200, seed: int = 0,
                  noise_floor: float = NOISE_FLOOR) -> dict:
    """Emergence verdict for one metric curve: `emergent`, the threshold with its 95% interval, the evidence."""
    with threadpool_limits(1):  # tiny arrays: BLAS threads only add wake-up latency on a busy machine
        return _analyse_curve(scale, value, n, metric, n_boot, seed, noise_floor)


def _analyse_curve(scale, value, n, metric: str, n_boot: int, seed: int, noise_floor: float) -> dict:
    scale = np.asarray(scale, dtype=float)
    value = np.asarray(value, dtype=float)
    n_arr = None if n is None else np.asarray(n, dtype=float)
    up = higher_is_better(metric)
    y = value if up else -value
    proportion = bool(np.all((value >= 0) & (value <= 1))) and metric_kind(metric) == "discrete"
    result = {"metric": metric, "kind": metric_kind(metric), "higher_is_better": up, "n_scales": 0}
    if np.any(scale <= 0):
        raise UserError(f"scale: metric {metric} has non-positive scales — scales must be > 0 (params, FLOPs…)")
    x = np.log10(scale)
    result["n_scales"] = int(len(np.unique(x)))
    if result["n_scales"] < 4:
        return {**result, "emergent": None, "reason": "fewer than 4 distinct scales: cannot tell a step from a trend"}
    if np.ptp(y) == 0:
        return {**result, "emergent": False, "reason": "flat curve", "threshold": None, "threshold_ci95": None,
                "p_emergent": 0.0}
    sigma = _sigma(value, n_arr, proportion, noise_floor)
    fit = fit_curve(x, y, sigma)
    checks = _criterion(fit, x, proportion)
    emergent = all(checks.values())

    # Parametric bootstrap: redraw each value from its noise model and redo everything.
    rng = np.random.default_rng(seed)
    x0s, hits = [], 0
    for _ in range(n_boot):
        if n_arr is not None and proportion:
            v = rng.binomial(n_arr.astype(int), np.clip(value, 0, 1)) / n_arr
        else:
            v = value + rng.normal(0, sigma)
        yb = v if up else -v
        if np.ptp(yb) == 0:
            continue
        fb = fit_curve(x, yb, _sigma(v, n_arr, proportion, noise_floor))
        hits += all(_criterion(fb, x, proportion).values())
        x0s.append(fb.x0)
    threshold, threshold_ci = None, None
    if emergent:
        # The wider of the profile-likelihood interval (which covers a gap between two measured scales
        # that the data cannot resolve) and the bootstrap percentile interval.
        lo, hi = np.percentile(x0s, [2.5, 97.5]) if x0s else (fit.x0, fit.x0)
        lo, hi = min(lo, fit.x0_interval[0]), max(hi, fit.x0_interval[1])
        threshold, threshold_ci = 10**fit.x0, [10 ** float(lo), 10 ** float(hi)]
    return {
        **result,
        "emergent": emergent,
        "p_emergent": hits / n_boot if n_boot else None,
        "threshold": threshold,
        "threshold_ci95": threshold_ci,
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
    }


# ---- abilities, the mirage verdict, input ---------------------------------------------------------------


def analyse_ability(curves: dict[str, dict[str, np.ndarray]], *, n_boot: int = 200, seed: int = 0,
                    noise_floor: float = NOISE_FLOOR) -> dict:
    """Verdicts for one ability: `curves` maps metric name → {"scale", "value", optional "n"}."""
    metrics = {
        name: analyse_curve(c["scale"], c["value"], c.get("n"), metric=name, n_boot=n_boot, seed=seed,
                            noise_floor=noise_floor)
        for name, c in curves.items()
    }
    discrete = [m for m in metrics if metrics[m]["kind"] == "discrete"]
    continuous = [m for m in metrics if metrics[m]["kind"] == "continuous"]
    primary = discrete[0] if discrete else next(iter(metrics))
    p = metrics[primary]
    if not continuous or not discrete:
        mirage, reason = None, "no continuous metric to compare with" if not continuous else "no exact-match metric"
    elif p["emergent"] is None:
        mirage, reason = None, f"{primary}: {p['reason']}"
    elif not p["emergent"]:
        mirage, reason = None, f"{primary} is not emergent: no jump to explain"
    else:
        smooth = [m for m in continuous if metrics[m]["emergent"] is False]
        undecided = [m for m in continuous if metrics[m]["emergent"] is None]
        if smooth:
            mirage, reason = True, f"{primary} jumps but {', '.join(smooth)} changes smoothly over the same scales"
        elif undecided:
            mirage, reason = None, f"too few scales to judge {', '.join(undecided)}"
        else:
            mirage, reason = False, f"{primary} and every continuous metric ({', '.join(continuous)}) jump together"
    return {
        "metric": primary,
        "emergent": p["emergent"],
        "p_emergent": p.get("p_emergent"),
        "threshold": p.get("threshold"),
        "threshold_ci95": p.get("threshold_ci95"),
        "mirage": mirage,
        "mirage_reason": reason,
        "metrics": metrics,
    }


def analyse_table(rows: list[dict], **kw) -> dict[str, dict]:
    """Group rows (ability, metric, scale, value, n) into curves and analyse each ability."""
    curves: dict[str, dict[str, dict[str, list]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in rows:
        c = curves[r["ability"]][r["metric"]]
        c["scale"].append(r["scale"])
        c["value"].append(r["value"])
        if r.get("n") is not None:
            c["n"].append(r["n"])
    out = {}
    for ability, metrics in curves.items():
        arrays = {}
        for name, c in metrics.items():
            arrays[name] = {"scale": np.array(c["scale"]), "value": np.array(c["value"])}
            if len(c["n"]) == len(c["scale"]):
                arrays[name]["n"] = np.array(c["n"])
        out[ability] = analyse_ability(arrays, **kw)
    return out


def read_emergence_csv(path: str | Path) -> list[dict]:
    """Read a long table: columns `scale`, `metric`, `value`; optional `n` (examples behind the value) and
    `ability` (or `task`; default: one ability called "all"). Extra columns are ignored."""
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
            rows.append({"ability": r[ability_col] if ability_col else "all", "metric": r["metric"],
                         "scale": scale, "value": value, "n": n})
    if not rows:
        raise UserError(f"csv: {path} has no data rows")
    return rows


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
