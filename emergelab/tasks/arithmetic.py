"""Arithmetic: n-digit addition, subtraction, multiplication and multi-step expressions.

Formats (Lee et al. 2023, "Teaching Arithmetic to Small Transformers"): `plain` writes the result
most-significant digit first; `reversed` writes it least-significant digit first, which lets a
left-to-right model emit each digit once its carry is known. Reversed prompts start with "r" ("r58+67=" -> "521").
`hints=true` adds index hints (Zhou et al. 2024, "What algorithms can transformers learn?"): every
digit is preceded by a letter naming its place (units "d", tens "f", ...: "f5d8+f6d7=" -> "g1f2d5"),
so a rotary-position model finds the digits of a column by content instead of by counting positions.
`pad=true` zero-pads operands to
`digits` and the result to its maximal width. The chain of thought is a column-by-column scratchpad:

    58+67=  <think>8+7+0=5 c1;5+6+1=2 c1</think><answer>125</answer>

The verifier recomputes the result from `meta` with Python integers; it does not read `answer`.
"""

from __future__ import annotations

import random
from typing import Any

from emergelab.errors import UserError
from emergelab.tasks.base import Example, Task
from emergelab.tasks.exprparse import ExprError, parse_expression
from emergelab.tasks.scoring import char_accuracy, extract_answer, normalized_edit_distance

OPS = {"add": "+", "sub": "-", "mul": "*"}
FORMATS = ("plain", "reversed")
# place letters for index hints, units first; none of r (reversed), c/b (carry/borrow), "wait, check"
HINTS = "dfgjlmnopqsuvxyz"


def _with_hints(digits: str, low_first: bool) -> str:
    """Label each digit with its place letter: "58" -> "f5d8" (or, written low first, "85" -> "d8f5")."""
    n = len(digits)
    return "".join(HINTS[i if low_first else n - 1 - i] + c for i, c in enumerate(digits))


def _strip_hints(text: str) -> str:
    return "".join(c for c in text if c not in HINTS)


def _digits_low_first(x: int, width: int) -> list[int]:
    return [(x // 10**i) % 10 for i in range(width)]


class Arithmetic(Task):
    """`a op b` with `digits`-digit operands (`digits_b` for the second one, default `digits`)."""

    answer_alphabet = "0123456789-"
    supports_self_correction = True

    def __init__(self, op: str = "add", digits: int = 3, digits_b: int | None = None,
                 format: str = "plain", pad: bool = False, hints: bool = False, **options: Any) -> None:
        super().__init__(**options)
        if op not in OPS:
            raise UserError(f"op: {op!r} is not an arithmetic operation — use one of {', '.join(OPS)}")
        if format not in FORMATS:
            raise UserError(f"format: {format!r} is not a format — use plain or reversed")
        if not 1 <= int(digits) <= 12 or (digits_b is not None and not 1 <= int(digits_b) <= 12):
            raise UserError("digits: must be between 1 and 12")
        self.name, self.op, self.format, self.pad, self.hints = op, op, format, bool(pad), bool(hints)
        self.digits = int(digits)
        self.digits_b = int(digits_b) if digits_b is not None else self.digits
        if self.hints and self.result_width > len(HINTS):
            raise UserError(f"hints: results of {self.result_width} digits need more than {len(HINTS)} place letters")
        self.description = {"add": "n-digit addition", "sub": "n-digit subtraction (a >= b)",
                            "mul": "n-digit multiplication"}[op]

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"digits": self.digits}
        if self.digits_b != self.digits:
            opts["digits_b"] = self.digits_b
        if self.format != "plain":
            opts["format"] = self.format
        if self.pad:
            opts["pad"] = True
        if self.hints:
            opts["hints"] = True
        return opts

    @property
    def result_width(self) -> int:
        """Maximal number of digits of the result."""
        if self.op == "add":
            return max(self.digits, self.digits_b) + 1
        if self.op == "sub":
            return self.digits
        return self.digits + self.digits_b

    def _num(self, x: int, width: int) -> str:
        s = str(x).zfill(width) if self.pad else str(x)
        return _with_hints(s, low_first=False) if self.hints else s

    def result_text(self, value: int) -> str:
        """The result as the model must write it in this task's format."""
        s = str(value).zfill(self.result_width) if self.pad else str(value)
        low_first = self.format == "reversed"
        s = s[::-1] if low_first else s
        return _with_hints(s, low_first) if self.hints else s

    def _sample(self, rng: random.Random) -> Example:
        a = rng.randrange(10**self.digits)
        b = rng.randrange(10**self.digits_b)
        if self.op == "sub" and a < b:
            if self.digits_b > self.digits:
                b = rng.randrange(a + 1)
            else:
                a, b = b, a
        value = {"add": a + b, "sub": a - b, "mul": a * b}[self.op]
        # reversed items are marked ("r" prefix) so one corpus can hold both formats unambiguously
        mark = "r" if self.format == "reversed" else ""
        prompt = f"{mark}{self._num(a, self.digits)}{OPS[self.op]}{self._num(b, self.digits_b)}="
        meta = {"a": a, "b": b, "op": OPS[self.op], "format": self.format, "pad": self.pad, "hints": self.hints}
        return Example(prompt, self.result_text(value), self._scratchpad(a, b), meta)

    def key(self, example: Example) -> str:
        a, b = example.meta["a"], example.meta["b"]
        if self.op in ("add", "mul"):  # commutative: 12+34 and 34+12 are one item
            a, b = min(a, b), max(a, b)
        return f"{a}{OPS[self.op]}{b}"

    # ---- chain of thought -------------------------------------------------------------------
    def _steps(self, a: int, b: int) -> list[tuple[str, str]]:
        """(left side, right side) of each scratchpad step."""
        if self.op == "mul":
            steps, total = [], 0
            for j, d in enumerate(_digits_low_first(b, len(str(b)))):
                part = a * d * 10**j
                steps.append((f"{a}*{d * 10**j}", str(part)))
                if j > 0:
                    steps.append((f"{total}+{part}", str(total + part)))
                total += part
            return steps
        width = max(len(str(a)), len(str(b)))
        da, db = _digits_low_first(a, width), _digits_low_first(b, width)
        steps, carry = [], 0
        for x, y in zip(da, db):
            if self.op == "add":
                s = x + y + carry
                steps.append((f"{x}+{y}+{carry}", f"{s % 10} c{s // 10}"))
                carry = s // 10
            else:
                s = x - y - carry
                steps.append((f"{x}-{y}-{carry}", f"{s % 10} b{int(s < 0)}"))
                carry = int(s < 0)
        return steps

    def _scratchpad(self, a: int, b: int) -> str:
        return ";".join(self._step_texts(self._steps(a, b)))

    def _step_texts(self, steps: list[tuple[str, str]]) -> list[str]:
        """"lhs=rhs" per step; with hints, column steps start with their place letter ("d:8+7+0=5 c1")."""
        label = self.hints and self.op != "mul"
        return [f"{HINTS[i]}:{lhs}={rhs}" if label else f"{lhs}={rhs}" for i, (lhs, rhs) in enumerate(steps)]

    def self_corrected_cot(self, example: Example, seed: int = 0) -> str:
        steps = self._steps(example.meta["a"], example.meta["b"])
        rng = random.Random(f"{self.spec}|selfcorrect|{example.prompt}|{seed}")
        i = rng.randrange(len(steps))
        wrong = list(steps)
        wrong[i] = (steps[i][0], _perturb(steps[i][1], rng))
        parts = self._step_texts(steps)
        parts[i] = f"{self._step_texts(wrong)[i]} wait, check: {parts[i]}"
        return ";".join(parts)

    # ---- verification -----------------------------------------------------------------------
    def expected(self, example: Example) -> str:
        a, b, op = example.meta["a"], example.meta["b"], example.meta["op"]
        value = a + b if op == "+" else a - b if op == "-" else a * b
        return self.result_text(value)

    def check(self, example: Example, predicted: str) -> tuple[bool, str]:
        want = self.expected(example)
        got = predicted.strip()
        if self.format == "plain" and not self.pad and not self.hints and got.lstrip("-").isdigit():
            ok = int(got) == int(want)
        else:
            ok = got == want
        return ok, "correct" if ok else f"expected {want}, got {got}"

    def continuous_metrics(self, example: Example, completion: str) -> dict[str, float]:
        predicted, _, _ = extract_answer(completion)
        pred, want = _strip_hints(predicted or ""), _strip_hints(self.expected(example))
        align = "left" if self.format == "reversed" else "right"  # units digit aligned either way
        return {"char_accuracy": char_accuracy(pred, want, align=align),
                "edit_distance": normalized_edit_distance(pred, want)}

    @property
    def chance(self) -> float:
        return 10.0 ** -self.result_width


def _perturb(rhs: str, rng: random.Random) -> str:
    """A plausible wrong result: one digit of `rhs` changed (the digit, not the carry, of "5 c1")."""
    head = rhs.split(" ")[0]
    idx = [i for i, c in enumerate(head) if c.isdigit()]
    i = rng.choice(idx)
    d = (int(rhs[i]) + rng.choice([1, 9])) % 10
    if d == 0 and i == 0 and len(head) > 1:  # no leading zero
        d = (int(rhs[i]) + 2) % 10 or 1
    return rhs[:i] + str(d) + rhs[i + 1:]


class Expression(Task):
    """Multi-step expressions like `25*4+8`: `terms` numbers below `max_num` joined by + - *,
    evaluated with the usual precedence. The scratchpad reduces one operation per step."""

    name = "expr"
    description = "multi-step expressions with precedence, e.g. 25*4+8"
    answer_alphabet = "0123456789-"
    supports_self_correction = True

    def __init__(self, terms: int = 3, max_num: int = 30, ops: str = "+-*", **options: Any) -> None:
        super().__init__(**options)
        if not 2 <= int(terms) <= 6:
            raise UserError("terms: must be between 2 and 6")
        if int(max_num) < 2 or not ops or set(ops) - set("+-*"):
            raise UserError("max_num must be >= 2 and ops a subset of '+-*'")
        self.terms, self.max_num, self.ops = int(terms), int(max_num), str(ops)

    def options(self) -> dict[str, Any]:
        return {"terms": self.terms, "max_num": self.max_num, "ops": self.ops}

    def _sample(self, rng: random.Random) -> Example:
        nums = [rng.randrange(1, self.max_num) for _ in range(self.terms)]
        ops = [rng.choice(self.ops) for _ in range(self.terms - 1)]
        text = str(nums[0]) + "".join(o + str(n) for o, n in zip(ops, nums[1:]))
        steps = _reduce_steps(nums, ops)
        value = steps[-1][1] if steps else nums[0]
        cot = ";".join(f"{lhs}={rhs}" for lhs, rhs in steps)
        return Example(text + "=", str(value), cot, {"expression": text, "numbers": nums, "ops": ops})

    def self_corrected_cot(self, example: Example, seed: int = 0) -> str:
        steps = _reduce_steps(example.meta["numbers"], example.meta["ops"])
        rng = random.Random(f"{self.spec}|selfcorrect|{example.prompt}|{seed}")
        i = rng.randrange(len(steps))
        parts = [f"{l}={r}" for l, r in steps]
        lhs, rhs = steps[i]
        parts[i] = f"{lhs}={_perturb(str(rhs), rng)} wait, check: {lhs}={rhs}"
        return ";".join(parts)

    def check(self, example: Example, predicted: str) -> tuple[bool, str]:
        value, _ = parse_expression(example.meta["expression"])  # independent of the generator
        got = predicted.strip()
        if not got.lstrip("-").isdigit():
            return False, f"not an integer: {got!r}"
        ok = int(got) == value
        return ok, "correct" if ok else f"expected {value}, got {got}"

    def continuous_metrics(self, example: Example, completion: str) -> dict[str, float]:
        predicted, _, _ = extract_answer(completion)
        pred = predicted or ""
        return {"char_accuracy": char_accuracy(pred, example.answer, align="right"),
                "edit_distance": normalized_edit_distance(pred, example.answer)}


def _reduce_steps(nums: list[int], ops: list[str]) -> list[tuple[str, int]]:
    """Evaluate left to right with precedence, one binary operation per step: [(\"25*4\", 100), ...]."""
    nums, ops, steps = list(nums), list(ops), []
    while ops:
        i = ops.index("*") if "*" in ops else 0
        a, b, o = nums[i], nums[i + 1], ops[i]
        v = a * b if o == "*" else a + b if o == "+" else a - b
        steps.append((f"{a}{o}{b}", v))
        nums[i:i + 2] = [v]
        del ops[i]
    return steps


__all__ = ["Arithmetic", "Expression", "ExprError"]
