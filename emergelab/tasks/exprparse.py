"""A safe arithmetic-expression parser (never `eval` of model text).

Grammar: expr := term (("+"|"-") term)* ; term := factor (("*"|"/") factor)* ;
factor := INT | "(" expr ")" | "-" factor. Values are exact `Fraction`s; division by zero and
anything outside the grammar raise `ExprError`. Integers are capped in length so a model cannot
make the verifier compute huge numbers.
"""

from __future__ import annotations

from fractions import Fraction

MAX_LEN = 200
MAX_INT_DIGITS = 12


class ExprError(ValueError):
    """The text is not a well-formed arithmetic expression (the message says why)."""


def parse_expression(text: str) -> tuple[Fraction, list[int]]:
    """(value, integers used, in order of appearance)."""
    s = text.strip()
    if not s:
        raise ExprError("empty expression")
    if len(s) > MAX_LEN:
        raise ExprError(f"expression longer than {MAX_LEN} characters")
    p = _Parser(s)
    value = p.expr(depth=0)
    if p.peek():
        raise ExprError(f"unexpected {s[p.i]!r} at position {p.i}")
    return value, p.numbers


class _Parser:
    def __init__(self, s: str) -> None:
        self.s, self.i, self.numbers = s, 0, []

    def peek(self) -> str:
        """The next non-space character (skipping spaces between tokens, never inside numbers)."""
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1
        return self.s[self.i] if self.i < len(self.s) else ""

    def expr(self, depth: int) -> Fraction:
        if depth > 30:
            raise ExprError("expression nested too deeply")
        v = self.term(depth)
        while self.peek() in ("+", "-"):
            op = self.s[self.i]
            self.i += 1
            w = self.term(depth)
            v = v + w if op == "+" else v - w
        return v

    def term(self, depth: int) -> Fraction:
        v = self.factor(depth)
        while self.peek() in ("*", "/"):
            op = self.s[self.i]
            self.i += 1
            w = self.factor(depth)
            if op == "*":
                v = v * w
            elif w == 0:
                raise ExprError("division by zero")
            else:
                v = v / w
        return v

    def factor(self, depth: int) -> Fraction:
        c = self.peek()
        if c == "(":
            self.i += 1
            v = self.expr(depth + 1)
            if self.peek() != ")":
                raise ExprError(f"missing ')' at position {self.i}")
            self.i += 1
            return v
        if c == "-":
            self.i += 1
            return -self.factor(depth + 1)
        j = self.i
        while self.i < len(self.s) and self.s[self.i].isdigit() and self.s[self.i].isascii():
            self.i += 1
        if j == self.i:
            raise ExprError(f"expected a number at position {j}" + (f", got {c!r}" if c else ""))
        digits = self.s[j:self.i]
        if len(digits) > MAX_INT_DIGITS:
            raise ExprError(f"number longer than {MAX_INT_DIGITS} digits")
        self.numbers.append(int(digits))
        return Fraction(int(digits))
