"""Experiment tracking beyond `metrics.jsonl`: TensorBoard or trackio, chosen by one setting, `train.tracker`.

`metrics.jsonl` is always written (every stage and `emergelab plot` read it); a tracker receives the same
records as they are logged:

- `tensorboard`: event files in `RUN/tensorboard/` (`tensorboard --logdir runs/`);
- `trackio`: a local trackio project named after the run's parent directory, one trackio run per
  run directory (`trackio show`); trackio keeps its data locally unless told otherwise.

Both are optional packages: `pip install -r requirements-tracking.txt` (TensorBoard) or
`-r requirements-trackio.txt`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from emergelab.errors import UserError

TRACKERS = ("none", "tensorboard", "trackio")


class Tracker(Protocol):
    def log(self, record: dict) -> None: ...
    def close(self) -> None: ...


def scalars(record: dict) -> dict[str, float]:
    """The numeric entries of a metrics record, `step` excluded (bools are not metrics)."""
    return {k: float(v) for k, v in record.items()
            if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)}


class TensorBoardTracker:
    def __init__(self, run_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise UserError("train.tracker=tensorboard needs the tensorboard package — "
                            "`pip install -r requirements-tracking.txt`, or set train.tracker=none") from e
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, record: dict) -> None:
        for k, v in scalars(record).items():
            self.writer.add_scalar(k, v, record["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class TrackioTracker:
    def __init__(self, run_dir: Path, config: dict | None):
        try:
            import trackio
        except ImportError as e:
            raise UserError("train.tracker=trackio needs the trackio package — "
                            "`pip install -r requirements-trackio.txt`, or set train.tracker=none") from e
        self.trackio = trackio
        project = run_dir.resolve().parent.name or "emergelab"
        trackio.init(project=project, name=run_dir.resolve().name, config=config or {}, resume="allow")

    def log(self, record: dict) -> None:
        self.trackio.log(scalars(record), step=record["step"])

    def close(self) -> None:
        self.trackio.finish()


def open_tracker(kind: str, run_dir: Path, config: dict | None = None) -> Tracker | None:
    """The tracker named by `train.tracker` for `run_dir` (None for "none")."""
    if kind == "none":
        return None
    if kind == "tensorboard":
        return TensorBoardTracker(run_dir)
    if kind == "trackio":
        return TrackioTracker(run_dir, config)
    raise UserError(f"train.tracker={kind!r} must be one of {', '.join(TRACKERS)}")
