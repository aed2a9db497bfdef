"""`emergelab plot RUN [RUN ...]`: each run's metrics.jsonl read into curves (checked by hand), one PNG written."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import pytest

from emergelab.cli import main as cli_main
from emergelab.errors import UserError
from emergelab.report.run_curves import read_curves, run_labels


def fake_run(path, rows):
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 9, "lo')
    return path


def test_plot_of_two_runs_writes_one_png_with_their_curves(tmp_path):
    a = fake_run(tmp_path / "a" / "run", [{"step": 10, "loss": 3.0, "tokens": 100},
                                          {"step": 20, "loss": 2.0, "tokens": 200, "val_loss": 2.5}])
    b = fake_run(tmp_path / "b" / "run", [{"step": 10, "loss": 2.8, "tokens": 400}])
    assert read_curves(a) == {"loss": [(10.0, 3.0), (20.0, 2.0)], "val_loss": [(20.0, 2.5)]}
    assert read_curves(b, "tokens")["loss"] == [(400.0, 2.8)]
    assert run_labels([a, b]) == ["a/run", "b/run"]
    out = tmp_path / "curves.png"
    assert cli_main(["plot", str(a), str(b), "--out", str(out), "--x", "tokens"]) == 0
    image = mpimg.imread(out)
    assert image.shape[0] > 100 and image.shape[1] > 200


def test_plot_names_a_directory_without_metrics(tmp_path):
    with pytest.raises(UserError, match="metrics.jsonl not found"):
        read_curves(tmp_path)
