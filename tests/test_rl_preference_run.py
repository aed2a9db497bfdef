"""`emergelab rm` and `emergelab dpo` run end to end on a small pretrained model and report held-out accuracy."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pref")
    run_cli("data", "build", "configs/corpus_syllogism.yaml", str(root / "corpus"))
    cfg = root / "c.yaml"
    cfg.write_text(f"size: 30k\ndata:\n  corpus: {root / 'corpus'}\ntrain:\n  max_steps: 20\n  batch_size: 8\n"
                   "  seq_len: 64\n  eval_batches: 1\nmodel:\n  block_size: 256\n")
    run_cli("pretrain", str(cfg), "--out", str(root / "base"))
    return root


@pytest.mark.parametrize("command", ["rm", "dpo"])
def test_preference_training_reports_heldout_accuracy(base_run, command):
    out = base_run / command
    proc = run_cli(command, "--init", str(base_run / "base"), "--out", str(out), f"{command}.task=syllogism:hops=1",
                   f"{command}.n_prompts=16", f"{command}.n_test_prompts=8", f"{command}.steps=2",
                   f"{command}.batch_size=4", f"{command}.max_new_tokens=12")
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    key = "heldout_accuracy" if command == "rm" else "heldout_pref_accuracy"
    assert 0.0 <= summary[key] <= 1.0
    assert (out / "config.yaml").exists()
