"""Turning a validated request body into engine jobs, enforcing the server's `Limits` on the way.

Every limit is checked before the work it protects: the number of choices and stop strings before any
tokenization, a cheap character-count bound before a long text is tokenized (and tokenization itself
runs off the event loop, so a long prompt never stalls other clients' streams).
"""

from __future__ import annotations

import asyncio
import itertools

from emergelab.serve.engine import GenJob
from emergelab.serve.http_errors import ApiError
from emergelab.serve.schemas import Limits


def max_token_chars(tokenizer) -> int:
    """The most characters one token can stand for (its longest vocabulary entry, in bytes for byte-level BPE).

    A text of c characters needs at least c / this many tokens, which bounds its length without tokenizing.
    """
    return max((len(t) for t in tokenizer.hf.get_vocab(with_added_tokens=True)), default=1) or 1


class Admission:
    """Checks one request against the limits and builds its jobs. One per app; holds the default-seed counter."""

    def __init__(self, tokenizer, block_size: int, limits: Limits, model_name: str):
        self.tok, self.block_size, self.lim, self.model_name = tokenizer, block_size, limits, model_name
        self.max_prompt = min(limits.max_prompt_tokens or block_size - 1, block_size - 1)
        self.token_chars = max_token_chars(tokenizer)
        self.seeds = itertools.count(0)  # default seeds: deterministic per server start, distinct per request

    def check_model(self, name: str | None) -> None:
        if name not in (None, "", self.model_name):
            raise ApiError(404, f"model: {name!r} is not served here — use '{self.model_name}' (see /v1/models)",
                           "model", code="model_not_found")

    def check_choices(self, n: int, n_prompts: int) -> None:
        if n * n_prompts > self.lim.max_n:
            raise ApiError(400, f"n: {n} choices x {n_prompts} prompts is more than the limit of {self.lim.max_n}",
                           "n")

    def check_stop(self, stop: tuple[str, ...]) -> None:
        if len(stop) > self.lim.max_stop:
            raise ApiError(400, f"stop: {len(stop)} stop strings is more than the limit of {self.lim.max_stop}",
                           "stop")
        long = [s for s in stop if len(s) > self.lim.max_stop_chars]
        if long:
            raise ApiError(400, f"stop: a stop string of {len(long[0])} characters is longer than the limit of "
                           f"{self.lim.max_stop_chars}", "stop")

    async def encode(self, text: str, field: str = "prompt", limit: int | None = None) -> list[int]:
        """Token ids of `text`, refusing (before tokenizing) a text that cannot fit in `limit` tokens."""
        limit = self.max_prompt if limit is None else limit
        if len(text) > limit * self.token_chars:
            raise ApiError(400, f"{field}: {len(text)} characters cannot fit in the limit of {limit} tokens — "
                           "shorten it", field, code="context_length_exceeded")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, f"{field}: the text holds a lone surrogate (e.g. \\ud800), which is not valid "
                           "Unicode — send valid UTF-8 text", field) from None
        ids = await asyncio.to_thread(self.tok.encode, text) if len(text) > 2000 else self.tok.encode(text)
        if not ids:
            raise ApiError(400, f"{field}: it encodes to no tokens — send some text", field)
        if len(ids) > limit:
            raise ApiError(400, f"{field}: {len(ids)} tokens is longer than the limit of {limit} — shorten it",
                           field, code="context_length_exceeded")
        return ids

    def room(self, ids: list[int], asked: int | None, default: int) -> int:
        """max_tokens for this prompt: as asked (if it fits) or the default clipped to the room left."""
        left = self.block_size - len(ids)
        if asked is None:
            return max(1, min(default, self.lim.max_tokens, left))
        if asked > self.lim.max_tokens:
            raise ApiError(400, f"max_tokens: {asked} is above this server's limit of {self.lim.max_tokens}",
                           "max_tokens")
        if asked > left:
            raise ApiError(400, f"max_tokens: prompt ({len(ids)} tokens) + max_tokens ({asked}) exceeds the "
                           f"context length {self.block_size} — ask for at most {left}", "max_tokens",
                           code="context_length_exceeded")
        return asked

    def jobs(self, req, prompts: list[list[int]], max_tokens: list[int], top_logprobs: int) -> list[GenJob]:
        """n jobs per prompt (prompt-major), seeds seed, seed+1, ... (a fresh default seed when none is given)."""
        self.check_choices(req.n, len(prompts))
        self.check_stop(req.stop_list())
        if top_logprobs > self.lim.max_top_logprobs:
            raise ApiError(400, f"top_logprobs: {top_logprobs} is above the limit of {self.lim.max_top_logprobs}",
                           "top_logprobs")
        seed = next(self.seeds) if req.seed is None else req.seed
        return [GenJob(prompt_ids=p, max_tokens=m, temperature=req.temperature, top_p=req.top_p,
                       top_k=req.top_k, seed=seed + k, stop=req.stop_list(), top_logprobs=top_logprobs)
                for p, m in zip(prompts, max_tokens) for k in range(req.n)]
