"""Training-loop invariants: accumulation, data parallelism, exact resume after SIGKILL, damaged checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, run_cli
from safetensors.torch import load_file

from emergelab.errors import UserError
from emergelab.runs import latest_checkpoint, list_checkpoints, load_model, verify_checkpoint


def tiny_config(tmp_path: Path, corpus: Path, **train) -> str:
    lines = [f"  {k}: {v}" for k, v in {"max_steps": 12, "batch_size": 8, "seq_len": 32, "eval_every": 6,
                                         "eval_batches": 2, "ckpt_every": 6, "log_every": 2, "warmup_steps": 3,
                                         **train}.items()]
    path = tmp_path / "tiny.yaml"
    path.write_text(f"size: 30k\nmodel:\n  block_size: 64\ndata:\n  corpus: {corpus}\ntrain:\n" + "\n".join(lines))
    return str(path)


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(list_checkpoints(run)[-1] / "model.safetensors"))


def metric_rows(run: Path, keys=("step", "loss", "lr", "val_loss")) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: r[k] for k in keys if k in r} for r in rows]


def test_gradient_accumulation_equals_one_big_batch(tmp_path, addition_corpus):
    cfg = tiny_config(tmp_path, addition_corpus)
    run_cli("pretrain", cfg, "--out", str(tmp_path / "big"), "train.batch_size=8", "train.grad_accum=1")
    run_cli("pretrain", cfg, "--out", str(tmp_path / "acc"), "train.batch_size=4", "train.grad_accum=2")
    a, b = final_weights(tmp_path / "big"), final_weights(tmp_path / "acc")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_two_process_torchrun_equals_one_process(tmp_path, addition_corpus):
    cfg = tiny_config(tmp_path, addition_corpus, max_steps=6, ckpt_every=6, eval_every=6)
    run_cli("pretrain", cfg, "--out", str(tmp_path / "one"), "train.batch_size=8")
    env = {**os.environ, "EMERGELAB_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
                           "-m", "emergelab", "pretrain", cfg, "--out", str(tmp_path / "two"), "train.batch_size=4"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    one, two = metric_rows(tmp_path / "one"), metric_rows(tmp_path / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two]
    for r1, r2 in zip(one, two):
        assert r1["loss"] == pytest.approx(r2["loss"], rel=1e-4)


def test_sigkill_then_resume_is_bitwise_identical_to_uninterrupted(tmp_path, addition_corpus):
    cfg = tiny_config(tmp_path, addition_corpus, max_steps=30, ckpt_every=5, keep_checkpoints=3)
    run_cli("pretrain", cfg, "--out", str(tmp_path / "straight"))
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "emergelab", "pretrain", cfg, "--out", str(killed)], cwd=REPO,
                            env={**os.environ, "EMERGELAB_NO_PROGRESS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (killed / "checkpoints" / "step_00000010").exists():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    survived = list_checkpoints(killed)
    assert survived and int(survived[-1].name.split("_")[1]) < 30, "the run finished before it could be killed"
    for ckpt in survived:
        verify_checkpoint(ckpt)  # nothing written before the kill is corrupt
    run_cli("pretrain", "--resume", str(killed))
    a, b = final_weights(tmp_path / "straight"), final_weights(killed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert metric_rows(tmp_path / "straight") == metric_rows(killed)


def test_truncated_checkpoint_is_detected_and_previous_one_used(tmp_path, addition_corpus):
    run = tmp_path / "run"
    run_cli("pretrain", tiny_config(tmp_path, addition_corpus), "--out", str(run))
    older, newest = list_checkpoints(run)[-2:]
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated or corrupted"):
        verify_checkpoint(newest)
    with pytest.warns(UserWarning, match="falling back"):
        ckpt, meta = latest_checkpoint(run)
    assert ckpt == older and meta["step"] == 6
    with pytest.warns(UserWarning):
        model, tok, _ = load_model(run, device="cpu")
    older_weights = load_file(str(older / "model.safetensors"))
    assert torch.equal(model.state_dict()["tok_emb.weight"], older_weights["tok_emb.weight"])


def test_metrics_contract_and_sample_and_ppl_commands(tmp_path, addition_corpus):
    run = tmp_path / "run"
    run_cli("pretrain", tiny_config(tmp_path, addition_corpus), "--out", str(run))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all({"step", "loss", "lr", "tokens_per_s"} <= r.keys() for r in rows)
    assert any("val_loss" in r for r in rows)
    assert (run / "config.yaml").exists() and (run / "tokenizer.json").exists()
    out = run_cli("sample", str(run), "--prompt", "12+", "--n", "2", "--json", "--max-new-tokens", "5")
    samples = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(samples) == 2 and all(len(s["tokens"]) == len(s["logprobs"]) <= 5 for s in samples)
    text = tmp_path / "t.txt"
    text.write_text("1+2=3<eos>")
    ppl = json.loads(run_cli("ppl", str(run), "--text-file", str(text)).stdout)
    assert set(ppl) == {"tokens", "nll_per_token", "ppl", "bits_per_byte"} and ppl["tokens"] == 6
