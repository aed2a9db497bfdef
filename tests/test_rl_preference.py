"""Bradley–Terry and DPO losses against their formulas; the reward model learns a separable preference."""

from __future__ import annotations

import math

import pytest
import torch

from emergelab.rl.dpo import dpo_loss
from emergelab.rl.reward_model import bt_loss


def test_bradley_terry_loss_is_negative_log_sigmoid_of_the_margin():
    rc, rr = torch.tensor([2.0, -1.0, 0.0]), torch.tensor([0.5, 1.0, 0.0])
    want = sum(math.log(1 + math.exp(-(c - r))) for c, r in zip(rc.tolist(), rr.tolist())) / 3
    assert bt_loss(rc, rr).item() == pytest.approx(want)


def test_dpo_loss_and_gradient_match_the_formula():
    pc = torch.tensor([-3.0, -5.0], requires_grad=True)
    pr = torch.tensor([-4.0, -2.0], requires_grad=True)
    refc, refr, beta = torch.tensor([-3.5, -4.0]), torch.tensor([-3.0, -2.5]), 0.5
    loss, margin = dpo_loss(pc, pr, refc, refr, beta)
    m = [beta * ((a - b) - (c - d)) for a, b, c, d in zip(pc.tolist(), refc.tolist(), pr.tolist(), refr.tolist())]
    assert margin.tolist() == pytest.approx(m)
    assert loss.item() == pytest.approx(sum(math.log(1 + math.exp(-x)) for x in m) / 2)
    loss.backward()
    # d/dpc of −log σ(m)/B = −β σ(−m)/B ; d/dpr = +β σ(−m)/B
    sig = [1 / (1 + math.exp(x)) for x in m]
    assert pc.grad.tolist() == pytest.approx([-beta * s / 2 for s in sig])
    assert pr.grad.tolist() == pytest.approx([beta * s / 2 for s in sig])


def test_policy_equal_to_reference_gives_loss_log2():
    x = torch.tensor([-1.0, -2.0])
    loss, margin = dpo_loss(x, x + 1, x, x + 1, beta=0.3)
    assert loss.item() == pytest.approx(math.log(2)) and torch.all(margin == 0)
