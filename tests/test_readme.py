"""The README works as written: its quickstart block runs in a fresh directory, and every command line in
its commands table is accepted by the argument parser (so no documented option is misspelled or missing)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emergelab.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def quickstart_commands() -> list[str]:
    block = re.search(r"## Quickstart\n.*?```bash\n(.*?)```", README, re.S)
    assert block, "README has a Quickstart section with a bash block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def table_commands() -> list[str]:
    section = README.split("## Commands", 1)[1].split("\n\n", 2)[1]
    out = []
    for row in section.splitlines()[2:]:
        first_cell = row.split(" | ")[0]
        out += re.findall(r"`(emergelab [^`]+)`", first_cell)
    return out


def as_argv(command: str) -> list[str]:
    """A documented command with its optional [...] parts dropped and the first of `a\\|b` alternatives."""
    command = re.sub(r"\[[^\]]*\]", "", command).replace("\\|", "|")
    argv = shlex.split(command)[1:]
    return [a.split("|")[0] if "|" in a and not a.startswith("-") else a for a in argv]


def test_every_command_in_the_readme_table_parses(tmp_path, monkeypatch):
    parser = build_parser()
    commands = table_commands()
    assert len(commands) >= 25
    monkeypatch.chdir(tmp_path)  # placeholders such as F or CONFIG.yaml exist as files, for options that check
    for command in commands:
        for word in as_argv(command):
            if re.fullmatch(r"[A-Z][A-Z0-9_]*(\.yaml)?", word):
                Path(word).touch()
        try:
            _, extra = parser.parse_known_args(as_argv(command))
        except SystemExit as e:
            pytest.fail(f"README command does not parse: {command!r} (exit {e.code})")
        # the CLI accepts leftovers only as dotted key=value overrides (cli.main)
        assert all("=" in e and not e.startswith("-") for e in extra), (command, extra)


@pytest.mark.slow
def test_quickstart_runs_as_written(tmp_path):
    commands = quickstart_commands()
    assert [c.split()[:2] for c in commands] == [["emergelab", "data"], ["emergelab", "pretrain"],
                                                  ["emergelab", "sample"]]
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EMERGELAB_NO_PROGRESS": "1"}
    outputs = []
    for command in commands:
        argv = [sys.executable, "-m", "emergelab", *shlex.split(command)[1:]]
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (command, proc.stderr[-2000:])
        outputs.append(proc.stdout)
    assert (tmp_path / "data" / "default" / "train.txt").is_file()
    assert (tmp_path / "runs" / "tiny" / "summary.json").is_file()
    assert outputs[-1].startswith("12+34=") and len(outputs[-1].splitlines()[0]) > len("12+34=")
