"""A resumable pipeline: each stage writes `OUT/stages/<name>.json` when done and is skipped on re-runs.

A finished stage is reused only under the settings it ran with: its marker records the profile and a
hash of its own settings and those of every stage before it. A folder holding stages of another
profile is refused (one message naming `--out`), so `demo --profile tiny` followed by `demo` cannot
render a quick report over tiny runs; a stage whose settings changed within the same profile is run
again from scratch, and so is every stage after it.
"""

from __future__ import annotations

import hashlib
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

from emergelab.errors import UserError


@dataclass
class Stage:
    name: str
    run: Callable[[Path, dict], dict]  # (out_dir, results of earlier stages) -> JSON-able result
    estimate_s: float  # rough wall time on the 2-core reference CPU, for the ETA
    output: str | None = None  # sub-folder this stage writes; wiped before a (re-)run of an unfinished stage
    always: bool = False  # re-run even when finished before (e.g. the report, which reads every other stage)
    # a stage that resumes its own half-done output (the sweep): its folder is kept after a crash and
    # wiped only when the settings it was started with changed
    resumable: bool = False
    # what this stage's result depends on besides earlier stages (None: the run's whole `settings`)
    settings: Any = None


def settings_hash(settings: Any) -> str:
    """A short, order-independent fingerprint of JSON-able settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    tmp.replace(path)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def check_profile(out_dir: Path, profile: str) -> None:
    """Refuse an output folder whose finished or started stages belong to another profile."""
    done_dir = out_dir / "stages"
    found: dict[str, list[str]] = {}
    for path in [*done_dir.glob("*.json"), *(done_dir / "started").glob("*.json")]:
        if path.name.endswith(".failed.json"):
            continue
        marker = _read(path) or {}
        other = marker.get("profile", "an unrecorded profile (written before profiles were recorded)")
        if other != profile:
            found.setdefault(other, []).append(path.stem)
    if found:
        other, names = next(iter(found.items()))
        names = sorted(set(names))
        raise UserError(f"--out {out_dir}: holds stages run under profile {other} ({', '.join(names[:4])}"
                        f"{' …' if len(names) > 4 else ''}), not {profile} — choose another --out for profile "
                        f"{profile}, or delete {out_dir} to start over")


def run_stages(stages: list[Stage], out_dir: Path, progress: bool = True, profile: str = "",
               settings: Any = None, before_each: Callable[[Stage], None] | None = None) -> dict[str, dict]:
    """Run `stages` in order, skipping those finished under the same profile and settings; a failed stage
    is recorded, not fatal. `settings` (JSON-able) is what the stages' results depend on; `before_each`
    is called before a stage runs (the demo chooses its torch threads there)."""
    done_dir = out_dir / "stages"
    (done_dir / "started").mkdir(parents=True, exist_ok=True)
    check_profile(out_dir, profile)
    results: dict[str, dict] = {}
    chain = ""
    total = sum(s.estimate_s for s in stages)
    show = progress and os.environ.get("EMERGELAB_NO_PROGRESS") != "1"
    bar = tqdm(total=round(total), desc="demo", disable=not show, dynamic_ncols=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
    for stage in stages:
        marker, started = done_dir / f"{stage.name}.json", done_dir / "started" / f"{stage.name}.json"
        # a stage's fingerprint covers its own settings and every earlier stage's: changing the sweep
        # re-runs everything after it, changing a late stage leaves the sweep alone
        chain = settings_hash([chain, settings if stage.settings is None else stage.settings])
        fingerprint = {"profile": profile, "settings_hash": chain}
        bar.set_description_str(f"demo [{stage.name}]")
        previous = _read(marker)
        if previous is not None and not stage.always and \
                previous.get("settings_hash") == fingerprint["settings_hash"]:
            results[stage.name] = previous
            bar.update(round(stage.estimate_s))
            continue
        t0 = time.time()
        # a crashed attempt's half-written output must not block the re-run, unless the stage resumes it
        # under unchanged settings; changed settings always start the stage's output afresh
        same_start = (_read(started) or {}).get("settings_hash") == fingerprint["settings_hash"]
        if stage.output and (previous is not None or not (stage.resumable and same_start)):
            shutil.rmtree(out_dir / stage.output, ignore_errors=True)
        marker.unlink(missing_ok=True)
        _write_json(started, fingerprint)
        if before_each is not None:
            before_each(stage)
        try:
            result = stage.run(out_dir, results)
            result = {"status": "ok", **(result or {}), "seconds": time.time() - t0, **fingerprint}
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
