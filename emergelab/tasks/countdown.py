"""Countdown (as in TinyZero): combine the given numbers, each exactly once, with + - * / to hit a target.

    prompt  "46 from 3 7 25:"
    answer  "(25-3)*7-..." any expression; the verifier parses it safely (no eval), checks that it
            uses exactly the given numbers and that its exact (rational) value is the target.

The worked solution is the sequence of combinations ("25-3=22;22*7=154;..."); the self-correcting
variant first tries a combination that misses, says so, and then solves it.
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

from emergelab.errors import UserError
from emergelab.tasks.base import Example, Task
from emergelab.tasks.exprparse import ExprError, parse_expression
from emergelab.tasks.scoring import extract_answer


def _combine(a: int, b: int, op: str) -> int | None:
    """a op b if it is a positive integer, else None (the game's rules for intermediate values)."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b if a > b else None
    if op == "*":
        return a * b
    return a // b if b > 1 and a % b == 0 else None


def _random_solution(numbers: list[int], rng: random.Random) -> tuple[int, str, list[str]] | None:
    """Combine all numbers at random: (value, expression, steps), or None on a dead end."""
    pool = [(n, str(n)) for n in numbers]
    steps = []
    while len(pool) > 1:
        i, j = rng.sample(range(len(pool)), 2)
        (a, ea), (b, eb) = pool[i], pool[j]
        op = rng.choice("+-*/")
        v = _combine(a, b, op)
        if v is None:
            return None
        steps.append(f"{a}{op}{b}={v}")
        pool = [p for k, p in enumerate(pool) if k not in (i, j)] + [(v, f"{_paren(ea)}{op}{_paren(eb)}")]
    return pool[0][0], pool[0][1], steps


def _paren(e: str) -> str:
    return e if e.isdigit() else f"({e})"


class Countdown(Task):
    """`numbers` numbers in [1, max_num]; a reachable target in [1, max_target]."""

    name = "countdown"
    description = "reach a target with the given numbers, each used once (+ - * /)"
    answer_alphabet = "0123456789+-*/()"
    supports_self_correction = True

    def __init__(self, numbers: int = 3, max_num: int = 20, max_target: int = 100, **options: Any) -> None:
        super().__init__(**options)
        if not 2 <= int(numbers) <= 6 or int(max_num) < 2 or int(max_target) < 1:
            raise UserError("countdown: numbers must be 2..6, max_num >= 2, max_target >= 1")
        self.numbers, self.max_num, self.max_target = int(numbers), int(max_num), int(max_target)

    def options(self) -> dict[str, Any]:
        return {"numbers": self.numbers, "max_num": self.max_num, "max_target": self.max_target}

    def _sample(self, rng: random.Random) -> Example:
        while True:
            nums = [rng.randint(1, self.max_num) for _ in range(self.numbers)]
            sol = _random_solution(nums, rng)
            if sol and 1 <= sol[0] <= self.max_target:
                break
        target, expr, steps = sol
        prompt = f"{target} from {' '.join(map(str, nums))}:"
        return Example(prompt, expr, ";".join(steps), {"numbers": nums, "target": target})

    def key(self, example: Example) -> str:
        return f"{sorted(example.meta['numbers'])}->{example.meta['target']}"

    def self_corrected_cot(self, example: Example, seed: int = 0) -> str:
        rng = random.Random(f"{self.spec}|selfcorrect|{example.prompt}|{seed}")
        target = example.meta["target"]
        for _ in range(100):
            miss = _random_solution(example.meta["numbers"], rng)
            if miss and miss[0] != target:
                return f"{';'.join(miss[2])} wait, check: {miss[0]} is not {target};{example.cot}"
        return example.cot or ""

    def _evaluate(self, example: Example, predicted: str) -> tuple[Fraction | None, bool, str]:
        """(value, uses exactly the given numbers, reason)."""
        try:
            value, used = parse_expression(predicted)
        except ExprError as e:
            return None, False, f"unparsable expression: {e}"
        ok_nums = sorted(used) == sorted(example.meta["numbers"])
        return value, ok_nums, "" if ok_nums else f"uses {sorted(used)}, must use {sorted(example.meta['numbers'])}"

    def check(self, example: Example, predicted: str) -> tuple[bool, str]:
        value, ok_nums, why = self._evaluate(example, predicted)
        if value is None or not ok_nums:
            return False, why
        target = example.meta["target"]
        return (True, "correct") if value == target else (False, f"value {value} is not the target {target}")

    def continuous_metrics(self, example: Example, completion: str) -> dict[str, float]:
        """`uses_numbers`: the expression uses exactly the given numbers; `closeness`: 1 at the
        target, falling linearly to 0 at a relative error of 1 (0 when unparsable)."""
        predicted, _, _ = extract_answer(completion)
        value, ok_nums, _ = self._evaluate(example, predicted or "")
        target = example.meta["target"]
        close = 0.0 if value is None else max(0.0, 1.0 - float(abs(value - target)) / target)
        return {"uses_numbers": float(ok_nums), "closeness": close}
