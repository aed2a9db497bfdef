"""The report's look inside a model: attention maps of every head on a copy (induction) sequence.

The essays' "bank" example needs a word-level model that knows English; our char-level demo models
cannot show it, so the picture uses what they can: on a repeated random string, an induction head
attends from each token of the second copy to the token *after* its earlier occurrence. The
prefix-matching score (Olsson et al. 2022) measures exactly that attention mass.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from emergelab.runs import load_model


def prefix_matching_score(attn: torch.Tensor, first: int, length: int) -> float:
    """Mean attention from position first+length+i to position first+i+1 (i = 0..length-2). attn: (T, T)."""
    rows = [attn[first + length + i, first + i + 1].item() for i in range(length - 1)]
    return sum(rows) / len(rows)


@torch.no_grad()
def attention_picture(run_dir: str | Path, out_dir: str | Path, length: int = 12, seed: int = 0) -> dict:
    """Plot every layer/head's attention on `x x` (x a random letter string); return per-head scores."""
    from emergelab.science.plots import new_figure, save_figure

    model, tok, _ = load_model(run_dir, device="cpu")
    letters = [c for c in "abcdefghijklmnopqrstuvwxyz" if tok.token_to_id(c) is not None]
    rng = random.Random(seed)
    segment = "".join(rng.choice(letters) for _ in range(length))
    text = segment + segment
    ids = tok.encode(text)
    attentions = model(torch.tensor([ids]), return_attention=True).attentions
    n_layer, n_head = len(attentions), attentions[0].shape[1]
    fig, axes = new_figure(ncols=n_head, nrows=n_layer, width=2.0, height=2.0)
    scores = {}
    for layer, att in enumerate(attentions):
        for head in range(n_head):
            a = att[0, head]
            scores[f"L{layer}H{head}"] = prefix_matching_score(a, 0, length)
            ax = axes[layer * n_head + head]
            ax.imshow(a.numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"L{layer}H{head} pm={scores[f'L{layer}H{head}']:.2f}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"attention on '{text}' (pm = prefix-matching score)", fontsize=8)
    plots = save_figure(fig, Path(out_dir) / "attention")
    best = max(scores, key=scores.get)
    return {"text": text, "prefix_matching": scores, "best_head": best, "best_score": scores[best],
            "uniform_baseline": sum(1 / (length + i + 1) for i in range(length - 1)) / (length - 1),
            "plots": plots}


@torch.no_grad()
def hf_max_abs_diff(run_dir: str | Path, out_dir: str | Path, seed: int = 0) -> float:
    """Export the run to a Hugging Face folder and compare logits with `LlamaForCausalLM` on random tokens."""
    from transformers import AutoModelForCausalLM

    from emergelab.model.hf import to_hf_llama

    model, tok, _ = load_model(run_dir, device="cpu")
    folder = to_hf_llama(model, tok, Path(out_dir) / "hf_export")
    hf = AutoModelForCausalLM.from_pretrained(folder).eval()
    x = torch.randint(0, model.cfg.vocab_size, (2, min(64, model.cfg.block_size)),
                      generator=torch.Generator().manual_seed(seed))
    return (model(x).logits - hf(x).logits).abs().max().item()
