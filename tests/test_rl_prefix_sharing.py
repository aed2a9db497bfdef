"""Prefix sharing in the GRPO forward: the plain full forward over every packed row is the oracle."""

import pytest
import torch

from emergelab.model import GPT, ModelConfig
from emergelab.rl.rollout import pack_sequences, sequence_logprobs


def _batch(prompt_lens, group, seed=0, V=40, max_comp=8):
    g = torch.Generator().manual_seed(seed)
    prompts, comps = [], []
    for n in prompt_lens:
        p = torch.randint(1, V, (n,), generator=g).tolist()
        for _ in range(group):
            prompts.append(p)
            n_comp = int(torch.randint(1, max_comp + 1, (1,), generator=g))
            comps.append(torch.randint(1, V, (n_comp,), generator=g).tolist())
    return prompts, comps


@pytest.mark.parametrize("trim", [0, 1])  # the trainer drops the last column (no row reads it as input)
@pytest.mark.parametrize("kw,prompt_lens,max_comp", [(dict(), [5, 5], 8), (dict(n_kv_head=2), [3, 7, 4], 8),
                                                     (dict(n_kv_head=1, tie_embeddings=True), [6, 2], 8),
                                                     (dict(), [4, 4], 1)])
def test_shared_prompt_logprobs_and_gradients_equal_the_full_forward(kw, prompt_lens, max_comp, trim):
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=40, n_layer=2, n_embd=32, n_head=4, block_size=64, **kw))
    prompts, comps = _batch(prompt_lens, group=4, max_comp=max_comp)
    idx, targets, mask = pack_sequences(prompts, comps)
    S = idx.shape[1] - trim
    idx, targets, mask = idx[:, :S], targets[:, :S], mask[:, :S]
    weights = torch.randn(mask.shape, generator=torch.Generator().manual_seed(1)) * mask
    results = []
    for shared in (False, True):
        model.zero_grad()
        lens = [len(p) for p in prompts] if shared else None
        logp, ent = sequence_logprobs(model, idx, targets, with_entropy=True, start=min(prompt_lens) - 1,
                                      prompt_lens=lens)
        (logp * weights).sum().backward()
        results.append((logp.detach() * mask, ent * mask, {n: p.grad.clone() for n, p in model.named_parameters()}))
    (lp0, e0, g0), (lp1, e1, g1) = results
    assert (lp0 != 0).sum() == mask.sum()  # every completion token was scored
    torch.testing.assert_close(lp1, lp0, atol=1e-5, rtol=0)
    torch.testing.assert_close(e1, e0, atol=1e-5, rtol=0)
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], atol=1e-5, rtol=1e-4, msg=name)


def test_prompts_run_once_per_group():
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=40, n_layer=1, n_embd=16, n_head=2, block_size=64))
    prompts, comps = _batch([4, 6], group=8)
    idx, targets, _ = pack_sequences(prompts, comps)
    shapes = []
    model.tok_emb.register_forward_hook(lambda m, i, o: shapes.append(tuple(i[0].shape)))
    sequence_logprobs(model, idx, targets, prompt_lens=[len(p) for p in prompts])
    assert shapes[0] == (2, 6)  # two distinct prompts, left-padded to the longer one
    assert shapes[1] == (16, idx.shape[1] - 4)  # then the completions on top
