"""Perplexity and bits per byte agree with a hand computation on a toy model."""

from __future__ import annotations

import math

import torch

from emergelab.data.tokenizer import char_tokenizer
from emergelab.eval.ppl import perplexity
from emergelab.model.gpt import GPT, ModelConfig


def uniform_model(vocab: int, block: int) -> GPT:
    model = GPT(ModelConfig(vocab_size=vocab, n_layer=1, n_embd=16, n_head=2, block_size=block))
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit 0 → uniform next-token distribution
    return model.eval()


def test_uniform_model_has_perplexity_equal_to_vocab_size():
    tok = char_tokenizer("abc ")
    text = "abc cab ba"
    model = uniform_model(tok.vocab_size, block=64)
    r = perplexity(model, tok, text)
    n = len(text)  # <eos> (the document start) prepended: every character is predicted once
    assert r["tokens"] == n
    assert math.isclose(r["nll_per_token"], math.log(tok.vocab_size), rel_tol=1e-6)
    assert math.isclose(r["ppl"], tok.vocab_size, rel_tol=1e-5)
    assert math.isclose(r["bits_per_byte"], n * math.log2(tok.vocab_size) / len(text.encode()), rel_tol=1e-6)


def test_sliding_windows_score_each_token_once_with_context():
    tok = char_tokenizer("ab")
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_embd=16, n_head=2, block_size=8)).eval()
    text = "abbabaabbbab" * 3  # longer than the block
    ids = tok.encode(text, doc_start=True)
    # brute force: each token i scored with the (up to) block-1 tokens before... computed window by window
    r = perplexity(model, tok, text, stride=4)
    total, scored = 0.0, 1
    while scored < len(ids):
        end = min(len(ids), scored + 4)
        start = max(0, end - 8)
        logp = torch.log_softmax(model(torch.tensor([ids[start:end]])).logits[0], -1)
        for t in range(scored, end):
            total -= logp[t - start - 1, ids[t]].item()
        scored = end
    assert r["tokens"] == len(ids) - 1
    assert math.isclose(r["nll_per_token"], total / (len(ids) - 1), rel_tol=1e-5)
