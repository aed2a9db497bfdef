"""`train.tracker` sends every metrics record to TensorBoard or trackio, the same numbers as metrics.jsonl.

Oracles: TensorBoard's own event-file reader for the tensorboard tracker; for trackio (a large optional
package) a stand-in module that records the calls emergelab makes through trackio's documented API
(`init`, `log(metrics, step=)`, `finish`).
"""

from __future__ import annotations

import json
import sys
import types

import pytest

from emergelab.cli import main as cli_main
from emergelab.train.tracking import scalars


def pretrain(tmp_path, corpus, tracker: str):
    config = tmp_path / "c.yaml"
    config.write_text(f"size: 30k\nmodel:\n  block_size: 64\ndata:\n  corpus: {corpus}\ntrain:\n  max_steps: 6\n"
                      "  batch_size: 4\n  seq_len: 32\n  log_every: 2\n  eval_every: 3\n  eval_batches: 1\n"
                      f"  ckpt_every: 6\n  progress: false\n  tracker: {tracker}\n")
    run = tmp_path / "runs" / "r"
    assert cli_main(["pretrain", str(config), "--out", str(run)]) == 0
    return run, [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_tracker_writes_the_metrics_of_metrics_jsonl(tmp_path, addition_corpus):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                            reason="tensorboard not installed: `make extras`")
    run, rows = pretrain(tmp_path, addition_corpus, "tensorboard")
    acc = event_accumulator.EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    loss = {e.step: e.value for e in acc.Scalars("loss")}
    assert loss == pytest.approx({r["step"]: r["loss"] for r in rows}, rel=1e-6)
    assert {e.step for e in acc.Scalars("val_loss")} == {r["step"] for r in rows if "val_loss" in r}


def test_trackio_tracker_logs_every_record_and_finishes(tmp_path, addition_corpus, monkeypatch):
    calls = []
    fake = types.SimpleNamespace(init=lambda **kw: calls.append(("init", kw)),
                                 log=lambda metrics, step=None: calls.append(("log", metrics, step)),
                                 finish=lambda: calls.append(("finish",)))
    monkeypatch.setitem(sys.modules, "trackio", fake)
    run, rows = pretrain(tmp_path, addition_corpus, "trackio")
    assert calls[0][0] == "init" and calls[0][1]["project"] == "runs" and calls[0][1]["name"] == "r"
    assert calls[-1] == ("finish",)
    logged = [c for c in calls if c[0] == "log"]
    assert [(m, s) for _, m, s in logged] == [(scalars(r), r["step"]) for r in rows]


def test_unknown_tracker_is_one_clear_error(tmp_path, addition_corpus, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"size: 30k\ndata:\n  corpus: {addition_corpus}\ntrain:\n  tracker: wandb\n")
    assert cli_main(["pretrain", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "train.tracker='wandb' must be none, tensorboard or trackio" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ GRPO (rl.tracker)

TIMING = {"step_s", "gen_s"}  # wall-clock entries: differ between any two runs


def grpo(tmp_path, name: str, tracker: str, steps: int = 2, **overrides):
    from emergelab.config import load
    from emergelab.rl.trainer import RLConfig, train_grpo
    from tests.test_rl_loop import _base_run

    base = tmp_path / "base"
    if not base.exists():
        _base_run(tmp_path)
    settings = dict(task="tests/test_rl_loop.py:IsSmall", steps=steps, prompts_per_step=4, group_size=4,
                    max_new_tokens=3, lr=1e-2, beta=0.05, eval_every=1, eval_n=4, ckpt_every=2,
                    progress=False, seed=3, tracker=tracker, **overrides)
    cfg = load(RLConfig, None, [f"rl.{k}={v}" for k, v in settings.items()], section="rl")
    run = tmp_path / "runs" / name
    train_grpo(cfg, base, run)
    return run, [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_rl_tensorboard_tracker_writes_the_scalars_of_metrics_jsonl_and_changes_no_number(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                            reason="tensorboard not installed: `make extras`")
    run, rows = grpo(tmp_path, "tb", "tensorboard")
    assert [r["step"] for r in rows] == [0, 1, 2]
    acc = event_accumulator.EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    expected: dict[str, dict[int, float]] = {}
    for r in rows:
        for k, v in scalars(r).items():
            expected.setdefault(k, {})[r["step"]] = v
    assert set(acc.Tags()["scalars"]) == set(expected)
    assert {"reward", "accuracy", "kl", "loss", "val_accuracy", "pass_at_4"} <= set(expected)
    for tag, by_step in expected.items():
        logged = {e.step: e.value for e in acc.Scalars(tag)}
        assert logged == pytest.approx(by_step, rel=1e-6, abs=1e-12, nan_ok=True), tag
    # the tracker only reads the records: the same run without it logs the same numbers
    _, plain = grpo(tmp_path, "none", "none")
    assert not (tmp_path / "runs" / "none" / "tensorboard").exists()
    strip = [{k: v for k, v in r.items() if k not in TIMING} for r in rows]
    assert json.dumps(strip) == json.dumps([{k: v for k, v in r.items() if k not in TIMING} for r in plain])


def test_rl_trackio_tracker_is_closed_on_error_and_a_resume_sends_only_the_redone_steps(tmp_path, monkeypatch):
    import emergelab.rl.trainer as trainer
    from emergelab.rl.trainer import resume_grpo

    calls = []
    fake = types.SimpleNamespace(init=lambda **kw: calls.append(("init", kw)),
                                 log=lambda metrics, step=None: calls.append(("log", metrics, step)),
                                 finish=lambda: calls.append(("finish",)))
    monkeypatch.setitem(sys.modules, "trackio", fake)
    real_record = trainer.step_record

    def crash_at_third_step(step, *args):
        if step == 2:  # after the step-2 checkpoint, like a killed process
            raise RuntimeError("crash")
        return real_record(step, *args)

    monkeypatch.setattr(trainer, "step_record", crash_at_third_step)
    with pytest.raises(RuntimeError, match="crash"):
        grpo(tmp_path, "r", "trackio", steps=4)
    assert calls[0][0] == "init" and calls[0][1]["project"] == "runs" and calls[0][1]["name"] == "r"
    assert calls[0][1]["config"]["tracker"] == "trackio"
    assert [c[2] for c in calls if c[0] == "log"] == [0, 1, 2] and calls[-1] == ("finish",)

    monkeypatch.setattr(trainer, "step_record", real_record)
    calls.clear()
    resume_grpo(tmp_path / "runs" / "r")
    rows = [json.loads(line) for line in (tmp_path / "runs" / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    logged = [c for c in calls if c[0] == "log"]
    # json: NaN metrics (e.g. len_correct with no correct completion) compare equal as text
    assert json.dumps([(m, s) for _, m, s in logged]) == json.dumps([(scalars(r), r["step"]) for r in rows[3:]])
    assert calls[0][0] == "init" and calls[-1] == ("finish",)


def test_unknown_rl_tracker_is_one_clear_error():
    from emergelab.config import load
    from emergelab.errors import UserError
    from emergelab.rl.trainer import RLConfig

    with pytest.raises(UserError, match=r"^rl.tracker='wandb' must be none, tensorboard or trackio$"):
        load(RLConfig, None, ["rl.tracker=wandb"], section="rl")
