"""Tokenizers: character-level (synthetic tasks) and byte-level BPE, both stored as `tokenizer.json`.

Both wrap a Hugging Face `tokenizers.Tokenizer`, so the file loads in `transformers` unchanged.
The chat/reasoning special tokens (`emergelab.data.chat.SPECIAL_TOKENS`) are always ids 0..8, in that
order, in every tokenizer we build, so task text can use them literally (`<think>` is one token).

Document start: pretraining puts `<eos>` before every document (it separates packed documents), so a
model of ours has only ever seen text begin right after `<eos>`. `Tokenizer.doc_start_id` names that
token and `encode(text, doc_start=True)` prepends it; every entry point that feeds a fresh text to a
model (eval, sample, ppl, the server, the exported tokenizer) uses it. Tokenizers we build store the
rule in tokenizer.json itself (a post-processor prepending `<eos>`), so `transformers` and vLLM add it
with their default `add_special_tokens=True`. Imported models keep their own rule: whatever their
tokenizer adds, which for SmolLM2 is nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, decoders, models, pre_tokenizers, processors, trainers
from tokenizers import Tokenizer as HFTokenizer

from emergelab.data.chat import SPECIAL_TOKENS  # the chat format's tokens, defined with the format
from emergelab.errors import UserError


class Tokenizer:
    """A thin, typed view of a `tokenizers.Tokenizer` (available as `.hf`)."""

    def __init__(self, hf: HFTokenizer, special: dict | None = None):
        """`special` (from an imported model's tokenizer_config.json) names its bos/eos/pad tokens and
        chat template; our own tokenizers use the SPECIAL_TOKENS above."""
        self.hf = hf
        special = special or {}
        self.special = special
        self.chat_template: str | None = special.get("chat_template")
        self.pad_id = hf.token_to_id(_token_str(special.get("pad_token")) or "<pad>")
        self.bos_id = hf.token_to_id(_token_str(special.get("bos_token")) or "<bos>")
        self.eos_id = hf.token_to_id(_token_str(special.get("eos_token")) or "<eos>")

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.exists():
            raise UserError(f"tokenizer: {path} does not exist — point at a run directory or a tokenizer.json")
        meta_path = path.parent / "tokenizer_config.json"
        special = json.loads(meta_path.read_text()) if meta_path.exists() else None
        return cls(HFTokenizer.from_file(str(path)), special)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        self.hf.save(str(path))
        if self.special:
            (path.parent / "tokenizer_config.json").write_text(json.dumps(self.special, indent=1))

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    def token_to_id(self, token: str) -> int | None:
        return self.hf.token_to_id(token)

    def id_to_token(self, idx: int) -> str | None:
        return self.hf.id_to_token(idx)

    @property
    def doc_start_id(self) -> int | None:
        """The token a fresh document starts with (prepended by `encode(..., doc_start=True)`), or None."""
        if not hasattr(self, "_doc_start"):
            self._doc_start = _doc_start_of(self)
        return self._doc_start

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False, doc_start: bool = False) -> list[int]:
        try:
            ids = self.hf.encode(text, add_special_tokens=False).ids
        except Exception as e:  # a character tokenizer without <unk> raises on characters outside its alphabet
            raise UserError(f"text: characters {self.unknown_characters(text)[:10]} are not in this model's "
                            "alphabet (it was built from its training corpus only) — leave them out; models "
                            "pretrained with this version cover printable ASCII") from e
        if add_bos and self.bos_id is not None:
            ids = [self.bos_id, *ids]
        if doc_start and self.doc_start_id is not None:
            ids = [self.doc_start_id, *ids]
        if add_eos and self.eos_id is not None:
            ids = [*ids, self.eos_id]
        return ids

    def unknown_characters(self, text: str) -> list[str]:
        """Characters of `text` (outside special tokens) that a character tokenizer has no token for:
        an error for old run directories, `<unk>` for tokenizers built with `printable=True`."""
        if not isinstance(self.hf.model, models.WordLevel):
            return []  # byte-level BPE encodes everything
        for t in SPECIAL_TOKENS:
            text = text.replace(t, "")
        return sorted({c for c in text if self.hf.token_to_id(c) is None})

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=skip_special)

    def token_pieces(self, ids: Iterable[int]) -> list[str]:
        """Readable text of each token on its own (for inspection views)."""
        return [self.hf.decode([i], skip_special_tokens=False) for i in ids]


def _doc_start_of(tok: Tokenizer) -> int | None:
    """What the tokenizer's own post-processor puts before a text; for tokenizers saved before the
    post-processor existed (no tokenizer_config.json: ours) `<eos>`; for imported ones without a
    post-processor, their bos when their config says `add_bos_token`."""
    probe = next((c for c in "a0 " if tok.hf.token_to_id(c) is not None), "")  # WordLevel raises on others
    plain = tok.hf.encode(probe, add_special_tokens=False).ids
    full = tok.hf.encode(probe, add_special_tokens=True).ids
    if len(full) > len(plain) and full[1:1 + len(plain)] == plain:
        return full[0]
    if not tok.special:
        return tok.eos_id
    if tok.special.get("add_bos_token"):
        return tok.bos_id
    return None


def doc_start_processor(hf: HFTokenizer, token: str = "<eos>") -> processors.TemplateProcessing:
    """A post-processor that prepends `token` (the document start) when `add_special_tokens=True`."""
    return processors.TemplateProcessing(single=f"{token} $A", pair=f"{token} $A {token} $B",
                                         special_tokens=[(token, hf.token_to_id(token))])


def _token_str(tok: str | dict | None) -> str | None:
    """HF tokenizer_config.json writes special tokens as strings or {"content": ...} objects."""
    return tok.get("content") if isinstance(tok, dict) else tok


def _special_added_tokens() -> list[AddedToken]:
    return [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]


# What a user may type: printable ASCII, newline and tab (`emergelab pretrain` adds it to a corpus's characters)
PRINTABLE_ASCII = "".join(chr(i) for i in range(32, 127)) + "\n\t"
UNK = "<unk>"


def char_tokenizer(alphabet: str, printable: bool = False) -> Tokenizer:
    """One token per character of `alphabet` (after the special tokens). With `printable`, also every
    printable ASCII character, and any other character encodes as `<unk>` (the last id); without it,
    unknown characters are an error."""
    chars = sorted(set(alphabet) | (set(PRINTABLE_ASCII) if printable else set()))
    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    if printable:
        vocab[UNK] = len(vocab)
    hf = HFTokenizer(models.WordLevel(vocab=vocab, unk_token=UNK if printable else None))
    # Split into single characters; special tokens are matched before this step.
    hf.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    hf.decoder = decoders.Fuse()
    hf.add_special_tokens(_special_added_tokens())
    hf.post_processor = doc_start_processor(hf)
    return Tokenizer(hf)


def alphabet_of(texts: Iterable[str]) -> str:
    """All characters in `texts`, special-token strings removed first."""
    chars: set[str] = set()
    for text in texts:
        for tok in SPECIAL_TOKENS:
            text = text.replace(tok, "")
        chars.update(text)
    return "".join(sorted(chars))


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE (GPT-2 style) trained with Hugging Face `tokenizers`."""
    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise UserError(f"data.vocab_size={vocab_size} is too small for byte-level BPE — use at least "
                        f"{len(SPECIAL_TOKENS) + 256} (special tokens + 256 bytes)")
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_special_added_tokens(),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator(texts, trainer=trainer)
    hf.post_processor = doc_start_processor(hf)
    return Tokenizer(hf)
