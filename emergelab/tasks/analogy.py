"""Analogies `A:B::C:?` over a small generated world of letter strings and relations.

The world: strings of `length` letters and the relations shift-by-k on the alphabet ring
(k = ±1..3), reversal, mirror (a<->z, b<->y, ...) and their pairings with reversal. An item shows one pair
related by a hidden relation and asks to apply it to a new string ("abc:bcd::kxm:" -> "lyn").
Items whose A:B pair fits two relations giving different answers are not generated; the verifier
accepts any answer that some relation of the world maps both A->B and C->answer.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from typing import Any

from emergelab.errors import UserError
from emergelab.tasks.base import Example, Task

LETTERS = string.ascii_lowercase


def _shift(k: int) -> Callable[[str], str]:
    return lambda s: "".join(LETTERS[(LETTERS.index(c) + k) % 26] for c in s)


def _mirror(s: str) -> str:
    return "".join(LETTERS[25 - LETTERS.index(c)] for c in s)


RELATIONS: dict[str, Callable[[str], str]] = {
    **{f"shift{k:+d}": _shift(k) for k in (-3, -2, -1, 1, 2, 3)},
    "reverse": lambda s: s[::-1],
    "mirror": _mirror,
    "reverse_shift+1": lambda s: _shift(1)(s[::-1]),
    "reverse_mirror": lambda s: _mirror(s[::-1]),
}


class Analogy(Task):
    """`A:B::C:?` with strings of `length` letters; `relations` limits the world (comma-free list
    separated by '/', e.g. "shift+1/reverse"); default all."""

    name = "analogy"
    description = "A:B::C:? over letter strings with shift / reverse / mirror relations"
    answer_alphabet = LETTERS
    supports_cot = False

    def __init__(self, length: int = 3, relations: str = "all", **options: Any) -> None:
        super().__init__(**options)
        names = list(RELATIONS) if relations == "all" else str(relations).split("/")
        unknown = [n for n in names if n not in RELATIONS]
        if unknown or not 2 <= int(length) <= 8:
            raise UserError(f"analogy: length must be 2..8 and relations among {'/'.join(RELATIONS)}")
        self.length, self.relations, self.names = int(length), relations, names

    def options(self) -> dict[str, Any]:
        return {"length": self.length, "relations": self.relations}

    def _sample(self, rng: random.Random) -> Example:
        while True:
            rel = rng.choice(self.names)
            a, c = ("".join(rng.choice(LETTERS) for _ in range(self.length)) for _ in range(2))
            b, d = RELATIONS[rel](a), RELATIONS[rel](c)
            answers = {RELATIONS[r](c) for r in self.names if RELATIONS[r](a) == b}
            if answers == {d} and a != c:
                return Example(f"{a}:{b}::{c}:", d, None, {"a": a, "b": b, "c": c, "relation": rel})

    def check(self, example: Example, predicted: str) -> tuple[bool, str]:
        a, b, c = example.meta["a"], example.meta["b"], example.meta["c"]
        got = predicted.strip()
        fits = [r for r in self.names if RELATIONS[r](a) == b and RELATIONS[r](c) == got]
        return (True, f"correct ({fits[0]})") if fits else (False, f"no relation maps {a}->{b} and {c}->{got}")

    @property
    def chance(self) -> float:
        return 1 / len(self.names)
