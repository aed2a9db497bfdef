"""The demo's stage runner: finished stages are skipped, failures are recorded without losing others' results."""

from __future__ import annotations

import json

from emergelab.demo.stages import Stage, run_stages


def test_finished_stages_are_skipped_and_failed_ones_retried(tmp_path):
    calls = []

    def ok(name):
        def run(out, results):
            calls.append(name)
            (out / name).mkdir(exist_ok=True)
            return {"value": len(results)}
        return run

    state = {"fail": True}

    def flaky(out, results):
        calls.append("flaky")
        (out / "flaky").mkdir(exist_ok=True)
        (out / "flaky" / "partial.txt").write_text("half-written")
        if state["fail"]:
            raise RuntimeError("boom")
        assert not (out / "flaky" / "stale.txt").exists()  # the crashed attempt's output was wiped
        return {}

    def stages():
        return [Stage("a", ok("a"), 1), Stage("flaky", flaky, 1, output="flaky"), Stage("c", ok("c"), 1),
                Stage("report", ok("report"), 1, always=True)]

    first = run_stages(stages(), tmp_path, progress=False)
    assert first["flaky"]["status"] == "failed" and "boom" in first["flaky"]["error"]
    assert first["c"]["status"] == "ok"  # a failure does not stop later stages
    assert (tmp_path / "stages" / "flaky.failed.json").exists()
    assert not (tmp_path / "stages" / "flaky.json").exists()
    (tmp_path / "flaky" / "stale.txt").write_text("left by the crash")

    calls.clear()
    state["fail"] = False
    second = run_stages(stages(), tmp_path, progress=False)
    assert calls == ["flaky", "report"]  # a and c were finished; report always re-runs
    assert second["a"] == first["a"]
    assert json.loads((tmp_path / "stages" / "flaky.json").read_text())["status"] == "ok"
