"""Held-out language-modelling loss over *all* tokens of a run's validation split (not answer-only).

The scaling claim is about next-token loss on text; the demo trains with the loss on answers
(`data.loss_on=answers`), so its logged `val_loss` is answer-only. `heldout_loss` scores the run's final
checkpoint on the first `max_tokens` tokens of `RUN/data/val.bin` in non-overlapping windows of the
model's context, document-masked at `<eos>` as in training; every token is scored with the context its window gives it.
The result is cached in `RUN/heldout_loss.json` (keyed by `max_tokens`), with a 95% interval from a
bootstrap over windows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

CACHE = "heldout_loss.json"


@torch.no_grad()
def heldout_loss(run_dir: str | Path, max_tokens: int = 16384, batch: int = 8) -> dict:
    """{loss, ci95, tokens, windows}: mean next-token cross-entropy (nats) over all held-out tokens."""
    from emergelab.data.tokens import TokenData, doc_ids_of
    from emergelab.runs import load_model
    from emergelab.science.verdicts.noise import mean_interval

    run_dir = Path(run_dir)
    cache = run_dir / CACHE
    if cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get("max_tokens") == max_tokens:
            return cached
    model, tok, _ = load_model(run_dir, device="cpu")
    model.eval()
    val = np.asarray(TokenData.open(run_dir / "data").val[:max_tokens], dtype=np.int64)
    block = model.cfg.block_size
    n_win = (len(val) - 1) // block
    if n_win < 1:
        return {"loss": float("nan"), "tokens": 0, "windows": 0, "max_tokens": max_tokens}
    x = torch.from_numpy(val[:n_win * block]).view(n_win, block)
    y = torch.from_numpy(val[1:n_win * block + 1]).view(n_win, block)
    sums = []
    for i in range(0, n_win, batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        logits = model(xb, doc_ids=doc_ids_of(xb, tok.eos_id)).logits.float()
        nll = F.cross_entropy(logits.transpose(1, 2), yb, reduction="none")
        sums += nll.sum(1).tolist()
    per_window = np.array(sums) / block  # equal-length windows: the mean of means is the token mean
    _, lo, hi = mean_interval([per_window.tolist()], n_boot=1000)  # bootstrap over windows
    out = {"loss": float(per_window.mean()), "ci95": [lo, hi],
           "tokens": int(n_win * block), "windows": int(n_win), "max_tokens": max_tokens}
    cache.write_text(json.dumps(out, indent=1))
    return out
