"""Argument types for the CLI: numbers in range, finite floats, files that are files, output directories.

Used as `type=` in `add_argument`, so a bad value is argparse's one-line error (exit 2) naming the flag,
before any work starts.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path


def int_at_least(low: int) -> Callable[[str], int]:
    """An integer >= `low`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} — it must be at least {low}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def float_in(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Callable[[str], float]:
    """A finite float in [low, high] (ends excluded where `*_open`)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low) or \
                (high_open and value == high):
            lo, hi = "(" if low_open else "[", ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"{text} — give a number in {lo}{low:g}, {high:g}{hi}")
        return value
    parse.__name__ = "number"
    return parse


def temperature(text: str) -> float:
    """A sampling temperature: 0 (greedy) or a finite number in [1e-4, 100] (logits / T overflows below)."""
    from emergelab.model.generate import MIN_TEMPERATURE  # here, not at module level: it imports torch

    value = float_in(0, 100)(text)
    if 0 < value < MIN_TEMPERATURE:
        raise argparse.ArgumentTypeError(f"{text} — use 0 for greedy decoding, or at least {MIN_TEMPERATURE}")
    return value


def ints_at_least(low: int) -> Callable[[str], list[int]]:
    """Comma-separated integers, each >= `low` (e.g. --shots 0,3)."""
    one = int_at_least(low)

    def parse(text: str) -> list[int]:
        values = [one(x.strip()) for x in text.split(",") if x.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"{text!r} — give comma-separated integers, e.g. 0,3")
        return values
    parse.__name__ = "list of integers"
    return parse


def existing_file(text: str) -> Path:
    """A path to a regular file that exists (not a directory)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is a directory — give a file")
    return path


def out_dir(text: str) -> str:
    """A directory to write into: it may not exist yet, but it must not be a file."""
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file — give a directory")
    return text


def add_quant(parser: argparse.ArgumentParser) -> None:
    """The --quant option of the commands that load a model (choices: emergelab.model.quant.QUANT_MODES, kept
    literal here so that building the parser does not import torch)."""
    parser.add_argument("--quant", default="none", choices=["none", "bf16", "int8"],
                        help="weights in fewer bytes: bf16, or int8 weight-only (CPU; faster decoding, small "
                             "accuracy cost)")
