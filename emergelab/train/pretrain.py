"""Pretraining by next-token prediction: config → tokenizer → token files → model → training loop → run dir."""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from emergelab.config import PretrainConfig, load_pretrain_config, to_dict, write_yaml
from emergelab.data.tokenizer import Tokenizer, alphabet_of, char_tokenizer, train_bpe
from emergelab.data.tokens import BatchSampler, TokenData, read_corpus_texts
from emergelab.errors import UserError
from emergelab.model.gpt import GPT
from emergelab.runs import RunDir, latest_checkpoint, read_run_config, resolve_device
from emergelab.train.distributed import World, all_reduce_mean, barrier, init_world
from emergelab.train.loop import train_loop


def build_tokenizer(kind: str, train_text: str, val_text: str, bpe_vocab_size: int) -> Tokenizer:
    if kind == "char":
        return char_tokenizer(alphabet_of([train_text, val_text]), printable=True)  # users type any ASCII
    if kind == "bpe":
        return train_bpe([train_text], bpe_vocab_size)
    return Tokenizer.load(kind)


def derive_max_steps(cfg: PretrainConfig, world_size: int) -> int:
    tokens_per_step = cfg.train.batch_size * cfg.train.grad_accum * cfg.train.seq_len * world_size
    if cfg.train.max_steps is not None:
        return cfg.train.max_steps
    if cfg.train.tokens is None:
        raise UserError("train.max_steps: neither train.max_steps nor train.tokens is set (and no named "
                        "size) — set one of them, e.g. train.max_steps=200")
    return max(1, math.ceil(cfg.train.tokens / tokens_per_step))


def make_val_eval(val: BatchSampler, n_batches: int, bytes_per_token: float | None, world: World):
    """eval_fn: mean val loss over fixed batches → val_loss, val_ppl, val_bpb (bits per UTF-8 byte; omitted
    when `bytes_per_token` is None, i.e. when only answer tokens are scored)."""

    def evaluate(model: torch.nn.Module) -> dict:
        device = next(model.parameters()).device
        losses = []
        for i in range(n_batches):
            x, y, *doc = (t.to(device) for t in val.batch(i, 0, world.rank))
            losses.append(model(x, targets=y, doc_ids=doc[0] if doc else None).loss.item())
        loss = all_reduce_mean(sum(losses) / len(losses), world, device)
        out = {"val_loss": loss, "val_ppl": math.exp(min(loss, 50.0))}
        if bytes_per_token is not None:
            out["val_bpb"] = loss / math.log(2) / bytes_per_token
        return out

    return evaluate


def resume_config(out_dir: Path, overrides: list[str] | None, allow_restart: bool = False) -> PretrainConfig:
    """The config to resume `out_dir` with, after checking that resuming can work — before anything is written.

    Overrides may change how training continues (`train.*`, e.g. a larger train.max_steps) but not what
    the checkpoint's weights and token files were made for (`model.*`, `data.*`). Without a valid checkpoint
    there is nothing to resume: an error, unless `allow_restart` (then training starts again at step 0).
    """
    saved = {k: v for k, v in read_run_config(out_dir).items() if k != "world_size"}
    cfg = load_pretrain_config(None, overrides, base=saved)
    new = to_dict(cfg)
    changed = [f"{section}.{key}" for section in ("model", "data") if isinstance(saved.get(section), dict)
               for key, value in new[section].items()
               if key in saved[section] and saved[section][key] != value]
    if changed:
        raise UserError(f"--resume {out_dir}: {', '.join(changed)} differ from the run's config.yaml — a resumed "
                        "run keeps its model and data; start a new run (--out) to change them")
    with warnings.catch_warnings(record=True) as damaged:
        warnings.simplefilter("always")
        found = latest_checkpoint(out_dir)
    if found is None and not allow_restart:
        why = f" ({len(damaged)} damaged: {damaged[-1].message})" if damaged else ""
        raise UserError(f"--resume {out_dir}: no valid checkpoint to resume from{why} — pass --allow-restart to "
                        "train again from step 0")
    if found is None:
        print(f"pretrain: no valid checkpoint in {out_dir}; --allow-restart: training again from step 0",
              file=sys.stderr)
    return cfg


def check_writable(out_dir: Path) -> None:
    """Fail now, not at the first checkpoint, when the run directory (or its checkpoints/) is read-only."""
    for d in (out_dir, out_dir / "checkpoints"):
        if d.is_dir() and not os.access(d, os.W_OK | os.X_OK):
            raise UserError(f"--out {d}: the directory is not writable — fix its permissions or choose another")


def prepare_data(cfg: PretrainConfig, out_dir: Path) -> None:
    """The run's tokenizer and token files (with answer masks for data.loss_on=answers):
    out_dir/tokenizer.json and out_dir/data/. Depends on cfg.data only."""
    train_text, val_text = read_corpus_texts(cfg.data.corpus, cfg.data.text_files, cfg.data.val_fraction)
    tokenizer = build_tokenizer(cfg.data.tokenizer, train_text, val_text, cfg.data.bpe_vocab_size)
    tokenizer.save(out_dir / "tokenizer.json")
    prepared = TokenData.prepare(tokenizer, train_text, val_text, out_dir / "data")
    if cfg.data.loss_on == "answers":
        from emergelab.tasks.corpus import answer_mask

        for split, ids in (("train", prepared.train), ("val", prepared.val)):
            TokenData.write_mask(out_dir / "data", split, answer_mask(np.asarray(ids), tokenizer))


def pretrain(cfg: PretrainConfig | str | Path | None, out_dir: str | Path, overrides: list[str] | None = None,
             resume: bool = False, allow_restart: bool = False, data_ready: bool = False) -> dict:
    """Run (or resume) pretraining into `out_dir`; returns the run summary (also `summary.json`).

    `data_ready`: out_dir already holds tokenizer.json and data/ made by `prepare_data` with the same data
    settings (a sweep prepares them once and copies them into every run).

    Every input is validated before the first write into `out_dir`, so a failed command leaves a run as it was.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: this is a file — give a directory for the run")
    if resume:
        cfg = resume_config(out_dir, overrides, allow_restart)
    elif not isinstance(cfg, PretrainConfig):
        cfg = load_pretrain_config(cfg, overrides)
    elif overrides:
        cfg = load_pretrain_config(None, overrides, base=to_dict(cfg))
    check_writable(out_dir)
    device = resolve_device(cfg.train.device)
    world = init_world(device)
    if world.world_size > 1 and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not resume and world.is_main:
        RunDir(out_dir).ensure_new(hint=f"use --resume {out_dir} to continue it, or choose a new directory")

    data_dir = out_dir / "data"
    if world.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not ((resume or data_ready) and (out_dir / "tokenizer.json").exists() and
                (data_dir / "meta.json").exists()):
            prepare_data(cfg, out_dir)
    barrier(world)
    tokenizer = Tokenizer.load(out_dir / "tokenizer.json")
    data = TokenData.open(data_dir)

    cfg.model.vocab_size = tokenizer.vocab_size
    max_steps = derive_max_steps(cfg, world.world_size)
    cfg.train.max_steps = max_steps
    # the tokens this run trains on (a named size's budget no longer applies once max_steps is set)
    cfg.train.tokens = max_steps * cfg.train.batch_size * cfg.train.grad_accum * cfg.train.seq_len * world.world_size
    effective = to_dict(cfg)
    effective["world_size"] = world.world_size
    if world.is_main:
        write_yaml(effective, out_dir / "config.yaml")

    torch.manual_seed(cfg.train.seed)
    model = GPT(cfg.model).to(device)
    doc_sep = tokenizer.eos_id if cfg.train.doc_mask else None
    train = BatchSampler(data.train, cfg.train.seq_len, cfg.train.batch_size, cfg.train.grad_accum,
                         world.world_size, cfg.train.seed, "train", data.train_mask, doc_sep)
    val = BatchSampler(data.val, cfg.train.seq_len, cfg.train.batch_size, 1, world.world_size,
                       cfg.train.seed, "val", data.val_mask, doc_sep)
    eval_fn = make_val_eval(val, cfg.train.eval_batches,
                            data.bytes_per_token["val"] if cfg.data.loss_on == "all" else None, world)
    t0 = time.time()
    last = train_loop(model, cfg.train, out_dir, max_steps, train.batch, eval_fn, world, resume=resume,
                      desc=f"pretrain {out_dir.name}")
    if not last:  # resumed a finished run: re-evaluate for the summary
        last = {"step": max_steps, **eval_fn(model)}
    n_params = model.num_params()
    tokens = max_steps * cfg.train.batch_size * cfg.train.grad_accum * cfg.train.seq_len * world.world_size
    summary = {
        "params": n_params, "non_embedding_params": model.num_params(non_embedding=True),
        "tokens": tokens, "flops": model.flops_per_token() * tokens, "steps": max_steps,
        "final_loss": last.get("loss"), "val_loss": last.get("val_loss"), "val_ppl": last.get("val_ppl"),
        "val_bpb": last.get("val_bpb"), "train_seconds": time.time() - t0,
        "world_size": world.world_size,
    }
    if world.is_main:
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary

