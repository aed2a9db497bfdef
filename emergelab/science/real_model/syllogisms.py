"""Syllogisms on a real model: form (nonce words) vs content (belief-consistent vs belief-violating items).

Items are the `syllogism` task's one-step yes/no items, answered by the log-probability of " yes" vs
" no" after the question. Accuracy is chance-corrected (2·acc − 1 for two options). The content effect is
belief-consistent minus belief-violating accuracy with a bootstrap interval; pretrained LMs are reported to
show a human-like one (Dasgupta et al. 2022, "Language models show human-like content effects on
reasoning"): they are more accurate when logic and world knowledge agree.
"""

from __future__ import annotations

from emergelab.science.real_model.scoring import difference_ci, mean_with_ci, option_logprobs, proportion

CONDITIONS = {"nonce": "syllogism:hops=1,vocab=nonce,distractors=0",
              "consistent": "syllogism:hops=1,vocab=real,content=agree,distractors=0",
              "violating": "syllogism:hops=1,vocab=real,content=conflict,distractors=0"}
OPTIONS = ("yes", "no")


def prompt_text(question: str, options: tuple[str, ...] = OPTIONS) -> str:
    """The premises and question, an instruction naming the options, and "Answer:"."""
    listed = ", ".join(options[:-1]) + f" or {options[-1]}"
    return f"{question[0].upper()}{question[1:]}\nAnswer with {listed}.\nAnswer:"


def items(spec: str, n: int, labels: tuple[str, ...], seed: int = 0) -> list:
    """n held-out items of `spec` whose label is in `labels`, labels as balanced as the generator allows."""
    from emergelab.tasks.registry import get_task

    pool = [ex for ex in get_task(spec).generate(40 * n, "test", seed=seed) if ex.answer in labels]
    per = {lab: [ex for ex in pool if ex.answer == lab] for lab in labels}
    out = []
    for i in range(n):
        group = per[labels[i % len(labels)]]
        if i // len(labels) < len(group):
            out.append(group[i // len(labels)])
    return out


def option_scores(model, tok, examples: list, options: tuple[str, ...]):
    """(N, K) log-probabilities of each option (with a leading space, as it would follow "Answer:")."""
    prompts = [tok.encode(prompt_text(ex.prompt, options)) for ex in examples]
    return option_logprobs(model, prompts, [tok.encode(" " + o) for o in options])


def choose(model, tok, examples: list, options: tuple[str, ...]) -> list[str]:
    """The most probable option per example."""
    return [options[i] for i in option_scores(model, tok, examples, options).argmax(-1).tolist()]


def measure(model, tok, n: int = 48, seed: int = 0) -> dict:
    """Accuracy (Wilson), chance-corrected accuracy and the yes-rate per condition; the content effect."""
    out, correct, margin = {}, {}, {}
    for name, spec in CONDITIONS.items():
        exs = items(spec, n, OPTIONS, seed)
        scores = option_scores(model, tok, exs, OPTIONS)
        got = [OPTIONS[i] for i in scores.argmax(-1).tolist()]
        correct[name] = [float(g == ex.answer) for g, ex in zip(got, exs)]
        # log p(right) − log p(wrong): graded belief, still informative when the argmax is always one option
        margin[name] = [float(sc[OPTIONS.index(ex.answer)] - sc[1 - OPTIONS.index(ex.answer)])
                        for sc, ex in zip(scores, exs)]
        acc = proportion(int(sum(correct[name])), len(exs))
        out[name] = {"accuracy": acc, "chance_corrected": 2 * acc["value"] - 1,
                     "yes_rate": sum(g == "yes" for g in got) / len(got),
                     "margin": mean_with_ci(margin[name], seed=seed),
                     "examples": [{"prompt": ex.prompt, "label": ex.answer, "chose": g}
                                  for ex, g in list(zip(exs, got))[:3]]}
    effect = difference_ci(correct["consistent"], correct["violating"], seed=seed)
    out["content_effect"] = {**effect, "shown": effect["ci95"][0] > 0}
    # descriptive, added after the first run answered "no" to every item (see docs/real_model.md)
    out["content_effect_margin"] = difference_ci(margin["consistent"], margin["violating"], seed=seed)
    return out
