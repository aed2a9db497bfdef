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


def _counting_stage(calls, name="sweep", resumable=False, fail=None):
    def run(out, results):
        calls.append(name)
        (out / name).mkdir(exist_ok=True)
        (out / name / f"part{len(calls)}").write_text("x")
        if fail and fail["on"]:
            raise RuntimeError("killed")
        return {"files": sorted(p.name for p in (out / name).iterdir())}
    return Stage(name, run, 1, output=name, resumable=resumable)


def test_a_stage_finished_under_one_profile_is_not_reused_under_another(tmp_path):
    import pytest

    from emergelab.errors import UserError

    calls = []
    run_stages([_counting_stage(calls)], tmp_path, progress=False, profile="tiny", settings={"sizes": [1]})
    with pytest.raises(UserError, match=rf"--out {tmp_path}.*profile tiny.*not quick"):
        run_stages([_counting_stage(calls)], tmp_path, progress=False, profile="quick", settings={"sizes": [1, 2]})
    assert calls == ["sweep"]  # refused before anything ran
    marker = json.loads((tmp_path / "stages" / "sweep.json").read_text())
    assert marker["profile"] == "tiny" and len(marker["settings_hash"]) == 16


def test_changed_settings_rerun_a_stage_from_scratch_and_unchanged_ones_reuse_it(tmp_path):
    calls = []
    run_stages([_counting_stage(calls)], tmp_path, progress=False, profile="quick", settings={"steps": 10})
    run_stages([_counting_stage(calls)], tmp_path, progress=False, profile="quick", settings={"steps": 10})
    assert calls == ["sweep"]
    again = run_stages([_counting_stage(calls)], tmp_path, progress=False, profile="quick", settings={"steps": 20})
    assert calls == ["sweep", "sweep"]
    assert again["sweep"]["files"] == ["part2"]  # the old settings' output was wiped first


def test_a_resumable_stage_keeps_its_half_done_output_only_under_the_same_settings(tmp_path):
    calls, fail = [], {"on": True}
    stage = lambda: _counting_stage(calls, resumable=True, fail=fail)  # noqa: E731
    run_stages([stage()], tmp_path, progress=False, profile="quick", settings={"steps": 10})  # crashes
    fail["on"] = False
    resumed = run_stages([stage()], tmp_path, progress=False, profile="quick", settings={"steps": 10})
    assert resumed["sweep"]["files"] == ["part1", "part2"]  # resumed over the crashed attempt's files
    fail["on"] = True
    (tmp_path / "stages" / "sweep.json").unlink()
    run_stages([stage()], tmp_path, progress=False, profile="quick", settings={"steps": 10})  # crashes again
    fail["on"] = False
    fresh = run_stages([stage()], tmp_path, progress=False, profile="quick", settings={"steps": 30})
    assert fresh["sweep"]["files"] == ["part4"]  # started under other settings: not resumed


def test_a_late_stage_change_leaves_earlier_stages_alone_and_an_early_change_reruns_later_ones(tmp_path):
    calls = []

    def stages(sweep_settings, late_settings):
        return [Stage("sweep", lambda o, r: calls.append("sweep") or {}, 1, settings=sweep_settings),
                Stage("late", lambda o, r: calls.append("late") or {}, 1, settings=late_settings)]

    run_stages(stages({"steps": 10}, {"n": 1}), tmp_path, progress=False, profile="quick")
    run_stages(stages({"steps": 10}, {"n": 2}), tmp_path, progress=False, profile="quick")
    assert calls == ["sweep", "late", "late"]
    run_stages(stages({"steps": 20}, {"n": 2}), tmp_path, progress=False, profile="quick")
    assert calls == ["sweep", "late", "late", "sweep", "late"]
