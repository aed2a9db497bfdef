"""Bad configs exit non-zero with one clear message naming the field and the fix — never a traceback."""

from __future__ import annotations

import pytest
from conftest import run_cli

from emergelab.config import load_pretrain_config, parse_overrides
from emergelab.errors import UserError


def write_cfg(tmp_path, corpus, extra: str = "") -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text(f"size: 30k\ndata:\n  corpus: {corpus}\ntrain:\n  max_steps: 2\n{extra}")
    return str(path)


@pytest.mark.parametrize("overrides, expected", [
    (["trian.lr=1e-3"], "did you mean train"),
    (["train.batchsize=4"], "did you mean train.batch_size"),
    (["train.batch_size=four"], "train.batch_size='four' has the wrong type: expected int"),
    (["model.n_embd=33"], "model.n_embd"),
    (["data.corpus=/no/such/file.txt"], "data.corpus: /no/such/file.txt does not exist"),
    (["size=huge"], "size='huge' is not a named size"),
    (["train.seq_len=512", "model.block_size=128"], "train.seq_len=512 exceeds model.block_size=128"),
    (["train.dtype=fp8"], "train.dtype"),
])
def test_bad_config_exits_with_one_clear_message(tmp_path, addition_corpus, overrides, expected):
    proc = run_cli("pretrain", write_cfg(tmp_path, addition_corpus), "--out", str(tmp_path / "run"), *overrides,
                   check=False)
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_config_file_and_malformed_override(tmp_path):
    proc = run_cli("pretrain", str(tmp_path / "nope.yaml"), check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(UserError, match="not key=value"):
        parse_overrides(["model.n_layer"])


def test_named_size_fills_fields_and_explicit_values_win(tmp_path, addition_corpus):
    cfg = load_pretrain_config(write_cfg(tmp_path, addition_corpus), ["model.n_layer=3"])
    assert (cfg.model.n_layer, cfg.model.n_embd, cfg.model.n_head) == (3, 32, 4)  # 30k: 2 layers, d=32
    assert cfg.train.lr is not None and cfg.train.tokens is not None
    assert isinstance(load_pretrain_config(write_cfg(tmp_path, addition_corpus), ["train.lr=3e-4"]).train.lr, float)


def test_existing_run_is_not_overwritten(tmp_path, addition_corpus):
    cfg = write_cfg(tmp_path, addition_corpus, "  seq_len: 32\n  batch_size: 4\n  eval_batches: 1\n")
    run_cli("pretrain", cfg, "--out", str(tmp_path / "run"))
    before = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    proc = run_cli("pretrain", cfg, "--out", str(tmp_path / "run"), check=False)
    assert proc.returncode == 2 and "--resume" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == before
