"""`emergelab tasks list`, `tasks sample --json` (labels checkable from meta) and `data build`."""

from __future__ import annotations

import json

from conftest import run_cli

ENV = {"OMP_NUM_THREADS": "1"}


def test_tasks_list_names_every_builtin_with_its_options():
    out = run_cli("tasks", "list", env=ENV).stdout
    for name in ("add", "countdown", "syllogism", "lexicon", "labels", "copy", "modular", "analogy"):
        assert f"\n{name} " in "\n" + out
    assert "digits=3" in out and "hops=1" in out


def test_tasks_sample_json_lets_anyone_recheck_labels():
    out = run_cli("tasks", "sample", "add:digits=5", "--n", "20", "--split", "test", "--json", env=ENV).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 20
    for r in rows:
        assert int(r["answer"]) == r["meta"]["a"] + r["meta"]["b"] and r["meta"]["split"] == "test"
    out = run_cli("tasks", "sample", "countdown", "--n", "5", "--json", env=ENV).stdout
    for r in map(json.loads, out.splitlines()):
        assert {"numbers", "target"} <= set(r["meta"]) and r["prompt"].startswith(str(r["meta"]["target"]))
    out = run_cli("tasks", "sample", "syllogism:hops=3", "--n", "5", "--json", env=ENV).stdout
    for r in map(json.loads, out.splitlines()):
        assert all(len(p) == 3 for p in r["meta"]["premises"]) and r["answer"] == r["meta"]["label"]


def test_data_build_writes_corpus_and_reports_user_errors(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("seed: 1\ndocuments: 50\ntasks:\n  - task: add:digits=2\n    cot: 0.5\n")
    out = run_cli("data", "build", str(recipe), str(tmp_path / "c"), env=ENV).stdout
    assert "add:digits=2" in out and (tmp_path / "c" / "manifest.json").is_file()
    bad = run_cli("data", "build", str(tmp_path / "missing.yaml"), str(tmp_path / "d"), check=False, env=ENV)
    assert bad.returncode == 2 and "not found" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli("tasks", "sample", "add:digits=zero", check=False, env=ENV)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
