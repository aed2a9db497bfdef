"""Perplexity and bits per byte of a text under a model (sliding windows over long texts)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from emergelab.data.tokenizer import Tokenizer
from emergelab.data.tokens import count_bytes
from emergelab.errors import UserError


@torch.no_grad()
def perplexity(model: torch.nn.Module, tokenizer: Tokenizer, text: str, stride: int | None = None) -> dict:
    """{tokens, nll_per_token, ppl, bits_per_byte} for `text`.

    The tokenizer's document-start token is prepended (`<eos>` for our models, whatever transformers
    adds for an imported one, nothing for SmolLM2), so the text is scored as the model would see it
    after a document boundary; without one, the first token is context only.
    Texts longer than the context are scored in windows of `block_size` advancing by `stride`; each
    token is scored once, with up to block_size - stride tokens of context before it.
    """
    ids = tokenizer.encode(text, doc_start=True)
    if len(ids) < 2:
        raise UserError("ppl: the text is too short — it needs at least one token to predict")
    block = model.cfg.block_size
    stride = stride or max(1, block // 2)
    device = next(model.parameters()).device
    seq = torch.tensor(ids, device=device)
    total_nll, scored = 0.0, 1  # position 0 is context only
    while scored < len(ids):
        end = min(len(ids), scored + stride)
        start = max(0, end - block)
        window = seq[start:end][None]
        logits = model(window).logits[0].float()
        # logits[j] predicts token start+j+1; score tokens scored..end-1
        first = scored - start - 1
        pred = logits[first:end - start - 1]
        total_nll += F.cross_entropy(pred, seq[scored:end], reduction="sum").item()
        scored = end
    n = len(ids) - 1
    nll = total_nll / n
    return {"tokens": n, "nll_per_token": nll, "ppl": math.exp(min(nll, 700.0)),
            "bits_per_byte": total_nll / math.log(2) / max(count_bytes(text), 1)}
