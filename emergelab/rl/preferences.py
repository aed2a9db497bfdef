"""Generated preference pairs: which of two responses to a task prompt is better, by a stated rule.

Candidates for a prompt are `k` samples from a policy plus the task's reference worked solution.
Each is ranked by the key (correct, well-formed, −length): a correct answer beats a wrong one; among
equally correct answers the one in the `<think>…</think><answer>…</answer>` format wins; then the
shorter one (concise). A pair (chosen, rejected) is kept only when the keys differ, so every pair's
label follows from the rule — the reward model's held-out accuracy measures how well it learned it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from emergelab.data.chat import MAX_NEW_TOKENS, cut_at_stop, encode_prompt, render_prompt
from emergelab.errors import UserError
from emergelab.eval.completions import sample
from emergelab.rl.rewards import FORMAT_RE
from emergelab.tasks.base import Task


@dataclass
class PreferenceConfig:
    """Settings shared by the preference trainers (reward model, DPO): where the pairs come from and the
    optimisation around them. Subclasses name their config section and add their own fields."""

    section: ClassVar[str] = "preference"
    task: str = "add:digits=6"
    n_prompts: int = 400  # training prompts (≈ 2 pairs each)
    n_test_prompts: int = 100
    k: int = 4  # policy samples per prompt
    template: str = "plain"
    max_new_tokens: int = MAX_NEW_TOKENS
    steps: int = 200
    batch_size: int = 16
    lr: float = 1e-4
    seed: int = 0
    device: str = "auto"

    def validate(self) -> None:
        if min(self.n_prompts, self.n_test_prompts, self.k, self.steps, self.batch_size) < 1:
            raise UserError(f"{self.section}: n_prompts, n_test_prompts, k, steps and batch_size must be >= 1")


@dataclass
class Pair:
    prompt: str  # the rendered prompt text (template applied)
    chosen: str
    rejected: str


def preference_key(task: Task, example, completion: str) -> tuple[float, int, int]:
    correct = task.verify(example, completion).score
    return correct, int(bool(FORMAT_RE.match(completion.strip()))), -len(completion)


def preference_pairs(model, tokenizer, task: Task, n_prompts: int, k: int = 4, split: str = "train",
                     template: str = "plain", max_new_tokens: int = MAX_NEW_TOKENS, seed: int = 0) -> list[Pair]:
    """Up to two pairs per prompt: (best, worst) and one random strictly-ordered pair."""
    examples = task.generate(n_prompts, split, seed=seed)
    prompts = [render_prompt(task, ex, template) for ex in examples]
    comps = sample(model, tokenizer, [encode_prompt(tokenizer, p) for p in prompts],
                   max_new_tokens=max_new_tokens, temperature=1.0, seed=seed, num_samples=k)
    rng = random.Random(seed)
    pairs = []
    for i, ex in enumerate(examples):
        cands = {cut_at_stop(tokenizer.decode(c.tokens)) for c in comps[i * k:(i + 1) * k]}
        cands.add(task.render_target(ex, cot=True).rstrip("\n"))
        ranked = sorted(cands, key=lambda c: preference_key(task, ex, c), reverse=True)
        keys = [preference_key(task, ex, c) for c in ranked]
        if keys[0] == keys[-1]:
            continue
        pairs.append(Pair(prompts[i], ranked[0], ranked[-1]))
        a, b = sorted(rng.sample(range(len(ranked)), 2))
        if keys[a] != keys[b] and (a, b) != (0, len(ranked) - 1):
            pairs.append(Pair(prompts[i], ranked[a], ranked[b]))
    return pairs


def load_policy_and_pairs(cfg, init, no_pairs_hint: str):
    """(policy, tokenizer, device, train pairs, held-out pairs) for a preference-training config (RM or DPO):
    the policy at `init` samples k candidates per prompt and ranks them (correct, well-formed, concise)."""
    from emergelab.runs import load_model, resolve_device
    from emergelab.tasks.registry import get_task

    cfg.validate()
    device = resolve_device(cfg.device)
    policy, tok, _ = load_model(init, device=str(device))
    task = get_task(cfg.task)
    train = preference_pairs(policy, tok, task, cfg.n_prompts, cfg.k, "train", cfg.template, cfg.max_new_tokens,
                             cfg.seed)
    test = preference_pairs(policy, tok, task, cfg.n_test_prompts, cfg.k, "test", cfg.template,
                            cfg.max_new_tokens, cfg.seed + 1)
    if not train or not test:
        raise UserError(no_pairs_hint)
    return policy, tok, device, train, test
