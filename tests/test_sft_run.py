"""`emergelab sft` end to end: a JSONL set fine-tunes a tiny model into a loadable run directory."""

from __future__ import annotations

import json
import random

import pytest
import torch
from conftest import run_cli

from emergelab.config import write_yaml
from emergelab.data.tokenizer import char_tokenizer
from emergelab.model import GPT, ModelConfig
from emergelab.runs import load_model, read_run_config, save_checkpoint
from emergelab.train.sft import write_jsonl_pairs


@pytest.mark.slow
def test_sft_cli_lowers_assistant_loss_and_writes_a_loadable_run(tmp_path):
    tok = char_tokenizer("0123456789+=yn\n")
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=64)
    torch.manual_seed(0)
    base = tmp_path / "base"
    base.mkdir()
    tok.save(base / "tokenizer.json")
    write_yaml({"model": cfg.__dict__}, base / "config.yaml")
    save_checkpoint(base, 0, GPT(cfg))
    rng = random.Random(0)
    pairs = [(f"{a}{b}=", "y" if a < b else "n") for a, b in ((rng.randrange(10), rng.randrange(10))
                                                            for _ in range(200))]
    write_jsonl_pairs(pairs, tmp_path / "d.jsonl")
    run_cli("sft", f"sft.jsonl=[{tmp_path / 'd.jsonl'}]", "train.max_steps=40", "train.seq_len=64",
            "train.lr=3e-3", "train.log_every=5", "train.eval_every=1000", "--init", str(base),
            "--out", str(tmp_path / "sft"))
    rows = [json.loads(x) for x in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]
    model, tok2, _ = load_model(tmp_path / "sft")
    assert model.cfg == cfg and tok2.vocab_size == tok.vocab_size
    assert read_run_config(tmp_path / "sft")["init"] == str(base)
