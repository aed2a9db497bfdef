"""The `emergelab` command line. Each area registers its sub-commands in `cli/<area>.py`."""

from __future__ import annotations

import argparse
import importlib
import sys

from emergelab.errors import UserError

# Modules under emergelab.cli that define `register(subparsers)`.
AREAS: tuple[str, ...] = ("train", "tasks", "science", "rl", "serve", "report", "demo")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (sub-command parsers inherit it)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} — see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emergelab", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for area in AREAS:
        importlib.import_module(f"emergelab.cli.{area}").register(sub)
    return parser


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
