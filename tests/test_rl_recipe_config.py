"""Recipes compose typed configs: the same settings as the key=value strings they replaced, and every stage
report uses one token budget for accuracy and for the hallucination check."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from emergelab.config import load, parse_overrides, to_dict
from emergelab.rl import recipes
from emergelab.rl.trainer import RLConfig
from emergelab.tasks import get_task

PROFILE_RL = {"rl.task": "add:digits=6,hints=true", "rl.steps": 3, "rl.prompts_per_step": 2, "rl.group_size": 4,
              "rl.max_new_tokens": 48}


def test_typed_r1_zero_config_equals_the_old_override_strings():
    strings = ["rl.steps=40", *[f"{k}={v}" for k, v in PROFILE_RL.items()]]
    old = load(RLConfig, None, strings, section="rl")
    new = load(RLConfig, None, parse_overrides([f"{k}={v}" for k, v in PROFILE_RL.items()]),
               base=RLConfig(steps=40), section="rl")
    assert new == old and new.max_new_tokens == 48 and new.steps == 3


def test_final_rl_stage_clone_equals_the_old_json_round_trip():
    rl = RLConfig(template="chat", steps=30, beta=0.04, max_new_tokens=120)
    old = load(RLConfig, None, [*[f"rl.{k}={json.dumps(v)}" for k, v in to_dict(rl).items()
                                  if k not in ("rewards", "reward_model")],
                                "rl.rewards={accuracy: 1.0, format: 0.2, rm: 0.5}", "rl.reward_model=/x/4a_rm",
                                "rl.steps=20"], section="rl")
    new = dataclasses.replace(rl, rewards={"accuracy": 1.0, "format": 0.2, "rm": 0.5}, reward_model="/x/4a_rm",
                              steps=20)
    assert new == old


def test_stage_report_gives_the_hallucination_check_the_stage_budget(monkeypatch):
    seen = {}
    monkeypatch.setattr("emergelab.runs.load_model", lambda run: (None, None, {}))
    monkeypatch.setattr(recipes, "greedy_accuracy", lambda *a: seen.setdefault("accuracy", a[-1]) and {})
    monkeypatch.setattr(recipes, "hallucination_rate", lambda *a: seen.setdefault("halluc", a[-1]) and {})
    recipes.stage_report(Path("run"), get_task("add:digits=2"), "plain", 48, recipes.HallucConfig(halluc_n=4),
                         eval_n=2)
    assert seen == {"accuracy": 48, "halluc": 48}  # before: the hallucination check always stopped at 80
