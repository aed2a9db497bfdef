"""The corpus builder (`emergelab data build RECIPE.yaml OUT`): task text mixed into a pretraining corpus.

A recipe (YAML) lists tasks with how many documents each contributes and in which formats:

    seed: 0
    documents: 20000              # split by `weight` among tasks without their own `documents`
    val_fraction: 0.05            # share of each task's documents written to val.txt
    tasks:
      - task: add:digits=6
        weight: 1
        cot: 0.3                  # share of documents with a worked solution (<think>...</think>)
        self_correct: 0.05        # share whose worked solution makes a wrong step, checks, corrects
        lines: 1                  # solved examples per document: an int or [min, max]
      - task: lexicon
        weight: 0.2
        lines: [2, 8]             # k-shot episodes: demonstrations share the episode (ICL)
    text:                         # optional natural text; paragraphs (blank-line separated) = documents
      - path: notes.txt

Output: OUT/train.txt and OUT/val.txt (documents, each ending with "<eos>"; every example is one
line ending in "\\n"), and OUT/manifest.json (counts per task and format, shares, alphabet,
sha256 of each file, the seed). Only train-split items are used, so eval's test items never occur
in the corpus. The same recipe and seed give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from emergelab.errors import UserError
from emergelab.tasks.base import EOS
from emergelab.tasks.registry import get_task

SPECIAL_TEXT = ("<think>", "</think>", "<answer>", "</answer>", "<eos>")
TASK_KEYS = {"task", "weight", "documents", "cot", "self_correct", "lines"}


def load_recipe(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"recipe: {path} not found — give a corpus recipe YAML (see configs/corpus_default.yaml)")
    recipe = yaml.safe_load(p.read_text()) or {}
    if not isinstance(recipe, dict):
        raise UserError(f"recipe: {path} must be a YAML mapping with a `tasks` list")
    return recipe


def _lines_range(entry: dict[str, Any]) -> tuple[int, int]:
    lines = entry.get("lines", 1)
    lo, hi = (lines, lines) if isinstance(lines, int) else tuple(lines)
    if not 1 <= lo <= hi <= 64:
        raise UserError(f"tasks[{entry['task']}].lines: {lines!r} must be an int or [min, max] in 1..64")
    return lo, hi


def _task_counts(recipe: dict[str, Any]) -> list[int]:
    """Documents per task: an entry's own `documents`, else its `weight`'s share of the top-level
    `documents` (shared among the entries without their own count)."""
    entries = recipe["tasks"]
    weighted = [e for e in entries if "documents" not in e]
    if not weighted:
        return [int(e["documents"]) for e in entries]
    total = recipe.get("documents")
    if total is None:
        raise UserError("documents: give a total `documents` with per-task `weight`s, or `documents` per task")
    weights = [float(e.get("weight", 1.0)) for e in weighted]
    if min(weights) < 0 or sum(weights) <= 0:
        raise UserError("tasks[].weight: weights must be non-negative and not all zero")
    share = {id(e): round(int(total) * w / sum(weights)) for e, w in zip(weighted, weights)}
    return [int(e["documents"]) if "documents" in e else share[id(e)] for e in entries]


def _validate(recipe: dict[str, Any]) -> None:
    unknown = set(recipe) - {"seed", "documents", "val_fraction", "tasks", "text", "name", "description"}
    if unknown:
        raise UserError(f"recipe: unknown key(s) {', '.join(sorted(unknown))} — allowed: seed, documents, "
                        f"val_fraction, tasks, text")
    if not recipe.get("tasks") and not recipe.get("text"):
        raise UserError("recipe: needs a non-empty `tasks` list (or `text` files)")
    for e in recipe.get("tasks") or []:
        if not isinstance(e, dict) or "task" not in e:
            raise UserError("tasks[]: each entry needs `task: SPEC` (e.g. task: add:digits=3)")
        if set(e) - TASK_KEYS:
            raise UserError(f"tasks[{e['task']}]: unknown key(s) {', '.join(sorted(set(e) - TASK_KEYS))} — "
                            f"allowed: {', '.join(sorted(TASK_KEYS))}")
        cot, sc = float(e.get("cot", 0.0)), float(e.get("self_correct", 0.0))
        if not (0 <= cot and 0 <= sc and cot + sc <= 1):
            raise UserError(f"tasks[{e['task']}]: cot and self_correct must be >= 0 with cot + self_correct <= 1")
    if not 0 <= float(recipe.get("val_fraction", 0.05)) < 1:
        raise UserError("val_fraction: must be in [0, 1)")


def _task_documents(entry: dict[str, Any], n: int, seed: int) -> tuple[list[str], dict[str, int]]:
    """n documents of one task, and how many used each format."""
    task = get_task(entry["task"])
    lo, hi = _lines_range(entry)
    cot_share, sc_share = float(entry.get("cot", 0.0)), float(entry.get("self_correct", 0.0))
    if (cot_share or sc_share) and not task.supports_cot:
        raise UserError(f"tasks[{entry['task']}]: this task has no worked solutions — drop cot/self_correct")
    if sc_share and not task.supports_self_correction:
        raise UserError(f"tasks[{entry['task']}]: this task has no self-correcting solutions — drop self_correct")
    rng = random.Random(f"corpus|{task.spec}|{seed}")
    examples = task.generate(n, "train", seed=seed)
    docs, counts = [], {"direct": 0, "cot": 0, "self_correct": 0}
    for i, ex in enumerate(examples):
        u = rng.random()
        fmt = "self_correct" if u < sc_share else "cot" if u < sc_share + cot_share else "direct"
        counts[fmt] += 1
        shots = task.shots_for(ex, rng.randint(lo, hi) - 1, seed=seed + i)
        cot = fmt != "direct"
        lines = [s.prompt + task.render_target(s, cot=cot) for s in shots]
        lines.append(ex.prompt + task.render_target(ex, cot=cot, self_correct=fmt == "self_correct", seed=seed))
        docs.append("".join(lines) + EOS)
    return docs, counts


def _text_documents(entries: list[dict[str, Any]]) -> list[str]:
    docs = []
    for e in entries:
        p = Path(e["path"] if isinstance(e, dict) else e)
        if not p.is_file():
            raise UserError(f"text: {p} not found — list existing plain-text files")
        paras = [q.strip() for q in p.read_text().split("\n\n") if q.strip()]
        limit = e.get("documents") if isinstance(e, dict) else None
        docs.extend(para + "\n" + EOS for para in paras[:limit])
    return docs


def alphabet_of(text: str) -> str:
    """The characters of `text` outside the special tokens, sorted: what a char tokenizer needs."""
    for s in SPECIAL_TEXT:
        text = text.replace(s, "")
    return "".join(sorted(set(text)))


def build_corpus(recipe: dict[str, Any] | str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Write train.txt, val.txt and manifest.json into `out_dir`; return the manifest."""
    if not isinstance(recipe, dict):
        recipe = load_recipe(recipe)
    _validate(recipe)
    seed = int(recipe.get("seed", 0))
    val_fraction = float(recipe.get("val_fraction", 0.05))
    entries = recipe.get("tasks") or []
    counts = _task_counts(recipe) if entries else []
    train, val, task_rows = [], [], []
    from tqdm import tqdm

    for entry, n in tqdm(list(zip(entries, counts)), desc="data build", unit="task", disable=None):
        docs, fmt_counts = _task_documents(entry, n, seed)
        n_val = round(len(docs) * val_fraction)
        val.extend(docs[:n_val])
        train.extend(docs[n_val:])
        task_rows.append({"task": get_task(entry["task"]).spec, "documents": n, "val_documents": n_val,
                          "formats": fmt_counts, "lines": list(_lines_range(entry))})
    text_docs = _text_documents(recipe.get("text") or [])
    n_text_val = round(len(text_docs) * val_fraction)
    val.extend(text_docs[:n_text_val])
    train.extend(text_docs[n_text_val:])
    rng = random.Random(f"corpus-shuffle|{seed}")
    rng.shuffle(train)
    rng.shuffle(val)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"train.txt": "".join(train), "val.txt": "".join(val)}
    total_docs = sum(counts) or 1
    for row in task_rows:
        row["share"] = round(row["documents"] / total_docs, 6)
        row["format_shares"] = {k: round(v / max(row["documents"], 1), 6) for k, v in row["formats"].items()}
    manifest = {
        "format_version": 1,
        "seed": seed,
        "val_fraction": val_fraction,
        "documents": {"train": len(train), "val": len(val), "text": len(text_docs)},
        "characters": {name: len(text) for name, text in files.items()},
        "tasks": task_rows,
        "alphabet": alphabet_of(files["train.txt"] + files["val.txt"]),
        "special_tokens": [s for s in SPECIAL_TEXT if any(s in t for t in files.values())],
        "document_separator": EOS,
        "sha256": {name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items()},
        "recipe": recipe,
    }
    for name, text in files.items():
        (out / name).write_text(text)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def answer_mask(ids: np.ndarray, tokenizer: Any) -> np.ndarray:
    """Which tokens of a tokenized corpus are answers: from a `<think>`/`<answer>` tag through the end
    of its line, plus every `<eos>`. Train on `targets = ids[1:]` with `loss_mask = mask[1:]` to put the
    loss on answers only: with the loss on every token, the random operands of arithmetic documents
    dominate it and a 2-layer model did not learn reversed addition in 2,000 steps, while the same
    model with the loss on answers learned it by step 1,000 (docs/tasks.md)."""
    ids = np.asarray(ids)
    idx = np.arange(len(ids))
    opens = np.isin(ids, [tokenizer.token_to_id("<think>"), tokenizer.token_to_id("<answer>")])
    newline = tokenizer.encode("\n")
    if len(newline) != 1:
        raise UserError("tokenizer: answer_mask needs a tokenizer with a single newline token")
    last_open = np.maximum.accumulate(np.where(opens, idx, -1))
    last_nl = np.maximum.accumulate(np.where(ids == newline[0], idx, -1))
    last_nl_before = np.concatenate([[-1], last_nl[:-1]])  # strictly before: a line's newline is an answer
    return (last_open > last_nl_before) | (ids == tokenizer.eos_id)
