"""data.loss_on=answers: only answer spans (and <eos>) are scored; everything else is ignored by the loss."""

from __future__ import annotations

import json

import numpy as np
from conftest import run_cli

from emergelab.data.tokenizer import Tokenizer
from emergelab.data.tokens import BatchSampler, TokenData


def test_masked_targets_are_exactly_the_unscored_tokens():
    tokens = np.arange(100, dtype=np.uint16)
    mask = (np.arange(100) % 3 == 0).astype(np.uint8)
    x, y = BatchSampler(tokens, 10, 4, mask=mask).batch(0)
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        for prev, target in zip(row_x, row_y):
            expected = prev + 1 if (prev + 1) % 3 == 0 else -100
            assert target == expected


def test_pretraining_on_answers_scores_only_answer_spans(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(f"{a}+{a}=<answer>{2 * a}</answer>\n<eos>" for a in range(400)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"size: 10k\ndata:\n  corpus: {corpus}\n  loss_on: answers\ntrain:\n  max_steps: 3\n"
                   "  batch_size: 4\n  seq_len: 32\n  eval_batches: 1\nmodel:\n  block_size: 64\n")
    run_cli("pretrain", str(cfg), "--out", str(tmp_path / "run"))
    data = TokenData.open(tmp_path / "run" / "data")
    tok = Tokenizer.load(tmp_path / "run")
    text = tok.decode(data.train[:60].tolist())
    scored = "".join(t for t, m in zip(tok.token_pieces(data.train[:60].tolist()), data.train_mask[:60]) if m)
    assert text.startswith("0+0=<answer>0</answer>\n<eos>1+1=")
    assert scored.startswith("<answer>0</answer>\n<eos><answer>2</answer>\n<eos>")
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "val_loss" in last and "val_bpb" not in last  # bits per byte is undefined on a subset of tokens
