"""Scaling-law fits: L = E + A·X^(−α) in one variable and Chinchilla's L(N, D) = E + A/N^α + B/D^β.

Both are fitted the way Hoffmann et al. (2022, "Training Compute-Optimal Large Language Models",
Appendix D.2) fit their "approach 3": minimise the Huber loss (δ = 1e-3) between log L and

    log L̂ = LSE(a − α·log N, b − β·log D, e),     A = e^a, B = e^b, E = e^e,

with L-BFGS started from many points of a grid (we start from the best grid points rather than all
of them, which finds the same optimum much faster). 95% intervals come from a bootstrap over the
observed points (percentile method). For a compute budget C ≈ 6·N·D the loss-optimal split is
(Hoffmann eq. 4)

    N_opt = G·(C/6)^(β/(α+β)),  D_opt = G^(−1)·(C/6)^(α/(α+β)),  G = (α·A / (β·B))^(1/(α+β)).
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from emergelab.errors import UserError

HUBER_DELTA = 1e-3
X_COLUMNS = ("params", "tokens", "flops")
LOSS_COLUMNS = ("val_loss", "loss", "final_val_loss", "train_loss")


@dataclass
class ScalingFit:
    """A fitted law. `params` uses the formula's names: E, A, alpha (and B, beta for Chinchilla)."""

    law: str  # "power" or "chinchilla"
    x: str  # the scale variable of a power law ("params" | "tokens" | "flops"); "params,tokens" for Chinchilla
    params: dict[str, float]
    ci95: dict[str, tuple[float, float]]
    n_points: int
    objective: float
    boot_params: list[dict[str, float]] = field(default_factory=list, repr=False)

    def predict(self, x: np.ndarray, d: np.ndarray | None = None) -> np.ndarray:
        """Predicted loss at scale `x` (power law) or at (N=x, D=d) (Chinchilla)."""
        return predict(self.params, x, d)

    def to_json(self) -> dict:
        out = {"law": self.law, "x": self.x, **self.params}
        out["ci95"] = {k: list(v) for k, v in self.ci95.items()}
        out.update(n_points=self.n_points, huber_delta=HUBER_DELTA, objective=self.objective)
        return out


def predict(params: dict[str, float], x: np.ndarray, d: np.ndarray | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    loss = params["E"] + params["A"] * x ** (-params["alpha"])
    if "B" in params:
        if d is None:
            raise ValueError("a Chinchilla fit needs both N and D")
        loss = loss + params["B"] * np.asarray(d, dtype=float) ** (-params["beta"])
    return loss


# ---- the objective: Huber on log-residuals of a log-sum-exp model -------------------------------------


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and its derivative, elementwise."""
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    grad = np.where(small, r, delta * np.sign(r))
    return loss, grad


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """log Σ exp(a) along `axis` (a plain-numpy version: scipy's is ~15× slower on these tiny arrays)."""
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _objective(theta: np.ndarray, log_x: np.ndarray, log_l: np.ndarray) -> tuple[float, np.ndarray]:
    """θ = (a_1..a_k, α_1..α_k, e); log_x is (m, k). Returns the summed Huber loss and its gradient."""
    k = log_x.shape[1]
    a, alpha, e = theta[:k], theta[k : 2 * k], theta[2 * k]
    terms = np.concatenate([a - alpha * log_x, np.full((len(log_x), 1), e)], axis=1)  # (m, k+1)
    lse = logsumexp(terms, axis=1)
    loss, dr = _huber(lse - log_l, HUBER_DELTA)
    w = np.exp(terms - lse[:, None]) * dr[:, None]  # dLSE/dterm · dHuber/dr
    grad = np.concatenate([w[:, :k].sum(0), -(w[:, :k] * log_x).sum(0), [w[:, k].sum()]])
    return float(loss.sum()), grad


def _grid(k: int) -> np.ndarray:
    """Hoffmann et al.'s initialisation grid (slightly coarser): a, α per variable, then e."""
    a_vals, alpha_vals, e_vals = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0), (0.0, 0.5, 1.0, 1.5, 2.0), (-1, -0.5, 0, 0.5, 1)
    rows = [
        (*a, *al, e)
        for a in itertools.product(a_vals, repeat=k)
        for al in itertools.product(alpha_vals, repeat=k)
        for e in e_vals
    ]
    return np.array(rows, dtype=float)


def _best_starts(log_x: np.ndarray, log_l: np.ndarray, n_starts: int) -> np.ndarray:
    """The `n_starts` grid points with the lowest objective (evaluated in one vectorised pass)."""
    grid = _grid(log_x.shape[1])
    k = log_x.shape[1]
    terms = grid[:, None, :k] - grid[:, None, k : 2 * k] * log_x[None]  # (g, m, k)
    e = np.broadcast_to(grid[:, None, 2 * k : 2 * k + 1], (len(grid), len(log_x), 1))
    lse = logsumexp(np.concatenate([terms, e], axis=2), axis=2)
    obj = _huber(lse - log_l[None], HUBER_DELTA)[0].sum(1)
    return grid[np.argsort(obj)[:n_starts]]


_LBFGS = {"maxiter": 5000, "gtol": 1e-14, "ftol": 1e-16, "maxcor": 10}


def _minimise(log_x: np.ndarray, log_l: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, float]:
    best_theta, best_obj = None, math.inf
    for theta0 in starts:
        # Tight tolerances: the objective is tiny in absolute terms (~1e-4), and scipy's default
        # relative-reduction test stops L-BFGS early, next to its starting point.
        res = minimize(_objective, theta0, args=(log_x, log_l), jac=True, method="L-BFGS-B", options=_LBFGS)
        if res.fun < best_obj:
            best_theta, best_obj = res.x, float(res.fun)
    return best_theta, best_obj


def _theta_to_params(theta: np.ndarray, k: int) -> dict[str, float]:
    params = {"E": math.exp(theta[2 * k]), "A": math.exp(theta[0]), "alpha": float(theta[k])}
    if k == 2:
        params.update(B=math.exp(theta[1]), beta=float(theta[k + 1]))
    return params


def _fit(columns: list[np.ndarray], loss: np.ndarray, n_boot: int, seed: int, n_starts: int):
    # One BLAS thread: L-BFGS-B calls BLAS on 3–5-vectors, and OpenBLAS's thread wake-ups made the
    # fits ~10× slower on a loaded 2-core machine.
    with threadpool_limits(1):
        return _fit_unthreaded(columns, loss, n_boot, seed, n_starts)


def _fit_unthreaded(columns: list[np.ndarray], loss: np.ndarray, n_boot: int, seed: int, n_starts: int):
    log_x = np.log(np.stack(columns, axis=1))
    log_l = np.log(loss)
    k = log_x.shape[1]
    theta, obj = _minimise(log_x, log_l, _best_starts(log_x, log_l, n_starts))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(log_l), len(log_l))
        # Start each replicate from the full-data optimum and the replicate's own best grid points.
        starts = np.vstack([theta[None], _best_starts(log_x[idx], log_l[idx], 1)])
        boots.append(_theta_to_params(_minimise(log_x[idx], log_l[idx], starts)[0], k))
    params = _theta_to_params(theta, k)
    ci = {}
    for name in params:
        if boots:
            reps = [b[name] for b in boots]
            ci[name] = (float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5)))
    return params, ci, obj, boots


def _check_positive(name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise UserError(f"{name}: needs finite positive numbers — drop rows with missing or zero values")
    return values


def fit_power_law(x, loss, x_name: str = "params", n_boot: int = 200, seed: int = 0, n_starts: int = 10) -> ScalingFit:
    """Fit L = E + A·X^(−α) (Huber on log-residuals, L-BFGS from the best grid points, bootstrap 95% CIs)."""
    x, loss = _check_positive(x_name, x), _check_positive("loss", loss)
    if len(x) < 4 or len(np.unique(x)) < 3:
        raise UserError(f"{x_name}: a power law with an offset needs at least 4 points at 3 distinct scales")
    params, ci, obj, boots = _fit([x], loss, n_boot, seed, n_starts)
    return ScalingFit("power", x_name, params, ci, len(x), obj, boots)


def fit_chinchilla(n_params, tokens, loss, n_boot: int = 100, seed: int = 0, n_starts: int = 10) -> ScalingFit:
    """Fit L(N, D) = E + A/N^α + B/D^β as in Hoffmann et al. (2022), with bootstrap 95% CIs."""
    n_params, tokens = _check_positive("params", n_params), _check_positive("tokens", tokens)
    loss = _check_positive("loss", loss)
    if len(loss) < 6 or len(np.unique(n_params)) < 2 or len(np.unique(tokens)) < 2:
        raise UserError("chinchilla: needs at least 6 runs varying both params and tokens — use --law power")
    params, ci, obj, boots = _fit([n_params, tokens], loss, n_boot, seed, n_starts)
    return ScalingFit("chinchilla", "params,tokens", params, ci, len(loss), obj, boots)


def compute_optimal(params: dict[str, float], flops: float) -> dict[str, float]:
    """The loss-minimising N and D with 6·N·D = `flops` under a Chinchilla fit (Hoffmann eq. 4)."""
    a, b = params["alpha"], params["beta"]
    if a <= 0 or b <= 0:
        raise UserError("compute-optimal: needs alpha > 0 and beta > 0 — the fit does not decrease in N or D")
    g = (a * params["A"] / (b * params["B"])) ** (1.0 / (a + b))
    n_opt = g * (flops / 6.0) ** (b / (a + b))
    d_opt = (flops / 6.0) / n_opt
    return {"C": float(flops), "N": float(n_opt), "D": float(d_opt), "loss": float(predict(params, n_opt, d_opt))}


def compute_optimal_with_ci(fit: ScalingFit, flops: float) -> dict:
    """`compute_optimal` at the point estimate, with bootstrap 95% intervals for N and D."""
    out = compute_optimal(fit.params, flops)
    reps = [compute_optimal(b, flops) for b in fit.boot_params if b["alpha"] > 0 and b["beta"] > 0]
    if reps:
        out["ci95"] = {
            key: [float(np.percentile([r[key] for r in reps], 2.5)), float(np.percentile([r[key] for r in reps], 97.5))]
            for key in ("N", "D", "loss")
        }
    return out


# ---- input and plots -------------------------------------------------------------------------------------


def read_scaling_csv(path: str | Path, loss_column: str | None = None) -> dict[str, np.ndarray]:
    """Columns params, tokens, flops (flops = 6·params·tokens if absent) and a loss column, as arrays."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"csv: {path} does not exist — pass a sweep.csv or a table with params/tokens/loss columns")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise UserError(f"csv: {path} has no rows")
    header = rows[0].keys()
    if loss_column is None:
        loss_column = next((c for c in LOSS_COLUMNS if c in header), None)
    if loss_column not in header:
        raise UserError(f"loss column: none of {loss_column or LOSS_COLUMNS} in {path} — pass --loss-column NAME")

    def column(name: str) -> np.ndarray | None:
        if name not in header:
            return None
        try:
            return np.array([float(r[name]) if r[name] not in ("", None) else math.nan for r in rows])
        except ValueError as e:
            raise UserError(f"{name}: non-numeric value in {path} ({e})") from None

    out = {"loss": column(loss_column)}
    for name in X_COLUMNS:
        if (col := column(name)) is not None:
            out[name] = col
    if "flops" not in out and "params" in out and "tokens" in out:
        out["flops"] = 6.0 * out["params"] * out["tokens"]
    keep = np.isfinite(out["loss"])
    return {k: v[keep] for k, v in out.items()}


def plot_fit(fit: ScalingFit, data: dict[str, np.ndarray], path_stem: str | Path,
             extrapolate: float = 10.0) -> list[str]:
    """Log-log plot of the points, the fit over their range (solid) and its extrapolation (dashed)."""
    from emergelab.science.plots import new_figure, save_figure

    fig, (ax,) = new_figure()
    loss = data["loss"]
    if fit.law == "power":
        x = data[fit.x]
        grid_in = np.geomspace(x.min(), x.max(), 100)
        grid_out = np.geomspace(x.max(), x.max() * extrapolate, 50)
        ax.scatter(x, loss, color="k", s=18, zorder=3, label="runs")
        p = fit.params
        ax.plot(grid_in, fit.predict(grid_in), color="C0", label=f"E + A·X^-α, α={p['alpha']:.3f}")
        ax.plot(grid_out, fit.predict(grid_out), color="C0", ls="--", label="extrapolation")
        ax.axhline(p["E"], color="gray", ls=":", lw=1, label=f"E = {p['E']:.3f}")
        ax.set_xlabel(fit.x)
    else:
        n, d = data["params"], data["tokens"]
        budgets = np.unique(d)
        if len(budgets) > 8:  # too many to draw one curve each: bin into 6 geometric groups
            budgets = np.unique(np.geomspace(d.min(), d.max(), 6))
        grid_in = np.geomspace(n.min(), n.max(), 100)
        grid_out = np.geomspace(n.max(), n.max() * extrapolate, 50)
        for i, dv in enumerate(budgets):
            near = np.abs(np.log(d) - np.log(dv)) == np.min(np.abs(np.log(d)[:, None] - np.log(budgets)[None]), 1)
            ax.scatter(n[near], loss[near], color=f"C{i % 10}", s=18, zorder=3)
            ax.plot(grid_in, fit.predict(grid_in, np.full_like(grid_in, dv)), color=f"C{i % 10}", label=f"D={dv:.3g}")
            ax.plot(grid_out, fit.predict(grid_out, np.full_like(grid_out, dv)), color=f"C{i % 10}", ls="--")
        p = fit.params
        ax.axhline(p["E"], color="gray", ls=":", lw=1, label=f"E = {p['E']:.3f}")
        ax.set_title(f"L = E + A/N^α + B/D^β  (α={p['alpha']:.3f}, β={p['beta']:.3f})", fontsize=9)
        ax.set_xlabel("params N")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    return save_figure(fig, path_stem)
