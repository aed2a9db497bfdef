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
                                            reason="pip install -r requirements-tracking.txt")
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
