"""Multiple-choice scoring by log-probability: each answer option is scored by log p(option | prompt), as
evaluation harnesses score multiple-choice tasks, and the most probable option is the model's answer.

Generation-based scoring mixes two abilities: knowing the answer and writing the label. A model that
spells "cannot tell" wrong scores 0 under exact match whatever it believes; scored by choice it is judged
on which option it finds most probable. Accuracy is reported with chance — the larger of 1/k (k options)
and the share of the commonest correct answer (what a constant answer scores) — and chance-corrected,
(acc − chance) / (1 − chance): 0 at chance, 1 when always right.
"""

from __future__ import annotations

from typing import Any

from emergelab.data.chat import ANSWER_CLOSE, FORMAT_PREFIX, encode_prompt, render_prompt
from emergelab.errors import UserError
from emergelab.eval.harness import answer_logprobs
from emergelab.tasks.registry import get_task

SYLLOGISM_LABELS = ("yes", "no", "cannot tell", "contradiction")


def answer_options(task: Any) -> tuple[str, ...]:
    """The closed set of answers a task's items can have."""
    options = getattr(task, "answer_options", None)
    if callable(options):
        return tuple(options())
    if task.name == "syllogism":
        return ("yes", "no") if getattr(task, "content", "any") != "any" else SYLLOGISM_LABELS
    raise UserError(f"task {task.spec}: no closed set of answer options, so it cannot be scored by choice — "
                    "use `emergelab eval` (generation) instead")


def evaluate_choice(model, tokenizer, task_spec: str, n: int = 200, seed: int = 0, shots: int = 0,
                    split: str = "test") -> dict[str, Any]:
    """Accuracy by choice on `n` items: {accuracy, chance, chance_corrected, n, options, items (0/1)}."""
    task = get_task(task_spec)
    options = answer_options(task)
    examples = task.generate(n, split, seed=seed, allow_fewer=True)
    prompts = [encode_prompt(tokenizer, render_prompt(task, ex, shots=task.shots_for(ex, shots, seed=seed + i))
                             + FORMAT_PREFIX[False]) for i, ex in enumerate(examples)]
    # the closing tag makes each option a complete answer ("no" is not scored as the start of "no one")
    answers = [tokenizer.encode(o + ANSWER_CLOSE) for o in options]
    contexts = [p for p in prompts for _ in options]
    logps = answer_logprobs(model, tokenizer, contexts, answers * len(prompts))
    items, picked = [], []
    for i, ex in enumerate(examples):
        scores = logps[i * len(options):(i + 1) * len(options)]
        best = options[max(range(len(options)), key=scores.__getitem__)]
        picked.append(best)
        items.append(int(best == ex.answer))
    acc = sum(items) / len(items)
    answers_seen = [ex.answer for ex in examples]
    chance = max(1 / len(options), max(answers_seen.count(o) for o in options) / len(examples))
    return {"task": task.spec, "accuracy": acc, "chance": chance, "chance_corrected": (acc - chance) / (1 - chance),
            "n": len(items), "options": list(options), "items": items,
            "picked": {o: picked.count(o) / len(picked) for o in options}}
