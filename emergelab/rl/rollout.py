"""Rollouts: sampling groups of completions behind a backend interface, and re-scoring them.

`RolloutBackend` is the one seam between the RL loop and generation. `LocalBackend` uses emergelab's
own batched KV-cache sampler with `num_samples=group_size`, so each prompt is prefilled once and its
cache copied to the group's rows.

A vLLM backend (GPU) plugs in here by implementing the same two methods:
  * `generate`: `vllm.LLM(model=EXPORTED_HF_DIR).generate(prompt_token_ids, vllm.SamplingParams(
    n=group_size, max_tokens=..., temperature=..., stop_token_ids=..., seed=...))`, mapping each
    RequestOutput's outputs to `Completion(prompt_index, token_ids, logprobs, finish_reason)`;
  * `sync_weights`: push the trainer's weights after each optimizer step, e.g. by converting the
    state dict with `emergelab.model.hf` names and calling the engine's `model.load_weights(...)`.
The loop never uses the sampler's log-probs for the loss (it recomputes them with `sequence_logprobs`),
so a backend whose numerics differ slightly from the trainer's cannot bias the gradient.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

from emergelab.model import GPT, Completion, KVCache, SamplingParams, generate


class RolloutBackend(Protocol):
    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        """`params.num_samples` completions per prompt, prompt-major."""
        ...

    def sync_weights(self, model: GPT) -> None:
        """Make the next `generate` sample from `model`'s current weights."""
        ...


class LocalBackend:
    """Sampling with the policy itself (same weights object, so syncing is free)."""

    def __init__(self, model: GPT, tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        return generate(self.model, prompts, params, tokenizer=self.tokenizer)

    def sync_weights(self, model: GPT) -> None:
        self.model = model


def pack_sequences(prompts: list[list[int]], completions: list[list[int]], pad_id: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded `prompt + completion` rows for a full forward pass.

    Returns (idx (N, S), targets (N, S) — the next token at each position, completion_mask (N, S) — 1
    where the *target* is a completion token). Right padding leaves every real position's causal
    context untouched, so no attention mask is needed.
    """
    rows = [p + c for p, c in zip(prompts, completions)]
    S = max(len(r) for r in rows)
    idx = torch.full((len(rows), S), pad_id, dtype=torch.long)
    targets = torch.full((len(rows), S), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), S), dtype=torch.bool)
    for i, (p, r) in enumerate(zip(prompts, rows)):
        idx[i, : len(r)] = torch.tensor(r)
        targets[i, : len(r) - 1] = torch.tensor(r[1:])
        mask[i, len(p) - 1 : len(r) - 1] = True
    return idx, targets, mask


def length_buckets(lengths: list[int], max_rows: int = 0, overhead: int = 256
                   ) -> list[tuple[torch.Tensor, int]]:
    """Split rows into micro-batches of similar length, each trimmed to its own longest row.

    Completions of one rollout batch vary from 1 token to max_new_tokens, so one batch padded to the
    longest row spends most of its forward/backward on padding. Rows are sorted by length and cut
    into contiguous runs minimising  Σ rows·longest + overhead·(number of runs)  (exact dynamic
    program; `overhead` is the fixed cost of one more forward/backward, in tokens), with at most
    `max_rows` rows per run (0 = no limit). Returns [(row indices, columns to keep)]. Right padding
    means a row's real positions never see the trimmed columns, so log-probs are unchanged.
    """
    n = len(lengths)
    order = sorted(range(n), key=lambda i: (lengths[i], i))
    ls = [lengths[i] for i in order]
    cap = max_rows if max_rows > 0 else n
    best = [0.0] + [float("inf")] * n  # best[j]: cost of the first j sorted rows
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(max(0, j - cap), j):
            c = best[i] + (j - i) * ls[j - 1] + overhead
            if c < best[j]:
                best[j], cut[j] = c, i
    runs, j = [], n
    while j > 0:
        runs.append((cut[j], j))
        j = cut[j]
    return [(torch.tensor(order[i:j]), ls[j - 1]) for i, j in reversed(runs)]


def sequence_logprobs(model: GPT, idx: torch.Tensor, targets: torch.Tensor, with_entropy: bool = False,
                      start: int = 0, prompt_lens: list[int] | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log π(target_t | idx_≤t) per position (N, S), and optionally the entropy of π at each position.

    Positions before `start` (prompt positions no loss reads) get no logits and are returned as 0.
    With `prompt_lens` (row i's prompt is idx[i, :prompt_lens[i]]) rows that share a prompt — a GRPO
    group — run it once (`shared_prompt_logprobs`); then only positions from each row's last prompt
    token on are filled, which are the ones a completion mask reads.
    """
    if prompt_lens is not None:
        return shared_prompt_logprobs(model, idx, targets, prompt_lens, with_entropy)
    logits = model(idx, logits_from=start).logits.float()
    return _gather(logits, targets[:, start:], with_entropy, start)


def _gather(logits: torch.Tensor, targets: torch.Tensor, with_entropy: bool, start: int
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
    logp_all = logits.log_softmax(-1)
    logp = F.pad(logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1), (start, 0))
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = F.pad(-(logp_all.exp() * logp_all).sum(-1), (start, 0))
    return logp, entropy


def shared_prompt_logprobs(model: GPT, idx: torch.Tensor, targets: torch.Tensor, prompt_lens: list[int],
                           with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`sequence_logprobs` with each distinct prompt run once (prefix sharing), gradients included.

    The distinct prompts are left-padded into one forward that fills a KV cache; its rows are copied to
    the completion rows (index_select, so gradients flow back into the prompt's keys and values), and
    the completions run on top. The same function of the weights as the full forward — only the float
    summation order differs (tests). A GRPO group of G samples thus computes its prompt once, not G times.
    """
    N, S = idx.shape
    dev = idx.device
    prompts: dict[tuple[int, ...], int] = {}
    row_prompt = [prompts.setdefault(tuple(idx[i, :n].tolist()), len(prompts)) for i, n in enumerate(prompt_lens)]
    L = max(len(p) for p in prompts)
    # scored positions of row i: n_i − 1 .. S − 1 (its last prompt token onwards); T of them at most
    T = S - min(prompt_lens) + 1
    pad = torch.tensor([L - len(p) for p in prompts], device=dev)
    pidx = torch.tensor([[0] * (L - len(p)) + list(p) for p in prompts], device=dev)
    cache = KVCache(model.cfg, len(prompts), L + T - 1, dev, model.tok_emb.weight.dtype,
                    pad_lens=pad if pad.any() else None)
    first = model(pidx, cache=cache, last_logits_only=True).logits  # (P, 1, V): predicts completion token 0
    rows = torch.tensor(row_prompt, device=dev)
    cache.k = [t.index_select(0, rows) for t in cache.k]
    cache.v = [t.index_select(0, rows) for t in cache.v]
    if cache.pad_lens is not None:
        cache.pad_lens = cache.pad_lens.index_select(0, rows)
    where = torch.tensor(prompt_lens, device=dev)[:, None] - 1 + torch.arange(T, device=dev)  # (N, T)
    logits = first.index_select(0, rows)
    if T > 1:  # completion tokens 0 .. T−2 as input, on top of their prompt's cache
        inputs = idx.gather(1, (where[:, 1:]).clamp(max=S - 1))
        logits = torch.cat([logits, model(inputs, cache=cache).logits], dim=1)  # (N, T, V)
    logp_c, ent_c = _gather(logits.float(), targets.gather(1, where.clamp(max=S - 1)), with_entropy, 0)
    # back to the packed layout: position n_i − 1 + j holds log π(completion token j); other positions 0
    logp = logp_c.new_zeros(N, S + T).scatter(1, where, logp_c)[:, :S]
    entropy = None if ent_c is None else ent_c.new_zeros(N, S + T).scatter(1, where, ent_c)[:, :S]
    return logp, entropy
