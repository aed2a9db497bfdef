"""Render OUT/report.json into one self-contained OUT/report.html (inline CSS, PNGs as base64 data URIs).

The page follows DESIGN.md's claims table: a scoreboard of verdicts, the three S-curves, one section per
claim (claim text, verdict, summary, numbers with intervals, plots), then the model cards. Whatever is
missing renders as "not run"; whatever `validate_report` finds wrong is listed in a warning box at the top.
All report text is escaped: it may quote model outputs.
"""

from __future__ import annotations

import base64
import math
import os
from html import escape
from pathlib import Path
from typing import Any

from emergelab.report.figures import plot_s_curves
from emergelab.report.schema import CLAIMS, load_report, png_problem, validate_report

VERDICT_COLOURS = {  # verdict -> badge background
    "reproduced": "#2e7d32",
    "inconclusive": "#b26a00",
    "not reproduced": "#6d4c41",
    "not run": "#9e9e9e",
}
CARD_COLUMNS = [("name", "model"), ("params", "params"), ("tokens", "tokens"), ("flops", "FLOPs"),
                ("train_seconds", "train time (s)"), ("tokens_per_s", "tokens/s"), ("val_loss", "val loss"),
                ("run_dir", "run directory")]
CSS = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.meta { color: #666; } .claim-text { font-style: italic; color: #444; }
.badge { display: inline-block; padding: 0.1em 0.6em; border-radius: 1em; color: #fff; font-size: 0.85em; }
table { border-collapse: collapse; margin: 0.8em 0; } td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; }
th { background: #f5f5f5; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.na { color: #c62828; font-weight: bold; }
.warnings { background: #fff4e5; border: 1px solid #ffb74d; padding: 0.5em 1em; border-radius: 4px; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #666; font-size: 0.85em; } .missing { color: #c62828; }
"""


def fmt(value: Any) -> str:
    """A JSON value as short plain text: ints with separators, 4 significant digits, [lo, hi] intervals."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1e6 or 0 < abs(value) < 1e-3:
            return f"{value:.3g}"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"
    if isinstance(value, list):
        shown = ", ".join(fmt(v) for v in value[:8]) + (", …" if len(value) > 8 else "")
        return f"[{shown}]"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    return str(value)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _cell(value: Any, text: str | None = None) -> str:
    """A numeric table cell, flagged red when it holds a missing or non-finite number."""
    cls = "num na" if _has_non_finite(value) else "num"
    return f'<td class="{cls}">{escape(fmt(value) if text is None else text)}</td>'


def _badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#c62828")
    return f'<span class="badge" style="background:{colour}">{escape(verdict)}</span>'


def ordered_claims(claims: Any) -> list[dict[str, Any]]:
    """Claims in the order of the claims table; a known claim that is absent becomes a "not run" stub;
    claims with unknown ids follow, in their given order."""
    given = [c for c in claims if isinstance(c, dict)] if isinstance(claims, list) else []
    by_id = {c.get("id"): c for c in given}
    known = [by_id.get(cid) or {"id": cid, "verdict": "not run"} for cid in CLAIMS]
    return known + [c for c in given if c.get("id") not in CLAIMS]


def _numbers_table(numbers: Any, details: Any) -> str:
    rows = []
    if isinstance(numbers, dict):
        for key, value in numbers.items():
            if key.endswith("_ci") and key[:-3] in numbers:
                continue  # shown beside its estimate
            ci = numbers.get(f"{key}_ci")
            cell = _cell(value) if ci is None else _cell([value, ci], f"{fmt(value)} {fmt(ci)}")
            rows.append(f"<tr><th>{escape(str(key))}</th>{cell}</tr>")
    if isinstance(details, list):
        rows += [f"<tr><th>{escape(str(d.get('label')))}</th>{_cell(d.get('value'))}</tr>"
                 for d in details if isinstance(d, dict)]
    return f"<table>{''.join(rows)}</table>" if rows else ""


def _image(out_dir: Path, rel: str) -> str:
    """A <figure> with the PNG inlined, or a visible note when the file is missing or unreadable."""
    path = out_dir / rel
    why = "must be relative to the report directory" if Path(rel).is_absolute() else png_problem(path)
    if why is not None:
        return f'<p class="missing">plot {escape(rel)}: {escape(why)}</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(rel)}">'
            f"<figcaption>{escape(rel)}</figcaption></figure>")


def _names(claim: dict[str, Any]) -> tuple[str, str, str]:
    """(id, verdict, title) of a claim, with "not run" and the claims-table title filling the gaps."""
    cid = str(claim.get("id") or "unnamed")
    verdict = claim.get("verdict") if isinstance(claim.get("verdict"), str) else "not run"
    return cid, verdict, str(claim.get("title") or CLAIMS.get(cid, cid))


def _claim_section(claim: dict[str, Any], out_dir: Path) -> str:
    cid, verdict, title = _names(claim)
    parts = [f'<section id="claim-{escape(cid)}">', f"<h2>{escape(title)} {_badge(verdict)}</h2>"]
    if claim.get("claim"):
        parts.append(f'<p class="claim-text">Claim: {escape(str(claim["claim"]))}</p>')
    if claim.get("seeds"):
        seeds = claim["seeds"] if isinstance(claim["seeds"], list) else [claim["seeds"]]
        parts.append(f'<p class="meta">essays: {escape(", ".join(map(str, seeds)))}</p>')
    if claim.get("summary"):
        parts.append(f"<p>{escape(str(claim['summary']))}</p>")
    else:
        parts.append(f'<p class="meta">{"Not measured in this run." if verdict == "not run" else "No summary."}</p>')
    parts.append(_numbers_table(claim.get("numbers"), claim.get("details")))
    plots = claim.get("plots")
    if isinstance(plots, list):
        parts += [_image(out_dir, p) for p in plots if isinstance(p, str)]
    if claim.get("source"):
        parts.append(f'<p class="meta">numbers from <code>{escape(str(claim["source"]))}</code></p>')
    rule = claim.get("rule")
    if isinstance(rule, dict) and rule.get("doc"):
        href = str(rule.get("url") or rule["doc"])
        parts.append(f'<p class="meta">verdict rule (v{escape(str(rule.get("version", "?")))}): '
                     f'<a href="{escape(href)}">{escape(str(rule["doc"]))}</a></p>')
    return "\n".join([*parts, "</section>"])


def _scoreboard(claims: list[dict[str, Any]]) -> str:
    rows = []
    for claim in claims:
        cid, verdict, title = _names(claim)
        rows.append(f'<tr><td><a href="#claim-{escape(cid)}">{escape(title)}</a></td><td>{_badge(verdict)}</td></tr>')
    return f"<h2>Verdicts</h2><table><tr><th>claim</th><th>verdict</th></tr>{''.join(rows)}</table>"


def _model_cards(cards: Any) -> str:
    cards = [c for c in cards if isinstance(c, dict)] if isinstance(cards, list) else []
    if not cards:
        return "<h2>Model cards</h2><p class=\"meta\">not run</p>"
    head = "".join(f"<th>{escape(label)}</th>" for _, label in CARD_COLUMNS)
    rows = []
    for card in cards:
        cells = [f"<td>{escape(str(card.get(key, '')))}</td>" if key in ("name", "run_dir") else _cell(card.get(key))
                 for key, _ in CARD_COLUMNS]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    body = "".join(rows)
    return f'<h2 id="model-cards">Model cards</h2><table><tr>{head}</tr>{body}</table>'


def _header(data: dict[str, Any]) -> str:
    machine = data.get("machine") if isinstance(data.get("machine"), dict) else {}
    facts = [f"profile {data.get('profile', '?')}", f"created {data.get('created', '?')}",
             f"{machine.get('cpu', '?')}, {machine.get('threads', '?')} threads, torch {machine.get('torch', '?')}"]
    wall = data.get("wall_seconds")
    if isinstance(wall, int | float) and math.isfinite(wall):
        facts.append(f"wall time {int(wall) // 60} min {int(wall) % 60} s")
    links = data.get("links") if isinstance(data.get("links"), dict) else {}
    serve = links.get("serve")
    if isinstance(serve, str) and serve.startswith(("http://", "https://")):  # no javascript: URLs
        facts.append(f'<a href="{escape(serve)}">live model ({escape(serve)})</a>')
    shown = [f if f.startswith("<a ") else escape(f) for f in facts]
    return f"<h1>{escape(str(data.get('title', 'emergelab report')))}</h1><p class=\"meta\">{' · '.join(shown)}</p>"


def _warnings(problems: list[str]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{escape(p)}</li>" for p in problems)
    return f'<div class="warnings"><strong>{len(problems)} problem(s) with this report:</strong><ul>{items}</ul></div>'


def render_report(out_dir: str | Path) -> Path:
    """Write OUT/report.html (and OUT/s_curves.png/.svg) from OUT/report.json; return the HTML path."""
    out = Path(out_dir)
    data = load_report(out)
    problems = validate_report(data, out)
    s_curves = data.get("s_curves") if isinstance(data.get("s_curves"), dict) else {}
    plot_s_curves(s_curves, out / "s_curves")
    claims = ordered_claims(data.get("claims"))
    body = [
        _header(data),
        _warnings(problems),
        _scoreboard(claims),
        '<h2 id="s-curves">Three S-curves on one compute axis</h2>',
        _image(out, "s_curves.png"),
        *(_claim_section(c, out) for c in claims),
        _model_cards(data.get("model_cards")),
    ]
    title = escape(str(data.get("title", "emergelab report")))
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    path = out / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a report
    return path
