"""DemoLayout: the demo's paths in one place, and the sweep rows the later stages build on."""

from __future__ import annotations

import json

from emergelab.demo.layout import DemoLayout
from emergelab.demo.pipeline import sections


def _sweep(tmp_path, rows):
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps({"rows": rows}))
    return DemoLayout(tmp_path)


def test_sweep_rows_are_the_first_seed_of_each_size_smallest_first(tmp_path):
    rows = [{"run": "30k_s1", "size": "30k", "params": 30_000, "seed": 1},
            {"run": "30k_s0", "size": "30k", "params": 30_000, "seed": 0},
            {"run": "10k_s0", "size": "10k", "params": 10_000, "seed": 0},
            {"run": "10k_s1", "size": "10k", "params": 10_000, "seed": 1}]
    layout = _sweep(tmp_path, rows)
    assert [r["run"] for r in layout.sweep_rows()] == ["10k_s0", "30k_s0"]
    assert len(layout.sweep_rows(all_seeds=True)) == 4
    assert layout.strongest_run() == tmp_path / "sweep" / "runs" / "30k_s0"
    assert layout.run_of_size("10k") == tmp_path / "sweep" / "runs" / "10k_s0"


def test_a_missing_sweep_has_no_rows_and_stage_paths_sit_under_out(tmp_path):
    layout = DemoLayout(str(tmp_path))
    assert layout.sweep_rows() == []
    assert layout.rl_run == tmp_path / "r1_zero" / "rl"
    assert layout.r1_zero_recipe == tmp_path / "r1_zero" / "recipe.json"
    assert layout.classic("xor") == tmp_path / "classics" / "xor"


def test_profile_overrides_split_into_typed_sections():
    flat = {"rl.task": "add:digits=6,hints=true", "rl.steps": 3, "halluc.halluc_n": 8}
    assert sections(flat) == {"rl": {"task": "add:digits=6,hints=true", "steps": 3}, "halluc": {"halluc_n": 8}}
