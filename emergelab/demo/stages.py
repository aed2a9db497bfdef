"""A resumable pipeline: each stage writes `OUT/stages/<name>.json` when done and is skipped on re-runs."""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm


@dataclass
class Stage:
    name: str
    run: Callable[[Path, dict], dict]  # (out_dir, results of earlier stages) -> JSON-able result
    estimate_s: float  # rough wall time on the 2-core reference CPU, for the ETA
    output: str | None = None  # sub-folder this stage writes; wiped before a (re-)run of an unfinished stage
    always: bool = False  # re-run even when finished before (e.g. the report, which reads every other stage)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    tmp.replace(path)


def run_stages(stages: list[Stage], out_dir: Path, progress: bool = True) -> dict[str, dict]:
    """Run `stages` in order, skipping those already finished; a failed stage is recorded, not fatal."""
    done_dir = out_dir / "stages"
    done_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    total = sum(s.estimate_s for s in stages)
    show = progress and os.environ.get("EMERGELAB_NO_PROGRESS") != "1"
    bar = tqdm(total=round(total), desc="demo", disable=not show, dynamic_ncols=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
    for stage in stages:
        marker = done_dir / f"{stage.name}.json"
        bar.set_description_str(f"demo [{stage.name}]")
        if marker.exists() and not stage.always:
            results[stage.name] = json.loads(marker.read_text())
            bar.update(round(stage.estimate_s))
            continue
        t0 = time.time()
        if stage.output:  # a half-written output of a crashed attempt must not block the re-run
            shutil.rmtree(out_dir / stage.output, ignore_errors=True)
        try:
            result = stage.run(out_dir, results)
            result = {"status": "ok", **(result or {})}
            result["seconds"] = time.time() - t0
            _write_json(marker, result)  # only finished stages are marked: a crash re-runs this stage
        except Exception as e:  # noqa: BLE001 — one broken stage must not lose the others' results
            result = {"status": "failed", "error": f"{type(e).__name__}: {e}",
                      "traceback": traceback.format_exc()[-4000:], "seconds": time.time() - t0}
            _write_json(done_dir / f"{stage.name}.failed.json", result)
            tqdm.write(f"[demo] stage {stage.name} failed: {result['error']}")
        results[stage.name] = result
        bar.update(round(stage.estimate_s))
    bar.close()
    return results
