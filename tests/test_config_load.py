"""config.load, the one config loader: base, then YAML, then overrides; sections; one clear error line."""

from __future__ import annotations

import pytest

from emergelab.config import load
from emergelab.errors import UserError
from emergelab.rl.trainer import RLConfig
from emergelab.train.sft import SFTConfig


def test_each_layer_wins_over_the_one_below(tmp_path):
    path = tmp_path / "rl.yaml"
    path.write_text("rl:\n  steps: 7\n  lr: 3.0e-5\n")
    cfg = load(RLConfig, path, ["rl.lr=2e-5"], base=RLConfig(steps=40, group_size=4), section="rl")
    assert (cfg.group_size, cfg.steps, cfg.lr) == (4, 7, 2e-5)  # base, then file, then override


def test_a_mapping_of_overrides_equals_the_same_strings():
    as_strings = load(SFTConfig, None, ["sft.task=add:digits=2", "sft.n=10", "train.seq_len=64"])
    as_mapping = load(SFTConfig, None, {"sft": {"task": "add:digits=2", "n": 10}, "train": {"seq_len": 64}})
    assert as_strings == as_mapping


@pytest.mark.parametrize("overrides, message", [
    (["rl.stepz=3"], "did you mean rl.steps"),
    (["rl.steps=0"], "rl.steps: must be >= 1"),
])
def test_bad_settings_are_one_line_naming_the_field(overrides, message):
    with pytest.raises(UserError) as e:
        load(RLConfig, None, overrides, section="rl")
    assert "\n" not in str(e.value)
    assert message in str(e.value)


def test_a_section_config_refuses_other_sections():
    with pytest.raises(UserError, match=r"rl config: unknown section\(s\) \['sft'\]"):
        load(RLConfig, None, ["sft.n=3"], section="rl")


def test_overriding_one_nested_field_keeps_the_parents_other_defaults():
    # SFTConfig.train defaults to lr 3e-4, batch 16, weight decay 0 — not TrainConfig's own defaults. Setting
    # one train.* field must change that field only (it used to rebuild train from TrainConfig's defaults).
    default = SFTConfig().train
    cfg = load(SFTConfig, None, ["sft.task=add:digits=2", "train.seq_len=64"])
    assert cfg.train.seq_len == 64
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.weight_decay, cfg.train.warmup_steps) == \
        (default.lr, default.batch_size, default.weight_decay, default.warmup_steps)
