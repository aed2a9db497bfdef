"""The Task interface: seeded generators, prompt rendering, verifiers and continuous metrics.

Every consumer (corpus builder, eval harness, SFT, GRPO rewards, test-time scaling) talks to tasks
only through this module, so there is one definition of "correct".

Text format (one example = one line):

    prompt  = "12+34="                                  # Example.prompt, the question
    direct  = "<answer>46</answer>\\n"                   # render_target(ex, cot=False)
    cot     = "<think>4+2=6 c0;1+3=4 c0</think><answer>46</answer>\\n"   # render_target(ex, cot=True)

The tags, the chat template, the stop rule and `FORMAT_PREFIX` live in `emergelab.data.chat` (the
chat format's one home). A k-shot prompt is k solved lines followed by the question (`render_prompt`);
a corpus document is such a block of lines followed by `<eos>`. `verify` cuts the completion at the
first stop string itself, so callers may hand it untrimmed text.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# the format names stay importable from here (tasks.__init__, corpus) but are defined in data.chat
from emergelab.data.chat import (  # noqa: F401
    ANSWER_CLOSE,
    ANSWER_OPEN,
    EOS,
    FORMAT_PREFIX,
    STOP_STRINGS,
    THINK_CLOSE,
    THINK_OPEN,
    cut_at_stop,
    sampling_stops,
)
from emergelab.errors import UserError
from emergelab.tasks.scoring import char_accuracy, extract_answer, normalized_edit_distance

SPLITS = ("train", "test")
TEST_FRACTION = 0.1  # share of the item space reserved for the test split (by hash of the item key)


@dataclass
class Example:
    """One task item. `answer` is the exact text a correct model writes between the answer tags;
    `cot` the worked solution (text inside <think>), None when the task has none; `meta` the
    structured item (operands, premises, ...) so anyone can check labels independently."""

    prompt: str
    answer: str
    cot: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    """The verifier's judgement: `score` in [0, 1] (1 = correct), a human-readable `reason`,
    the extracted answer (None when the output is malformed) and the format the model used
    ("cot", "direct", "plain" or "malformed")."""

    score: float
    reason: str
    predicted: str | None
    format: str


def item_split(task_name: str, key: str, test_fraction: float = TEST_FRACTION) -> str:
    """Deterministic split of the item space: "test" for ~test_fraction of item keys, else "train".

    Hashing the canonical item key (not the seed) makes the splits disjoint for every seed."""
    h = int.from_bytes(hashlib.sha256(f"{task_name}|{key}".encode()).digest()[:8], "big")
    return "test" if (h % 10_000) < test_fraction * 10_000 else "train"


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise UserError(f"split: {split!r} is not a split — use one of {', '.join(SPLITS)}")


class Task:
    """Base class. Subclasses set `name`, `description`, implement `_sample(rng)` and `check`.

    `_sample(rng)` draws one Example (any split); `key(example)` names the item for the split hash
    (default: the prompt). `generate` keeps only items of the requested split, without repeats.
    `check(example, predicted)` is the verifier proper, written independently of the generator
    where possible (it recomputes the answer from `meta`)."""

    name: str = "task"
    description: str = ""
    answer_alphabet: str = ""  # characters answers use; documents the task's text alphabet
    supports_cot: bool = True
    supports_self_correction: bool = False
    test_fraction: float = TEST_FRACTION

    def __init__(self, **options: Any) -> None:
        if options:
            raise UserError(
                f"task {self.name}: unknown option(s) {', '.join(sorted(options))} — "
                f"see `emergelab tasks list` for the options of each task")

    # ---- generation -------------------------------------------------------------------------
    @property
    def spec(self) -> str:
        """The spec string that recreates this task with `get_task`."""
        opts = ",".join(f"{k}={v}" for k, v in self.options().items())
        return f"{self.name}:{opts}" if opts else self.name

    def options(self) -> dict[str, Any]:
        """Difficulty knobs of this instance (name → value), as accepted by the constructor."""
        return {}

    def _sample(self, rng: random.Random) -> Example:
        raise NotImplementedError

    def key(self, example: Example) -> str:
        return example.prompt

    def split_key(self, example: Example) -> str:
        """What the train/test split hashes (default: the item key). In-context tasks hash the
        question alone, so test questions never occur in training episodes."""
        return self.key(example)

    def generate(self, n: int, split: str = "train", seed: int = 0, allow_fewer: bool = False) -> list[Example]:
        """`n` distinct examples of `split`, deterministic in (task options, split, seed). When the
        split has fewer than `n` items: all of them if `allow_fewer`, else a UserError."""
        check_split(split)
        rng = random.Random(f"{self.spec}|{split}|{seed}")
        out: list[Example] = []
        seen: set[str] = set()
        misses = 0
        while len(out) < n:
            if misses > 20_000:  # the item space is (nearly) exhausted
                if allow_fewer and out:
                    break
                raise UserError(f"task {self.spec}: could only find {len(out)} distinct {split} items "
                                f"of {n} requested — raise the difficulty or ask for fewer")
            ex = self._sample(rng)
            k = self.key(ex)
            if k in seen or item_split(self.name, self.split_key(ex), self.test_fraction) != split:
                misses += 1
                continue
            misses = 0
            seen.add(k)
            ex.meta.setdefault("split", split)
            out.append(ex)
        return out

    def shots_for(self, example: Example, k: int, seed: int = 0) -> list[Example]:
        """k solved demonstrations to put before `example`: train-split items by default;
        in-context-learning tasks override this to share the example's episode mapping."""
        if k <= 0:
            return []
        # demonstrations vary with the question (seeded by its key) but are reproducible
        own = int.from_bytes(hashlib.sha256(self.key(example).encode()).digest()[:4], "big")
        pool = self.generate(k + 1, "train", seed=seed * 1_000_003 + own)
        return [s for s in pool if self.key(s) != self.key(example)][:k]

    # ---- rendering --------------------------------------------------------------------------
    def render_target(self, example: Example, cot: bool = False, self_correct: bool = False,
                      seed: int = 0) -> str:
        """The completion a perfect model writes after the prompt, ending with the newline stop.

        With `self_correct` (tasks with `supports_self_correction`) the worked solution contains a
        wrong step followed by a check and its correction; the final answer is still correct."""
        if cot and self.supports_cot and example.cot is not None:
            thought = self.self_corrected_cot(example, seed) if self_correct else example.cot
            return f"{THINK_OPEN}{thought}{THINK_CLOSE}{ANSWER_OPEN}{example.answer}{ANSWER_CLOSE}\n"
        return f"{ANSWER_OPEN}{example.answer}{ANSWER_CLOSE}\n"

    def self_corrected_cot(self, example: Example, seed: int = 0) -> str:
        """A worked solution with one wrong step, a check and the correction (default: none)."""
        return example.cot or ""

    def render_prompt(self, example: Example, shots: Sequence[Example] = (), cot: bool = False) -> str:
        """k solved lines (in the chosen format) followed by the question."""
        lines = [s.prompt + self.render_target(s, cot=cot) for s in shots]
        return "".join(lines) + example.prompt

    # ---- verification -----------------------------------------------------------------------
    def check(self, example: Example, predicted: str) -> tuple[bool, str]:
        """Is the extracted answer correct? Returns (ok, reason). Default: exact string match."""
        ok = predicted.strip() == example.answer
        return ok, "correct" if ok else f"expected {example.answer!r}, got {predicted.strip()!r}"

    def verify(self, example: Example, completion: str) -> Verdict:
        """Score a completion (the text generated after the prompt). Never raises on model text."""
        predicted, fmt, reason = extract_answer(completion)
        if predicted is None:
            return Verdict(0.0, reason, None, fmt)
        try:
            ok, why = self.check(example, predicted)
        except Exception as e:  # a verifier bug must not crash an eval or an RL step
            return Verdict(0.0, f"verifier error: {type(e).__name__}: {e}", predicted, fmt)
        return Verdict(1.0 if ok else 0.0, why, predicted, fmt)

    def continuous_metrics(self, example: Example, completion: str) -> dict[str, float]:
        """Metrics finer than exact match: character accuracy and normalised edit distance
        against the reference answer (the harness adds the answer log-probability)."""
        predicted, _, _ = extract_answer(completion)
        pred = predicted or ""
        return {
            "char_accuracy": char_accuracy(pred, example.answer),
            "edit_distance": normalized_edit_distance(pred, example.answer),
        }

    @property
    def chance(self) -> float:
        """Exact-match accuracy of the best answer-agnostic guess (uniform over answers)."""
        return 0.0

    def reference_completion(self, example: Example, cot: bool = False) -> str:
        """What a perfect solver writes (used by tests and as the SFT target)."""
        return self.render_target(example, cot=cot)
