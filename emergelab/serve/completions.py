"""POST /v1/completions, as the OpenAI legacy API and vLLM define it, including what evaluation harnesses use.

- `prompt`: a string, a list of strings, a list of token ids, or a list of lists of token ids. A text
  prompt gets the tokenizer's document start in front (`<eos>` for our models, as in pretraining and
  `emergelab eval`; vLLM likewise adds a tokenizer's BOS), unless the text already begins with it;
  token-id prompts are taken exactly as given.
- `logprobs: k` returns, per token, its log-probability and the k most likely alternatives
  (`top_logprobs`); `echo: true` puts the prompt in front of the completion, prompt tokens included in
  `logprobs` (the first one has none: nothing predicts it). `max_tokens: 0` with `echo` scores the prompt
  only. This is how lm-evaluation-harness's `local-completions` computes log-likelihoods.
"""

from __future__ import annotations

import itertools
import time
import uuid
from contextlib import aclosing

import torch
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from emergelab.serve.events import SSE_HEADERS, collect, on_model_thread, sse, started, stream_error, usage
from emergelab.serve.http_errors import ApiError
from emergelab.serve.schemas import CompletionRequest


@torch.inference_mode()
def prompt_logprobs(model, tokenizer, ids: list[int], top: int) -> list[dict]:
    """Per prompt token: its text, log p(token | tokens before it) (None for the first) and the `top` most
    likely tokens at that position as {text: logprob} (None for the first)."""
    device = model.lm_head.weight.device
    logp = model(torch.tensor([ids], device=device)).logits[0].float().log_softmax(-1)
    pieces = tokenizer.token_pieces(ids)
    out = [{"text": pieces[0], "logprob": None, "top": None}]
    for t in range(1, len(ids)):
        row = logp[t - 1]
        alts = {}
        if top:
            vals, idx = row.topk(min(top, row.numel()))
            alts = {tokenizer.decode([j]): v for j, v in zip(idx.tolist(), vals.tolist())}
        out.append({"text": pieces[t], "logprob": float(row[ids[t]]), "top": alts})
    return out


def logprobs_block(entries: list[dict], start: int = 0) -> dict:
    """The legacy `logprobs` object of a choice from per-token entries {text, logprob, top}."""
    offsets = itertools.accumulate([start] + [len(e["text"]) for e in entries[:-1]])
    return {"tokens": [e["text"] for e in entries], "token_logprobs": [e["logprob"] for e in entries],
            "top_logprobs": [e["top"] for e in entries], "text_offset": list(offsets) if entries else []}


def _generated(ev: dict) -> dict:
    return {"text": ev["text"], "logprob": ev["logprob"], "top": dict(ev["top"])}


def _token_prompts(prompt) -> list[list[int]] | None:
    """The prompt as token-id lists when it is given as ids, else None (text)."""
    if isinstance(prompt, list) and prompt and all(isinstance(x, int) for x in prompt):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(x, list) for x in prompt):
        return prompt
    return None


async def prompt_ids(s, prompt) -> list[list[int]]:
    """Token ids of every prompt in the request (see the module docstring for the document start)."""
    tok, adm = s.engine.tokenizer, s.admission
    as_ids = _token_prompts(prompt)
    if as_ids is not None:
        vocab = tok.vocab_size
        for i, ids in enumerate(as_ids):
            if not ids:
                raise ApiError(400, f"prompt[{i}]: empty token list — send at least one token id", "prompt")
            bad = [t for t in ids if not 0 <= t < vocab]
            if bad:
                raise ApiError(400, f"prompt[{i}]: token ids {bad[:5]} are outside this model's vocabulary "
                               f"0..{vocab - 1}", "prompt")
            if len(ids) > adm.max_prompt:
                raise ApiError(400, f"prompt[{i}]: {len(ids)} tokens is longer than the limit of "
                               f"{adm.max_prompt} — shorten it", "prompt", code="context_length_exceeded")
        return as_ids
    texts = [prompt] if isinstance(prompt, str) else prompt
    if not texts:
        raise ApiError(400, "prompt: empty list — send a string, a list of strings or token ids", "prompt")
    start = tok.doc_start_id
    out = []
    for text in texts:
        ids = await adm.encode(text, "prompt", adm.max_prompt - (start is not None))
        out.append(ids if start is None or ids[0] == start else [start, *ids])
    return out


def add_completions_route(app: FastAPI, s) -> None:
    """Register POST /v1/completions on `app`; `s` is the app's `Served` (engine, admission, limits)."""

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest, request: Request):
        s.admission.check_model(req.model)
        if req.echo and req.stream:
            raise ApiError(400, "echo: not supported with stream — set stream to false", "echo")
        if req.max_tokens == 0 and not req.echo:
            raise ApiError(400, "max_tokens: 0 generates nothing — use it with echo: true to score the prompt, "
                           "or ask for at least 1", "max_tokens")
        top = req.logprobs or 0
        if top > s.limits.max_top_logprobs:
            raise ApiError(400, f"logprobs: {top} is above the limit of {s.limits.max_top_logprobs}", "logprobs")
        s.admission.check_stop(req.stop_list())
        prompts = await prompt_ids(s, req.prompt)
        s.admission.check_choices(req.n, len(prompts))
        head = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time()),
                "model": s.model_name}
        n_prompt = sum(map(len, prompts))

        if req.max_tokens == 0:
            echoed = [await _score(s, ids, top) for ids in prompts]
            choices = [{"text": "", "finish_reason": "length", "tokens": []}] * (len(prompts) * req.n)
            return head | {"usage": usage(n_prompt, 0),
                           "choices": _choices(choices, echoed, req.n, req.logprobs is not None)}

        max_tokens = [s.admission.room(p, req.max_tokens, s.limits.default_max_tokens) for p in prompts]
        jobs = s.admission.jobs(req, prompts, max_tokens, top)
        if not req.stream:
            echoed = [await _score(s, ids, top) for ids in prompts] if req.echo else None
            choices, use = await collect(s.engine, jobs, n_prompt, request)
            return head | {"usage": use, "choices": _choices(choices, echoed, req.n, req.logprobs is not None)}

        events = await started(s.engine, jobs)

        async def stream():
            async with aclosing(events):
                async for i, ev in events:
                    if ev["type"] == "token" and ev["text"]:
                        lp = logprobs_block([_generated(ev)]) if req.logprobs is not None else None
                        yield sse(head | {"choices": [{"index": i, "text": ev["text"], "finish_reason": None,
                                                       "logprobs": lp}]})
                    elif ev["type"] == "done":
                        yield sse(head | {"choices": [{"index": i, "text": "", "logprobs": None,
                                                       "finish_reason": ev["finish_reason"]}]})
                    elif ev["type"] == "error":
                        yield stream_error(ev)
                yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


async def _score(s, ids: list[int], top: int) -> list[dict]:
    """prompt_logprobs on the model thread (never concurrently with decoding)."""
    return await on_model_thread(s.engine, lambda: prompt_logprobs(s.engine.model, s.engine.tokenizer, ids, top))


def _choices(choices: list[dict], echoed: list[list[dict]] | None, n: int, with_logprobs: bool) -> list[dict]:
    """Response choices (prompt-major, n per prompt), the prompt's tokens in front when echoed."""
    out = []
    for i, c in enumerate(choices):
        entries = (echoed[i // n] if echoed else []) + [_generated(ev) for ev in c["tokens"]]
        prefix = "".join(e["text"] for e in echoed[i // n]) if echoed else ""
        out.append({"index": i, "text": prefix + c["text"], "finish_reason": c["finish_reason"],
                    "logprobs": logprobs_block(entries) if with_logprobs else None})
    return out
