"""Sweeps: the grid, recipe errors, skipping finished runs, and a killed sweep resuming to the same table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emergelab.errors import UserError
from emergelab.science import sweep, sweep_analysis

REPO = Path(__file__).resolve().parents[1]


def _recipe(tmp_path: Path, sizes=("10k", "30k"), steps=20, **extra) -> dict:
    corpus = tmp_path / "corpus.yaml"
    corpus.write_text("seed: 0\ndocuments: 800\nval_fraction: 0.05\ntasks:\n  - task: add:digits=2\n    weight: 1\n")
    return {
        "corpus_recipe": str(corpus), "sizes": list(sizes), "steps": [steps], "seeds": [0],
        "pretrain": {"train.batch_size": 8, "train.seq_len": 64, "model.block_size": 128, "train.eval_every": 10,
                     "train.eval_batches": 2, "train.ckpt_every": 5, "train.warmup_steps": 2, "train.log_every": 5},
        "eval": {"n": 8, "abilities": [{"ability": "add2", "task": "add:digits=2", "shots": 0}]},
        "threads": 1, **extra,
    }


def test_grid_is_sizes_times_budgets_times_seeds_in_a_fixed_order():
    recipe = sweep.load_recipe({"corpus": ".", "sizes": ["10k", "30k"], "tokens": [1000, 2000], "seeds": [0, 1]})
    names = [r["name"] for r in sweep.run_grid(recipe)]
    assert len(names) == 8 and len(set(names)) == 8
    assert names[:4] == ["10k_1000tok_s0", "10k_1000tok_s1", "10k_2000tok_s0", "10k_2000tok_s1"]


@pytest.mark.parametrize(("recipe", "message"), [
    ({"corpus": "."}, "sizes"),
    ({"corpus": ".", "sizes": ["7q"]}, "named size"),
    ({"sizes": ["10k"]}, "corpus"),
    ({"corpus": ".", "sizes": ["10k"], "tokens": [1], "steps": [1]}, "not both"),
    ({"corpus": ".", "sizes": ["10k"], "sizez": 1}, "unknown key"),
])
def test_bad_recipes_are_user_errors_naming_the_field(recipe, message):
    with pytest.raises(UserError, match=message):
        sweep.load_recipe(recipe)


def test_rerunning_a_finished_sweep_trains_nothing_and_gives_the_same_table(tmp_path, monkeypatch):
    recipe = _recipe(tmp_path, sizes=("10k",), steps=10)
    sweep.run_sweep(recipe, tmp_path / "out")
    first = (tmp_path / "out" / "sweep.csv").read_text()
    assert "add2/exact_match" in first and "10k_10st_s0" in first

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("emergelab.train.pretrain.pretrain", no_training)
    monkeypatch.setattr("emergelab.science.sweep.evaluate_run", no_training)
    sweep.run_sweep(recipe, tmp_path / "out")
    assert (tmp_path / "out" / "sweep.csv").read_text() == first


@pytest.mark.slow
def test_a_killed_sweep_restarted_gives_the_same_table_as_an_uninterrupted_one(tmp_path):
    import yaml

    recipe = _recipe(tmp_path, steps=40)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    sweep.run_sweep(recipe, tmp_path / "whole")

    env = {**os.environ, "EMERGELAB_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "emergelab", "sweep", str(path), "--out", str(tmp_path / "killed"), "--no-analyse"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    second = tmp_path / "killed" / "runs" / "30k_40st_s0"
    deadline = time.time() + 600
    while not list((second / "checkpoints").glob("step_*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (second / "summary.json").exists(), "the sweep finished before it could be killed"
    assert subprocess.run(cmd, cwd=REPO, env=env, capture_output=True).returncode == 0
    assert (tmp_path / "killed" / "sweep.csv").read_text() == (tmp_path / "whole" / "sweep.csv").read_text()


@pytest.mark.slow
def test_parallel_jobs_give_the_same_table_as_one_job(tmp_path):
    recipe = _recipe(tmp_path, steps=10)
    sweep.run_sweep(recipe, tmp_path / "one")
    sweep.run_sweep(recipe, tmp_path / "two", jobs=2)
    assert (tmp_path / "two" / "sweep.csv").read_text() == (tmp_path / "one" / "sweep.csv").read_text()


@pytest.mark.slow
def test_ray_backend_on_a_local_ray_instance_gives_the_same_table(tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -r requirements-ray.txt")
    recipe = _recipe(tmp_path, sizes=("10k",), steps=10)
    sweep.run_sweep(recipe, tmp_path / "local")
    sweep.run_sweep(recipe, tmp_path / "ray", backend="ray")
    assert (tmp_path / "ray" / "sweep.csv").read_text() == (tmp_path / "local" / "sweep.csv").read_text()


def test_analysis_of_a_sweep_table_fits_the_loss_law_and_judges_each_ability(tmp_path):
    params = [1e4, 3e4, 1e5, 3e5, 1e6, 3e6]
    lines = ["run,size,seed,budget,params,tokens,val_loss"]
    lines += [f"r{i},s{i},0,600 steps,{p},1000000,{1.2 + 30 * p ** -0.3}" for i, p in enumerate(params)]
    (tmp_path / "sweep.csv").write_text("\n".join(lines) + "\n")
    em = ["ability,metric,scale,value,n"]
    em += [f"add,exact_match,{p},{0.0 if p < 2e5 else 0.95},100" for p in params]
    (tmp_path / "emergence.csv").write_text("\n".join(em) + "\n")
    out = sweep_analysis.analyse_sweep(tmp_path, n_boot=20)
    assert out["scaling"]["params"]["alpha"] == pytest.approx(0.3, rel=1e-2)
    assert out["emergence"]["add"]["emergent"] is True
    assert (tmp_path / "emergence" / "verdicts.json").exists() and (tmp_path / "scaling_power_params.png").exists()
