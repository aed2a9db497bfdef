"""Verdict rules: each claim's pre-registered rule (docs/verdicts.md) as a pure function, numbers in, verdict out.

`noise` turns per-seed, per-item data into intervals; `rules` holds one function per claim; `mirage`
simulates the emergence rule's error rates. Nothing here reads files or runs models."""

from emergelab.science.verdicts.rules import RULES_VERSION, VERDICTS, Verdict

__all__ = ["RULES_VERSION", "VERDICTS", "Verdict"]
