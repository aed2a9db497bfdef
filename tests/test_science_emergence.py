"""Emergence and mirage verdicts: steps are emergent, smooth trends are not, p^L of a smooth p is a mirage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emergelab.science import emergence

SCALES = np.geomspace(1e4, 1e9, 11)


def test_a_step_from_chance_is_emergent_with_the_threshold_between_the_right_scales():
    rng = np.random.default_rng(0)
    p = np.where(SCALES < 3e6, 0.02, 0.9)  # true jump between 1e6 and 3.16e6
    v = rng.binomial(400, p) / 400
    out = emergence.analyse_curve(SCALES, v, np.full(11, 400), metric="exact_match", n_boot=50)
    assert out["emergent"] is True and out["p_emergent"] > 0.9
    lo, hi = out["threshold_ci95"]
    assert 1e6 * 0.99 <= lo <= out["threshold"] <= hi <= 3.17e6


@pytest.mark.parametrize(("metric", "values"), [
    ("score", 0.02 * SCALES**0.25),  # a straight line on log-log axes
    ("val_loss", 1.5 + 40 * SCALES**-0.3),  # a loss-like power law with an offset
    ("accuracy", np.linspace(0.1, 0.9, 11)),  # a linear trend in log-scale
])
def test_smooth_trends_are_not_emergent(metric, values):
    out = emergence.analyse_curve(SCALES, values, metric=metric, n_boot=30)
    assert out["emergent"] is False and out["threshold"] is None


def test_pure_binomial_noise_around_a_constant_is_not_emergent():
    rng = np.random.default_rng(3)
    v = rng.binomial(100, 0.1, 11) / 100
    out = emergence.analyse_curve(SCALES, v, np.full(11, 100), metric="exact_match", n_boot=30)
    assert out["emergent"] is False


def test_exact_match_as_p_to_the_L_of_a_smooth_per_digit_accuracy_is_a_mirage():
    # Schaeffer et al. 2023: per-token accuracy improves smoothly (error ∝ scale^-1); exact match over
    # L = 10 independent tokens is p^L, which looks like a sudden jump.
    scales = np.geomspace(1e4, 1e10, 13)
    p = 1 - 0.5 * (scales / 1e4) ** -1.0
    curves = {"exact_match": {"scale": scales, "value": p**10, "n": np.full(13, 1000)},
              "digit_accuracy": {"scale": scales, "value": p}}
    out = emergence.analyse_ability(curves, n_boot=30)
    assert out["metrics"]["exact_match"]["emergent"] is True
    assert out["metrics"]["digit_accuracy"]["emergent"] is False
    assert out["mirage"] is True


def test_a_jump_that_survives_continuous_metrics_is_not_a_mirage():
    # EXPERIMENTS.md: reversed 4-digit addition at a fixed step budget, params → exact / digit acc / NLL.
    scales = np.array([4.2e3, 15.8e3, 27e3, 59e3, 103e3, 341e3])
    curves = {"exact_match": {"scale": scales, "value": np.array([0, 0, 0.02, 1, 1, 1.0]), "n": np.full(6, 500)},
              "digit_accuracy": {"scale": scales, "value": np.array([0.23, 0.24, 0.55, 1, 1, 1.0])},
              "answer_nll": {"scale": scales, "value": np.array([1.54, 1.53, 0.80, 0.001, 0.001, 0.0])}}
    out = emergence.analyse_ability(curves, n_boot=30)
    assert out["emergent"] is True and out["mirage"] is False
    lo, hi = out["threshold_ci95"]
    assert lo <= 27e3 * 1.05 and hi >= 59e3 * 0.95  # the data cannot place the jump inside the gap


def test_mirage_is_null_without_a_continuous_metric():
    scales = np.array([1e3, 1e4, 1e5, 1e6, 1e7])
    out = emergence.analyse_ability({"exact_match": {"scale": scales, "value": np.array([0, 0, 0, 1, 1.0])}}, n_boot=5)
    assert out["emergent"] is True and out["mirage"] is None


def test_too_few_scales_gives_no_verdict():
    out = emergence.analyse_curve([1e3, 1e4, 1e5], [0, 0, 1], metric="exact_match", n_boot=5)
    assert out["emergent"] is None


@pytest.mark.parametrize(("name", "kind", "up"), [
    ("exact_match", "discrete", True), ("accuracy", "discrete", True), ("pass@1", "discrete", True),
    ("digit_accuracy", "continuous", True), ("answer_logprob", "continuous", True),
    ("answer_nll", "continuous", False), ("edit_distance", "continuous", False),
])
def test_metric_names_map_to_kind_and_direction(name, kind, up):
    assert emergence.metric_kind(name) == kind and emergence.higher_is_better(name) is up


def test_cli_reads_a_published_style_table_and_writes_verdicts_and_plots(tmp_path, capsys):
    from emergelab.cli import main

    lines = ["model_size,task,metric,value,n"]
    for s, em, da in zip([1e8, 4e8, 1e9, 8e9, 6e10, 5e11], [0, 0.01, 0, 0.02, 0.6, 0.8], [.3, .31, .3, .33, .8, .9]):
        lines += [f"{s},add,exact_match,{em},300", f"{s},add,digit_accuracy,{da},300"]
    # the CLI needs a `scale` column: a missing one is a clear user error first
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines))
    assert main(["emergence", str(bad)]) == 2
    good = tmp_path / "table.csv"
    good.write_text("\n".join(lines).replace("model_size", "scale", 1))
    assert main(["emergence", str(good), "--boot", "10", "--out", str(tmp_path / "out")]) == 0
    verdicts = json.loads((tmp_path / "out" / "verdicts.json").read_text())
    assert set(verdicts) == {"add"} and verdicts["add"]["emergent"] is True and verdicts["add"]["mirage"] is False
    assert (tmp_path / "out" / "emergence_add.png").exists() and (tmp_path / "out" / "emergence_add.svg").exists()
    assert json.loads(capsys.readouterr().out) == verdicts


def test_the_shipped_example_table_is_emergent_and_not_a_mirage(tmp_path, capsys):
    from pathlib import Path

    from emergelab.cli import main

    example = Path(__file__).resolve().parents[1] / "examples" / "emergence_reversed_addition.csv"
    assert main(["emergence", str(example), "--boot", "20", "--out", str(tmp_path)]) == 0
    verdict = json.loads(capsys.readouterr().out)["add4_reversed"]
    assert verdict["emergent"] is True and verdict["mirage"] is False
    lo, hi = verdict["threshold_ci95"]
    assert lo < 59000 and hi > 27000
