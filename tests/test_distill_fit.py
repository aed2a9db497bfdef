"""Distillation sizes SFT rows to hold every teacher trace whole; SFT warns when it must cut one."""

from __future__ import annotations

import torch

from emergelab.config import load, write_yaml
from emergelab.data.chat import encode_pair
from emergelab.data.tokenizer import char_tokenizer
from emergelab.model import GPT, ModelConfig
from emergelab.rl.distill import _fitting_seq_len
from emergelab.runs import save_checkpoint
from emergelab.train.sft import SFTConfig, train_sft


def _run(tmp_path, block_size: int):
    tok = char_tokenizer("0123456789+=<>/abcdefghijklmnopqrstuvwxyz:; \n")
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_embd=16, n_head=2, block_size=block_size)
    run = tmp_path / f"base{block_size}"
    run.mkdir()
    tok.save(run / "tokenizer.json")
    write_yaml({"model": cfg.__dict__}, run / "config.yaml")
    torch.manual_seed(0)
    save_checkpoint(run, 0, GPT(cfg))
    return run, tok


def test_rows_hold_the_longest_trace_up_to_the_block_size(tmp_path):
    run, tok = _run(tmp_path, block_size=256)
    pairs = [("1+2=", "3"), ("12+34=", "<think>" + "d:2+4=6 c0;" * 6 + "</think><answer>46</answer>")]
    longest = max(len(encode_pair(tok, p, r, "plain")[0]) for p, r in pairs)
    seq_len = _fitting_seq_len(run, pairs, "plain")
    assert longest <= seq_len < longest + 32 and seq_len % 32 == 0
    small, _ = _run(tmp_path, block_size=48)
    assert _fitting_seq_len(small, pairs, "plain") == 48  # never past what the student can attend to


def test_sft_warns_when_conversations_are_cut(tmp_path, capsys):
    run, _ = _run(tmp_path, block_size=64)
    pairs = [("1+2=", "3" * 40)] * 4
    cfg = load(SFTConfig, None, ["sft.task=add:digits=1", "train.seq_len=16", "train.max_steps=1",
                                 "train.progress=false", "sft.eval_n=1", "sft.max_new_tokens=8"])
    train_sft(cfg, run, tmp_path / "sft", pairs=pairs)
    assert "4 of 4 conversations are longer than train.seq_len=16" in capsys.readouterr().err
