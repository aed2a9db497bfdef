"""Scaling-law fits: they recover known laws from noisy synthetic points, with honest intervals."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from emergelab.science import scaling

TRUE_POWER = {"E": 1.7, "A": 400.0, "alpha": 0.34}
TRUE_CHINCHILLA = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}  # Hoffmann et al. 2022


def _noisy(loss: np.ndarray, seed: int, sd: float = 0.01) -> np.ndarray:
    return loss * np.exp(np.random.default_rng(seed).normal(0, sd, len(loss)))


def test_objective_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    log_x = np.log(rng.uniform(1e4, 1e8, (12, 2)))
    log_l = np.log(rng.uniform(2, 4, 12))
    theta = np.array([5.0, 6.0, 0.3, 0.25, 0.5])
    value, grad = scaling._objective(theta, log_x, log_l)
    numeric = approx_fprime(theta, lambda t: scaling._objective(t, log_x, log_l)[0], 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-8)


def test_power_law_is_recovered_exactly_without_noise():
    x = np.geomspace(1e4, 1e8, 12)
    fit = scaling.fit_power_law(x, scaling.predict(TRUE_POWER, x), n_boot=0)
    for name, true in TRUE_POWER.items():
        assert fit.params[name] == pytest.approx(true, rel=1e-3)


def test_power_law_exponent_lies_in_its_95_interval_under_noise():
    x = np.geomspace(1e4, 1e8, 25)
    fit = scaling.fit_power_law(x, _noisy(scaling.predict(TRUE_POWER, x), seed=1), n_boot=100)
    for name, true in TRUE_POWER.items():
        lo, hi = fit.ci95[name]
        assert lo <= true <= hi, (name, true, fit.ci95[name])
    lo, hi = fit.ci95["alpha"]
    assert hi - lo < 0.05  # informative, not a vacuous interval


def test_chinchilla_law_recovers_both_exponents_and_the_optimal_split():
    n = np.repeat(np.geomspace(1e6, 1e9, 6), 5)
    d = np.tile(np.geomspace(1e8, 1e11, 5), 6)
    fit = scaling.fit_chinchilla(n, d, _noisy(scaling.predict(TRUE_CHINCHILLA, n, d), seed=2), n_boot=60)
    for name in ("alpha", "beta", "E"):
        lo, hi = fit.ci95[name]
        assert lo <= TRUE_CHINCHILLA[name] <= hi, (name, fit.ci95[name])
    # Compute-optimal split against a brute-force search along the iso-FLOP line C = 6·N·D.
    budget = 1e21
    grid_n = np.geomspace(1e7, 1e12, 200_001)
    brute = grid_n[np.argmin(scaling.predict(TRUE_CHINCHILLA, grid_n, budget / (6 * grid_n)))]
    assert scaling.compute_optimal(TRUE_CHINCHILLA, budget)["N"] == pytest.approx(brute, rel=1e-3)
    opt = scaling.compute_optimal_with_ci(fit, budget)
    assert opt["ci95"]["N"][0] <= brute <= opt["ci95"]["N"][1]


def test_cli_prints_named_parameters_and_writes_png_and_svg(tmp_path):
    from emergelab.cli import main

    x = np.geomspace(1e4, 1e7, 8)
    path = tmp_path / "sweep.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["size", "params", "tokens", "val_loss"])
        for i, (xi, li) in enumerate(zip(x, scaling.predict(TRUE_POWER, x))):
            w.writerow([f"s{i}", xi, 1e6, li])
    assert main(["scaling-fit", str(path), "--boot", "10", "--plot", str(tmp_path / "fit")]) == 0
    assert (tmp_path / "fit.png").stat().st_size > 0 and (tmp_path / "fit.svg").stat().st_size > 0


def test_cli_output_is_json_with_formula_names(tmp_path, capsys):
    from emergelab.cli import main

    x = np.geomspace(1e4, 1e7, 8)
    path = tmp_path / "t.csv"
    path.write_text("params,loss\n" + "".join(f"{a},{b}\n" for a, b in zip(x, scaling.predict(TRUE_POWER, x))))
    assert main(["scaling-fit", str(path), "--boot", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"E", "A", "alpha", "ci95"} <= out.keys() and out["alpha"] == pytest.approx(0.34, rel=1e-2)


def test_too_few_points_is_a_user_error():
    from emergelab.errors import UserError

    with pytest.raises(UserError, match="at least 4 points"):
        scaling.fit_power_law([1e3, 1e4, 1e5], [3.0, 2.5, 2.2])
