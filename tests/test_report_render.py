"""report.html: a synthetic report.json with real matplotlib plots renders to one self-contained, escaped page
organised by the claims table; validate_report names every NaN, missing or broken plot and unknown verdict."""

from __future__ import annotations

import base64
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from emergelab.cli import main  # noqa: E402
from emergelab.report import render_report, validate_report  # noqa: E402
from emergelab.report.figures import curve_points  # noqa: E402

# DESIGN.md's claims table order, written out by hand (the renderer must follow it, whatever the input order)
DESIGN_ORDER = ["transformer", "lm", "scaling", "emergence", "icl", "syllogisms", "cot", "r1", "r1_zero", "tts",
                "distill", "attention", "classics", "grokking"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What a browser would see: section ids in order, image sources, every tag name, text per section."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.tags: set[str] = set()
        self.text: dict[str, str] = {"": ""}
        self._section = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self._section = attrs["id"]
            self.sections.append(self._section)
            self.text[self._section] = ""
        if tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = ""

    def handle_data(self, data):
        self.text[self._section] += data


def _plot(path: Path, ys: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(ys)
    fig.savefig(path, dpi=50)
    plt.close(fig)


def _claim(cid: str, verdict: str, **extra) -> dict:
    return {"id": cid, "title": f"title of {cid}", "claim": f"claim text of {cid}", "seeds": ["004"],
            "verdict": verdict, "summary": f"summary of {cid}", "numbers": {}, "plots": [], **extra}


def _write(out: Path, doc: dict) -> None:
    (out / "report.json").write_text(json.dumps(doc))  # json.dumps writes NaN as NaN, as the demo would


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    """A valid report: claims out of order, one unknown id, two real plots, a model card, two S-curve panels."""
    _plot(tmp_path / "scaling" / "fit.png", [3.0, 2.0, 1.5])
    _plot(tmp_path / "emergence" / "add.png", [0.0, 0.0, 0.9])
    doc = {
        "title": "emergelab quick report", "profile": "quick", "created": "2026-11-28T10:00:00+00:00",
        "machine": {"cpu": "x86_64", "threads": 2, "torch": "2.13.0"}, "wall_seconds": 1234.5,
        "claims": [
            _claim("emergence", "not reproduced", plots=["emergence/add.png"], numbers={"breakpoint": 1.2e6},
                   rule={"id": "emergence", "version": 1, "doc": "docs/verdicts.md#emergence"}),
            _claim("my_extra", "inconclusive"),
            _claim("scaling", "reproduced", plots=["scaling/fit.png"], source="scaling/fit.json",
                   numbers={"alpha": 0.12, "alpha_ci": [0.08, 0.16], "points": 5},
                   details=[{"label": "law", "value": "power"}]),
            _claim("lm", "not run"),
        ],
        "model_cards": [{"name": "m-400k", "params": 412345, "tokens": 2000000, "flops": 4.9e12, "train_seconds": 61.0,
                         "tokens_per_s": 32787.0, "val_loss": 1.87, "run_dir": "sweep/runs/m-400k"}],
        "s_curves": {"pretrain": {"flops": [1e10, 1e11, 1e12], "loss": [3.5, 2.6, 2.1]},
                     "rl": {"flops": [1e9, 2e9, 4e9], "accuracy": [0.29, 0.5, 0.82]}},
    }
    _write(tmp_path, doc)
    return tmp_path


def test_page_has_every_claim_in_the_claims_table_order_then_unknown_ids(report_dir):
    page = Page(render_report(report_dir).read_text())
    assert page.sections == [f"claim-{c}" for c in [*DESIGN_ORDER, "my_extra"]]
    assert "reproduced" in page.text["claim-scaling"]
    assert "not reproduced" in page.text["claim-emergence"]
    assert "docs/verdicts.md#emergence" in page.text["claim-emergence"]  # the verdict links to its rule
    assert "not run" in page.text["claim-lm"]
    assert "inconclusive" in page.text["claim-my_extra"]
    assert "not run" in page.text["claim-grokking"]  # known claim absent from report.json
    assert "summary of scaling" in page.text["claim-scaling"] and "claim text of scaling" in page.text["claim-scaling"]


def test_numbers_show_intervals_beside_their_estimate(report_dir):
    text = Page(render_report(report_dir).read_text()).text["claim-scaling"]
    assert "0.12 [0.08, 0.16]" in text
    assert "alpha_ci" not in text  # merged into the alpha row
    assert "law" in text and "power" in text and "scaling/fit.json" in text


def test_plots_are_inlined_as_the_png_files_bytes(report_dir):
    page = Page(render_report(report_dir).read_text())
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    decoded = [base64.b64decode(src.split(",", 1)[1]) for src in page.images]
    assert all(d.startswith(PNG_SIGNATURE) for d in decoded)
    on_disk = {(report_dir / p).read_bytes() for p in ("scaling/fit.png", "emergence/add.png", "s_curves.png")}
    assert set(decoded) == on_disk
    assert not page.tags & {"link", "script"}  # self-contained: nothing fetched from elsewhere


def test_three_s_curves_figure_is_written_as_png_and_svg(report_dir):
    render_report(report_dir)
    image = matplotlib.image.imread(report_dir / "s_curves.png")
    assert image.shape[1] > 2.5 * image.shape[0]  # three panels side by side
    assert (report_dir / "s_curves.svg").read_text().lstrip().startswith("<?xml")


def test_s_curve_points_drop_what_a_log_axis_cannot_show_and_sort_by_flops():
    curve = {"flops": [1e3, 0.0, 1e2, float("nan"), 1e4], "accuracy": [0.5, 0.1, 0.2, 0.3, float("inf")]}
    assert curve_points(curve, "accuracy") == [(1e2, 0.2), (1e3, 0.5)]
    assert curve_points(None, "loss") == [] and curve_points({"flops": [1.0]}, "loss") == []


def test_model_card_table_lists_each_run(report_dir):
    text = Page(render_report(report_dir).read_text()).text[""]
    assert "m-400k" in text and "sweep/runs/m-400k" in text
    assert "412,345" in text and "4.9e+12" in text and "32,787" in text and "1.87" in text


def test_claim_text_is_escaped(report_dir):
    doc = json.loads((report_dir / "report.json").read_text())
    doc["claims"][0]["claim"] = "<script>alert('x')</script> & <b>bold</b>"
    _write(report_dir, doc)
    html = render_report(report_dir).read_text()
    page = Page(html)
    assert "script" not in page.tags and "b" not in page.tags
    assert "<script>alert('x')</script> & <b>bold</b>" in page.text["claim-emergence"]


def test_valid_report_has_no_problems(report_dir):
    assert validate_report(json.loads((report_dir / "report.json").read_text()), report_dir) == []


def test_validate_names_nan_missing_plot_broken_png_and_unknown_verdict(report_dir):
    doc = json.loads((report_dir / "report.json").read_text())
    png = (report_dir / "scaling" / "fit.png").read_bytes()
    (report_dir / "truncated.png").write_bytes(png[: len(png) // 2])
    (report_dir / "fake.png").write_text("<svg></svg>")
    doc["claims"][2]["numbers"]["alpha"] = math.nan
    doc["claims"][2]["plots"] += ["gone.png", "truncated.png", "fake.png"]
    doc["claims"][0]["verdict"] = "emerged"
    doc["model_cards"][0]["val_loss"] = math.inf
    del doc["claims"][3]["summary"]
    problems = validate_report(doc, report_dir)
    expected = ["claims[scaling].numbers.alpha: not a finite number",
                "claims[scaling].plots: gone.png: file is missing",
                "claims[scaling].plots: fake.png: not a PNG",
                "claims[scaling].plots: truncated.png: PNG does not decode",
                "claims[emergence].verdict: unknown verdict 'emerged'",
                "model_cards[0].val_loss: not a finite number",
                "claims[lm]: missing key 'summary'"]
    for e in expected:
        assert any(p.startswith(e) for p in problems), (e, problems)
    assert len(problems) == len(expected)


def test_nan_renders_as_na_and_is_listed_in_the_warning_box(report_dir):
    doc = json.loads((report_dir / "report.json").read_text())
    doc["claims"][2]["numbers"]["points"] = math.nan
    _write(report_dir, doc)
    page = Page(render_report(report_dir).read_text())
    assert "n/a" in page.text["claim-scaling"]
    assert "claims[scaling].numbers.points: not a finite number" in page.text[""]


def test_minimal_report_renders_every_claim_as_not_run(tmp_path):
    _write(tmp_path, {"title": "empty"})
    page = Page(render_report(tmp_path).read_text())
    assert page.sections == [f"claim-{c}" for c in DESIGN_ORDER]
    assert all("not run" in page.text[s] for s in page.sections)
    assert "missing key 'claims'" in page.text[""]


def test_cli_renders_and_exits_2_on_problems(report_dir, tmp_path_factory, capsys):
    assert main(["report", str(report_dir)]) == 0
    assert (report_dir / "report.html").is_file()
    doc = json.loads((report_dir / "report.json").read_text())
    doc["claims"][0]["verdict"] = "emerged"
    _write(report_dir, doc)
    assert main(["report", str(report_dir)]) == 2
    assert "unknown verdict 'emerged'" in capsys.readouterr().err
    broken = tmp_path_factory.mktemp("broken")
    (broken / "report.json").write_text("{not json")
    assert main(["report", str(broken)]) == 2
    assert main(["report", str(tmp_path_factory.mktemp("empty"))]) == 2
    assert "no report.json" in capsys.readouterr().err
