"""Grokking on modular addition (Power et al. 2022): memorise first, generalise much later, under weight decay.

Two models:
- "mlp" (after Gromov 2023, "Grokking modular arithmetic"): input one-hot(a) ‖ one-hot(b), one hidden
  layer with a quadratic activation, no biases, MSE on one-hot targets, full-batch AdamW. Groks in
  minutes on a CPU (p = 97, 20% of pairs for training, weight decay 1).
- "transformer" (after Nanda et al. 2023, "Progress measures for grokking"): emergelab's GPT, one layer,
  on the sequence "a b =" with cross-entropy on the answer; p = 113, 30% train, lr 1e-3, wd 1, full
  batch — ~14k epochs, a GPU recipe (configs/exp_grokking_transformer.yaml).

Verdict: `grokked` when the final test accuracy is ≥ 95%, test accuracy was ≤ 50% when train accuracy
first reached 99% (memorisation came first), and the 95%-test epoch is at least twice the 99%-train epoch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GrokkingConfig:
    model: str = "mlp"  # "mlp" | "transformer"
    p: int = 97
    train_fraction: float = 0.2
    weight_decay: float = 1.0
    lr: float = 1e-2
    epochs: int = 1500
    eval_every: int = 10
    hidden: int = 500  # mlp
    n_layer: int = 1  # transformer
    n_embd: int = 128
    n_head: int = 4
    beta2: float = 0.999  # Nanda et al. use 0.98 for the transformer
    seed: int = 0
    device: str = "cpu"


PROFILES = {
    "quick": GrokkingConfig(),  # EXPERIMENTS.md: test < 3% until ~epoch 500, 99% by ~1250
    "tiny": GrokkingConfig(train_fraction=0.3, epochs=200, eval_every=5),  # groks at ~100 epochs
    "gpu": GrokkingConfig(model="transformer", p=113, train_fraction=0.3, lr=1e-3, epochs=20000, eval_every=100,
                          beta2=0.98, device="cuda"),
}


class QuadraticMLP(nn.Module):
    """f(a, b) = W2·(W1·[e_a ‖ e_b])² (Gromov 2023)."""

    def __init__(self, p: int, hidden: int):
        super().__init__()
        self.p = p
        self.w1 = nn.Linear(2 * p, hidden, bias=False)
        self.w2 = nn.Linear(hidden, p, bias=False)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        x = torch.cat([F.one_hot(pairs[:, 0], self.p), F.one_hot(pairs[:, 1], self.p)], 1).float()
        return self.w2(self.w1(x) ** 2)


class SequenceModel(nn.Module):
    """emergelab's GPT reading "a b =" (token p is "="); logits for the answer at the last position."""

    def __init__(self, cfg: GrokkingConfig):
        super().__init__()
        from emergelab.model import GPT, ModelConfig

        self.p = cfg.p
        self.gpt = GPT(ModelConfig(vocab_size=cfg.p + 1, n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head,
                                   block_size=4))

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        eq = torch.full((len(pairs), 1), self.p, dtype=pairs.dtype, device=pairs.device)
        return self.gpt(torch.cat([pairs, eq], 1)).logits[:, -1, : self.p]


def modular_addition_split(p: int, train_fraction: float, seed: int) -> tuple[torch.Tensor, ...]:
    """All p² pairs (a, b) with labels (a + b) mod p, shuffled and split into train and test."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    pairs = torch.stack([a.ravel(), b.ravel()], 1)
    perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(seed))
    pairs = pairs[perm]
    labels = (pairs[:, 0] + pairs[:, 1]) % p
    n_train = int(round(train_fraction * p * p))
    return pairs[:n_train], labels[:n_train], pairs[n_train:], labels[n_train:]


def _loss(cfg: GrokkingConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if cfg.model == "mlp":
        return F.mse_loss(logits, F.one_hot(labels, cfg.p).float())
    return F.cross_entropy(logits, labels)


def train_grokking(cfg: GrokkingConfig) -> list[dict]:
    """Full-batch training; returns one record per `eval_every` epochs (accuracies, losses, weight norm)."""
    from emergelab.runs import resolve_device
    from emergelab.science.common import progress

    if cfg.model not in ("mlp", "transformer"):
        from emergelab.errors import UserError

        raise UserError(f"model: {cfg.model!r} is not a grokking model — use mlp or transformer")
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    x_tr, y_tr, x_te, y_te = (t.to(device) for t in modular_addition_split(cfg.p, cfg.train_fraction, cfg.seed))
    model = (QuadraticMLP(cfg.p, cfg.hidden) if cfg.model == "mlp" else SequenceModel(cfg)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, cfg.beta2))
    history = []
    for epoch in progress(range(cfg.epochs + 1), total=cfg.epochs + 1, desc="grokking"):
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            with torch.no_grad():
                tr_logits, te_logits = model(x_tr), model(x_te)
                history.append({
                    "epoch": epoch,
                    "train_acc": float((tr_logits.argmax(1) == y_tr).float().mean()),
                    "test_acc": float((te_logits.argmax(1) == y_te).float().mean()),
                    "train_loss": float(_loss(cfg, tr_logits, y_tr)),
                    "test_loss": float(_loss(cfg, te_logits, y_te)),
                    "weight_norm": float(math.sqrt(sum(float((w**2).sum()) for w in model.parameters()))),
                })
        if epoch == cfg.epochs:
            break
        loss = _loss(cfg, model(x_tr), y_tr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return history


def grokking_verdict(history: list[dict]) -> dict:
    """Epochs of memorisation and generalisation and the `grokked` decision (criterion in the module doc)."""

    def first(key: str, level: float) -> int | None:
        return next((h["epoch"] for h in history if h[key] >= level), None)

    e_train, e_test50, e_test95 = first("train_acc", 0.99), first("test_acc", 0.5), first("test_acc", 0.95)
    test_at_memorisation = next((h["test_acc"] for h in history if h["epoch"] == e_train), None)
    grokked = bool(
        e_train is not None and e_test95 is not None and history[-1]["test_acc"] >= 0.95
        and test_at_memorisation <= 0.5 and e_test95 >= 2 * max(e_train, 1)
    )
    return {
        "epoch_train_acc_99": e_train,
        "test_acc_when_train_reached_99": test_at_memorisation,
        "epoch_test_acc_50": e_test50,
        "epoch_test_acc_95": e_test95,
        "final_train_acc": history[-1]["train_acc"],
        "final_test_acc": history[-1]["test_acc"],
        "grokked": grokked,
    }


def grokking_experiment(out_dir: str | Path, profile: str = "quick", overrides: dict | None = None) -> dict:
    """Train, plot accuracy and weight norm against epochs, and return the verdict."""
    from emergelab.science.plots import new_figure, save_figure

    cfg = dataclasses.replace(PROFILES[profile], **(overrides or {}))
    history = train_grokking(cfg)
    verdict = grokking_verdict(history)
    fig, (ax, ax2) = new_figure(ncols=2, width=4.6)
    epochs = [max(h["epoch"], 1) for h in history]
    ax.plot(epochs, [h["train_acc"] for h in history], label="train")
    ax.plot(epochs, [h["test_acc"] for h in history], label="test")
    ax.set_xscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{cfg.model}, p={cfg.p}, train fraction {cfg.train_fraction}, wd {cfg.weight_decay}", fontsize=8)
    ax.legend(fontsize=8)
    ax2.plot(epochs, [h["weight_norm"] for h in history], color="C2")
    ax2.set_xscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("‖θ‖₂")
    plots = save_figure(fig, Path(out_dir) / "grokking_curves")
    return {"experiment": "grokking", "config": dataclasses.asdict(cfg), **verdict, "history": history, "plots": plots}
