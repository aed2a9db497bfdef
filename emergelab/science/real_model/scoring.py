"""Shared tools of the real-model measurements: option log-probabilities and intervals from the data.

Multiple-choice scoring (as evaluation harnesses do it): the model's answer is the option whose tokens are
most probable after the prompt, log P(option | prompt) = Σ_t log p(option_t | prompt, option_<t). Rows are
right-padded: in a causal model padding after a sequence cannot change the sequence's own positions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from emergelab.eval.metrics import wilson_interval

N_BOOT = 2000


@torch.no_grad()
def sequence_logprob_sums(model, seqs: Sequence[Sequence[int]], starts: Sequence[int],
                          batch_size: int = 16) -> list[float]:
    """Σ log p(seq[t] | seq[:t]) over t >= starts[i] (starts[i] >= 1), per sequence."""
    out: list[float] = []
    for b in range(0, len(seqs), batch_size):
        rows, first = list(seqs[b:b + batch_size]), list(starts[b:b + batch_size])
        width = max(map(len, rows))
        idx = torch.tensor([list(r) + [0] * (width - len(r)) for r in rows])
        k = min(first) - 1  # the head is only needed from the first scored token's predecessor on
        logp = model(idx, logits_from=k).logits.float().log_softmax(-1)  # (B, width-k, V)
        for i, (r, s) in enumerate(zip(rows, first)):
            pos = torch.arange(s, len(r))
            out.append(float(logp[i, pos - 1 - k, torch.tensor(r[s:])].sum()))
    return out


def option_logprobs(model, prompts: Sequence[Sequence[int]], options: Sequence[Sequence[int]],
                    batch_size: int = 16) -> torch.Tensor:
    """(N, K) log P(option k | prompt n), every prompt scored against the same K token sequences.

    Options of one token are read off the prompt's next-token distribution (one forward per prompt);
    longer options add one forward each."""
    single = [k for k, o in enumerate(options) if len(o) == 1]
    multi = [k for k, o in enumerate(options) if len(o) > 1]
    scores = torch.full((len(prompts), len(options)), float("nan"))
    if single:
        lp = next_token_logprobs(model, prompts, batch_size)
        scores[:, single] = lp[:, [options[k][0] for k in single]]
    for k in multi:
        seqs = [list(p) + list(options[k]) for p in prompts]
        scores[:, k] = torch.tensor(sequence_logprob_sums(model, seqs, [len(p) for p in prompts], batch_size))
    return scores


def item_option_logprobs(model, prompts: Sequence[Sequence[int]], options: Sequence[Sequence[Sequence[int]]],
                         batch_size: int = 16) -> list[list[float]]:
    """Like `option_logprobs`, but prompt n has its own options `options[n]`."""
    lp = next_token_logprobs(model, prompts, batch_size)
    out = [[float(lp[n, o[0]]) if len(o) == 1 else float("nan") for o in opts] for n, opts in enumerate(options)]
    multi = [(n, k) for n, opts in enumerate(options) for k, o in enumerate(opts) if len(o) > 1]
    if multi:
        sums = sequence_logprob_sums(model, [list(prompts[n]) + list(options[n][k]) for n, k in multi],
                                     [len(prompts[n]) for n, _ in multi], batch_size)
        for (n, k), v in zip(multi, sums):
            out[n][k] = v
    return out


@torch.no_grad()
def next_token_logprobs(model, prompts: Sequence[Sequence[int]], batch_size: int = 16) -> torch.Tensor:
    """(N, V) log-probabilities of the token after each prompt."""
    rows = []
    for b in range(0, len(prompts), batch_size):
        chunk = list(prompts[b:b + batch_size])
        width, k = max(map(len, chunk)), min(map(len, chunk)) - 1
        idx = torch.tensor([list(p) + [0] * (width - len(p)) for p in chunk])
        logp = model(idx, logits_from=k).logits.float().log_softmax(-1)
        rows.append(torch.stack([logp[i, len(p) - 1 - k] for i, p in enumerate(chunk)]))
    return torch.cat(rows)


def proportion(successes: int, n: int) -> dict:
    """A share with its Wilson 95% interval."""
    lo, hi = wilson_interval(successes, n)
    return {"value": successes / n if n else float("nan"), "ci95": [lo, hi], "n": n}


def bootstrap_ci(values: Sequence[float], n_boot: int = N_BOOT, seed: int = 0) -> list[float]:
    """95% percentile bootstrap interval of the mean over items."""
    rng = random.Random(seed)
    vals = list(values)
    boots = sorted(sum(vals[rng.randrange(len(vals))] for _ in vals) / len(vals) for _ in range(n_boot))
    return [boots[int(0.025 * n_boot)], boots[int(0.975 * n_boot) - 1]]


def mean_with_ci(values: Sequence[float], seed: int = 0) -> dict:
    """Mean of per-item values with its bootstrap 95% interval."""
    vals = list(values)
    return {"value": sum(vals) / len(vals), "ci95": bootstrap_ci(vals, seed=seed), "n": len(vals)}


def difference_ci(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict:
    """mean(a) − mean(b) for two independent item sets, items resampled within each set."""
    rng = random.Random(seed)
    a, b = list(a), list(b)
    boots = sorted(sum(rng.choice(a) for _ in a) / len(a) - sum(rng.choice(b) for _ in b) / len(b)
                   for _ in range(N_BOOT))
    return {"value": sum(a) / len(a) - sum(b) / len(b),
            "ci95": [boots[int(0.025 * N_BOOT)], boots[int(0.975 * N_BOOT) - 1]], "n": [len(a), len(b)]}
