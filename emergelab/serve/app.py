"""The OpenAI-compatible HTTP API and the web page, as a FastAPI app around one `Engine`.

Routes: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions (JSON or
server-sent events with `stream: true`), POST /api/inspect (probes for the page), GET /api/info,
GET /run/... (the run's report and plots), GET / (the page). Errors use OpenAI's shape
`{"error": {"message", "type", "param", "code"}}` so every OpenAI client reports them readably.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from emergelab.errors import UserError
from emergelab.eval.probes import inspect_text
from emergelab.serve.chat import ChatFormat
from emergelab.serve.engine import Engine, GenJob, QueueFull
from emergelab.serve.schemas import ChatRequest, CompletionRequest, InspectRequest, Limits

STATIC = Path(__file__).parent / "static"
RUN_FILES = ("report.html", "report.json", "eval.json", "config.yaml", "metrics.jsonl")  # served from /run/


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error",
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.code = status, message, param, kind, code


def _error(status: int, message: str, param=None, kind="invalid_request_error", code=None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)


def create_app(engine: Engine, chat_format: ChatFormat, model_name: str = "emergelab",
               limits: Limits | None = None, run_dir: str | Path | None = None) -> FastAPI:
    """The app serving `engine`. The caller owns the engine (and closes it)."""
    lim = limits or Limits()
    tok, cfg = engine.tokenizer, engine.model.cfg
    max_prompt = min(lim.max_prompt_tokens or cfg.block_size - 1, cfg.block_size - 1)
    seeds = itertools.count(0)  # default seeds: deterministic per server start, distinct per request
    run_path = Path(run_dir).resolve() if run_dir else None
    app = FastAPI(title="emergelab", version="0.1.0")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # ---- errors ----------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError):
        return _error(e.status, e.message, e.param, e.kind, e.code)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, e: UserError):
        return _error(400, str(e))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError):
        first = e.errors()[0]
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        param = ".".join(loc) or None
        if first.get("type") == "json_invalid":
            return _error(400, f"request body is not valid JSON ({first.get('ctx', {}).get('error', '')}) — "
                          "send a JSON object with Content-Type: application/json")
        if param is None:
            return _error(400, "request body must be a JSON object (Content-Type: application/json) — "
                          f"got something else ({first.get('msg')})")
        return _error(400, f"{param or 'body'}: {first.get('msg')}", param)

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > lim.max_body_bytes:
            return _error(413, f"request body is {size} bytes; the limit is {lim.max_body_bytes}")
        return await call_next(request)

    # ---- helpers ---------------------------------------------------------------------------------
    def check_model(name: str | None) -> None:
        if name not in (None, "", model_name):
            raise ApiError(404, f"model: '{name}' is not served here — use '{model_name}' (see /v1/models)",
                           "model", code="model_not_found")

    def encode(text: str) -> list[int]:
        ids = tok.encode(text)
        if not ids:
            raise ApiError(400, "prompt: it encodes to no tokens — send some text", "prompt")
        if len(ids) > max_prompt:
            raise ApiError(400, f"prompt: {len(ids)} tokens is longer than the limit of {max_prompt} — "
                           "shorten it", "prompt", code="context_length_exceeded")
        return ids

    def room(ids: list[int], asked: int | None, default: int) -> int:
        left = cfg.block_size - len(ids)
        if asked is None:
            return max(1, min(default, lim.max_tokens, left))
        if asked > lim.max_tokens:
            raise ApiError(400, f"max_tokens: {asked} is above this server's limit of {lim.max_tokens}",
                           "max_tokens")
        if asked > left:
            raise ApiError(400, f"max_tokens: prompt ({len(ids)} tokens) + max_tokens ({asked}) exceeds the "
                           f"context length {cfg.block_size} — ask for at most {left}", "max_tokens",
                           code="context_length_exceeded")
        return asked

    def make_jobs(req, prompts: list[list[int]], max_tokens: list[int], top_logprobs: int) -> list[GenJob]:
        if req.n * len(prompts) > lim.max_n:
            raise ApiError(400, f"n: {req.n} choices x {len(prompts)} prompts is more than the limit of "
                           f"{lim.max_n}", "n")
        if top_logprobs > lim.max_top_logprobs:
            raise ApiError(400, f"top_logprobs: {top_logprobs} is above the limit of {lim.max_top_logprobs}",
                           "top_logprobs")
        seed = next(seeds) if req.seed is None else req.seed
        return [GenJob(prompt_ids=p, max_tokens=m, temperature=req.temperature, top_p=req.top_p,
                       top_k=req.top_k, seed=seed + k, stop=req.stop_list(), top_logprobs=top_logprobs)
                for p, m in zip(prompts, max_tokens) for k in range(req.n)]

    async def run_jobs(jobs: list[GenJob]) -> AsyncIterator[tuple[int, dict]]:
        """Submit jobs; yield (choice index, event) until each is done. Cancels them if abandoned."""
        loop, inbox = asyncio.get_running_loop(), asyncio.Queue()
        for i, job in enumerate(jobs):
            def emit(ev, i=i):
                try:
                    loop.call_soon_threadsafe(inbox.put_nowait, (i, ev))
                except RuntimeError:  # the event loop is gone (server shutting down)
                    jobs[i].cancelled.set()
            job.emit = emit
        try:
            for job in jobs:
                engine.submit(job)
        except QueueFull as e:
            for job in jobs:
                job.cancelled.set()
            raise ApiError(429, f"server busy: {e} — retry shortly", kind="rate_limit_error") from None
        remaining = len(jobs)
        try:
            while remaining:
                i, ev = await inbox.get()
                if ev["type"] in ("done", "error"):
                    remaining -= 1
                yield i, ev
        finally:  # also runs when the client disconnects mid-stream
            for job in jobs:
                job.cancelled.set()

    def usage(prompt_tokens: int, completion_tokens: int) -> dict:
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}

    async def collect(jobs: list[GenJob], prompt_tokens: int) -> tuple[list[dict], dict]:
        """Run jobs to the end; per choice its text, finish reason and token log-probs."""
        choices = [{"text": "", "finish_reason": None, "tokens": []} for _ in jobs]
        n_completion = 0
        async for i, ev in run_jobs(jobs):
            c = choices[i]
            if ev["type"] == "token":
                c["text"] += ev["text"]
                c["tokens"].append(ev)
            elif ev["type"] == "done":
                c["finish_reason"] = ev["finish_reason"]
                n_completion += ev["completion_tokens"]
            else:
                raise ApiError(500, f"generation failed: {ev['message']}", kind="server_error")
        return choices, usage(prompt_tokens, n_completion)

    def sse(obj) -> str:
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

    def chat_logprobs(ev: dict) -> dict:
        return {"content": [{"token": ev["text"], "logprob": ev["logprob"], "bytes": list(ev["text"].encode()),
                             "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())}
                                              for t, lp in ev["top"]]}]}

    # ---- routes ----------------------------------------------------------------------------------
    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_name, "waiting": engine.waiting, **engine.stats}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0,
                                            "owned_by": "emergelab", "context_length": cfg.block_size}]}

    @app.get("/api/info")
    async def info():
        links = []
        if run_path:
            links = [f"/run/{f}" for f in RUN_FILES if (run_path / f).is_file()]
            plots = run_path / "plots"
            if plots.is_dir():
                links += [f"/run/plots/{p.name}" for p in sorted(plots.iterdir()) if p.suffix in (".png", ".svg")]
        return {"model": model_name, "config": asdict(cfg), "params": engine.model.num_params(),
                "chat_template": "ours" if chat_format.template is None else "imported",
                "limits": asdict(lim) | {"max_prompt_tokens": max_prompt}, "links": links}

    @app.get("/run/{path:path}")
    async def run_file(path: str):
        if run_path is not None:
            target = (run_path / path).resolve()
            allowed = path in RUN_FILES or (target.parent == run_path / "plots")
            if allowed and target.is_relative_to(run_path) and target.is_file():
                return FileResponse(target)
        return _error(404, f"{path}: no such report file in this run", code="not_found")

    @app.get("/")
    async def index():
        return FileResponse(STATIC / "index.html")

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest):
        check_model(req.model)
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                    for m in req.messages]
        ids = encode(chat_format.render(messages))
        max_tokens = room(ids, req.max_completion_tokens or req.max_tokens, lim.default_max_tokens)
        top = (req.top_logprobs or 0) if req.logprobs else 0
        jobs = make_jobs(req, [ids], [max_tokens], top)
        rid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        head = {"id": rid, "created": created, "model": model_name}
        if not req.stream:
            choices, use = await collect(jobs, len(ids))
            return head | {"object": "chat.completion", "usage": use, "choices": [
                {"index": i, "message": {"role": "assistant", "content": c["text"]},
                 "finish_reason": c["finish_reason"],
                 "logprobs": {"content": [chat_logprobs(ev)["content"][0] for ev in c["tokens"]]}
                 if req.logprobs else None} for i, c in enumerate(choices)]}

        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        events = run_jobs(jobs)  # submitted now, so a busy server answers 429 before the stream starts
        first = await anext(events)

        async def stream():
            chunk = head | {"object": "chat.completion.chunk"}
            for i in range(len(jobs)):
                yield sse(chunk | {"choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                "finish_reason": None, "logprobs": None}]})
            n_completion = 0
            try:
                async for i, ev in _chain(first, events):
                    if ev["type"] == "token":
                        if not ev["text"] and not req.logprobs:
                            continue
                        yield sse(chunk | {"choices": [{"index": i, "delta": {"content": ev["text"]},
                                                        "finish_reason": None,
                                                        "logprobs": chat_logprobs(ev) if req.logprobs else None}]})
                    elif ev["type"] == "done":
                        n_completion += ev["completion_tokens"]
                        yield sse(chunk | {"choices": [{"index": i, "delta": {}, "logprobs": None,
                                                        "finish_reason": ev["finish_reason"]}]})
                    else:
                        yield sse({"error": {"message": f"generation failed: {ev['message']}",
                                             "type": "server_error"}})
                if include_usage:
                    yield sse(chunk | {"choices": [], "usage": usage(len(ids), n_completion)})
                yield "data: [DONE]\n\n"
            finally:
                await events.aclose()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest):
        check_model(req.model)
        if req.echo:
            raise ApiError(400, "echo: not supported — set echo to false", "echo")
        texts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if not texts:
            raise ApiError(400, "prompt: empty list — send a string or a list of strings", "prompt")
        prompts = [encode(t) for t in texts]
        max_tokens = [room(p, req.max_tokens, lim.default_max_tokens) for p in prompts]
        jobs = make_jobs(req, prompts, max_tokens, req.logprobs or 0)
        rid, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        head = {"id": rid, "object": "text_completion", "created": created, "model": model_name}

        def logprobs_of(evs: list[dict]) -> dict:
            return {"tokens": [e["text"] for e in evs], "token_logprobs": [e["logprob"] for e in evs],
                    "top_logprobs": [dict(e["top"]) for e in evs], "text_offset": list(
                        itertools.accumulate([0] + [len(e["text"]) for e in evs[:-1]]))}

        if not req.stream:
            choices, use = await collect(jobs, sum(map(len, prompts)))
            return head | {"usage": use, "choices": [
                {"index": i, "text": c["text"], "finish_reason": c["finish_reason"],
                 "logprobs": logprobs_of(c["tokens"]) if req.logprobs is not None else None}
                for i, c in enumerate(choices)]}

        events = run_jobs(jobs)
        first = await anext(events)

        async def stream():
            try:
                async for i, ev in _chain(first, events):
                    if ev["type"] == "token" and ev["text"]:
                        yield sse(head | {"choices": [{"index": i, "text": ev["text"], "finish_reason": None,
                                                       "logprobs": logprobs_of([ev]) if req.logprobs is not None
                                                       else None}]})
                    elif ev["type"] == "done":
                        yield sse(head | {"choices": [{"index": i, "text": "", "logprobs": None,
                                                       "finish_reason": ev["finish_reason"]}]})
                    elif ev["type"] == "error":
                        yield sse({"error": {"message": f"generation failed: {ev['message']}",
                                             "type": "server_error"}})
                yield "data: [DONE]\n\n"
            finally:
                await events.aclose()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/api/inspect")
    async def inspect(req: InspectRequest):
        ids = tok.encode(req.text)
        if not ids:
            raise ApiError(400, "text: it encodes to no tokens — send some text", "text")
        if len(ids) > lim.max_inspect_tokens:
            raise ApiError(400, f"text: {len(ids)} tokens is more than the inspector's limit of "
                           f"{lim.max_inspect_tokens} — shorten it", "text")
        bad = [layer for layer in req.layers or [] if not 0 <= layer < cfg.n_layer]
        if bad:
            raise ApiError(400, f"layers: {bad} out of range — layers are 0..{cfg.n_layer - 1}", "layers")
        n_values = len(req.layers if req.layers is not None else range(cfg.n_layer)) * cfg.n_head * len(ids) ** 2
        if n_values > lim.max_attention_values:
            raise ApiError(400, f"layers: attention for these layers is {n_values:,} numbers, more than the limit of "
                           f"{lim.max_attention_values:,} — ask for fewer layers (e.g. \"layers\": [0])", "layers")
        try:
            fut = engine.call(lambda: inspect_text(engine.model, tok, ids, req.top_k, req.layers))
        except QueueFull as e:
            raise ApiError(429, f"server busy: {e} — retry shortly", kind="rate_limit_error") from None
        return await asyncio.wrap_future(fut)

    @app.get("/favicon.ico")
    async def favicon():
        return Response(status_code=204)

    return app


async def _chain(first, rest: AsyncIterator):
    yield first
    async for x in rest:
        yield x


def app_for_run(run_dir: str | Path, device: str = "auto", limits: Limits | None = None) -> tuple[FastAPI, Engine]:
    """Load a run's newest checkpoint and build the app; close the returned engine when done."""
    from emergelab.runs import load_model
    from emergelab.serve.chat import chat_format_for

    lim = limits or Limits()
    model, tok, _ = load_model(run_dir, device=device)
    fmt = chat_format_for(tok)
    stops = {tok.eos_id, tok.token_to_id(fmt.eos_token) if fmt.eos_token else None}
    engine = Engine(model, tok, tuple(i for i in stops if i is not None), lim.max_batch, lim.max_queue)
    name = Path(run_dir).resolve().name
    return create_app(engine, fmt, name, lim, run_dir), engine
