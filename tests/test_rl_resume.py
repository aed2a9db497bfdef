"""GRPO resume: a run crashed mid-way and resumed equals the uninterrupted run (weights bit for bit,
metrics and samples record for record); extending a finished run equals the longer run; clear errors."""

from __future__ import annotations

import json

import pytest
import torch

import emergelab.rl.trainer as trainer
from emergelab.cli import main
from emergelab.errors import UserError
from emergelab.rl.trainer import RLConfig, resume_grpo, train_grpo
from emergelab.runs import list_checkpoints, load_model
from tests.test_rl_loop import _base_run

TIMING = {"step_s", "gen_s"}
LocalBackend = trainer.LocalBackend
TASK = "tests/test_rl_loop.py:IsSmall"


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cfg(**kw) -> RLConfig:
    # beta > 0 (the reference model matters), mu = 2 (old log-probs and the ratio matter), sampling every step
    base = dict(task=TASK, steps=6, prompts_per_step=4, group_size=4, max_new_tokens=3, lr=1e-2, mu=2,
                loss_agg="seq_mean", adv_scale="group", beta=0.05, eval_every=2, eval_n=8, sample_every=1,
                samples_logged=2, ckpt_every=2, progress=False, seed=3)
    return RLConfig(**{**base, **kw})


def _records(run):
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _same_run(a, b) -> None:
    wa, wb = load_model(a)[0].state_dict(), load_model(b)[0].state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ra, rb = _records(a), _records(b)
    assert [r["step"] for r in ra] == [r["step"] for r in rb] == list(range(7))
    # json round-trip makes NaN != NaN; compare the serialised records
    assert json.dumps(ra) == json.dumps(rb)
    assert (a / "samples.jsonl").read_text() == (b / "samples.jsonl").read_text()


class Crash(RuntimeError):
    pass


def _crashing_backend(monkeypatch, at_call: int, calls: list) -> None:
    """LocalBackend whose `at_call`-th training rollout (group size > 1) raises, like a killed process."""

    class Crashing(LocalBackend):
        def generate(self, prompts, params):
            if params.num_samples > 1:
                calls.append(1)
                if len(calls) == at_call:
                    raise Crash
            return super().generate(prompts, params)

    monkeypatch.setattr(trainer, "LocalBackend", Crashing)


def test_crashed_and_resumed_run_equals_the_uninterrupted_run(tmp_path, monkeypatch):
    base = _base_run(tmp_path)
    train_grpo(_cfg(), base, tmp_path / "a")

    calls: list = []
    _crashing_backend(monkeypatch, 4, calls)  # dies in step 4: step 3 logged, checkpoint at step 2
    with pytest.raises(Crash):
        train_grpo(_cfg(), base, tmp_path / "b")
    assert [r["step"] for r in _records(tmp_path / "b")] == [0, 1, 2, 3]
    assert [p.name for p in list_checkpoints(tmp_path / "b")] == ["step_00000002"]

    calls.clear()
    _crashing_backend(monkeypatch, 0, calls)  # never crashes; counts the rollouts actually redone
    train_grpo(_cfg(), base, tmp_path / "b", resume=True)
    assert len(calls) == 4  # steps 3..6 only: it resumed, it did not start over
    _same_run(tmp_path / "a", tmp_path / "b")


def test_extending_a_finished_run_from_the_cli_equals_the_longer_run(tmp_path):
    base = _base_run(tmp_path)
    train_grpo(_cfg(), base, tmp_path / "a")
    train_grpo(_cfg(steps=4), base, tmp_path / "b")
    assert main(["rl", "--resume", str(tmp_path / "b"), "rl.steps=6", "rl.progress=false"]) == 0
    _same_run(tmp_path / "a", tmp_path / "b")
    assert resume_grpo(tmp_path / "b")["step"] == 6  # resuming a finished run does nothing and says so


def test_resume_and_new_run_errors(tmp_path, capsys):
    base = _base_run(tmp_path)
    with pytest.raises(UserError, match="no RL run"):
        resume_grpo(tmp_path / "nothing")
    with pytest.raises(UserError, match="no RL run"):
        resume_grpo(base)  # a pretraining run, not an RL run
    train_grpo(_cfg(steps=2), base, tmp_path / "rl")
    with pytest.raises(UserError, match="already holds a run.*--resume"):
        train_grpo(_cfg(steps=2), base, tmp_path / "rl")
    assert main(["rl", "--resume", str(tmp_path / "rl"), "--init", str(base)]) == 2
    assert "give only rl.key=value overrides" in capsys.readouterr().err
