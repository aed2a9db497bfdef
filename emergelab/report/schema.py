"""The `report.json` contract between `emergelab demo` and the renderer, and `validate_report`.

report.json (paths relative to the report's directory):
    title, profile, created, machine {cpu, threads, torch}, wall_seconds,
    claims: [{id, title, claim, seeds, verdict, summary, numbers, plots, details?, source?,
              rule?: {id, version, doc, url}}],   (rule: the claim's section of docs/verdicts.md)
    model_cards: [{name, params, tokens, flops, train_seconds, tokens_per_s, val_loss, run_dir}],
    s_curves: {pretrain: {flops, loss}, rl: {flops, accuracy}, tts: {flops, accuracy}},
    links: {serve?}
`validate_report` lists what is wrong (it never raises), so the renderer can show problems instead of crashing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emergelab.errors import UserError

# The claims of DESIGN.md's claims table, in its order (grokking, from EXPERIMENTS.md, closes the list).
# A claim in report.json without a title gets this one; a known claim missing from it renders as "not run".
CLAIMS: dict[str, str] = {
    "transformer": "A Transformer: attention, feed-forward and residual blocks trained on next-token prediction",
    "lm": "A language model is P(x_t | x_<t), trained with cross-entropy and judged by perplexity",
    "scaling": "Loss falls as a power law in parameters, data and compute",
    "emergence": "Abilities appear suddenly past a scale threshold",
    "icl": "In-context learning: few-shot beats zero-shot and appears with scale",
    "syllogisms": "Big models reason by form, small ones by content",
    "cot": "Chain of thought is an information bridge for multi-step arithmetic",
    "r1": "The R1 recipe: cold-start SFT, then reasoning RL with rule rewards",
    "r1_zero": "R1-Zero: reasoning and longer chains of thought emerge from pure RL",
    "tts": "Test-time scaling: more thinking tokens or more samples give better answers",
    "distill": "Distilling a bigger model's traces beats RL on a small model",
    "attention": "Attention disambiguates a word by its context",
    "classics": "XOR needs a hidden layer; adversarial directions lie off the data manifold",
    "grokking": "Grokking: generalisation arrives long after memorisation",
}
# docs/verdicts.md: what each means and the rule of every claim
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not run")
TOP_KEYS = ("title", "profile", "created", "machine", "wall_seconds", "claims", "model_cards", "s_curves")
CLAIM_KEYS = ("id", "title", "claim", "verdict", "summary", "numbers", "plots")
CARD_KEYS = ("name", "params", "tokens", "flops", "train_seconds", "tokens_per_s", "val_loss")
S_CURVES = {"pretrain": "loss", "rl": "accuracy", "tts": "accuracy"}  # panel -> its y key (x is always flops)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_report(out_dir: str | Path) -> dict[str, Any]:
    """Read OUT/report.json; a missing or unparseable file is a UserError."""
    path = Path(out_dir) / "report.json"
    if not path.is_file():
        raise UserError(f"{path}: no report.json here — run `emergelab demo --out {out_dir}` first")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e}) — re-run the demo stage that writes it") from e
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a JSON object, got {type(data).__name__}")
    return data


def claim_label(claim: Any, index: int) -> str:
    """How problems name a claim: `claims[scaling]`, or `claims[3]` when it has no id."""
    cid = claim.get("id") if isinstance(claim, dict) else None
    return f"claims[{cid}]" if isinstance(cid, str) and cid else f"claims[{index}]"


def png_problem(path: Path) -> str | None:
    """Why `path` is not a readable PNG file, or None when it is."""
    if not path.is_file():
        return "file is missing"
    with open(path, "rb") as f:
        if f.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
            return "not a PNG (bad signature)"
    try:
        import matplotlib.image

        matplotlib.image.imread(path)  # decodes every pixel, so a truncated file fails here
    except Exception as e:  # any decoder failure means the same thing to the user
        return f"PNG does not decode ({type(e).__name__}: {e})"
    return None


def non_finite(value: Any, where: str) -> Iterator[str]:
    """Paths of every NaN / ±inf float inside a JSON value."""
    if isinstance(value, float) and not math.isfinite(value):
        yield where
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from non_finite(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from non_finite(v, f"{where}[{i}]")


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _claim_problems(claim: Any, label: str, out_dir: Path | None) -> Iterator[str]:
    if not isinstance(claim, dict):
        yield f"{label}: must be an object"
        return
    for key in CLAIM_KEYS:
        if key not in claim:
            yield f"{label}: missing key {key!r}"
    if "verdict" in claim and claim["verdict"] not in VERDICTS:
        yield f"{label}.verdict: unknown verdict {claim['verdict']!r} (one of {', '.join(VERDICTS)})"
    numbers = claim.get("numbers", {})
    if not isinstance(numbers, dict):
        yield f"{label}.numbers: must be an object"
    else:
        yield from (f"{label}.numbers.{k}: no value (null)" for k, v in numbers.items() if v is None)
    plots = claim.get("plots", [])
    if not isinstance(plots, list) or not all(isinstance(p, str) for p in plots):
        yield f"{label}.plots: must be a list of paths"
    elif out_dir is not None:
        for p in plots:
            if Path(p).is_absolute():
                yield f"{label}.plots: {p}: must be relative to the report directory"
            elif (why := png_problem(out_dir / p)) is not None:
                yield f"{label}.plots: {p}: {why}"
    details = claim.get("details", [])
    if not isinstance(details, list) or not all(isinstance(d, dict) and "label" in d for d in details):
        yield f"{label}.details: must be a list of {{label, value}} objects"


def _s_curve_problems(s_curves: Any) -> Iterator[str]:
    if not isinstance(s_curves, dict):
        yield "s_curves: must be an object"
        return
    for panel, ykey in S_CURVES.items():
        curve = s_curves.get(panel)
        if curve is None:
            continue  # a stage that did not run: its panel says so
        xs, ys = (curve.get(k) if isinstance(curve, dict) else None for k in ("flops", ykey))
        if not (isinstance(xs, list) and isinstance(ys, list)):
            yield f"s_curves.{panel}: needs lists 'flops' and {ykey!r}"
        elif len(xs) != len(ys):
            yield f"s_curves.{panel}: 'flops' has {len(xs)} points but {ykey!r} has {len(ys)}"
        elif not all(_is_number(v) for v in xs + ys):
            yield f"s_curves.{panel}: every point must be a number"
        elif any(x <= 0 for x in xs if math.isfinite(x)):
            yield f"s_curves.{panel}.flops: must be positive (the axis is logarithmic)"


def validate_report(data: Any, out_dir: str | Path | None = None) -> list[str]:
    """Every problem with a report.json document; plot files are checked when `out_dir` is given."""
    if not isinstance(data, dict):
        return [f"report: the top level must be an object, got {type(data).__name__}"]
    out = Path(out_dir) if out_dir is not None else None
    problems = [f"report: missing key {k!r}" for k in TOP_KEYS if k not in data]
    claims = data.get("claims", [])
    if not isinstance(claims, list):
        problems.append("claims: must be a list")
        claims = []
    seen: set[str] = set()
    for i, claim in enumerate(claims):
        label = claim_label(claim, i)
        if label in seen:
            problems.append(f"{label}: duplicate claim id")
        seen.add(label)
        problems += _claim_problems(claim, label, out)
        problems += (f"{w}: not a finite number" for w in non_finite(claim, label))
    cards = data.get("model_cards", [])
    if not isinstance(cards, list) or not all(isinstance(c, dict) for c in cards):
        problems.append("model_cards: must be a list of objects")
        cards = []
    for i, card in enumerate(cards):
        label = f"model_cards[{card.get('name', i)}]"
        problems += (f"{label}: missing key {k!r}" for k in CARD_KEYS if k not in card)
        problems += (f"{label}.{k}: must be a number" for k in CARD_KEYS[1:]
                     if k in card and not _is_number(card[k]))
    problems += _s_curve_problems(data.get("s_curves", {}))
    for key in ("wall_seconds", "machine", "model_cards", "s_curves"):
        problems += (f"{w}: not a finite number" for w in non_finite(data.get(key), key))
    return problems
