"""GRPO math: advantages, k3 KL and each loss aggregation against hand computations."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from emergelab.errors import UserError
from emergelab.rl.grpo import GRPOLossConfig, group_advantages, grpo_loss, k3_kl, validate_batch_shape

# 2 prompts × 3 samples; completions of lengths 3, 1, 4 | 2, 4, 2 padded to T=4.
LENGTHS = [3, 1, 4, 2, 4, 2]
REWARDS = [[1.0, 0.0, 0.0], [0.5, 1.0, 0.0]]
T = 4


def _toy():
    g = torch.Generator().manual_seed(0)
    n = len(LENGTHS)
    mask = torch.tensor([[1 if t < L else 0 for t in range(T)] for L in LENGTHS])
    old = -torch.rand(n, T, generator=g, dtype=torch.float64) * 2 - 0.1
    # shift the current policy so some ratios leave [1-ε, 1+ε] on both sides
    shift = (torch.rand(n, T, generator=g, dtype=torch.float64) - 0.5) * 1.2
    logp = (old + shift).clone().requires_grad_(True)
    ref = old + (torch.rand(n, T, generator=g, dtype=torch.float64) - 0.5) * 0.6
    return logp, old, ref, mask


def _hand_advantages(scale: str) -> list[float]:
    flat = [r for grp in REWARDS for r in grp]
    out = []
    for grp in REWARDS:
        mu = sum(grp) / len(grp)
        for r in grp:
            if scale == "group":
                out.append((r - mu) / (statistics.stdev(grp) + 1e-6))
            elif scale == "batch":
                out.append((r - mu) / (statistics.stdev(flat) + 1e-6))
            else:
                out.append(r - mu)
    return out


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_advantages_match_formula(scale):
    adv = group_advantages(torch.tensor(REWARDS, dtype=torch.float64), scale).flatten().tolist()
    assert adv == pytest.approx(_hand_advantages(scale), rel=1e-9, abs=1e-12)


def test_zero_variance_group_has_zero_advantage_not_nan():
    adv = group_advantages(torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]), "group")
    assert torch.all(adv[0] == 0) and torch.isfinite(adv).all()


def test_k3_matches_formula_and_is_nonnegative_and_unbiased():
    lp, rlp = torch.tensor([-1.0, -0.2, -3.0]), torch.tensor([-1.5, -0.2, -1.0])
    want = [math.exp(r - p) - (r - p) - 1 for p, r in zip(lp.tolist(), rlp.tolist())]
    assert k3_kl(lp, rlp).tolist() == pytest.approx(want)
    assert (k3_kl(lp, rlp) >= 0).all()
    # unbiased: E_{x~p}[k3] = KL(p||q) for two categorical distributions (exact enumeration)
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    q = torch.tensor([0.2, 0.2, 0.6], dtype=torch.float64)
    expected_k3 = float((p * k3_kl(p.log(), q.log())).sum())
    assert expected_k3 == pytest.approx(float((p * (p / q).log()).sum()), rel=1e-12)


def _hand_loss_and_grad(logp, old, ref, mask, cfg, adv):
    """Scalar Python loops: ℓ_it = −min(r·A, clip(r)·A) + β·k3 and dℓ_it/dlogp_it, then the weights."""
    n = len(LENGTHS)
    total_tokens = sum(LENGTHS)
    lp, ol, rf = logp.detach().tolist(), old.tolist(), ref.tolist()
    loss = 0.0
    grad = [[0.0] * T for _ in range(n)]
    for i in range(n):
        for t in range(LENGTHS[i]):
            r = math.exp(lp[i][t] - ol[i][t])
            a = adv[i]
            rc = min(max(r, 1 - cfg.eps_low), 1 + cfg.eps_high)
            if r * a <= rc * a:
                term, dterm = -r * a, -r * a  # d(r)/dlogp = r
            else:
                term, dterm = -rc * a, 0.0  # clipped branch is constant in logp
            d = rf[i][t] - lp[i][t]
            term += cfg.beta * (math.exp(d) - d - 1)
            dterm += cfg.beta * (1 - math.exp(d))
            if cfg.loss_agg == "seq_mean":
                w = 1 / (n * LENGTHS[i])
            elif cfg.loss_agg == "token":
                w = 1 / total_tokens
            else:
                w = 1 / (n * cfg.max_len)
            loss += w * term
            grad[i][t] = w * dterm
    return loss, grad


@pytest.mark.parametrize("agg", ["seq_mean", "token", "constant"])
@pytest.mark.parametrize("beta", [0.0, 0.1])
def test_loss_and_gradient_match_hand_computation(agg, beta):
    logp, old, ref, mask = _toy()
    cfg = GRPOLossConfig(loss_agg=agg, adv_scale="group", eps_low=0.2, eps_high=0.28, beta=beta, max_len=6)
    adv = group_advantages(torch.tensor(REWARDS, dtype=torch.float64), "group").flatten()
    loss, stats = grpo_loss(logp, old, adv, mask, cfg, ref_logp=ref)
    loss.backward()
    want_loss, want_grad = _hand_loss_and_grad(logp, old, ref, mask, cfg, adv.tolist())
    assert loss.item() == pytest.approx(want_loss, rel=1e-10)
    assert logp.grad.tolist() == [pytest.approx(row, rel=1e-9, abs=1e-14) for row in want_grad]
    assert stats["clip_low"] > 0 and stats["clip_high"] > 0  # the toy exercises both clip sides
    assert math.isfinite(stats["kl"])


def test_gradient_matches_finite_differences():
    logp, old, ref, mask = _toy()
    cfg = GRPOLossConfig(loss_agg="seq_mean", adv_scale="none", beta=0.05, max_len=4)
    adv = group_advantages(torch.tensor(REWARDS, dtype=torch.float64), "none").flatten()
    loss, _ = grpo_loss(logp, old, adv, mask, cfg, ref_logp=ref)
    loss.backward()
    h = 1e-6
    x = logp.detach()
    for i, t in [(0, 0), (2, 3), (4, 1), (5, 1)]:
        xp, xm = x.clone(), x.clone()
        xp[i, t] += h
        xm[i, t] -= h
        lp_, lm_ = grpo_loss(xp, old, adv, mask, cfg, ref)[0], grpo_loss(xm, old, adv, mask, cfg, ref)[0]
        fd = (lp_ - lm_) / (2 * h)
        assert float(logp.grad[i, t]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9)


def test_padding_tokens_get_no_gradient():
    logp, old, ref, mask = _toy()
    cfg = GRPOLossConfig(loss_agg="token", beta=0.1)
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0], dtype=torch.float64)
    grpo_loss(logp, old, adv, mask, cfg, ref_logp=ref)[0].backward()
    assert torch.all(logp.grad[mask == 0] == 0)


def test_on_policy_ratio_is_one_and_loss_is_minus_mean_advantage_per_token():
    logp, _, _, mask = _toy()
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0], dtype=torch.float64)
    loss, stats = grpo_loss(logp, logp.detach(), adv, mask, GRPOLossConfig(loss_agg="token"))
    want = -sum(a * L for a, L in zip(adv.tolist(), LENGTHS)) / sum(LENGTHS)
    assert loss.item() == pytest.approx(want) and stats["ratio"] == pytest.approx(1.0)


def test_batch_shape_errors_are_user_errors_that_name_the_fix():
    with pytest.raises(UserError, match="group_size"):
        validate_batch_shape(4, 1)
    with pytest.raises(UserError, match="4 × 8 = 32"):
        validate_batch_shape(4, 8, n_completions=30)
    with pytest.raises(UserError, match="loss_agg"):
        GRPOLossConfig(loss_agg="sequence").validate()


@pytest.mark.parametrize("agg", ["seq_mean", "token", "constant"])
def test_micro_batches_with_global_counts_sum_to_the_full_batch_loss_and_gradient(agg):
    logp, old, ref, mask = _toy()
    cfg = GRPOLossConfig(loss_agg=agg, beta=0.1, max_len=5)
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0], dtype=torch.float64)
    full, _ = grpo_loss(logp, old, adv, mask, cfg, ref)
    (g_full,) = torch.autograd.grad(full, logp)
    n_tok = int(mask.sum())
    parts = [grpo_loss(logp[a:b], old[a:b], adv[a:b], mask[a:b], cfg, ref[a:b], n_seqs=6, n_tokens=n_tok)[0]
             for a, b in [(0, 1), (1, 4), (4, 6)]]
    (g_parts,) = torch.autograd.grad(sum(parts), logp)
    assert sum(parts).item() == pytest.approx(full.item(), rel=1e-12)
    assert torch.allclose(g_parts, g_full, rtol=1e-12, atol=1e-15)
