"""Sample completions of task prompts and verify them: the one place the sequence sample → cut at the
stop rule → verify is written, and the greedy held-out accuracy that SFT, recipes and distillation report.

A *sampler* is a model (`emergelab.model.GPT`) or anything with `generate(prompts, params)` (an RL
rollout backend); completions come back prompt-major, `num_samples` per prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from emergelab.data.chat import MAX_NEW_TOKENS, completion_text, encode_prompt, render_prompt, sampling_stops
from emergelab.model import Completion, SamplingParams, generate
from emergelab.tasks.base import Example, Task, Verdict


@dataclass
class Checked:
    """One verified completion: the task item it answers, the raw completion, its text cut at the stop
    rule, and the verifier's verdict."""

    example: Example
    completion: Completion
    text: str
    verdict: Verdict


def task_prompts(tokenizer: Any, task: Task, examples: Sequence[Example], template: str = "plain",
                 shots: Sequence[Example] = ()) -> list[list[int]]:
    """Token ids of each item's prompt in `template` (with the same `shots` before each)."""
    return [encode_prompt(tokenizer, render_prompt(task, ex, template, shots)) for ex in examples]


def sample(sampler: Any, tokenizer: Any, prompts: list[list[int]], **sampling: Any) -> list[Completion]:
    """Completions of `prompts` under the stop rule; `sampling` are `SamplingParams` fields."""
    params = SamplingParams(**sampling, **sampling_stops(tokenizer))
    if isinstance(sampler, torch.nn.Module):
        return generate(sampler, prompts, params, tokenizer=tokenizer)
    return sampler.generate(prompts, params)


def complete_and_verify(sampler: Any, tokenizer: Any, task: Task, examples: Sequence[Example],
                        prompts: list[list[int]], **sampling: Any) -> list[Checked]:
    """Sample completions of `prompts` (one per item of `examples`), cut each at the stop rule and verify
    it against its item. `sampling` are `SamplingParams` fields (max_new_tokens, temperature, seed, ...)."""
    out = []
    for c in sample(sampler, tokenizer, prompts, **sampling):
        ex = examples[c.prompt_index]
        text = completion_text(tokenizer, c.tokens)
        out.append(Checked(ex, c, text, task.verify(ex, text)))
    return out


def greedy_accuracy(model: Any, tokenizer: Any, task: Task, examples: Sequence[Example], template: str,
                    max_new_tokens: int = MAX_NEW_TOKENS) -> dict[str, float]:
    """val_accuracy, val_think_rate and (where the task defines it) val_char_accuracy of greedy answers
    on held-out task items."""
    checked = complete_and_verify(model, tokenizer, task, examples, task_prompts(tokenizer, task, examples, template),
                                  max_new_tokens=max_new_tokens, temperature=0.0)
    chars = [task.continuous_metrics(c.example, c.text).get("char_accuracy") for c in checked]
    out = {"val_accuracy": sum(c.verdict.score for c in checked) / len(checked),
           "val_think_rate": sum(c.verdict.format == "cot" for c in checked) / len(checked)}
    if all(c is not None for c in chars):  # finer than exact match (the mirage lens)
        out["val_char_accuracy"] = sum(chars) / len(chars)
    return out
