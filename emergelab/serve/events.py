"""From engine events to HTTP: run jobs and stream their events, or collect them into whole answers.

Jobs end when their client goes away: a streaming response closes the event iterator (whose `finally`
cancels the jobs); a non-streaming one watches the connection while it waits and cancels on disconnect.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request

from emergelab.serve.engine import Engine, GenJob, QueueFull
from emergelab.serve.http_errors import ApiError

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def busy(e: QueueFull) -> ApiError:
    """The 429 a full engine queue is answered with."""
    return ApiError(429, f"server busy: {e} — retry shortly", kind="rate_limit_error")


async def on_model_thread(engine: Engine, fn):
    """fn() run on the model thread (never concurrently with decoding), awaited; 429 when the queue is full."""
    try:
        fut = engine.call(fn)
    except QueueFull as e:
        raise busy(e) from None
    return await asyncio.wrap_future(fut)


async def run_jobs(engine: Engine, jobs: list[GenJob]) -> AsyncIterator[tuple[int, dict]]:
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
        raise busy(e) from None
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


async def started(engine: Engine, jobs: list[GenJob]) -> AsyncIterator[tuple[int, dict]]:
    """run_jobs with its first event already awaited, so a busy server answers 429 before a stream starts."""
    events = run_jobs(engine, jobs)
    first = await anext(events)

    async def chain():
        try:
            yield first
            async for x in events:
                yield x
        finally:
            await events.aclose()

    return chain()


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


async def collect(engine: Engine, jobs: list[GenJob], prompt_tokens: int,
                  request: Request | None = None) -> tuple[list[dict], dict]:
    """Run jobs to the end; per choice its text, finish reason and token events. Cancelled on disconnect."""
    work = asyncio.ensure_future(_collect(engine, jobs, prompt_tokens))
    watch = asyncio.ensure_future(_disconnected(request)) if request is not None else None
    try:
        await asyncio.wait([t for t in (work, watch) if t is not None], return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            return work.result()
        raise ApiError(499, "client closed the request", code="client_closed")
    finally:
        for task in (work, watch):
            if task is not None:
                task.cancel()
        for job in jobs:
            job.cancelled.set()


async def _collect(engine: Engine, jobs: list[GenJob], prompt_tokens: int) -> tuple[list[dict], dict]:
    choices = [{"text": "", "finish_reason": None, "tokens": []} for _ in jobs]
    n_completion = 0
    async for i, ev in run_jobs(engine, jobs):
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


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the body was already read, so the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        await asyncio.sleep(0.05)  # a server that answers at once with empty bodies must not spin


def sse(obj) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def stream_error(ev: dict) -> str:
    return sse({"error": {"message": f"generation failed: {ev['message']}", "type": "server_error"}})
