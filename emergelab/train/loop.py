"""The training loop shared by pretraining and SFT.

One optimizer step = `grad_accum` micro-batches on each of `world_size` processes. The caller supplies
`batch_fn(step, micro, rank) -> (x, y)` or `(x, y, doc_ids)` (targets of -100 are ignored by the loss;
doc_ids switch on document-masked attention, see `GPT.forward`) and an optional
`eval_fn(model) -> dict`. The loop owns: schedule, accumulation, gradient averaging and clipping,
logging to `metrics.jsonl` (and TensorBoard), periodic checkpoints, and exact resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from emergelab.config import TrainConfig
from emergelab.errors import UserError
from emergelab.runs import latest_checkpoint, load_checkpoint_into, save_checkpoint
from emergelab.train.distributed import World, all_reduce_mean, all_reduce_sum, average_gradients
from emergelab.train.optim import lr_at, make_optimizer
from emergelab.train.tracking import Tracker, open_tracker

BatchFn = Callable[[int, int, int], tuple[torch.Tensor, ...]]
EvalFn = Callable[[torch.nn.Module], dict]


class MetricsLog:
    """Append-only `metrics.jsonl`; on resume, lines past the restored step are dropped."""

    def __init__(self, path: Path, enabled: bool, tracker: Tracker | None = None):
        self.path, self.enabled = path, enabled
        self.tracker = tracker  # train.tracker: TensorBoard or trackio get every record too (train/tracking.py)

    def truncate_after(self, step: int) -> None:
        if not (self.enabled and self.path.exists()):
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:  # a line cut by a kill mid-write
                continue
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in keep))
        tmp.replace(self.path)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tracker is not None:
            self.tracker.log(record)

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.close()


def _progress_enabled(cfg: TrainConfig, world: World) -> bool:
    return cfg.progress and world.is_main and os.environ.get("EMERGELAB_NO_PROGRESS") != "1"


def train_loop(model: torch.nn.Module, cfg: TrainConfig, run_dir: Path, max_steps: int, batch_fn: BatchFn,
               eval_fn: EvalFn | None = None, world: World | None = None, resume: bool = False,
               desc: str = "train") -> dict:
    """Train `model` to `max_steps` optimizer steps; returns the last logged record (with eval metrics)."""
    world = world or World()
    device = next(model.parameters()).device
    optimizer = make_optimizer(model, cfg.lr or 1e-3, cfg.weight_decay, (cfg.beta1, cfg.beta2), device.type)
    tracker = "tensorboard" if cfg.tensorboard and cfg.tracker == "none" else cfg.tracker
    log = MetricsLog(run_dir / "metrics.jsonl", world.is_main,
                     open_tracker(tracker, run_dir, dataclasses.asdict(cfg)) if world.is_main else None)
    start = 0
    if world.is_main:  # temporary checkpoint dirs left by a killed process are never valid
        for stale in (run_dir / "checkpoints").glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
    if resume:
        found = latest_checkpoint(run_dir)
        if found is not None:
            ckpt, meta = found
            load_checkpoint_into(ckpt, model, optimizer, meta)
            start = meta["step"]
            if "torch_rng" in meta:
                torch.set_rng_state(torch.tensor(meta["torch_rng"], dtype=torch.uint8))
        log.truncate_after(start)
    elif world.is_main and (run_dir / "metrics.jsonl").exists():
        (run_dir / "metrics.jsonl").unlink()

    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if cfg.dtype == "bfloat16" and device.type == "cuda" else contextlib.nullcontext())
    tokens_per_step = 0
    last: dict = {}
    bar = tqdm(total=max_steps, initial=start, desc=desc, unit="step", dynamic_ncols=True,
               disable=not _progress_enabled(cfg, world))
    t_last, tokens_since = time.perf_counter(), 0
    model.train()
    for step in range(start, max_steps):
        lr = lr_at(step, max_steps, cfg.lr or 1e-3, cfg.warmup_steps, cfg.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # The loss is a mean over every scored target of the global batch (all micro-batches, all ranks),
        # so k×b accumulation and N processes equal one k·b·N batch even when micro-batches score
        # different numbers of tokens (answer-only loss, document masks).
        batches = [batch_fn(step, micro, world.rank) for micro in range(cfg.grad_accum)]
        n_scored = sum(int((b[1] != -100).sum()) for b in batches)
        scale = world.world_size / max(all_reduce_sum(n_scored, world, device), 1)
        loss_sum = 0.0
        for batch in batches:
            x, y, *doc = (t.to(device, non_blocking=True) for t in batch)
            with autocast:
                logits = model(x, doc_ids=doc[0] if doc else None).logits
            loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=-100,
                                   reduction="sum") * scale
            loss.backward()
            loss_sum += loss.item()
            tokens_since += x.numel() * world.world_size
            tokens_per_step = x.numel() * world.world_size * cfg.grad_accum
        if not torch.isfinite(torch.tensor(loss_sum)):
            raise UserError(f"train: loss became {loss_sum} at step {step} — lower train.lr or raise "
                            "train.warmup_steps (the last good checkpoint is kept)")
        average_gradients(model, world)
        # max_norm=inf measures the norm without clipping (train.grad_clip=0)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                   cfg.grad_clip if cfg.grad_clip > 0 else float("inf")).item()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        bar.update(1)

        if done % cfg.log_every == 0 or done == max_steps or (eval_fn and done % cfg.eval_every == 0):
            now = time.perf_counter()
            record = {"step": done, "loss": all_reduce_mean(loss_sum, world, device), "lr": lr,
                      "grad_norm": grad_norm, "tokens": done * tokens_per_step,
                      "tokens_per_s": tokens_since / max(now - t_last, 1e-9)}
            if eval_fn is not None and (done % cfg.eval_every == 0 or done == max_steps):
                model.eval()
                with torch.no_grad(), autocast:
                    record.update(eval_fn(model))
                model.train()
            log.write(record)
            bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_s']:.0f}",
                            **({"val": f"{record['val_loss']:.3f}"} if "val_loss" in record else {}))
            last = record
            t_last, tokens_since = time.perf_counter(), 0
        if world.is_main and (done % cfg.ckpt_every == 0 or done == max_steps):
            save_checkpoint(run_dir, done, model, optimizer,
                            {"torch_rng": torch.get_rng_state().tolist(), "tokens": done * tokens_per_step},
                            keep=cfg.keep_checkpoints)
    bar.close()
    log.close()
    model.eval()
    return last
