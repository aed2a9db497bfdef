"""Direct Preference Optimization: fit preferences without a reward model or sampling during training.

    emergelab dpo [CONFIG.yaml] --init RUN --out OUT [dpo.key=value ...]

Rafailov et al. 2023, eq. 7: with log-ratios ρ(y) = log π_θ(y|x) − log π_ref(y|x) summed over the
response tokens, the loss is −log σ(β · (ρ(y_chosen) − ρ(y_rejected))). π_ref is the frozen initial
policy. β·ρ is the implicit reward; we log its margin and the share of pairs it orders correctly,
on training batches and on held-out pairs from the task's test split. Pairs: `preferences.py`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from emergelab.config import to_dict
from emergelab.data.chat import encode_prompt
from emergelab.errors import UserError
from emergelab.rl.preferences import Pair, PreferenceConfig
from emergelab.rl.rollout import pack_sequences, sequence_logprobs
from emergelab.runs import RunDir


@dataclasses.dataclass
class DPOConfig(PreferenceConfig):
    section: ClassVar[str] = "dpo"
    steps: int = 100
    lr: float = 5e-5
    beta: float = 0.1

    def validate(self) -> None:
        if self.beta <= 0:
            raise UserError(f"dpo.beta: must be > 0, got {self.beta}")
        super().validate()


def dpo_loss(pol_c: torch.Tensor, pol_r: torch.Tensor, ref_c: torch.Tensor, ref_r: torch.Tensor, beta: float
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss, per-pair implicit reward margin) from summed response log-probs, each shaped (B,)."""
    margin = beta * ((pol_c - ref_c) - (pol_r - ref_r))
    return -F.logsigmoid(margin).mean(), margin.detach()


def response_logprob(model, tokenizer, prompts: list[str], responses: list[str], device) -> torch.Tensor:
    """Σ_t log π(response_t | prompt, response_<t) for each pair, (B,)."""
    p_ids = [encode_prompt(tokenizer, p) for p in prompts]
    r_ids = [tokenizer.encode(r) + [tokenizer.eos_id] for r in responses]
    idx, targets, mask = pack_sequences(p_ids, r_ids, tokenizer.pad_id or 0)
    logp, _ = sequence_logprobs(model, idx.to(device), targets.to(device))
    return (logp * mask.to(device)).sum(-1)


def _margins(policy, ref, tok, pairs: list[Pair], beta: float, device) -> tuple[torch.Tensor, torch.Tensor]:
    prompts = [p.prompt for p in pairs]
    c, r = [p.chosen for p in pairs], [p.rejected for p in pairs]
    with torch.no_grad():
        ref_c, ref_r = response_logprob(ref, tok, prompts, c, device), response_logprob(ref, tok, prompts, r, device)
    return dpo_loss(response_logprob(policy, tok, prompts, c, device),
                    response_logprob(policy, tok, prompts, r, device), ref_c, ref_r, beta)


def train_dpo(cfg: DPOConfig, init: str | Path, out_dir: str | Path) -> dict:
    from emergelab.rl.preferences import load_policy_and_pairs
    from emergelab.runs import save_checkpoint

    out_dir = Path(out_dir)
    policy, tok, device, train, test = load_policy_and_pairs(
        cfg, init, "dpo: no preference pairs could be formed — raise dpo.k")
    RunDir(out_dir).prepare(init, "dpo", to_dict(cfg))
    torch.manual_seed(cfg.seed)
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    policy.train()
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)

    def heldout() -> float:
        with torch.no_grad():
            m = _margins(policy, ref, tok, test, cfg.beta, device)[1]
            return float((m > 0).float().mean() + 0.5 * (m == 0).float().mean())  # ties: coin flips

    before = heldout()
    with open(out_dir / "metrics.jsonl", "w") as log:
        for step in range(cfg.steps):
            chunk = [train[i] for i in torch.randint(len(train), (cfg.batch_size,), generator=gen).tolist()]
            loss, margin = _margins(policy, ref, tok, chunk, cfg.beta, device)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            opt.step()
            if (step + 1) % 10 == 0 or step + 1 == cfg.steps:
                log.write(json.dumps({"step": step + 1, "loss": loss.item(), "margin": float(margin.mean()),
                                      "pref_accuracy": float((margin > 0).float().mean())}) + "\n")
    policy.eval()
    save_checkpoint(out_dir, cfg.steps, policy, None, {"kind": "dpo"})
    summary = {"train_pairs": len(train), "test_pairs": len(test), "heldout_pref_accuracy_before": before,
               "heldout_pref_accuracy": heldout()}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
