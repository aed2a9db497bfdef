"""Batched sampling with a KV cache: many prompts of different lengths, several samples each, seeded.

Prompts are left-padded into one batch; each prompt is prefilled once and its cache copied to its
`num_samples` rows. Returned log-probs are those of the sampled tokens under the model's own
(temperature 1, untruncated) distribution, log softmax(logits) — the quantity RL objectives need —
not under the temperature/top-k/top-p distribution actually sampled from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from emergelab.errors import UserError
from emergelab.model.gpt import GPT, KVCache

# below this a positive temperature makes logits / T overflow float32 into inf/NaN
MIN_TEMPERATURE = 1e-4


@dataclass
class SamplingParams:
    """How to sample; `validate()` refuses settings that would fail deep inside the sampler."""

    max_new_tokens: int = 64
    temperature: float = 1.0  # 0 = greedy (argmax)
    top_k: int = 0  # 0 = no top-k truncation
    top_p: float = 1.0  # nucleus sampling (Holtzman et al. 2020); 1.0 = off
    stop_token_ids: tuple[int, ...] = ()
    stop_strings: tuple[str, ...] = ()  # need a tokenizer
    seed: int = 0
    num_samples: int = 1  # completions per prompt
    logprobs: bool = True  # False: Completion.logprobs stays empty (greedy decoding then skips the softmax)

    def validate(self) -> SamplingParams:
        if self.max_new_tokens < 1:
            raise UserError(f"max_new_tokens: {self.max_new_tokens} — must be >= 1")
        if not (self.temperature == 0 or MIN_TEMPERATURE <= self.temperature < float("inf")):
            raise UserError(f"temperature: {self.temperature} — must be 0 (greedy) or a finite number >= "
                            f"{MIN_TEMPERATURE}")
        if self.top_k < 0:
            raise UserError(f"top_k: {self.top_k} — must be >= 0 (0 = off)")
        if not 0 < self.top_p <= 1:
            raise UserError(f"top_p: {self.top_p} — must be in (0, 1] (1 = off)")
        if self.num_samples < 1:
            raise UserError(f"num_samples: {self.num_samples} — must be >= 1")
        return self


@dataclass
class Completion:
    """One sampled continuation. `tokens` include the stop token / the token that completed a stop string
    (finish_reason "stop"); callers that show text cut it at the stop string themselves."""

    prompt_index: int
    tokens: list[int]
    logprobs: list[float]
    finish_reason: Literal["stop", "length"]


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set to -inf every logit outside the top-k and outside the smallest set with probability >= top_p."""
    if top_k > 0 and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # mass before this token already reaches top_p
        drop[..., 0] = False
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def sample_next(logits: torch.Tensor, params: SamplingParams, gen: torch.Generator) -> torch.Tensor:
    """(B, V) float logits -> (B,) sampled ids."""
    if params.temperature == 0:
        return logits.argmax(-1)
    probs = filter_logits(logits / params.temperature, params.top_k, params.top_p).softmax(-1)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


@torch.inference_mode()
def generate(model: GPT, prompts: list[list[int]], params: SamplingParams | None = None,
             tokenizer=None) -> list[Completion]:
    """Sample `params.num_samples` completions for each prompt; returned prompt-major
    (prompt 0's samples, then prompt 1's, ...). The device follows the model."""
    p = (params or SamplingParams()).validate()
    if not prompts or any(len(x) == 0 for x in prompts):
        raise UserError("prompts: every prompt needs at least one token — add a <bos> token")
    if p.stop_strings and tokenizer is None:
        raise UserError("stop_strings: need a tokenizer to decode text — pass tokenizer=...")
    longest = max(len(x) for x in prompts)
    if longest + p.max_new_tokens > model.cfg.block_size:
        raise UserError(f"max_new_tokens: prompt ({longest} tokens) + {p.max_new_tokens} new tokens exceed "
                        f"model.block_size={model.cfg.block_size} — shorten the prompt or lower it")
    was_training = model.training
    model.eval()
    dev = model.tok_emb.weight.device
    gen = torch.Generator(device=dev).manual_seed(p.seed)

    # left-pad so every prompt's last token sits in the last column
    P, n = len(prompts), p.num_samples
    pad = torch.tensor([longest - len(x) for x in prompts], device=dev)
    idx = torch.tensor([[0] * (longest - len(x)) + list(x) for x in prompts], device=dev)
    cache = KVCache(model.cfg, P, longest + p.max_new_tokens, dev, model.tok_emb.weight.dtype,
                    pad_lens=pad if pad.any() else None)
    logits = model(idx, cache=cache, last_logits_only=True).logits[:, -1].float()
    if n > 1:
        cache = cache.repeat_interleave(n)
        logits = logits.repeat_interleave(n, dim=0)

    B, N = P * n, p.max_new_tokens
    out_tok = torch.zeros(B, N, dtype=torch.long, device=dev)
    out_lp = torch.zeros(B, N, device=dev)
    length, finish = [N] * B, ["length"] * B
    active = torch.arange(B, device=dev)  # rows of the full batch still being generated
    rows = list(range(B))
    stop_ids = torch.tensor(sorted(set(p.stop_token_ids)), device=dev, dtype=torch.long)
    texts: list[list[int]] = [[] for _ in range(B)] if p.stop_strings else []
    # a new match must end in the newest token, so decoding a tail window suffices (<= 4 tokens per char)
    window = 4 * max((len(s) for s in p.stop_strings), default=0) + 4
    for step in range(N):
        nxt = sample_next(logits, p, gen)
        if len(rows) == B:  # nothing finished yet: a plain column write
            out_tok[:, step] = nxt
        else:
            out_tok[active, step] = nxt
        if p.logprobs:  # log softmax at one id: logit − logsumexp, without materialising (B, V) log-probs
            lp = logits.gather(-1, nxt[:, None]).squeeze(-1) - logits.logsumexp(-1)
            if len(rows) == B:
                out_lp[:, step] = lp
            else:
                out_lp[active, step] = lp
        done = torch.isin(nxt, stop_ids).tolist() if len(stop_ids) else []
        if p.stop_strings:
            done = done or [False] * len(rows)
            for j, (r, t) in enumerate(zip(rows, nxt.tolist())):
                texts[r].append(t)
                tail = tokenizer.decode(texts[r][-window:])
                done[j] = done[j] or any(s in tail for s in p.stop_strings)
        for r, d in zip(rows, done):
            if d:
                length[r], finish[r] = step + 1, "stop"
        if step == N - 1 or (done and all(done)):
            break
        if any(done):  # finished rows leave the batch
            keep = torch.tensor([not d for d in done], device=dev)
            rows = [r for r, d in zip(rows, done) if not d]
            active, nxt = active[keep], nxt[keep]
            cache.select(keep.nonzero().squeeze(-1))
        logits = model.decode_step(nxt, cache).float()
    toks, lps = out_tok.tolist(), out_lp.tolist() if p.logprobs else [[]] * B
    model.train(was_training)
    return [Completion(r // n, toks[r][: length[r]], lps[r][: length[r]], finish[r])  # type: ignore[arg-type]
            for r in range(B)]
