"""A Bradley–Terry reward model: a Transformer with a scalar head, trained on preference pairs.

    emergelab rm [CONFIG.yaml] --init RUN --out OUT [rm.key=value ...]

P(chosen ≻ rejected) = σ(r(chosen) − r(rejected)) (Bradley & Terry 1952; the InstructGPT reward model,
Ouyang et al. 2022), so the loss is −log σ(r_c − r_r). r(x) is a linear head on the final-normed hidden
state of the last token of prompt+response. Pairs come from `preferences.py` (correct > wrong,
well-formed > malformed, concise > long); held-out accuracy is measured on pairs built from the
task's *test* split. The result is usable as the `rm` reward in `emergelab rl` (`rl.reward_model=OUT`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from emergelab.config import to_dict
from emergelab.data.chat import encode_prompt
from emergelab.errors import UserError
from emergelab.model import GPT
from emergelab.rl.preferences import Pair, PreferenceConfig
from emergelab.runs import RunDir


@dataclasses.dataclass
class RMConfig(PreferenceConfig):
    section: ClassVar[str] = "rm"


class RewardModel(torch.nn.Module):
    def __init__(self, backbone: GPT):
        super().__init__()
        self.backbone = backbone
        self.head = torch.nn.Linear(backbone.cfg.n_embd, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, idx: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores (B,) for right-padded rows `idx` whose real lengths are `lengths`."""
        h = self.backbone(idx, return_hidden=True).hidden_states[-1]
        last = h[torch.arange(idx.shape[0], device=idx.device), lengths - 1]
        return self.head(self.backbone.norm(last)).squeeze(-1)


def _batch(tokenizer, texts: list[tuple[str, str]], device) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [encode_prompt(tokenizer, p) + tokenizer.encode(r) for p, r in texts]
    idx = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for i, r in enumerate(rows):
        idx[i, : len(r)] = torch.tensor(r)
    return idx.to(device), torch.tensor([len(r) for r in rows], device=device)


def bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Bradley–Terry negative log-likelihood, −log σ(r_c − r_r), averaged over pairs."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


@torch.no_grad()
def pair_accuracy(rm: RewardModel, tokenizer, pairs: list[Pair], device, batch: int = 64) -> float:
    wins = 0.0
    for i in range(0, len(pairs), batch):
        chunk = pairs[i:i + batch]
        rc = rm(*_batch(tokenizer, [(p.prompt, p.chosen) for p in chunk], device))
        rr = rm(*_batch(tokenizer, [(p.prompt, p.rejected) for p in chunk], device))
        wins += float((rc > rr).sum()) + 0.5 * float((rc == rr).sum())  # a tie is a coin flip
    return wins / max(1, len(pairs))


def train_reward_model(cfg: RMConfig, init: str | Path, out_dir: str | Path) -> dict:
    from emergelab.rl.preferences import load_policy_and_pairs

    out_dir = Path(out_dir)
    policy, tok, device, train, test = load_policy_and_pairs(
        cfg, init, "rm: no preference pairs could be formed — every candidate ranked equal; "
                   "raise rm.k or use a task where the policy sometimes errs")
    RunDir(out_dir).prepare(init, "rm", to_dict(cfg))
    torch.manual_seed(cfg.seed)
    rm = RewardModel(policy).to(device).train()
    opt = torch.optim.AdamW(rm.parameters(), lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    log = open(out_dir / "metrics.jsonl", "w")
    base_acc = pair_accuracy(rm, tok, test, device)
    for step in range(cfg.steps):
        pick = torch.randint(len(train), (cfg.batch_size,), generator=gen).tolist()
        chunk = [train[i] for i in pick]
        loss = bt_loss(rm(*_batch(tok, [(p.prompt, p.chosen) for p in chunk], device)),
                       rm(*_batch(tok, [(p.prompt, p.rejected) for p in chunk], device)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 20 == 0 or step + 1 == cfg.steps:
            log.write(json.dumps({"step": step + 1, "loss": loss.item()}) + "\n")
    log.close()
    rm.eval()
    summary = {"train_pairs": len(train), "test_pairs": len(test), "heldout_accuracy_before": base_acc,
               "heldout_accuracy": pair_accuracy(rm, tok, test, device),
               "train_accuracy": pair_accuracy(rm, tok, train, device)}
    save_file({k: v.detach().cpu().contiguous() for k, v in rm.state_dict().items()},
              str(out_dir / "reward_model.safetensors"))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def load_reward_model(run_dir: str | Path, device: str = "cpu") -> tuple[RewardModel, object]:
    from emergelab.config import from_dict as _from_dict
    from emergelab.data.tokenizer import Tokenizer
    from emergelab.model import ModelConfig
    from emergelab.runs import read_run_config

    run_dir = Path(run_dir)
    path = run_dir / "reward_model.safetensors"
    if not path.exists():
        raise UserError(f"rl.reward_model: {run_dir} has no reward_model.safetensors — train one with `emergelab rm`")
    cfg = read_run_config(run_dir)
    rm = RewardModel(GPT(_from_dict(ModelConfig, cfg["model"], "model")))
    rm.load_state_dict(load_file(str(path)))
    return rm.to(device).eval(), Tokenizer.load(run_dir / "tokenizer.json")


def reward_model_fn(run_dir: str | Path, device: str = "cpu"):
    """A RewardFn (rewards.py) scoring prompt + completion with a trained reward model."""
    rm, tok = load_reward_model(run_dir, device)

    @torch.no_grad()
    def fn(samples):
        idx, lengths = _batch(tok, [(s.prompt, s.completion) for s in samples], next(rm.parameters()).device)
        return rm(idx, lengths).tolist()

    return fn
