"""Experiment tracking beyond `metrics.jsonl`: TensorBoard or trackio, chosen by one setting, `train.tracker`
(`rl.tracker` for GRPO runs).

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
    def __init__(self, run_dir: Path, setting: str = "train.tracker"):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise UserError(f"{setting}=tensorboard needs the tensorboard package — "
                            f"`pip install -r requirements-tracking.txt`, or set {setting}=none") from e
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, record: dict) -> None:
        for k, v in scalars(record).items():
            self.writer.add_scalar(k, v, record["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class TrackioTracker:
    def __init__(self, run_dir: Path, config: dict | None, setting: str = "train.tracker"):
        try:
            import trackio
        except ImportError as e:
            raise UserError(f"{setting}=trackio needs the trackio package — "
                            f"`pip install -r requirements-trackio.txt`, or set {setting}=none") from e
        self.trackio = trackio
        project = run_dir.resolve().parent.name or "emergelab"
        trackio.init(project=project, name=run_dir.resolve().name, config=config or {}, resume="allow")

    def log(self, record: dict) -> None:
        self.trackio.log(scalars(record), step=record["step"])

    def close(self) -> None:
        self.trackio.finish()


def check_tracker(kind: str, setting: str = "train.tracker") -> None:
    """One clear UserError naming `setting` when `kind` is not a tracker (config validation)."""
    if kind not in TRACKERS:
        raise UserError(f"{setting}={kind!r} must be {', '.join(TRACKERS[:-1])} or {TRACKERS[-1]}")


def open_tracker(kind: str, run_dir: Path, config: dict | None = None,
                 setting: str = "train.tracker") -> Tracker | None:
    """The tracker named by `setting` (`train.tracker`, `rl.tracker`) for `run_dir` (None for "none")."""
    check_tracker(kind, setting)
    if kind == "tensorboard":
        return TensorBoardTracker(run_dir, setting)
    if kind == "trackio":
        return TrackioTracker(run_dir, config, setting)
    return None
