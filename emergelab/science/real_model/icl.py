"""In-context learning on a real model: 0-shot vs k-shot on mappings that exist only in the prompt.

Tasks: the invented lexicon ("puzb -> red", a fresh random lexicon per item) and a random label permutation
(numbers in two ranges named by meaningless labels per item; Wei et al. 2023). The answer is the most
probable of the item's own options (the lexicon's target words, or the two labels), so chance is 1/size.
The same items are scored at every k, so k-shot minus 0-shot is paired; intervals: Wilson per k and a
paired bootstrap for the gain.
"""

from __future__ import annotations

from emergelab.science.real_model.scoring import bootstrap_ci, item_option_logprobs, proportion

TASKS = {"lexicon": ("lexicon:size=4", "->"), "labels": ("labels:classes=2", "=>")}
SHOTS = (0, 1, 2, 4, 8)


def _query(ex) -> str:
    return ex.meta["query"] if "query" in ex.meta else str(ex.meta["x"])


def _options(ex) -> list[str]:
    return [t for _, t in ex.meta["mapping"]] if "mapping" in ex.meta else list(ex.meta["labels"])


def prompt_text(ex, shots: list, arrow: str) -> str:
    """k "query arrow answer" lines, then the question's "query arrow"."""
    lines = [f"{_query(s)} {arrow} {s.answer}" for s in shots]
    return "\n".join([*lines, f"{_query(ex)} {arrow}"])


def measure(model, tok, n: int = 32, shots: tuple[int, ...] = SHOTS, seed: int = 0) -> dict:
    """Accuracy per task and k (Wilson), and the paired gain of the largest k over 0 shots (bootstrap)."""
    from emergelab.tasks.registry import get_task

    out = {}
    for name, (spec, arrow) in TASKS.items():
        task = get_task(spec)
        exs = task.generate(n, "test", seed=seed)
        per_k = {}
        for k in shots:
            prompts = [tok.encode(prompt_text(ex, task.shots_for(ex, k, seed=seed), arrow)) for ex in exs]
            opts = [_options(ex) for ex in exs]
            scores = item_option_logprobs(model, prompts, [[tok.encode(" " + o) for o in os] for os in opts])
            per_k[k] = [float(os[max(range(len(os)), key=s.__getitem__)] == ex.answer)
                        for os, s, ex in zip(opts, scores, exs)]
        top = max(shots)
        gain = [a - b for a, b in zip(per_k[top], per_k[0])]
        g_ci = bootstrap_ci(gain, seed=seed)
        out[name] = {"chance": task.chance,
                     "accuracy": {str(k): proportion(int(sum(v)), len(v)) for k, v in per_k.items()},
                     "gain": {"k": top, "value": sum(gain) / len(gain), "ci95": g_ci, "shown": g_ci[0] > 0},
                     "example_prompt": prompt_text(exs[0], task.shots_for(exs[0], 2, seed=seed), arrow)}
    return out
