"""Every command's --help renders (argparse formats help strings lazily, so a stray % only fails here)."""

from __future__ import annotations

import pytest

from emergelab.cli import build_parser


def test_top_level_and_every_subcommand_help_renders(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    commands = parser._subparsers._group_actions[0].choices
    assert {"pretrain", "sample", "ppl", "export-hf", "import-hf", "demo"} <= set(commands)
    for name, sub in commands.items():
        assert sub.format_help(), name
    assert "pretrain" in capsys.readouterr().out
