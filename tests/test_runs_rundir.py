"""RunDir: one rule for "already holds a run", and a post-training run started from its parent."""

from __future__ import annotations

import pytest
import yaml

from emergelab.data.tokenizer import char_tokenizer
from emergelab.errors import UserError
from emergelab.runs import RunDir


def test_a_directory_holds_a_run_once_checkpoints_has_any_entry(tmp_path):
    run = RunDir(tmp_path / "run")
    assert not run.holds_run()  # missing
    run.checkpoints.mkdir(parents=True)
    assert not run.holds_run()  # empty checkpoints/
    (run.checkpoints / ".tmp-step_00000001-123").mkdir()  # a half-written checkpoint is a run too
    assert run.holds_run()
    with pytest.raises(UserError, match=r"^--resume-me .* already holds a run — continue it$"):
        run.ensure_new("--resume-me", "continue it")


def test_prepare_copies_the_parents_tokenizer_and_model_section(tmp_path):
    parent = tmp_path / "parent"
    parent.mkdir()
    char_tokenizer("ab").save(parent / "tokenizer.json")
    (parent / "config.yaml").write_text(yaml.safe_dump({"model": {"n_layer": 1}, "train": {"lr": 0.1}}))
    child = RunDir(tmp_path / "child")
    child.prepare(parent, "rl", {"steps": 3}, {"init_step": 5})
    assert yaml.safe_load(child.config_path.read_text()) == {"model": {"n_layer": 1}, "rl": {"steps": 3},
                                                             "init": str(parent), "init_step": 5}
    assert child.tokenizer_path.read_text() == (parent / "tokenizer.json").read_text()


def test_a_damaged_checkpoint_warning_says_whether_an_older_one_exists(tmp_path):
    import torch

    from emergelab.runs import latest_checkpoint, save_checkpoint

    model = torch.nn.Linear(2, 2)
    for step in (1, 2):
        save_checkpoint(tmp_path, step, model)
    for ckpt in sorted((tmp_path / "checkpoints").iterdir()):
        (ckpt / "model.safetensors").write_bytes(b"damaged")
    with pytest.warns(UserWarning) as record:
        assert latest_checkpoint(tmp_path) is None
    messages = [str(w.message) for w in record]
    assert "falling back to the previous checkpoint" in messages[0]
    assert "no older checkpoint to fall back to" in messages[1]
