"""The `emergelab` command line. Each area registers its sub-commands in `cli/<area>.py`."""

from __future__ import annotations

import argparse
import importlib
import sys

from emergelab.errors import UserError

# What `emergelab --help` shows users (the module docstring above is for developers).
USAGE = """\
Train small language models from scratch, post-train them, and measure what the essays claim.

A first run (about a minute on a laptop CPU):
  emergelab data build configs/corpus_default.yaml data/default
  emergelab pretrain configs/pretrain_tiny.yaml --out runs/tiny
  emergelab sample runs/tiny --prompt "12+34="
then `emergelab eval runs/tiny`, `emergelab serve runs/tiny`, or the whole study: `emergelab demo`.
Every command writes or reads a run directory; `emergelab COMMAND --help` documents its options."""

# Modules under emergelab.cli that define `register(subparsers)`.
AREAS: tuple[str, ...] = ("train", "tasks", "science", "rl", "serve", "report", "plot", "demo")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (sub-command parsers inherit it)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} — see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    from emergelab import __version__

    parser = _Parser(prog="emergelab", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"emergelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for area in AREAS:
        importlib.import_module(f"emergelab.cli.{area}").register(sub)
    _add_threads(parser)
    _document(parser)
    return parser


def _add_threads(parser: argparse.ArgumentParser) -> None:
    """Every command takes --threads (torch threads; emergelab/threads.py chooses when it is left out)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_threads(sub)
            return
    if "--threads" not in parser._option_string_actions:
        parser.add_argument("--threads", type=int, default=None,
                            help="torch threads (default: all cores when the machine is idle, else 1)")


def _document(parser: argparse.ArgumentParser) -> None:
    """Every command's --help: its one-line help as description when it has none, and option defaults."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help for a in action._choices_actions}
        for name, sub in action.choices.items():
            sub.description = sub.description or helps.get(name)
            if sub.formatter_class is argparse.HelpFormatter:
                sub.formatter_class = argparse.ArgumentDefaultsHelpFormatter
            _document(sub)


def _choose_threads(threads: int | None) -> None:
    """Torch threads for this command, set before torch is imported (OMP_NUM_THREADS): --threads, else the
    user's own OMP_NUM_THREADS, else emergelab.threads.choose."""
    import os

    from emergelab.threads import choose

    if threads is None and os.environ.get("OMP_NUM_THREADS"):
        return
    n = choose(jobs=1, threads=threads).threads
    if "torch" in sys.modules:
        from emergelab.threads import set_torch_threads

        set_torch_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # dotted key=value overrides may come anywhere on the line (argparse stops collecting
    # positionals at the first option), so commands that take them gather the leftovers here
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        _choose_threads(getattr(args, "threads", None))
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"emergelab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or directory the user named cannot be read or written
        where = f" ({e.filename})" if e.filename else ""
        print(f"emergelab {args.command}: error: {e.strerror or e}{where} — check the path and its permissions",
              file=sys.stderr)
        return 2
    except UnicodeDecodeError as e:
        print(f"emergelab {args.command}: error: an input file is not UTF-8 text (byte {e.start}: {e.reason}) — "
              "save it as UTF-8", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
