"""A new user's view of the command line: --version, a top-level help that shows a first run, and every
command and option documented (descriptions, defaults)."""

from __future__ import annotations

import argparse

import pytest

from emergelab import __version__
from emergelab.cli import build_parser, main


def commands(parser: argparse.ArgumentParser, prefix: str = "emergelab"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from commands(sub, f"{prefix} {name}")


def test_version_and_top_level_help_show_a_first_run(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"emergelab {__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "emergelab pretrain configs/pretrain_tiny.yaml" in out and "cli/<area>.py" not in out


def test_every_command_has_a_description_and_every_option_a_help_text():
    missing = []
    for name, sub in commands(build_parser()):
        if not sub.description:
            missing.append(f"{name}: description")
        for a in sub._actions:
            if not a.help and not isinstance(a, argparse._HelpAction | argparse._SubParsersAction):
                missing.append(f"{name}: {a.option_strings or a.dest}")
    assert not missing, missing


def test_option_help_shows_defaults():
    sample = dict(commands(build_parser()))["emergelab sample"].format_help()
    assert "(default: 0.0)" in sample and "greedy" in sample and "(default: 64)" in sample
