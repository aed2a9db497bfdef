"""Seeds in sweeps: a run inside a parallel sweep is the run trained alone; per-size aggregates across seeds
against hand computation and the exact bootstrap; the budget grid; how jobs and threads are chosen."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
from safetensors.numpy import load_file

from emergelab.errors import UserError
from emergelab.runs import latest_checkpoint
from emergelab.science import sweep, sweep_analysis
from emergelab.threads import busy_cores, choose
from emergelab.train.pretrain import pretrain


def _weights(run_dir):
    ckpt, _ = latest_checkpoint(run_dir)
    return load_file(str(ckpt / "model.safetensors"))


@pytest.mark.slow
def test_a_run_inside_a_parallel_sweep_is_bitwise_the_same_run_trained_alone(tmp_path):
    corpus = tmp_path / "corpus.yaml"
    corpus.write_text("seed: 0\ndocuments: 400\nval_fraction: 0.05\ntasks:\n  - task: add:digits=2\n    weight: 1\n")
    pre = {"train.batch_size": 4, "train.seq_len": 32, "model.block_size": 64, "train.eval_every": 4,
           "train.eval_batches": 1, "train.ckpt_every": 8, "train.warmup_steps": 2, "train.log_every": 4}
    recipe = {"corpus_recipe": str(corpus), "sizes": ["5k", "15k"], "steps": [8], "seeds": [0, 1],
              "pretrain": pre, "eval": {}, "threads": 1}
    sweep.run_sweep(recipe, tmp_path / "sweep", jobs=2, progress=False)
    # the same (size, seed) trained alone, in this process, from the same corpus and overrides
    alone = tmp_path / "alone"
    overrides = ["size=15k", f"data.corpus={tmp_path / 'sweep' / 'corpus'}", "train.seed=1",
                 "train.progress=false", "train.max_steps=8", *(f"{k}={v}" for k, v in pre.items())]
    pretrain(None, alone, overrides)
    inside = _weights(tmp_path / "sweep" / "runs" / "15k_8st_s1")
    single = _weights(alone)
    assert inside.keys() == single.keys()
    for k in single:
        assert np.array_equal(inside[k], single[k]), k
    # and a different seed of the same size really is a different run
    other = _weights(tmp_path / "sweep" / "runs" / "15k_8st_s0")
    assert any(not np.array_equal(other[k], single[k]) for k in single)


def _rows():
    rows = []
    for size, params, values in (("big", 900, [1.0, 1.0, 0.4]), ("small", 100, [0.0, 0.5, 0.1])):
        for seed, v in enumerate(values):
            rows.append({"run": f"{size}_s{seed}", "size": size, "seed": seed, "budget": "10 steps",
                         "params": params, "val_loss": 2.0 - v, "add/exact_match": v, "add/n": 50})
    return rows


def test_seed_groups_hold_every_seed_of_a_size_smallest_size_first():
    groups = sweep_analysis.seed_groups(list(reversed(_rows())))
    assert [g["size"] for g in groups] == ["small", "big"]
    assert [g["seeds"] for g in groups] == [[0, 1, 2], [0, 1, 2]]
    assert [r["add/exact_match"] for r in groups[0]["rows"]] == [0.0, 0.5, 0.1]


def test_across_seed_aggregates_match_hand_computation_and_the_exact_bootstrap():
    values = [0.0, 0.5, 0.1]
    a = sweep_analysis.across_seeds(values, n_boot=20000)
    assert (a["n_seeds"], a["min"], a["max"]) == (3, 0.0, 0.5)
    assert a["mean"] == pytest.approx(0.2)
    # the exact bootstrap distribution: all 27 equally likely resamples of 3 seeds; its 2.5% / 97.5% quantiles
    # (inverse CDF) are atoms that 20,000 Monte Carlo resamples land on exactly
    exact = sorted(np.mean(c) for c in itertools.product(values, repeat=3))
    lo, hi = np.percentile(exact, [2.5, 97.5], method="inverted_cdf")
    assert a["ci95"] == pytest.approx([lo, hi], abs=1e-12)
    wider = sweep_analysis.across_seeds([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], n_boot=20000)
    assert 0.0 < wider["ci95"][0] < 0.35 < wider["ci95"][1] < 0.7  # inside min-max once seeds are many
    assert sweep_analysis.across_seeds([None, float("nan")])["n_seeds"] == 0


def test_per_size_records_aggregate_metrics_but_not_counts(tmp_path):
    records = sweep_analysis.per_size(_rows(), n_boot=100)
    assert [r["size"] for r in records] == ["small", "big"]
    assert set(records[1]["metrics"]) == {"add/exact_match", "val_loss"}
    assert records[1]["metrics"]["add/exact_match"]["mean"] == pytest.approx(0.8)
    sweep_analysis.write_per_size(records, tmp_path)
    lines = (tmp_path / "sweep_by_size.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 2
    paths = sweep_analysis.plot_abilities(_rows(), tmp_path)
    assert all(p.endswith((".png", ".svg")) for p in paths["add"])


def test_the_budget_grid_adds_only_runs_the_main_grid_lacks():
    recipe = sweep.load_recipe({"corpus": ".", "sizes": ["5k", "15k"], "steps": [100], "seeds": [0, 1],
                                "budget_grid": {"sizes": ["5k", "15k"], "steps": [50, 100]}})
    runs = sweep.run_grid(recipe)
    names = [r["name"] for r in runs]
    assert len(names) == len(set(names)) == 4 + 2
    assert {r["name"] for r in runs if r.get("extra")} == {"5k_50st_s0", "15k_50st_s0"}
    with pytest.raises(UserError, match="budget_grid"):
        sweep.load_recipe({"corpus": ".", "sizes": ["5k"], "budget_grid": {"sizes": ["5k"]}})
    with pytest.raises(UserError, match="seeds"):
        sweep.load_recipe({"corpus": ".", "sizes": ["5k"], "seeds": [0, 0]})


def test_jobs_and_threads_use_the_cores_without_oversubscribing_and_explicit_values_win():
    assert choose(n_tasks=21, cores=2, busy=0.0) == choose(jobs=2, threads=1, cores=2)
    assert choose(n_tasks=1, cores=2, busy=0.0).threads == 2  # a lone run on an idle machine: all cores
    assert choose(n_tasks=1, cores=2, busy=1.0).threads == 1  # another process holds a core: 2 threads stall
    assert choose(n_tasks=21, cores=16, busy=0.0).jobs == 16
    assert choose(jobs=1, threads=3, cores=2).threads == 3
    assert choose(n_tasks=5, device="cuda", cores=8).jobs == 1
    for jobs, threads in itertools.product(range(1, 5), range(1, 5)):
        p = choose(n_tasks=jobs * threads, cores=4, busy=0.0)
        assert p.jobs * p.threads <= 4
    with pytest.raises(UserError, match="--jobs"):
        choose(jobs=0)
    assert 0.0 <= busy_cores(0.05) <= os.cpu_count() + 1e-9


@pytest.mark.parametrize("argv", [["demo", "--jobs", "0"], ["sweep", "configs/sweep_tiny.yaml", "--jobs", "-1"],
                                  ["demo", "--threads", "0"]])
def test_a_bad_jobs_or_threads_value_is_one_line_before_any_work(argv, tmp_path, capsys):
    from emergelab.cli import main

    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("--jobs" in err[0] or "--threads" in err[0])
    assert not out.exists()
