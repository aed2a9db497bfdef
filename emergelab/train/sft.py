"""Supervised fine-tuning: chat-format conversations, loss on assistant tokens only, packed rows.

    emergelab sft CONFIG.yaml --init RUN --out OUT [sft.key=value train.key=value ...]

A conversation is encoded by `emergelab.data.chat.encode_pair`:
`<eos><|user|>PROMPT<|assistant|>RESPONSE<eos>` (template "chat") or `<eos>PROMPT RESPONSE<eos>` (template
"plain", the pretraining line format). Targets are -100 (ignored) everywhere except the response tokens
and the closing `<eos>`, so editing the prompt changes no loss term it owns. Conversations are packed
greedily, whole, into rows of `train.seq_len` tokens (the rest of a row is padding with ignored targets);
with `train.doc_mask` (default) each conversation attends only to itself, positions restarting at its
`<eos>`, so packing changes no logit.

Data comes from the task suite (cold-start chain-of-thought demonstrations with `cot_fraction`,
direct answers otherwise, optionally self-correcting worked solutions) and/or JSONL files of
`{"prompt": ..., "response": ...}` objects (what `rejection sampling` and `distill` write).
Optimisation is the shared loop (`emergelab.train.loop.train_loop`).
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from pathlib import Path

import torch

from emergelab.config import TrainConfig, to_dict
from emergelab.data.chat import MAX_NEW_TOKENS, TEMPLATES, encode_pair
from emergelab.data.tokens import doc_ids_of
from emergelab.errors import UserError


@dataclasses.dataclass
class SFTDataConfig:
    task: str | None = None  # task spec for generated demonstrations (e.g. "add:digits=6")
    n: int = 2000  # number of generated demonstrations
    cot_fraction: float = 1.0  # share of demonstrations with a worked solution in <think>…</think>
    self_correct_fraction: float = 0.0  # share of worked solutions that make and fix a mistake
    jsonl: list[str] = dataclasses.field(default_factory=list)  # extra {"prompt","response"} files
    template: str = "chat"  # chat | plain
    epochs: float = 3.0  # sets train.max_steps when it is not given
    eval_n: int = 100  # held-out task items scored (greedy) at each eval
    max_new_tokens: int = MAX_NEW_TOKENS

    def validate(self) -> None:
        if not self.task and not self.jsonl:
            raise UserError("sft.task: no data — set sft.task to a task spec or list sft.jsonl files")
        for p in self.jsonl:
            if not Path(p).exists():
                raise UserError(f"sft.jsonl: {p} does not exist")
        if not 0 <= self.cot_fraction <= 1 or not 0 <= self.self_correct_fraction <= 1:
            raise UserError("sft.cot_fraction / sft.self_correct_fraction: must be in [0, 1]")
        if self.template not in TEMPLATES:
            raise UserError(f"sft.template: {self.template!r} must be 'chat' or 'plain'")
        if self.epochs <= 0 or self.n < 1:
            raise UserError("sft.epochs and sft.n must be positive")


@dataclasses.dataclass
class SFTConfig:
    sft: SFTDataConfig = dataclasses.field(default_factory=SFTDataConfig)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(
        lr=3e-4, warmup_steps=10, weight_decay=0.0, eval_every=50, log_every=10, batch_size=16))

    def validate(self) -> None:
        self.sft.validate()
        self.train.validate()


# ------------------------------------------------------------------------------------------ data


def task_pairs(task_spec: str, n: int, cot_fraction: float, self_correct_fraction: float = 0.0,
               seed: int = 0, split: str = "train") -> list[tuple[str, str]]:
    """(prompt, response) demonstrations from a task; responses end without the newline stop."""
    from emergelab.tasks.registry import get_task

    task = get_task(task_spec)
    rng = random.Random(seed)
    pairs = []
    for i, ex in enumerate(task.generate(n, split, seed=seed)):
        cot = rng.random() < cot_fraction
        sc = cot and task.supports_self_correction and rng.random() < self_correct_fraction
        target = task.render_target(ex, cot=cot, self_correct=sc, seed=seed + i)
        pairs.append((task.render_prompt(ex), target.rstrip("\n")))
    return pairs


def jsonl_pairs(path: str | Path) -> list[tuple[str, str]]:
    pairs = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            pairs.append((str(obj["prompt"]), str(obj["response"])))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise UserError(f"sft.jsonl: {path}:{n} must be a JSON object with 'prompt' and 'response'") from e
    return pairs


def write_jsonl_pairs(pairs: list[tuple[str, str]], path: str | Path) -> None:
    Path(path).write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in pairs))


def pack(examples: list[tuple[list[int], list[int]]], seq_len: int, pad_id: int
         ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Greedy packing of whole conversations into (rows, seq_len); returns (x, y, n_truncated)."""
    rows_x: list[list[int]] = [[]]
    rows_y: list[list[int]] = [[]]
    truncated = 0
    for ids, tgt in examples:
        if len(ids) > seq_len:
            ids, tgt, truncated = ids[:seq_len], tgt[:seq_len], truncated + 1
        if len(rows_x[-1]) + len(ids) > seq_len:
            rows_x.append([])
            rows_y.append([])
        rows_x[-1].extend(ids)
        rows_y[-1].extend(tgt)
    x = torch.full((len(rows_x), seq_len), pad_id, dtype=torch.long)
    y = torch.full((len(rows_x), seq_len), -100, dtype=torch.long)
    for i, (rx, ry) in enumerate(zip(rows_x, rows_y)):
        x[i, : len(rx)] = torch.tensor(rx)
        y[i, : len(ry)] = torch.tensor(ry)
    return x, y, truncated


def make_batch_fn(x: torch.Tensor, y: torch.Tensor, batch_size: int, grad_accum: int, world_size: int,
                  seed: int, doc_sep: int | None = None):
    """batch_fn(step, micro, rank) for the shared loop: a seeded permutation of rows per epoch; with
    `doc_sep` (the `<eos>` id) it adds doc_ids so packed conversations do not attend to each other."""
    per_step = batch_size * grad_accum * world_size
    n = x.shape[0]

    def batch_fn(step: int, micro: int, rank: int) -> tuple[torch.Tensor, ...]:
        start = step * per_step + (micro * world_size + rank) * batch_size
        rows = []
        for k in range(start, start + batch_size):
            epoch, i = divmod(k, n)
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
            rows.append(int(perm[i]))
        if doc_sep is None:
            return x[rows], y[rows]
        return x[rows], y[rows], doc_ids_of(x[rows], doc_sep)

    return batch_fn


# ------------------------------------------------------------------------------------------ run


def sft_pairs(cfg: SFTDataConfig, seed: int) -> list[tuple[str, str]]:
    pairs = task_pairs(cfg.task, cfg.n, cfg.cot_fraction, cfg.self_correct_fraction, seed) if cfg.task else []
    for p in cfg.jsonl:
        pairs.extend(jsonl_pairs(p))
    return pairs


def train_sft(cfg: SFTConfig, init: str | Path, out_dir: str | Path,
              pairs: list[tuple[str, str]] | None = None) -> dict:
    """Fine-tune the policy of run `init` on `pairs` (default: from cfg.sft) into run `out_dir`."""
    from emergelab.eval.completions import greedy_accuracy
    from emergelab.runs import RunDir, load_model, resolve_device
    from emergelab.tasks.registry import get_task
    from emergelab.train.loop import train_loop

    cfg.validate()
    out_dir = Path(out_dir)
    device = resolve_device(cfg.train.device)
    model, tok, _ = load_model(init, device=str(device))
    pairs = pairs if pairs is not None else sft_pairs(cfg.sft, cfg.train.seed)
    if not pairs:
        raise UserError("sft: the dataset is empty — check sft.task / sft.jsonl")
    if cfg.train.seq_len > model.cfg.block_size:
        cfg.train.seq_len = model.cfg.block_size
    x, y, truncated = pack([encode_pair(tok, p, r, cfg.sft.template) for p, r in pairs], cfg.train.seq_len,
                           tok.pad_id or 0)
    if truncated:
        print(f"sft: warning: {truncated} of {len(pairs)} conversations are longer than train.seq_len="
              f"{cfg.train.seq_len} and were cut (their ends are not learned) — raise train.seq_len "
              f"(up to the model's block_size {model.cfg.block_size})", file=sys.stderr)
    n_tokens = int((y != -100).sum())
    if cfg.train.max_steps is None:
        per_step = cfg.train.batch_size * cfg.train.grad_accum
        cfg.train.max_steps = max(1, int(cfg.sft.epochs * x.shape[0] / per_step))
    RunDir(out_dir).prepare(init, "sft", to_dict(cfg.sft), {"train": to_dict(cfg.train)})

    task = get_task(cfg.sft.task) if cfg.sft.task else None
    eval_set = task.generate(cfg.sft.eval_n, "test", seed=cfg.train.seed) if task else []

    def eval_fn(m: torch.nn.Module) -> dict:
        return greedy_accuracy(m, tok, task, eval_set, cfg.sft.template, cfg.sft.max_new_tokens)

    torch.manual_seed(cfg.train.seed)
    model.train()
    last = train_loop(model, cfg.train, out_dir,
                      cfg.train.max_steps, make_batch_fn(x, y, cfg.train.batch_size, cfg.train.grad_accum, 1,
                                                         cfg.train.seed,
                                                         tok.eos_id if cfg.train.doc_mask else None),
                      eval_fn if eval_set else None, desc=f"sft {out_dir.name}")
    summary = {"conversations": len(pairs), "rows": x.shape[0], "assistant_tokens": n_tokens,
               "truncated": truncated, "steps": cfg.train.max_steps, "final": last}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
