"""The model worker: one thread owns the model; requests are queued and decoded together in batches.

The HTTP handlers never touch the model. They submit a `GenJob` (or a plain function, for /api/inspect)
and receive events through a callback: one per generated token (with the text it adds), then a final
one. Jobs waiting when the worker becomes free are decoded as one left-padded batch with a shared KV
cache (rows leave the batch as they finish); a job that arrives mid-batch waits for the next round.
A job whose client went away is cancelled between two decode steps.
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


@dataclass
class _CallJob:
    fn: Callable[[], Any]
    future: Future


class _Row:
    """Decoding state of one job: its tokens so far and how much of their text was already sent."""

    def __init__(self, job: GenJob, tokenizer, stop_ids: set[int], device):
        self.job, self.tok, self.stop_ids = job, tokenizer, stop_ids
        self.gen = torch.Generator(device=device).manual_seed(job.seed)
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


class Engine:
    """Owns `model` on one worker thread. `submit` a GenJob, or `call` a function that uses the model."""

    def __init__(self, model: GPT, tokenizer, stop_token_ids: tuple[int, ...] = (), max_batch: int = 8,
                 max_queue: int = 64):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.stop_ids = set(stop_token_ids)
        self.max_batch, self.max_queue = max_batch, max_queue
        self._inbox: queue.Queue = queue.Queue()
        self._pending: collections.deque = collections.deque()
        self._closed = threading.Event()
        self.stats = {"jobs": 0, "cancelled": 0, "tokens": 0, "batches": 0}  # counters, for /health and tests
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
        while not self._closed.is_set():
            if not self._pending:
                self._pending.append(self._inbox.get())
            while not self._inbox.empty():
                self._pending.append(self._inbox.get_nowait())
            head = self._pending.popleft()
            if head is None:
                continue
            if isinstance(head, _CallJob):
                self._run_call(head)
                continue
            batch = [head]
            room = self.model.cfg.block_size
            while (self._pending and isinstance(self._pending[0], GenJob) and len(batch) < self.max_batch
                   and self._fits(batch + [self._pending[0]], room)):
                batch.append(self._pending.popleft())
            try:
                self._decode(batch)
            except Exception as e:  # a bug must not kill the worker: fail these jobs, keep serving
                for job in batch:
                    job.emit({"type": "error", "message": f"{type(e).__name__}: {e}"})

    @staticmethod
    def _fits(jobs: list[GenJob], block_size: int) -> bool:
        return max(len(j.prompt_ids) for j in jobs) + max(j.max_tokens for j in jobs) <= block_size

    @staticmethod
    def _run_call(job: _CallJob) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            job.future.set_result(job.fn())
        except Exception as e:
            job.future.set_exception(e)

    @torch.inference_mode()
    def _decode(self, jobs: list[GenJob]) -> None:
        self.stats["cancelled"] += sum(j.cancelled.is_set() for j in jobs)
        jobs = [j for j in jobs if not j.cancelled.is_set()]
        if not jobs:
            return
        model, dev = self.model, self.model.lm_head.weight.device
        longest = max(len(j.prompt_ids) for j in jobs)
        steps = max(j.max_tokens for j in jobs)
        pad = torch.tensor([longest - len(j.prompt_ids) for j in jobs], device=dev)
        idx = torch.tensor([[0] * (longest - len(j.prompt_ids)) + j.prompt_ids for j in jobs], device=dev)
        cache = KVCache(model.cfg, len(jobs), longest + steps, dev, model.lm_head.weight.dtype,
                        pad_lens=pad if pad.any() else None)
        logits = model(idx, cache=cache).logits[:, -1].float()
        rows = [_Row(j, self.tokenizer, self.stop_ids, dev) for j in jobs]
        self.stats["batches"] += 1
        self.stats["jobs"] += len(jobs)
        for _ in range(steps):
            logprobs = logits.log_softmax(-1)
            nxt, keep = [], []
            for i, row in enumerate(rows):
                t = int(sample_next(logits[i:i + 1], row.params, row.gen)[0])
                top = []
                if row.job.top_logprobs:
                    vals, ids = logprobs[i].topk(row.job.top_logprobs)
                    top = [(self.tokenizer.decode([j]), v) for j, v in zip(ids.tolist(), vals.tolist())]
                reason = row.push(t, float(logprobs[i, t]), top)
                self.stats["tokens"] += 1
                if reason is None and row.job.cancelled.is_set():
                    reason = "cancelled"
                    self.stats["cancelled"] += 1
                if reason is None:
                    keep.append(i)
                    nxt.append(t)
                else:
                    row.job.emit({"type": "done", "finish_reason": reason, "prompt_tokens":
                                  len(row.job.prompt_ids), "completion_tokens": len(row.ids)})
            if not keep:
                return
            if len(keep) < len(rows):
                rows = [rows[i] for i in keep]
                cache.select(torch.tensor(keep, device=dev))
            logits = model(torch.tensor(nxt, device=dev)[:, None], cache=cache).logits[:, -1].float()
