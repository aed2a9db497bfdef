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
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoLayout:
    out: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))

    def stage_dir(self, name: str) -> Path:
        """The folder a stage named `name` writes (icl, grokking, tts, distill, cot_bridge, ...)."""
        return self.out / name

    @property
    def sweep(self) -> Path:
        return self.out / "sweep"

    @property
    def sweep_json(self) -> Path:
        return self.sweep / "sweep.json"

    @property
    def r1_zero(self) -> Path:
        return self.out / "r1_zero"

    @property
    def r1_zero_recipe(self) -> Path:
        return self.r1_zero / "recipe.json"

    @property
    def rl_run(self) -> Path:
        """The R1-Zero policy: the teacher of distillation and the model of test-time scaling."""
        return self.r1_zero / "rl"

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
