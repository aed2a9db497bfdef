"""The one-token decode step: full (cache-free) forward passes and the textbook RoPE are the oracles."""

import pytest
import torch

from emergelab.model import GPT, KVCache, ModelConfig, SamplingParams, generate
from emergelab.model.gpt import rope


def model_(seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=50, n_layer=2, n_embd=32, n_head=4, block_size=64) | kw
    m = GPT(ModelConfig(**cfg))
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() > 1:
                p.mul_(5.0)
    return m.eval()


def test_rope_by_roll_is_bit_identical_to_rotate_half():
    g = torch.Generator().manual_seed(0)
    x, ang = torch.randn(3, 5, 2, 8, generator=g), torch.randn(5, 1, 8, generator=g)
    x1, x2 = x.chunk(2, dim=-1)
    textbook = x * ang.cos() + torch.cat((-x2, x1), dim=-1) * ang.sin()
    sign = torch.cat((-torch.ones(4), torch.ones(4)))
    assert torch.equal(rope(x, ang.cos(), ang.sin() * sign), textbook)


@pytest.mark.parametrize("kw", [dict(), dict(n_kv_head=2), dict(n_kv_head=1, attn_bias=True)])
def test_decode_steps_equal_the_full_forward_with_and_without_left_padding(kw):
    model = model_(**kw)
    lens = [7, 3, 11]
    seqs = [torch.randint(0, 50, (n + 9,), generator=torch.Generator().manual_seed(n)) for n in lens]
    with torch.no_grad():
        for rows, plens in (([seqs[0]], [lens[0]]), (seqs, lens)):  # alone (no padding), left-padded batch
            P = max(plens)
            pad = torch.tensor([P - n for n in plens])
            idx = torch.stack([torch.cat([torch.zeros(P - n, dtype=torch.long), s[:n]]) for s, n in zip(rows, plens)])
            cache = KVCache(model.cfg, len(rows), P + 9, pad_lens=pad if pad.any() else None)
            model(idx, cache=cache)
            for t in range(8):
                got = model.decode_step(torch.stack([s[n + t] for s, n in zip(rows, plens)]), cache)
                for b, (s, n) in enumerate(zip(rows, plens)):
                    full = model(s[None, : n + t + 1]).logits[0, -1]
                    assert (got[b] - full).abs().max() < 1e-4


def test_cache_select_keeps_the_chosen_rows_filled_columns():
    cfg = ModelConfig(vocab_size=10, n_layer=1, n_embd=8, n_head=2, block_size=16)
    cache = KVCache(cfg, 4, 16, pad_lens=torch.tensor([0, 1, 2, 3]))
    for t in cache.k + cache.v:
        t.normal_()
    cache.pos = 9
    before = [t.clone() for t in cache.k + cache.v]
    rows = torch.tensor([3, 1])
    cache.select(rows)
    for old, new in zip(before, cache.k + cache.v):
        assert new.shape == (2,) + old.shape[1:]
        assert torch.equal(new[:, :, :9], old[rows][:, :, :9])
    assert cache.pad_lens.tolist() == [3, 1]


def test_greedy_without_logprobs_gives_the_same_tokens_and_no_logprobs():
    model = model_(n_kv_head=2)
    prompts = [[1, 5, 9], [3], [8, 8, 4, 30, 12, 19]]
    a = generate(model, prompts, SamplingParams(max_new_tokens=12, temperature=0))
    b = generate(model, prompts, SamplingParams(max_new_tokens=12, temperature=0, logprobs=False))
    assert [c.tokens for c in a] == [c.tokens for c in b]
    assert all(c.logprobs == [] for c in b) and all(len(c.logprobs) == len(c.tokens) for c in a)
