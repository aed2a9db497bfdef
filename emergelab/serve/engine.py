"""The model worker: one thread owns the model; requests are queued and decoded together in batches.

The HTTP handlers never touch the model. They submit a `GenJob` (or a plain function, for /api/inspect)
and receive events through a callback: one per generated token (with the text it adds), then a final
one. Running jobs share one left-padded KV cache; rows leave the batch as they finish and waiting jobs
join it between two decode steps (continuous batching, as in Orca, Yu et al. 2022). A job whose client
went away is cancelled between two decode steps.

Isolation: whatever is particular to one job (its generator seed, its sampling, its stop strings, its
callback) runs inside a guard, so a failure there ends that job with an error event and the other rows
keep decoding. Only a failure of the shared forward pass ends every running job.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from emergelab.model import GPT, KVCache, SamplingParams
from emergelab.model.generate import sample_next

Event = dict[str, Any]


class QueueFull(Exception):
    """More jobs are waiting than the engine accepts; the client should retry later."""


@dataclass
class GenJob:
    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0
    stop: tuple[str, ...] = ()
    top_logprobs: int = 0  # alternatives reported per token (0 = none)
    emit: Callable[[Event], None] = lambda ev: None
    cancelled: threading.Event = field(default_factory=threading.Event)
    failed: bool = False  # ended with an error event


@dataclass
class _CallJob:
    fn: Callable[[], Any]
    future: Future


class _Row:
    """Decoding state of one job: its tokens so far and how much of their text was already sent."""

    def __init__(self, job: GenJob, tokenizer, stop_ids: set[int], device):
        self.job, self.tok, self.stop_ids = job, tokenizer, stop_ids
        self.gen = torch.Generator(device=device).manual_seed(job.seed % 2**64)  # any int is a valid seed
        self.params = SamplingParams(temperature=job.temperature, top_k=job.top_k, top_p=job.top_p)
        self.ids: list[int] = []
        self.sent = ""  # text already emitted

    def push(self, token: int, logprob: float, top: list[tuple[str, float]]) -> str | None:
        """Record one sampled token, emit its text; return the finish reason once the row is done."""
        if token in self.stop_ids:  # not part of the answer; only flushes text still held back
            text = self.tok.decode(self.ids)
            if text != self.sent:
                self._emit_text(text, token, logprob, top, final=True)
            return "stop"
        self.ids.append(token)
        text = self.tok.decode(self.ids)
        reason = None
        for s in self.job.stop:
            cut = text.find(s)
            if cut >= 0:
                text, reason = text[:cut], "stop"
        if reason is None and len(self.ids) >= self.job.max_tokens:
            reason = "length"
        self._emit_text(text, token, logprob, top, final=reason is not None)
        return reason

    def _emit_text(self, text: str, token: int, logprob: float, top, final: bool) -> None:
        end = len(text)
        if not final:
            # Hold back an incomplete UTF-8 character (byte-level BPE) and any tail that could still
            # grow into a stop string, so a stop string is never half-sent.
            if text.endswith("\ufffd"):
                end = len(self.sent)
            for s in self.job.stop:
                for k in range(min(len(s) - 1, end), 0, -1):
                    if text[:end].endswith(s[:k]):
                        end -= k
                        break
        delta = text[len(self.sent):max(end, len(self.sent))]
        self.sent += delta
        self.job.emit({"type": "token", "text": delta, "token_id": token, "logprob": logprob, "top": top})


def _merge(a: KVCache | None, b: KVCache, room: int) -> KVCache:
    """Rows of `a` then `b` in one new cache, right-aligned at their common position, `room` slots free after.

    A row moved right by d slots gets d more left padding, so its RoPE positions and its mask are unchanged.
    """
    parts = [c for c in (a, b) if c is not None]
    pos = max(c.pos for c in parts)
    out = KVCache.__new__(KVCache)
    out.pos = pos

    def aligned(c: KVCache, t: torch.Tensor) -> torch.Tensor:
        new = t.new_zeros(t.shape[0], t.shape[1], pos + room, t.shape[3])
        new[:, :, pos - c.pos:pos] = t[:, :, :c.pos]
        return new

    out.k = [torch.cat([aligned(c, c.k[i]) for c in parts]) for i in range(len(b.k))]
    out.v = [torch.cat([aligned(c, c.v[i]) for c in parts]) for i in range(len(b.v))]
    pads = [(c.pad_lens if c.pad_lens is not None else torch.zeros(c.k[0].shape[0], dtype=torch.long,
                                                                    device=c.k[0].device)) + pos - c.pos
            for c in parts]
    out.pad_lens = torch.cat(pads)
    return _compact(out)


def _compact(c: KVCache) -> KVCache:
    """Drop the leading slots that every row pads (views, no copy); no padding at all -> pad_lens None."""
    if c.pad_lens is None:
        return c
    m = int(c.pad_lens.min())
    if m:
        c.k = [t[:, :, m:] for t in c.k]
        c.v = [t[:, :, m:] for t in c.v]
        c.pos -= m
        c.pad_lens = c.pad_lens - m
    if not c.pad_lens.any():
        c.pad_lens = None
    return c


class Engine:
    """Owns `model` on one worker thread. `submit` a GenJob, or `call` a function that uses the model.

    Continuous batching: between two decode steps the worker runs waiting calls (the inspector) and
    admits waiting jobs into the running batch (prefilled together, then merged into the KV cache), as
    long as the batch has fewer than `max_batch` rows and the merged cache fits in the context.
    """

    def __init__(self, model: GPT, tokenizer, stop_token_ids: tuple[int, ...] = (), max_batch: int = 8,
                 max_queue: int = 64):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.stop_ids = set(stop_token_ids)
        self.max_batch, self.max_queue = max_batch, max_queue
        self._inbox: queue.Queue = queue.Queue()
        self._pending: collections.deque = collections.deque()
        self._closed = threading.Event()
        # counters for /health, the load test and tests: rows_per_step = row_steps / steps
        self.stats = {"jobs": 0, "cancelled": 0, "tokens": 0, "prefills": 0, "steps": 0, "row_steps": 0}
        self._thread = threading.Thread(target=self._loop, name="emergelab-model", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        return self._inbox.qsize() + len(self._pending)

    def submit(self, job: GenJob) -> None:
        if self.waiting >= self.max_queue:
            raise QueueFull(f"{self.waiting} requests are waiting")
        self._inbox.put(job)

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run fn() on the model thread (never concurrently with decoding); its result arrives in the Future."""
        if self.waiting >= self.max_queue:
            raise QueueFull(f"{self.waiting} requests are waiting")
        fut: Future = Future()
        self._inbox.put(_CallJob(fn, fut))
        return fut

    def close(self, timeout: float = 10.0) -> None:
        self._closed.set()
        self._inbox.put(None)
        self._thread.join(timeout)

    # ---- worker thread -------------------------------------------------------------------------------

    def _loop(self) -> None:
        rows: list[_Row] = []
        cache: KVCache | None = None
        logits = None  # (rows, V) next-token logits of the running rows
        while not self._closed.is_set():
            if not rows and not self._pending:
                self._pending.append(self._inbox.get())  # idle: sleep until work arrives
            while not self._inbox.empty():
                self._pending.append(self._inbox.get_nowait())
            for call in [j for j in self._pending if isinstance(j, _CallJob)]:
                self._pending.remove(call)
                self._run_call(call)
            new = self._admit(rows, cache)
            try:
                if new:
                    cache, logits, rows = self._prefill(new, rows, cache, logits)
                if rows:
                    cache, logits, rows = self._step(rows, cache, logits)
            except Exception as e:  # the shared forward failed (a bug): fail the batch, keep serving
                for job in [r.job for r in rows] + new:
                    _fail(job, e)
                rows, cache, logits = [], None, None

    def _admit(self, rows: list[_Row], cache: KVCache | None) -> list[GenJob]:
        """Waiting jobs (in order) that join the batch now: room in the batch and in the context."""
        while self._pending and not isinstance(self._pending[0], GenJob):
            self._pending.popleft()  # None from close()
        new: list[GenJob] = []
        pos = cache.pos if cache is not None else 0
        room = max((r.job.max_tokens - len(r.ids) for r in rows), default=0)
        while self._pending and len(rows) + len(new) < self.max_batch:
            job = self._pending[0]
            if job.cancelled.is_set():
                self._pending.popleft()
                self.stats["cancelled"] += 1
                continue
            if max(pos, len(job.prompt_ids)) + max(room, job.max_tokens) > self.model.cfg.block_size:
                break  # waits until the batch has moved on
            new.append(self._pending.popleft())
            pos, room = max(pos, len(job.prompt_ids)), max(room, job.max_tokens)
        return new

    @staticmethod
    def _run_call(job: _CallJob) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            job.future.set_result(job.fn())
        except Exception as e:
            job.future.set_exception(e)

    def _rows_for(self, jobs: list[GenJob], dev) -> list[_Row]:
        """A row per job; a job whose row cannot be built (e.g. a bad seed) ends alone with an error."""
        rows = []
        for job in jobs:
            try:
                rows.append(_Row(job, self.tokenizer, self.stop_ids, dev))
            except Exception as e:
                _fail(job, e)
        return rows

    @torch.inference_mode()
    def _prefill(self, jobs: list[GenJob], rows: list[_Row], cache: KVCache | None, logits):
        """Run the new prompts (left-padded together) and merge them into the running batch."""
        model, dev = self.model, self.model.lm_head.weight.device
        new_rows = self._rows_for(jobs, dev)
        self.stats["jobs"] += len(jobs)
        if not new_rows:
            return cache, logits, rows
        prompts = [r.job.prompt_ids for r in new_rows]
        longest = max(map(len, prompts))
        pad = torch.tensor([longest - len(p) for p in prompts], device=dev)
        idx = torch.tensor([[0] * (longest - len(p)) + p for p in prompts], device=dev)
        fresh = KVCache(model.cfg, len(prompts), longest, dev, model.tok_emb.weight.dtype,
                        pad_lens=pad if pad.any() else None)
        new_logits = model(idx, cache=fresh).logits[:, -1].float()
        rows = rows + new_rows
        room = max(r.job.max_tokens - len(r.ids) for r in rows)
        cache = _merge(cache, fresh, room)
        logits = new_logits if logits is None else torch.cat([logits, new_logits])
        self.stats["prefills"] += 1
        return cache, logits, rows

    @torch.inference_mode()
    def _step(self, rows: list[_Row], cache: KVCache, logits):
        """Sample one token for every row, retire finished rows, run the survivors one position further."""
        dev = self.model.lm_head.weight.device
        logprobs = logits.log_softmax(-1)
        nxt, keep = [], []
        for i, row in enumerate(rows):
            try:
                t, reason = self._advance(row, logits[i:i + 1], logprobs[i])
            except Exception as e:  # this row's failure ends this row only
                _fail(row.job, e)
                continue
            self.stats["tokens"] += 1
            if reason is None and row.job.cancelled.is_set():
                reason = "cancelled"
                self.stats["cancelled"] += 1
            if reason is None:
                keep.append(i)
                nxt.append(t)
                continue
            try:
                row.job.emit({"type": "done", "finish_reason": reason, "prompt_tokens": len(row.job.prompt_ids),
                              "completion_tokens": len(row.ids)})
            except Exception:
                pass  # the client's callback failed; it is done either way
        self.stats["steps"] += 1
        self.stats["row_steps"] += len(rows)
        if not keep:
            return None, None, []
        if len(keep) < len(rows):
            rows = [rows[i] for i in keep]
            cache.select(torch.tensor(keep, device=dev))
            cache = _compact(cache)
        logits = self.model(torch.tensor(nxt, device=dev)[:, None], cache=cache).logits[:, -1].float()
        return cache, logits, rows

    def _advance(self, row: _Row, logits: torch.Tensor, logprobs: torch.Tensor) -> tuple[int, str | None]:
        """Sample `row`'s next token and emit it: (token, finish reason or None)."""
        t = int(sample_next(logits, row.params, row.gen)[0])
        top = []
        if row.job.top_logprobs:
            vals, ids = logprobs.topk(min(row.job.top_logprobs, logprobs.numel()))
            top = [(self.tokenizer.decode([j]), v) for j, v in zip(ids.tolist(), vals.tolist())]
        return t, row.push(t, float(logprobs[t]), top)


def _fail(job: GenJob, e: Exception) -> None:
    """End `job` with one error event (its callback may itself be what failed)."""
    if job.failed:
        return
    job.failed = True
    job.cancelled.set()
    try:
        job.emit({"type": "error", "message": f"{type(e).__name__}: {e}"})
    except Exception:
        pass
