"""The page's "attention disambiguates a word by its context" panel: one minimal pair on the served model.

GET /api/disambiguate/pairs lists the shipped pairs (science/real_model/data/minimal_pairs.json) as
sentences; POST /api/disambiguate measures one pair given as two sentences that differ only by a cue and
end with the word. The numbers are `disambiguation.measure` on that one item (no math of its own here):
per layer, 1 − cos between the word's states in the two sentences, the same for the control word in
the same slot, and the heads whose attention from the word to the cue most exceeds the control's.
"""

from __future__ import annotations

import torch
from fastapi import FastAPI
from pydantic import Field

from emergelab.science.real_model.disambiguation import measure, minimal_pairs
from emergelab.serve.events import on_model_thread
from emergelab.serve.http_errors import ApiError
from emergelab.serve.schemas import _Body

MAX_WORD_CHARS = 100  # fixed bound on `word` and `control`; sentences are bounded by max_inspect_tokens


class DisambiguateRequest(_Body):
    sentence_a: str = Field(min_length=1)
    sentence_b: str = Field(min_length=1)
    word: str = Field(min_length=1, max_length=MAX_WORD_CHARS)
    control: str = Field(min_length=1, max_length=MAX_WORD_CHARS)


def pair_sentences(item: dict) -> dict:
    """A shipped item as the request the page sends: {sentence_a, sentence_b, word, control}."""
    a, b = (item["template"].replace("{cue}", c).replace("{w}", item["word"]) for c in item["cues"])
    return {"sentence_a": a, "sentence_b": b, "word": item["word"], "control": item["control"]}


def item_from_sentences(a: str, b: str, word: str, control: str) -> dict:
    """The measure's item {template, cues, word, control} behind two sentences that end with `word` and differ
    only by a cue (a run of whole words) before it. Raises ApiError(400) when they do not have that shape."""
    for name, text in (("word", word), ("control", control)):
        if text != text.strip() or not text:
            raise ApiError(400, f"{name}: {text!r} must not start or end with whitespace", name)
    for name, text in (("sentence_a", a), ("sentence_b", b), ("word", word), ("control", control)):
        if "{cue}" in text or "{w}" in text:
            raise ApiError(400, f"{name}: must not contain the placeholders {{cue}} or {{w}}", name)
    a, b = a.strip(), b.strip()
    for name, text in (("sentence_a", a), ("sentence_b", b)):
        if not text.endswith(word) or text == word:
            raise ApiError(400, f"{name}: must end with the word {word!r} after some context (the word fills the "
                           "last slot, so the model reads the cue before it)", name)
    wa, wb = a[:-len(word)].split(" "), b[:-len(word)].split(" ")
    i = 0
    while i < min(len(wa), len(wb)) - 1 and wa[i] == wb[i]:
        i += 1
    j = 0
    while j < min(len(wa), len(wb)) - i - 1 and wa[-1 - j] == wb[-1 - j]:
        j += 1
    cues = [" ".join(w[i:len(w) - j]) for w in (wa, wb)]
    if not all(c.strip() for c in cues) or cues[0] == cues[1]:
        raise ApiError(400, "sentence_b: the two sentences must differ only by a cue (one or more words) before "
                       f"the word {word!r}, e.g. 'The fisherman was at the bank' / 'The cashier was at the bank'",
                       "sentence_b")
    template = " ".join(wa[:i] + ["{cue}"] + wa[len(wa) - j:]) + "{w}"
    return {"template": template, "cues": cues, "word": word, "control": control}


class _OnDevice:
    """The model with its inputs moved to its device (`measure` builds CPU tensors)."""

    def __init__(self, model):
        self.model, self.device = model, model.lm_head.weight.device

    def __call__(self, idx: torch.Tensor, **kw):
        return self.model(idx.to(self.device), **kw)


def measure_pair(model, tok, item: dict) -> dict:
    """`disambiguation.measure` on one item, as the endpoint's JSON."""
    was_training = model.training
    model.eval()
    try:
        got = measure(_OnDevice(model), tok, [item])
    finally:
        model.train(was_training)
    row = got["items"][0]
    return {"template": item["template"], "cues": item["cues"], "word": item["word"], "control": item["control"],
            "move_word": row["move_word"], "move_control": row["move_control"],
            "attention_to_cue_minus_control": got["attention_to_cue_minus_control"], "top_heads": got["top_heads"]}


def add_disambiguate_route(app: FastAPI, s) -> None:
    """Routes for the panel; `s` is app.py's `Served`."""
    limit = min(s.limits.max_inspect_tokens, s.engine.model.cfg.block_size)  # tokens of one filled sentence
    pairs = [pair_sentences(it) for it in minimal_pairs()]

    @app.get("/api/disambiguate/pairs")
    async def disambiguate_pairs():
        return {"pairs": pairs}

    @app.post("/api/disambiguate")
    async def disambiguate(req: DisambiguateRequest):
        for name in ("sentence_a", "sentence_b"):  # length caps, valid Unicode, known characters: as /api/inspect
            await s.admission.encode(getattr(req, name), name, limit)
        item = item_from_sentences(req.sentence_a, req.sentence_b, req.word, req.control)
        for name in ("word", "control"):
            await s.admission.encode(getattr(req, name), name, limit)
            for cue in item["cues"]:  # the control fills the same slot: its sentences must fit too
                filled = item["template"].replace("{cue}", cue).replace("{w}", getattr(req, name))
                await s.admission.encode(filled, name, limit)
        try:
            return await on_model_thread(s.engine, lambda: measure_pair(s.engine.model, s.engine.tokenizer, item))
        except ValueError as e:  # encode_item: the cue does not tokenize as its own span in this tokenizer
            raise ApiError(400, f"sentence_b: {e} — this model's tokenizer merges the cue with its neighbours; "
                           "try other words", "sentence_b") from None
