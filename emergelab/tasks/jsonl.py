"""Bring your own task as a JSONL file: one `{"prompt": ..., "answer": ...}` object per line.

Optional fields per item: `cot` (a worked solution, for CoT formats and SFT), `choices` (a list,
for the `choice` verifier), `pattern` (a regex, for the `regex` verifier), `split` ("train" or
"test"; items without it are split by a hash of their prompt with `test_fraction`, default 0.5),
`meta` (anything; passed through).

Verifiers (`verifier=` in the spec, e.g. `mydata.jsonl:verifier=numeric`):
    exact    the answer text, whitespace-trimmed (ignore_case=true to fold case)
    numeric  a number within `tol` (absolute, default 1e-6) of the answer
    choice   the answer choice, given as its text or its letter (a, b, c, ... in `choices` order)
    regex    the whole answer matches the item's `pattern` (or the `pattern` option)
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from emergelab.errors import UserError
from emergelab.tasks.base import Example, Task, check_split, item_split

VERIFIERS = ("exact", "numeric", "choice", "regex")


class JsonlTask(Task):
    supports_cot = True

    def __init__(self, path: str, verifier: str = "exact", tol: float = 1e-6, ignore_case: bool = False,
                 pattern: str | None = None, test_fraction: float = 0.5, **options: Any) -> None:
        self.name = Path(path).stem
        super().__init__(**options)
        if verifier not in VERIFIERS:
            raise UserError(f"verifier: {verifier!r} — use one of {', '.join(VERIFIERS)}")
        self.path, self.verifier, self.tol = str(path), verifier, float(tol)
        self.ignore_case, self.pattern, self.test_fraction = bool(ignore_case), pattern, float(test_fraction)
        self.description = f"JSONL task from {path} ({verifier} match)"
        self.items = self._load()

    def options(self) -> dict[str, Any]:
        return {"verifier": self.verifier}

    @property
    def spec(self) -> str:
        return f"{self.path}:verifier={self.verifier}"

    def _load(self) -> list[Example]:
        p = Path(self.path)
        if not p.is_file():
            raise UserError(f"task: {self.path} not found — give the path of a JSONL file")
        items = []
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{self.path}:{i}: not valid JSON ({e.msg}) — one object per line") from e
            if not isinstance(obj, dict) or "prompt" not in obj or "answer" not in obj:
                raise UserError(f"{self.path}:{i}: each line needs \"prompt\" and \"answer\" fields")
            if self.verifier == "choice" and not obj.get("choices"):
                raise UserError(f"{self.path}:{i}: the choice verifier needs a \"choices\" list")
            if self.verifier == "regex" and not (obj.get("pattern") or self.pattern):
                raise UserError(f"{self.path}:{i}: the regex verifier needs a \"pattern\" (field or option)")
            split = obj.get("split") or item_split(self.name, str(obj["prompt"]), self.test_fraction)
            check_split(split)
            meta = {**obj.get("meta", {}), "split": split, "line": i}
            for k in ("choices", "pattern"):
                if k in obj:
                    meta[k] = obj[k]
            items.append(Example(str(obj["prompt"]), str(obj["answer"]), obj.get("cot"), meta))
        if not items:
            raise UserError(f"task: {self.path} has no items")
        return items

    def generate(self, n: int, split: str = "train", seed: int = 0, allow_fewer: bool = True) -> list[Example]:
        """Up to `n` items of `split` (all of them when the file has fewer), in a seeded order."""
        check_split(split)
        pool = [ex for ex in self.items if ex.meta["split"] == split]
        random.Random(f"{self.spec}|{split}|{seed}").shuffle(pool)
        return pool[:n]

    def check(self, example: Example, predicted: str) -> tuple[bool, str]:
        got, want = predicted.strip(), example.answer.strip()
        if self.verifier == "numeric":
            try:
                ok = abs(float(got) - float(want)) <= self.tol
            except ValueError:
                return False, f"not a number: {got!r}"
        elif self.verifier == "choice":
            choices = [str(c).strip().lower() for c in example.meta["choices"]]
            letters = [chr(ord("a") + i) for i in range(len(choices))]
            pick = got.lower()
            pick = choices[letters.index(pick)] if pick in letters else pick
            target = want.lower()
            target = choices[letters.index(target)] if target in letters else target
            ok = pick == target
        elif self.verifier == "regex":
            ok = re.fullmatch(example.meta.get("pattern") or self.pattern, got) is not None
        else:
            ok = got.lower() == want.lower() if self.ignore_case else got == want
        return ok, "correct" if ok else f"expected {want!r}, got {got!r}"

    @property
    def chance(self) -> float:
        if self.verifier == "choice":
            return sum(1 / len(ex.meta["choices"]) for ex in self.items) / len(self.items)
        return 0.0
