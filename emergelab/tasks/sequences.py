"""Synthetic sequence tasks: induction/copy and modular arithmetic (grokking).

- `copy`: a random letter segment, a bar, and the segment's first `prefix` letters; the answer is
  the rest of the segment ("qwhtz|qw" -> "htz"). Solving it needs an induction head (Olsson 2022):
  find the earlier occurrence of the current token and copy what followed it.
- `modular`: `a op b mod p` ("17+45%97=" -> "62") over all ordered pairs, the grokking task of
  Power et al. 2022; `test_fraction` sets the held-out share of the p*p table (0.7 = train on 30%).
"""

from __future__ import annotations

import random
import string
from typing import Any

from emergelab.errors import UserError
from emergelab.tasks.base import Example, Task

LETTERS = string.ascii_lowercase


class Copy(Task):
    """Continue a repeated random segment of `length` letters from an alphabet of `vocab` letters."""

    name = "copy"
    description = "induction: continue a repeated random letter segment"
    answer_alphabet = LETTERS
    supports_cot = False

    def __init__(self, length: int = 8, prefix: int = 1, vocab: int = 26, **options: Any) -> None:
        super().__init__(**options)
        if not 1 <= int(prefix) < int(length) <= 64 or not 2 <= int(vocab) <= 26:
            raise UserError("copy: need 1 <= prefix < length <= 64 and 2 <= vocab <= 26")
        self.length, self.prefix, self.vocab = int(length), int(prefix), int(vocab)

    def options(self) -> dict[str, Any]:
        return {"length": self.length, "prefix": self.prefix, "vocab": self.vocab}

    def _sample(self, rng: random.Random) -> Example:
        seg = "".join(rng.choice(LETTERS[: self.vocab]) for _ in range(self.length))
        return Example(f"{seg}|{seg[: self.prefix]}", seg[self.prefix:], None, {"segment": seg})

    def check(self, example: Example, predicted: str) -> tuple[bool, str]:
        first, _, started = example.prompt.partition("|")  # recomputed from the prompt text
        want = first[len(started):]
        ok = predicted.strip() == want
        return ok, "correct" if ok else f"expected {want}, got {predicted.strip()}"

    @property
    def chance(self) -> float:
        return float(self.vocab) ** -(self.length - self.prefix)


def _is_prime(p: int) -> bool:
    return p >= 2 and all(p % d for d in range(2, int(p**0.5) + 1))


class Modular(Task):
    """`a op b mod p` for 0 <= a, b < p; op is + - * or / (b's inverse mod p; b != 0)."""

    name = "modular"
    description = "modular arithmetic a op b mod p (grokking)"
    answer_alphabet = "0123456789"
    supports_cot = False

    def __init__(self, p: int = 97, op: str = "+", test_fraction: float = 0.1, **options: Any) -> None:
        super().__init__(**options)
        if op not in ("+", "-", "*", "/"):
            raise UserError(f"op: {op!r} — use + - * or /")
        if not _is_prime(int(p)) or int(p) > 10_007:
            raise UserError(f"p: {p} must be a prime below 10007")
        if not 0 < float(test_fraction) < 1:
            raise UserError("test_fraction: must be strictly between 0 and 1")
        self.p, self.op, self.test_fraction = int(p), op, float(test_fraction)

    def options(self) -> dict[str, Any]:
        return {"p": self.p, "op": self.op, "test_fraction": self.test_fraction}

    def _sample(self, rng: random.Random) -> Example:
        a, b = rng.randrange(self.p), rng.randrange(1 if self.op == "/" else 0, self.p)
        return Example(f"{a}{self.op}{b}%{self.p}=", str(self._value(a, b)), None,
                       {"a": a, "b": b, "op": self.op, "p": self.p})

    def _value(self, a: int, b: int) -> int:
        p = self.p
        return {"+": (a + b) % p, "-": (a - b) % p, "*": a * b % p, "/": a * pow(b, p - 2, p) % p}[self.op]

    def all_items(self, split: str) -> list[Example]:
        """The whole p*p table's `split` part, in order (for full-batch grokking runs)."""
        from emergelab.tasks.base import item_split

        out = []
        for a in range(self.p):
            for b in range(1 if self.op == "/" else 0, self.p):
                ex = Example(f"{a}{self.op}{b}%{self.p}=", str(self._value(a, b)), None,
                             {"a": a, "b": b, "op": self.op, "p": self.p, "split": split})
                if item_split(self.name, self.key(ex), self.test_fraction) == split:
                    out.append(ex)
        return out

    def check(self, example: Example, predicted: str) -> tuple[bool, str]:
        a, b, p = example.meta["a"], example.meta["b"], example.meta["p"]
        got = predicted.strip()
        if not got.isdigit():
            return False, f"not a number: {got!r}"
        # verified by the defining property, not by recomputing the generator's formula
        x = int(got)
        ok = x < p and {"+": (x - a - b) % p == 0, "-": (x + b - a) % p == 0,
                        "*": (x - a * b) % p == 0, "/": (x * b - a) % p == 0}[example.meta["op"]]
        return ok, "correct" if ok else f"{got} is not {a}{example.meta['op']}{b} mod {p}"

    @property
    def chance(self) -> float:
        return 1 / self.p
