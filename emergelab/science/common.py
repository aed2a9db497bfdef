"""Helpers shared by the experiments: thread limits, verdict files, progress bars."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import torch


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` intra-op threads (None: leave as is), then restore the previous setting.

    Small models are overhead-bound: on a busy 2-core machine one thread was ~15× faster than two for
    a 64-wide MLP (thread wake-ups dominate), so the experiments default to one."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def write_verdicts(out_dir: str | Path, verdicts: dict) -> Path:
    """Write `verdicts.json` (the file the report renders) into `out_dir`."""
    path = Path(out_dir) / "verdicts.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdicts, indent=1, default=float))
    return path


def progress(iterable, total: int | None = None, desc: str = ""):
    """A tqdm bar on a TTY unless EMERGELAB_NO_PROGRESS=1; the bare iterable otherwise."""
    if os.environ.get("EMERGELAB_NO_PROGRESS") == "1" or not sys.stderr.isatty():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)
