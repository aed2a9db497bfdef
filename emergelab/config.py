"""Typed, validated configuration: dataclasses loaded from YAML plus dotted `key=value` overrides.

A config file is a YAML mapping whose sections mirror the dataclasses. Unknown keys, wrong types and
inconsistent values raise `UserError` naming the field and the fix (with the closest valid key when
a name is misspelled). Every run writes the effective config back as `config.yaml`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from emergelab.errors import UserError
from emergelab.model.gpt import ModelConfig
from emergelab.train.tracking import check_tracker

T = TypeVar("T")


@dataclasses.dataclass
class DataConfig:
    """Where training text comes from and how it is tokenized."""

    corpus: str | None = None  # a directory from `emergelab data build` (train.txt, val.txt) or a text file
    text_files: list[str] = dataclasses.field(default_factory=list)  # extra plain-text files
    tokenizer: str = "char"  # "char", "bpe", or a path to an existing tokenizer.json
    bpe_vocab_size: int = 1024
    val_fraction: float = 0.05  # used when the corpus has no separate val.txt
    # "answers": the loss only on answer/chain-of-thought spans and <eos> (see tasks.corpus.answer_mask);
    # with it on every token, random operands dominate the loss and small models stall on arithmetic
    loss_on: str = "all"

    def validate(self) -> None:
        if not self.corpus and not self.text_files:
            raise UserError("data.corpus: no training data — set data.corpus to a corpus directory "
                            "(`emergelab data build`) or a text file, or list data.text_files")
        for field, paths in (("data.corpus", [self.corpus] if self.corpus else []),
                             ("data.text_files", self.text_files)):
            for p in paths:
                if not Path(p).exists():
                    raise UserError(f"{field}: {p} does not exist — check the path (relative paths are "
                                    "resolved from the current directory)")
        if self.tokenizer not in ("char", "bpe") and not Path(self.tokenizer).exists():
            raise UserError(f"data.tokenizer={self.tokenizer!r} is neither 'char', 'bpe' nor an existing "
                            "tokenizer.json path")
        if self.loss_on not in ("all", "answers"):
            raise UserError(f"data.loss_on={self.loss_on!r} must be 'all' or 'answers'")
        if not 0.0 < self.val_fraction < 0.5:
            raise UserError(f"data.val_fraction={self.val_fraction} must be in (0, 0.5)")


@dataclasses.dataclass
class TrainConfig:
    """The optimisation loop shared by pretraining and SFT."""

    max_steps: int | None = None  # None: derived from `tokens` (or the size's default budget)
    tokens: int | None = None  # token budget; max_steps = tokens / tokens_per_step
    batch_size: int = 32  # sequences per micro-batch per process
    grad_accum: int = 1
    seq_len: int = 128
    lr: float | None = None  # None: the named size's learning rate
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 disables clipping
    log_every: int = 10
    eval_every: int = 100
    eval_batches: int = 10
    ckpt_every: int = 200
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "float32"  # float32 | bfloat16 (autocast on CUDA)
    tracker: str = "none"  # none | tensorboard | trackio (train/tracking.py); metrics.jsonl is always written
    tensorboard: bool = False  # older spelling of tracker=tensorboard
    progress: bool = True
    # packed rows attend within their own <eos>-separated document, positions restarting per document;
    # without it, small models did not learn reversed addition from packed windows (scripts/probe_packing.py)
    doc_mask: bool = True

    def validate(self) -> None:
        for name in ("tensorboard", "progress", "doc_mask"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(f"train.{name}={getattr(self, name)!r} must be true or false")
        check_tracker(self.tracker, "train.tracker")
        for name in ("batch_size", "grad_accum", "seq_len", "log_every", "eval_every", "eval_batches",
                     "ckpt_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise UserError(f"train.{name}={getattr(self, name)} must be ≥ 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise UserError(f"train.max_steps={self.max_steps} must be ≥ 1")
        if self.tokens is not None and self.tokens < 1:
            raise UserError(f"train.tokens={self.tokens} must be ≥ 1")
        if self.lr is not None and not 0 < self.lr < 1:
            raise UserError(f"train.lr={self.lr} must be in (0, 1) — typical values are 1e-4 … 3e-3")
        if not 0 <= self.min_lr_ratio <= 1:
            raise UserError(f"train.min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise UserError("train.warmup_steps, train.weight_decay and train.grad_clip must be ≥ 0")
        for name in ("beta1", "beta2"):  # Adam's moment decay rates (Kingma & Ba 2015): 0 ≤ β < 1
            if not 0 <= getattr(self, name) < 1:
                raise UserError(f"train.{name}={getattr(self, name)} must be in [0, 1) — typical: 0.9, 0.95")
        if self.dtype not in ("float32", "bfloat16"):
            raise UserError(f"train.dtype={self.dtype!r} must be 'float32' or 'bfloat16'")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise UserError(f"train.device={self.device!r} must be auto, cpu, cuda or cuda:N")


@dataclasses.dataclass
class PretrainConfig:
    """A pretraining run: `size` names a point on the scale dial; explicit fields override it."""

    size: str | None = None
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    @staticmethod
    def defaults_for(raw: dict) -> dict:
        """The named size's model and train settings (explicit fields override them)."""
        from emergelab.sizes import size_defaults

        return size_defaults(str(raw["size"])) if raw.get("size") is not None else {}

    def validate(self) -> None:
        self.data.validate()
        self.train.validate()
        self.model.validate()
        if self.train.seq_len > self.model.block_size:
            raise UserError(f"train.seq_len={self.train.seq_len} exceeds model.block_size="
                            f"{self.model.block_size} — lower train.seq_len or raise model.block_size")


# --------------------------------------------------------------------------- loading machinery


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["model.n_layer=2", "train.lr=3e-4"]` → nested dict; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"override {pair!r} is not key=value — write e.g. model.n_layer=2")
        key, raw = pair.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError as e:
            problem = str(getattr(e, "problem", None) or e).splitlines()[0]
            raise UserError(f"override {pair!r}: the value is not valid YAML ({problem}) — quote it, "
                            f"e.g. {key}='\"{raw}\"'") from None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override {pair!r} conflicts with another override of {part}")
        node[parts[-1]] = value
    return out


def deep_merge(base: dict, top: dict) -> dict:
    """A copy of `base` with `top` merged in, recursively (top wins)."""
    merged = dict(base)
    for k, v in top.items():
        merged[k] = deep_merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"config: {path} does not exist")
    if not path.is_file():
        raise UserError(f"config: {path} is a directory — give a YAML file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise UserError(f"config: {path} is not UTF-8 text (byte {e.start}) — save it as UTF-8") from None
    except OSError as e:
        raise UserError(f"config: cannot read {path} ({e.strerror}) — check its permissions") from None
    except yaml.YAMLError as e:
        raise UserError(f"config: {path} is not valid YAML ({e})") from e
    if not isinstance(raw, dict):
        raise UserError(f"config: {path} must hold a mapping of sections, got {type(raw).__name__}")
    return raw


def _check_type(value: Any, tp: Any, where: str) -> Any:
    """Return `value` coerced to `tp` where lossless (int → float), else raise UserError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except UserError as e:
                errors.append(str(e))
        raise UserError(errors[0] if errors else f"{where}: unexpected value {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise UserError(f"{where}={value!r} should be a list")
        return [_check_type(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise UserError(f"{where}={value} is too large for a float") from None
    if tp is float and isinstance(value, str):
        try:  # YAML 1.1 reads "3e-4" as a string
            value = float(value)
        except ValueError:
            pass
    if tp is float and isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where}={value} — give a finite number")
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp is typing.Any or (isinstance(tp, type) and isinstance(value, tp) and
                            not (tp is int and isinstance(value, bool))):
        return value
    tname = getattr(tp, "__name__", str(tp))
    raise UserError(f"{where}={value!r} has the wrong type: expected {tname}, got {type(value).__name__}")


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and wrong types."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise UserError(f"{where or cls.__name__}: expected a mapping of fields, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.5)
            hint = f" — did you mean {(where + '.') if where else ''}{close[0]}?" if close else \
                f" — valid keys: {', '.join(fields)}"
            raise UserError(f"unknown config key {path!r}{hint}")
        default = _field_default(fields[key])
        if isinstance(value, dict) and dataclasses.is_dataclass(default):
            # a nested section starts from the parent's own default (SFTConfig.train is not TrainConfig())
            value = deep_merge(to_dict(default), value)
        kwargs[key] = _check_type(value, hints[key], path)
    return cls(**kwargs)


def _field_default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def write_yaml(data: dict, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


def load(cls: type[T], path: str | Path | None = None, overrides: list[str] | dict | None = None,
         base: Any = None, section: str | None = None) -> T:
    """The one config loader: `base` (a mapping or a `cls` instance), then the YAML file at `path`, then
    `overrides` (`key=value` strings or a nested mapping), each on top of the last → a validated `cls`.

    With `section` the settings live under that one top-level key (`rl:`, `dpo:` ...) and any other key is
    an error. A `cls` with a `defaults_for(raw)` hook (a named size) gets those defaults under everything."""
    if dataclasses.is_dataclass(base):
        base = {section: to_dict(base)} if section else to_dict(base)
    raw = deep_merge(base or {}, load_yaml(path) if path else {})
    raw = deep_merge(raw, overrides if isinstance(overrides, dict) else parse_overrides(overrides or []))
    if hasattr(cls, "defaults_for"):
        raw = deep_merge(cls.defaults_for(raw), raw)
    if section is None:
        cfg = from_dict(cls, raw)
    else:
        unknown = set(raw) - {section}
        if unknown:
            raise UserError(f"{section} config: unknown section(s) {sorted(unknown)} — these settings live "
                            f"under `{section}:`")
        cfg = from_dict(cls, raw.get(section) or {}, section)
    cfg.validate()
    return cfg


def load_pretrain_config(path: str | Path | None, overrides: list[str] | None = None,
                         base: dict | None = None) -> PretrainConfig:
    """YAML file (optional) + overrides → a validated PretrainConfig with the named size applied."""
    return load(PretrainConfig, path, overrides, base)
