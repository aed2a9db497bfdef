"""The OpenAI-compatible HTTP API and the web page, as a FastAPI app around one `Engine`.

Routes: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions (JSON or
server-sent events with `stream: true`), POST /api/inspect (probes for the page), POST /api/disambiguate
and GET /api/disambiguate/pairs (the disambiguation panel, serve/disambiguate.py), GET /api/info,
GET /run/... (the run's report and plots), GET / (the page). Errors use OpenAI's shape (http_errors.py).
`create_app` only wires parts that each do one thing: the request guard (guards.py), the limits and job
building (admission.py), running jobs into events (events.py), and one function per group of routes here.
"""

from __future__ import annotations

import time
import uuid
from contextlib import aclosing
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from emergelab.errors import UserError
from emergelab.eval.probes import inspect_text
from emergelab.serve.admission import Admission
from emergelab.serve.chat import ChatFormat
from emergelab.serve.completions import add_completions_route
from emergelab.serve.disambiguate import add_disambiguate_route
from emergelab.serve.engine import Engine
from emergelab.serve.events import SSE_HEADERS, collect, on_model_thread, sse, started, stream_error, usage
from emergelab.serve.guards import LOOPBACK_NAMES, RequestGuard, is_loopback
from emergelab.serve.http_errors import ApiError, error_response
from emergelab.serve.page_mode import page_mode
from emergelab.serve.schemas import ChatRequest, InspectRequest, Limits

STATIC = Path(__file__).parent / "static"
RUN_FILES = ("report.html", "report.json", "eval.json", "config.yaml", "metrics.jsonl")  # served from /run/


@dataclass
class Served:
    """What the routes share: the engine, how to render and admit requests, and the run's files."""

    engine: Engine
    chat_format: ChatFormat
    model_name: str
    limits: Limits
    admission: Admission
    run_path: Path | None


def create_app(engine: Engine, chat_format: ChatFormat, model_name: str = "emergelab",
               limits: Limits | None = None, run_dir: str | Path | None = None,
               allowed_hosts: tuple[str, ...] | None = None) -> FastAPI:
    """The app serving `engine`. The caller owns the engine (and closes it).

    `allowed_hosts`: the Host names accepted (None = any); `serve` passes the loopback names when it binds
    to loopback, against DNS rebinding.
    """
    lim = limits or Limits()
    s = Served(engine, chat_format, model_name, lim,
               Admission(engine.tokenizer, engine.model.cfg.block_size, lim, model_name),
               Path(run_dir).resolve() if run_dir else None)
    app = FastAPI(title="emergelab", version="0.1.0")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(RequestGuard, max_body_bytes=lim.max_body_bytes, allowed_hosts=allowed_hosts)
    _add_error_handlers(app)
    _add_info_routes(app, s)
    _add_chat_route(app, s)
    add_completions_route(app, s)  # serve/completions.py
    _add_inspect_route(app, s)
    add_disambiguate_route(app, s)  # serve/disambiguate.py
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError):
        return error_response(e.status, e.message, e.param, e.kind, e.code)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, e: UserError):
        return error_response(400, str(e))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError):
        first = e.errors()[0]
        param = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or None
        if first.get("type") == "json_invalid":
            return error_response(400, f"request body is not valid JSON ({first.get('ctx', {}).get('error', '')}) "
                                  "— send a JSON object with Content-Type: application/json")
        if param is None:
            return error_response(400, "request body must be a JSON object (Content-Type: application/json) — "
                                  f"got something else ({first.get('msg')})")
        return error_response(400, f"{param}: {first.get('msg')}", param)


def _add_info_routes(app: FastAPI, s: Served) -> None:
    cfg = s.engine.model.cfg

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": s.model_name, "waiting": s.engine.waiting, **s.engine.stats}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": s.model_name, "object": "model", "created": 0,
                                            "owned_by": "emergelab", "context_length": cfg.block_size}]}

    @app.get("/api/info")
    async def info():
        links = []
        if s.run_path:
            links = [f"/run/{f}" for f in RUN_FILES if (s.run_path / f).is_file()]
            plots = s.run_path / "plots"
            if plots.is_dir():
                links += [f"/run/plots/{p.name}" for p in sorted(plots.iterdir()) if p.suffix in (".png", ".svg")]
        return {"model": s.model_name, "config": asdict(cfg), "params": s.engine.model.num_params(),
                "chat_template": "ours" if s.chat_format.template is None else "imported",
                "mode": page_mode(s.run_path, s.chat_format.template is not None),  # serve/page_mode.py
                "limits": asdict(s.limits) | {"max_prompt_tokens": s.admission.max_prompt}, "links": links}

    @app.get("/run/{path:path}")
    async def run_file(path: str):
        if s.run_path is not None and "\x00" not in path:
            target = (s.run_path / path).resolve()
            allowed = path in RUN_FILES or (target.parent == s.run_path / "plots")
            if allowed and target.is_relative_to(s.run_path) and target.is_file():
                return FileResponse(target)
        return error_response(404, f"{path}: no such report file in this run", code="not_found")

    @app.get("/")
    async def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico")
    async def favicon():
        return Response(status_code=204)


def _chat_logprobs(ev: dict) -> dict:
    return {"token": ev["text"], "logprob": ev["logprob"], "bytes": list(ev["text"].encode()),
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in ev["top"]]}


def _add_chat_route(app: FastAPI, s: Served) -> None:
    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest, request: Request):
        s.admission.check_model(req.model)
        s.admission.check_choices(req.n, 1)
        s.admission.check_stop(req.stop_list())
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                    for m in req.messages]
        ids = await s.admission.encode(s.chat_format.render(messages))
        max_tokens = s.admission.room(ids, req.max_completion_tokens or req.max_tokens, s.limits.default_max_tokens)
        jobs = s.admission.jobs(req, [ids], [max_tokens], (req.top_logprobs or 0) if req.logprobs else 0)
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": s.model_name}
        if not req.stream:
            choices, use = await collect(s.engine, jobs, len(ids), request)
            return head | {"object": "chat.completion", "usage": use, "choices": [
                {"index": i, "message": {"role": "assistant", "content": c["text"]},
                 "finish_reason": c["finish_reason"],
                 "logprobs": {"content": [_chat_logprobs(ev) for ev in c["tokens"]]} if req.logprobs else None}
                for i, c in enumerate(choices)]}

        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        events = await started(s.engine, jobs)
        chunk = head | {"object": "chat.completion.chunk"}

        async def stream():
            for i in range(len(jobs)):
                yield sse(chunk | {"choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                "finish_reason": None, "logprobs": None}]})
            n_completion = 0
            async with aclosing(events):
                async for i, ev in events:
                    if ev["type"] == "token" and (ev["text"] or req.logprobs):
                        lp = {"content": [_chat_logprobs(ev)]} if req.logprobs else None
                        yield sse(chunk | {"choices": [{"index": i, "delta": {"content": ev["text"]},
                                                        "finish_reason": None, "logprobs": lp}]})
                    elif ev["type"] == "done":
                        n_completion += ev["completion_tokens"]
                        yield sse(chunk | {"choices": [{"index": i, "delta": {}, "logprobs": None,
                                                        "finish_reason": ev["finish_reason"]}]})
                    elif ev["type"] == "error":
                        yield stream_error(ev)
                if include_usage:
                    yield sse(chunk | {"choices": [], "usage": usage(len(ids), n_completion)})
                yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


def _add_inspect_route(app: FastAPI, s: Served) -> None:
    cfg, lim = s.engine.model.cfg, s.limits

    @app.post("/api/inspect")
    async def inspect(req: InspectRequest):
        ids = await s.admission.encode(req.text, "text", lim.max_inspect_tokens)
        layers = req.layer_ids()
        bad = [layer for layer in layers or [] if not 0 <= layer < cfg.n_layer]
        if bad:
            raise ApiError(400, f"layers: {bad[:10]} out of range — layers are 0..{cfg.n_layer - 1}", "layers")
        n_values = len(layers if layers is not None else range(cfg.n_layer)) * cfg.n_head * len(ids) ** 2
        if n_values > lim.max_attention_values:
            raise ApiError(400, f"layers: attention for these layers is {n_values:,} numbers, more than the limit of "
                           f"{lim.max_attention_values:,} — ask for fewer layers (e.g. \"layers\": [0])", "layers")
        return await on_model_thread(
            s.engine, lambda: inspect_text(s.engine.model, s.engine.tokenizer, ids, req.top_k, layers))


def app_for_run(run_dir: str | Path, device: str = "auto", limits: Limits | None = None,
                host: str | None = None, quant: str = "none") -> tuple[FastAPI, Engine]:
    """Load a run's newest checkpoint and build the app; close the returned engine when done.

    `host`: the address the server will bind; a loopback one turns on the Host-header check.
    """
    from emergelab.model.quant import quantize
    from emergelab.runs import load_model
    from emergelab.serve.chat import chat_format_for

    lim = limits or Limits()
    model, tok, _ = load_model(run_dir, device=device)
    quantize(model, quant)  # `quant`: none / bf16 / int8 weights (emergelab.model.quant)
    fmt = chat_format_for(tok)
    stops = {tok.eos_id, tok.token_to_id(fmt.eos_token) if fmt.eos_token else None}
    engine = Engine(model, tok, tuple(i for i in stops if i is not None), lim.max_batch, lim.max_queue)
    name = Path(run_dir).resolve().name
    hosts = LOOPBACK_NAMES if host is not None and is_loopback(host) else None
    return create_app(engine, fmt, name, lim, run_dir, hosts), engine
