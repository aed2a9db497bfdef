"""Text → tokenized arrays on disk (memmaps) with a train/val split, and a deterministic batch sampler.

The sampler draws windows at random offsets (as nanoGPT does), but every offset is a pure function of
(seed, split, step): a resumed run needs no cursor beyond the step number, micro-batches of a step are
slices of one global batch (so k×b accumulation sees exactly the samples of one k·b batch), and data-
parallel ranks take disjoint slices of the same global batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emergelab.data.tokenizer import SPECIAL_TOKENS, Tokenizer
from emergelab.errors import UserError

DOC_SEPARATOR = "<eos>"


def read_corpus_texts(corpus: str | None, text_files: list[str], val_fraction: float) -> tuple[str, str]:
    """(train_text, val_text) from a `data build` directory, a text file, and/or extra text files."""
    train_parts, val_parts = [], []
    if corpus:
        path = Path(corpus)
        if path.is_dir():
            train_file, val_file = path / "train.txt", path / "val.txt"
            if not train_file.exists():
                raise UserError(f"data.corpus: {path} has no train.txt — build it with `emergelab data build`")
            train_parts.append(train_file.read_text())
            if val_file.exists():
                val_parts.append(val_file.read_text())
        else:
            text_files = [str(path), *text_files]
    for f in text_files:
        text = Path(f).read_text()
        cut = int(len(text) * (1 - val_fraction))
        train_parts.append(text[:cut])
        val_parts.append(text[cut:])
    if not val_parts or not any(val_parts):  # corpus dir without val.txt: split its train text
        text = "".join(train_parts)
        cut = int(len(text) * (1 - val_fraction))
        return text[:cut], text[cut:]
    return "".join(train_parts), "".join(val_parts)


def count_bytes(text: str) -> int:
    """UTF-8 bytes of `text` with each special token counted as one byte (a separator, not 5 characters)."""
    n_special = sum(text.count(t) for t in SPECIAL_TOKENS)
    stripped = text
    for t in SPECIAL_TOKENS:
        stripped = stripped.replace(t, "")
    return len(stripped.encode("utf-8")) + n_special


def encode_to_file(tokenizer: Tokenizer, text: str, path: Path, chunk_chars: int = 1 << 20) -> int:
    """Tokenize `text` in chunks cut at document boundaries and write a uint16/uint32 array; returns length."""
    dtype = np.uint16 if tokenizer.vocab_size < 2**16 else np.uint32
    chunks, start = [], 0
    while start < len(text):
        end = min(len(text), start + chunk_chars)
        if end < len(text):  # cut after a separator so no token straddles two chunks
            cut = text.rfind(DOC_SEPARATOR, start, end)
            end = cut + len(DOC_SEPARATOR) if cut > start else end
        chunks.append(text[start:end])
        start = end
    arrays = [np.asarray(ids, dtype=dtype) for ids in tokenizer.encode_batch(chunks)] if chunks else []
    data = np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)
    tmp = path.with_suffix(".tmp")
    data.tofile(tmp)
    tmp.replace(path)
    return int(data.size)


@dataclass
class TokenData:
    """The tokenized splits of a run: `RUN/data/{train,val}.bin` + `meta.json`."""

    train: np.ndarray
    val: np.ndarray
    bytes_per_token: dict[str, float]
    train_mask: np.ndarray | None = None  # 1 where a token is scored (data.loss_on=answers)
    val_mask: np.ndarray | None = None

    @classmethod
    def prepare(cls, tokenizer: Tokenizer, train_text: str, val_text: str, out_dir: Path) -> TokenData:
        out_dir.mkdir(parents=True, exist_ok=True)
        n_train = encode_to_file(tokenizer, train_text, out_dir / "train.bin")
        n_val = encode_to_file(tokenizer, val_text, out_dir / "val.bin")
        meta = {
            "dtype": "uint16" if tokenizer.vocab_size < 2**16 else "uint32",
            "train_tokens": n_train, "val_tokens": n_val,
            "bytes_per_token": {"train": count_bytes(train_text) / max(n_train, 1),
                                "val": count_bytes(val_text) / max(n_val, 1)},
        }
        (out_dir / "meta.json").write_text(json.dumps(meta, indent=1))
        return cls.open(out_dir)

    @classmethod
    def open(cls, out_dir: Path) -> TokenData:
        meta = json.loads((out_dir / "meta.json").read_text())
        dtype = np.dtype(meta["dtype"])

        def mm(name: str) -> np.ndarray:
            n = meta[f"{name}_tokens"]
            return np.memmap(out_dir / f"{name}.bin", dtype=dtype, mode="r", shape=(n,)) if n else \
                np.zeros(0, dtype=dtype)

        def mask(name: str) -> np.ndarray | None:
            path = out_dir / f"{name}_mask.bin"
            return np.memmap(path, dtype=np.uint8, mode="r", shape=(meta[f"{name}_tokens"],)) \
                if path.exists() and meta[f"{name}_tokens"] else None

        return cls(train=mm("train"), val=mm("val"), bytes_per_token=meta["bytes_per_token"],
                   train_mask=mask("train"), val_mask=mask("val"))

    @staticmethod
    def write_mask(out_dir: Path, split: str, mask: np.ndarray) -> None:
        tmp = out_dir / f"{split}_mask.tmp"
        mask.astype(np.uint8).tofile(tmp)
        tmp.replace(out_dir / f"{split}_mask.bin")


def doc_ids_of(x: torch.Tensor, sep_id: int) -> torch.Tensor:
    """(B, T) document numbers for `model(..., doc_ids=)`: each separator token opens a new document.

    Corpora and chat rows put `<eos>` before every document (it is the next one's start token, as the
    `<eos>` prefix of prompts at evaluation), so a packed row splits into documents at each `<eos>`.
    """
    return (x == sep_id).cumsum(dim=1)


class BatchSampler:
    """Deterministic random windows: batch(step, micro, rank) depends only on its arguments and the seed.

    With `doc_sep` (the `<eos>` id) a batch is (x, y, doc_ids) for document-masked attention, and the
    window's leading fragment — the tail of a document whose start lies before the window — is not scored
    (its context is cut off). A window without any separator lies inside one long document and is scored.
    """

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, grad_accum: int = 1,
                 world_size: int = 1, seed: int = 0, split: str = "train", mask: np.ndarray | None = None,
                 doc_sep: int | None = None):
        if len(tokens) < seq_len + 2:
            raise UserError(f"data: the {split} split has {len(tokens)} tokens, fewer than train.seq_len+1="
                            f"{seq_len + 1} — add data or lower train.seq_len")
        self.tokens, self.seq_len = tokens, seq_len
        self.batch_size, self.grad_accum, self.world_size = batch_size, grad_accum, world_size
        self.seed, self.split_id = seed, {"train": 0, "val": 1}[split]
        self.mask, self.doc_sep = mask, doc_sep

    def offsets(self, step: int) -> np.ndarray:
        """(grad_accum, world_size, batch_size) window starts of one optimizer step's global batch."""
        rng = np.random.default_rng([self.seed, self.split_id, step])
        n = self.grad_accum * self.world_size * self.batch_size
        starts = rng.integers(0, len(self.tokens) - self.seq_len - 1, size=n)
        return starts.reshape(self.grad_accum, self.world_size, self.batch_size)

    def batch(self, step: int, micro: int = 0, rank: int = 0) -> tuple[torch.Tensor, ...]:
        """(x, y) — or (x, y, doc_ids) with `doc_sep` — each (batch_size, seq_len); y = -100 is unscored."""
        starts = self.offsets(step)[micro, rank]
        idx = starts[:, None] + np.arange(self.seq_len + 1)[None, :]
        window = torch.from_numpy(self.tokens[idx].astype(np.int64))
        x, y = window[:, :-1], window[:, 1:].clone()
        if self.mask is not None:  # unscored targets are ignored by the loss
            y[torch.from_numpy(self.mask[idx][:, 1:] == 0)] = -100
        if self.doc_sep is None:
            return x, y
        doc = doc_ids_of(x, self.doc_sep)
        cut = (doc == 0) & (x[:, :1] != self.doc_sep) & (doc[:, -1:] > 0)  # leading fragment of a cut document
        y[cut] = -100
        return x, y, doc
