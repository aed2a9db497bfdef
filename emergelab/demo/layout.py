"""Where each stage of `emergelab demo` writes, in one place.

    OUT/sweep/sweep.json, OUT/sweep/runs/<run>/   the pretrained family and its scores (sweep, analysis)
    OUT/icl  OUT/grokking  OUT/classics/<name>    experiments
    OUT/r1_zero/recipe.json, OUT/r1_zero/rl/      R1-Zero GRPO on the strongest model
    OUT/tts  OUT/distill  OUT/cot_bridge  OUT/attention  OUT/verdict_inputs  OUT/real_model
    OUT/stages/<stage>.json                       stage markers (stages.py)
    OUT/report.html, OUT/report.json

Stages and the report ask a `DemoLayout` for these paths instead of rebuilding them.
"""

from __future__ import annotations

import json
from pathlib import Path


class DemoLayout:
    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.sweep = self.out / "sweep"
        self.sweep_json = self.sweep / "sweep.json"
        self.r1_zero = self.out / "r1_zero"
        self.r1_zero_recipe = self.r1_zero / "recipe.json"
        self.rl_run = self.r1_zero / "rl"  # the R1-Zero policy: teacher of distillation, model of tts

    def stage_dir(self, name: str) -> Path:
        """The folder a stage named `name` writes (icl, grokking, tts, distill, cot_bridge, ...)."""
        return self.out / name

    def classic(self, name: str) -> Path:
        return self.out / "classics" / name

    def sweep_run(self, row: dict | str) -> Path:
        """The run directory of a sweep row (or of a run name)."""
        return self.sweep / "runs" / (row["run"] if isinstance(row, dict) else row)

    def sweep_rows(self, all_seeds: bool = False) -> list[dict]:
        """Rows of the finished sweep, smallest model first: one per size (its first seed) unless
        `all_seeds`; [] before the sweep has finished."""
        if not self.sweep_json.exists():
            return []
        rows = json.loads(self.sweep_json.read_text())["rows"]
        if not all_seeds and rows:
            first = min(r["seed"] for r in rows)
            rows = [r for r in rows if r["seed"] == first]
        return sorted(rows, key=lambda r: r["params"])

    def strongest_run(self) -> Path:
        """The largest model of the sweep (its first seed)."""
        return self.sweep_run(self.sweep_rows()[-1])

    def run_of_size(self, size: str) -> Path:
        """The sweep's run of the named size (its first seed)."""
        return self.sweep_run(next(r for r in self.sweep_rows() if r["size"] == size))
