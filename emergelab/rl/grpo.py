"""GRPO objective: group-relative advantages, the clipped surrogate, k3 KL, and three loss aggregations.

Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath §4.1; used by DeepSeek-R1, 2025)
samples a *group* of G completions per prompt and uses the group's own rewards as the baseline,
so no value network (critic) is needed. Per completion token t of sample i:

    ratio_it = π_θ(o_it | q, o_i<t) / π_old(o_it | q, o_i<t)
    ℓ_it     = −min(ratio_it · A_i, clip(ratio_it, 1 − ε_low, 1 + ε_high) · A_i) + β · k3_it

and the per-token terms are aggregated into one scalar in one of three documented ways
(`LOSS_AGGREGATIONS`). Everything here is pure tensor math on already-computed log-probabilities;
rollouts and the training loop live in `rollout.py` and `trainer.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from emergelab.errors import UserError

# How the per-token losses ℓ_it (masked to completion tokens) become one scalar:
#   "seq_mean"  — mean over tokens within each sequence, then mean over sequences:
#                 (1/G) Σ_i (1/|o_i|) Σ_t ℓ_it. DeepSeekMath eq. 3 / DeepSeek-R1. Gives every
#                 sequence equal weight, so per-token weight shrinks with length: a length bias
#                 (short correct and long wrong answers are favoured; Liu et al. 2025, Dr. GRPO).
#   "token"     — Σ_it ℓ_it / Σ_i |o_i|: every token in the batch weighs the same. DAPO (Yu et al.
#                 2025, "token-level policy gradient loss").
#   "constant"  — Σ_it ℓ_it / (N · L_max) with L_max the generation budget: a constant normaliser,
#                 unbiased in length. Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-like
#                 training"), which also drops the std scaling of advantages (`adv_scale="none"`).
LOSS_AGGREGATIONS = ("seq_mean", "token", "constant")

# How advantages are scaled after subtracting the group mean:
#   "group" — divide by the group's std (DeepSeekMath / R1 GRPO);
#   "batch" — divide by the std of all rewards in the step (REINFORCE++-style; Hu 2025);
#   "none"  — no scaling (Dr. GRPO: the std division up-weights too-easy / too-hard questions).
ADVANTAGE_SCALES = ("group", "batch", "none")


@dataclass
class GRPOLossConfig:
    """Switches of the GRPO objective. Defaults follow Dr. GRPO, the R1-Zero reference setting."""

    loss_agg: str = "constant"  # one of LOSS_AGGREGATIONS
    adv_scale: str = "none"  # one of ADVANTAGE_SCALES
    eps_low: float = 0.2  # clip range below 1 (PPO, Schulman et al. 2017)
    eps_high: float = 0.2  # clip range above 1; DAPO's "clip-higher" uses 0.28
    beta: float = 0.0  # KL coefficient to the frozen reference (0: no reference model needed)
    max_len: int = 0  # L_max for loss_agg="constant"; the trainer sets it to max_new_tokens

    def validate(self) -> None:
        if self.loss_agg not in LOSS_AGGREGATIONS:
            raise UserError(f"rl.loss_agg: {self.loss_agg!r} is not one of {LOSS_AGGREGATIONS}")
        if self.adv_scale not in ADVANTAGE_SCALES:
            raise UserError(f"rl.adv_scale: {self.adv_scale!r} is not one of {ADVANTAGE_SCALES}")
        if not (0 <= self.eps_low < 1) or self.eps_high < 0:
            raise UserError("rl.eps_low/eps_high: need 0 <= eps_low < 1 and eps_high >= 0 — e.g. 0.2 / 0.28")
        if self.beta < 0:
            raise UserError(f"rl.beta: must be >= 0, got {self.beta}")


def group_advantages(rewards: torch.Tensor, scale: str = "group", eps: float = 1e-6) -> torch.Tensor:
    """Advantages A_i = (r_i − mean(group)) / s for rewards shaped (prompts, group_size).

    s is the group std, the batch std, or 1 (see `ADVANTAGE_SCALES`). Std uses Bessel's correction
    (torch.std default, as TRL does); `eps` keeps zero-variance groups at advantage 0, not NaN.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be (prompts, group_size), got shape {tuple(rewards.shape)}")
    centered = rewards - rewards.mean(dim=1, keepdim=True)
    if scale == "group":
        std = rewards.std(dim=1, keepdim=True) if rewards.shape[1] > 1 else torch.zeros_like(rewards[:, :1])
        return centered / (std + eps)
    if scale == "batch":
        std = rewards.std() if rewards.numel() > 1 else torch.zeros(())
        return centered / (std + eps)
    if scale == "none":
        return centered
    raise UserError(f"rl.adv_scale: {scale!r} is not one of {ADVANTAGE_SCALES}")


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(π_θ ‖ π_ref): exp(Δ) − Δ − 1 with Δ = log π_ref − log π_θ.

    Unbiased for samples from π_θ and always >= 0 (Schulman 2020, "Approximating KL divergence";
    DeepSeekMath eq. 4).
    """
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, how: str, max_len: int = 0,
              n_seqs: int | None = None, n_tokens: int | None = None) -> torch.Tensor:
    """Reduce (N, T) per-token values over completion tokens (mask=1) as `how` (LOSS_AGGREGATIONS).

    For a micro-batch of a larger batch pass the whole batch's sequence count `n_seqs` and completion
    token count `n_tokens`: then the micro-batch results sum exactly to the full-batch value.
    """
    mask = mask.to(per_token.dtype)
    masked = per_token * mask
    n_seqs = per_token.shape[0] if n_seqs is None else n_seqs
    if how == "seq_mean":
        return (masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1)).sum() / n_seqs
    if how == "token":
        return masked.sum() / (mask.sum().clamp(min=1) if n_tokens is None else max(n_tokens, 1))
    if how == "constant":
        if max_len <= 0:
            raise UserError("rl.max_len: loss_agg='constant' needs the generation budget L_max > 0")
        return masked.sum() / (n_seqs * max_len)
    raise UserError(f"rl.loss_agg: {how!r} is not one of {LOSS_AGGREGATIONS}")


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cfg: GRPOLossConfig,
    ref_logp: torch.Tensor | None = None,
    n_seqs: int | None = None,
    n_tokens: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The GRPO loss for (N, T) token log-probs of N sampled completions, and diagnostics.

    `advantages` is (N,) — one value per sequence, broadcast over its tokens. `old_logp` are the
    log-probs under the policy that sampled (detached); with one inner iteration (μ=1) they equal
    `logp.detach()` and the ratio is exactly 1. `ref_logp` is required when cfg.beta > 0.
    Returns the scalar loss and floats: clip_low / clip_high fractions, kl (token mean), ratio.
    `n_seqs` / `n_tokens`: totals of the whole batch when this is one micro-batch (see `aggregate`).
    """
    mask_f = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)
    adv = advantages.to(logp.dtype).unsqueeze(1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - cfg.eps_low, 1.0 + cfg.eps_high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    n_tok = mask_f.sum().clamp(min=1)
    stats: dict[str, float] = {}
    with torch.no_grad():
        # a token is "clipped" when the clipped branch is the one selected and it differs
        low = (ratio < 1.0 - cfg.eps_low) & (adv < 0)
        high = (ratio > 1.0 + cfg.eps_high) & (adv > 0)
        stats["clip_low"] = float((low * mask_f).sum() / n_tok)
        stats["clip_high"] = float((high * mask_f).sum() / n_tok)
        stats["ratio"] = float((ratio * mask_f).sum() / n_tok)
    if cfg.beta > 0:
        if ref_logp is None:
            raise ValueError("grpo_loss: beta > 0 needs ref_logp")
        kl = k3_kl(logp, ref_logp)
        per_token = per_token + cfg.beta * kl
        stats["kl"] = float((kl.detach() * mask_f).sum() / n_tok)
    elif ref_logp is not None:
        stats["kl"] = float((k3_kl(logp.detach(), ref_logp) * mask_f).sum() / n_tok)
    return aggregate(per_token, mask, cfg.loss_agg, cfg.max_len, n_seqs, n_tokens), stats


def validate_batch_shape(prompts_per_step: int, group_size: int, n_completions: int | None = None) -> None:
    """Check the step's batch shape prompts_per_step × group_size, with a message that says the fix."""
    if prompts_per_step < 1:
        raise UserError(f"rl.prompts_per_step: must be >= 1, got {prompts_per_step}")
    if group_size < 2:
        raise UserError(
            f"rl.group_size: must be >= 2, got {group_size} — GRPO's baseline is the group mean, so a "
            "group of 1 has advantage 0 everywhere; use e.g. rl.group_size=8"
        )
    if n_completions is not None and n_completions != prompts_per_step * group_size:
        raise UserError(
            f"rl batch: got {n_completions} completions, expected prompts_per_step × group_size = "
            f"{prompts_per_step} × {group_size} = {prompts_per_step * group_size}"
        )
