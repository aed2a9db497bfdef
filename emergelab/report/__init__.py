"""Plots and the self-contained HTML report: `render_report(out_dir)`, `validate_report(data, out_dir)`."""

from emergelab.report.html import render_report
from emergelab.report.schema import CLAIMS, VERDICTS, load_report, validate_report

__all__ = ["CLAIMS", "VERDICTS", "load_report", "render_report", "validate_report"]
