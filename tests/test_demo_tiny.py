"""End to end: a clean clone, the README's first command with the tiny profile, and a valid report."""

from __future__ import annotations

import json
import math
import os
import subprocess

import pytest
from conftest import REPO

from emergelab.report.schema import CLAIMS, png_problem, validate_report


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        yield obj


@pytest.mark.slow
def test_tiny_profile_from_a_clean_clone_writes_a_complete_report(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {**os.environ, "EMERGELAB_NO_PROGRESS": "1"}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(["make", "demo", "PROFILE=tiny", "OUT=out"], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = clone / "out"
    report = json.loads((out / "report.json").read_text())
    assert [c["id"] for c in report["claims"]] == list(CLAIMS)  # every claim section, in the claims-table order
    assert validate_report(report, out) == []
    assert all(math.isfinite(x) for x in _numbers(report))
    plots = [p for c in report["claims"] for p in c["plots"]] + ["s_curves.png"]
    assert plots and all(png_problem(out / p) is None for p in plots)
    html = (out / "report.html").read_text()
    assert all(f'id="{cid}"' in html or cid in html for cid in CLAIMS)

    # the verdicts re-derive from the files alone (no in-memory state of the run that wrote them)
    from emergelab.demo.report_data import build_report

    results = {p.stem: json.loads(p.read_text()) for p in (out / "stages").glob("*.json")
               if not p.stem.endswith(".failed")}
    (out / "report.json").unlink()
    again = build_report(out, "tiny", results)
    assert again["verdicts"] == {c["id"]: c["verdict"] for c in report["claims"]}
