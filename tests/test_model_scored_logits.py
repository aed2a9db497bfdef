"""Logits at scored positions only: the full forward's logits and cross-entropy are the oracle."""

import pytest
import torch
import torch.nn.functional as F

from emergelab.model import GPT, ModelConfig


def test_logits_at_scored_positions_give_the_same_loss_and_gradients():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=40, n_layer=2, n_embd=32, n_head=4, block_size=64)
    full, part = GPT(cfg), GPT(cfg)
    part.load_state_dict(full.state_dict())
    g = torch.Generator().manual_seed(1)
    x, y = torch.randint(0, 40, (3, 50), generator=g), torch.randint(0, 40, (3, 50), generator=g)
    y[torch.rand(3, 50, generator=g) < 0.7] = -100  # answer-only: most positions unscored
    doc = (torch.rand(3, 50, generator=g) < 0.1).cumsum(1)
    logits = full(x, doc_ids=doc).logits
    F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100, reduction="sum").backward()
    scored = y != -100
    sub = part(x, doc_ids=doc, logits_at=scored).logits
    assert sub.shape == (int(scored.sum()), 40)
    torch.testing.assert_close(sub, logits[scored], atol=1e-6, rtol=0)
    F.cross_entropy(sub, y[scored], reduction="sum").backward()
    for (name, p), q in zip(full.named_parameters(), part.parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-5, rtol=1e-5, msg=name)


def test_logits_at_refuses_targets():
    model = GPT(ModelConfig(vocab_size=10, n_layer=1, n_embd=8, n_head=2, block_size=8))
    x = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="logits_at"):
        model(x, targets=x, logits_at=x > 0)
