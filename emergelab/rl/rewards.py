"""Rewards for RL: named reward functions combined as a weighted sum; a reward may abstain.

DeepSeek-R1-Zero uses rule-based rewards only: *accuracy* (a verifier checks the final answer) and
*format* (reasoning inside `<think>…</think>`); DeepSeek-R1 adds a *language consistency* reward
(share of the chain of thought in the target language) and, in its last stage, a learned
preference reward. emergelab provides each as a named function:

    accuracy     the task's verifier score (1 correct, 0 otherwise) — the same verifier as `eval`
    format       1 if the completion is exactly <think>…</think><answer>…</answer>, else 0
    consistency  share of the thinking text written in the prompt's own alphabet (R1's language
                 consistency, for character vocabularies); ABSTAINS when there is no <think> block
    length       DAPO's soft overlong punishment (Yu et al. 2025, eq. 13): 0 up to L_max − L_cache
                 tokens, then falling linearly to −1 at L_max; use with a positive weight
    rm           a learned Bradley–Terry reward model's score (`reward_model.py`)

Combining (`combine`): total = Σ_k w_k · r_k over the rewards that did NOT abstain; an abstaining
reward contributes nothing (it is not counted as 0 in its own logged mean, and the other weights
are not renormalised, so a sample's reward scale never depends on which rewards abstained). A
sample on which every reward abstains gets 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from emergelab.data.chat import REASONING_TAGS, cut_at_stop
from emergelab.errors import UserError
from emergelab.tasks.base import Example, Task

# whitespace between the blocks is allowed: an imported model writes "</think> <answer>"
FORMAT_RE = re.compile(r"^<think>(?P<think>.+?)</think>\s*<answer>(?P<answer>.+?)</answer>$", re.DOTALL)
THINK_RE = re.compile(r"<think>(?P<think>.*?)(</think>|$)", re.DOTALL)


@dataclass
class Sample:
    """One scored completion: the task item, the prompt text the model saw, the completion text
    (already cut at the stop rule) and how generation ended."""

    example: Example
    prompt: str
    completion: str
    finish_reason: str = "stop"
    n_tokens: int = 0


# A reward function scores a batch of samples; None = abstain for that sample.
RewardFn = Callable[[Sequence[Sample]], list[float | None]]


def accuracy_reward(task: Task) -> RewardFn:
    def fn(samples: Sequence[Sample]) -> list[float | None]:
        return [task.verify(s.example, s.completion).score for s in samples]

    return fn


def format_reward(samples: Sequence[Sample]) -> list[float | None]:
    return [1.0 if FORMAT_RE.match(cut_at_stop(s.completion).strip()) else 0.0 for s in samples]


def consistency_reward(task: Task) -> RewardFn:
    """Share of thinking characters in the task's own "language": the characters of the prompt, of the
    task's answer alphabet and of the task's reference worked solution (tags removed)."""

    def fn(samples: Sequence[Sample]) -> list[float | None]:
        out: list[float | None] = []
        for s in samples:
            m = THINK_RE.search(cut_at_stop(s.completion))
            thought = m.group("think") if m else ""
            if not m or not thought:
                out.append(None)
                continue
            reference = task.render_target(s.example, cot=True)
            for tag in REASONING_TAGS:
                reference = reference.replace(tag, "")
            allowed = set(s.example.prompt) | set(task.answer_alphabet) | set(reference)
            out.append(sum(c in allowed for c in thought) / len(thought))
        return out

    return fn


def length_reward(max_len: int, cache: int) -> RewardFn:
    """DAPO soft overlong punishment over the number of generated tokens."""
    if not 0 < cache <= max_len:
        raise UserError(f"rl.length_cache: need 0 < length_cache <= max_new_tokens ({max_len}), got {cache}")

    def fn(samples: Sequence[Sample]) -> list[float | None]:
        out: list[float | None] = []
        for s in samples:
            excess = s.n_tokens - (max_len - cache)
            out.append(0.0 if excess <= 0 else max(-1.0, -excess / cache))
        return out

    return fn


REWARD_NAMES = ("accuracy", "format", "consistency", "length", "rm")


def build_rewards(weights: dict[str, float], task: Task, max_new_tokens: int, length_cache: int = 0,
                  reward_model: RewardFn | None = None) -> dict[str, tuple[float, RewardFn]]:
    """name → (weight, fn) for every nonzero weight. Unknown names are a UserError."""
    out: dict[str, tuple[float, RewardFn]] = {}
    for name, w in weights.items():
        if name not in REWARD_NAMES:
            raise UserError(f"rl.rewards: unknown reward {name!r} — choose from {', '.join(REWARD_NAMES)}")
        if w == 0:
            continue
        if name == "accuracy":
            fn = accuracy_reward(task)
        elif name == "format":
            fn = format_reward
        elif name == "consistency":
            fn = consistency_reward(task)
        elif name == "length":
            fn = length_reward(max_new_tokens, length_cache or max(1, max_new_tokens // 4))
        else:
            if reward_model is None:
                raise UserError("rl.rewards.rm: a reward-model weight needs rl.reward_model=RUN "
                                "(a run written by `emergelab rm`)")
            fn = reward_model
        out[name] = (float(w), fn)
    if not out:
        raise UserError("rl.rewards: every weight is 0 — give at least one reward a nonzero weight, "
                        "e.g. accuracy: 1")
    return out


def combine(rewards: dict[str, tuple[float, RewardFn]], samples: Sequence[Sample]
            ) -> tuple[list[float], dict[str, list[float | None]]]:
    """Total reward per sample (abstentions contribute nothing) and each component's raw values."""
    components = {name: fn(samples) for name, (_, fn) in rewards.items()}
    totals = []
    for i in range(len(samples)):
        totals.append(sum(rewards[n][0] * v[i] for n, v in components.items() if v[i] is not None))
    return totals, components
