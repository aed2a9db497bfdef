"""The logit lens on real sentences: from which layer does the model already predict its final answer?

For every position we read each layer's residual stream through the final norm and output head
(`emergelab.eval.probes.logit_lens`) and find the first layer from which the lens's top token equals the
model's own final top token at every later layer. Reported per sentence (mean over positions, as a share
of depth) with a heat map of the probability the lens gives the actual next token.
"""

from __future__ import annotations

import torch

from emergelab.eval.probes import logit_lens

SENTENCES = ("The capital of France is Paris, and the capital of Italy is Rome.",
             "She opened the door, walked into the kitchen and made a cup of tea.",
             "One, two, three, four, five, six, seven, eight, nine, ten.",
             "The quick brown fox jumps over the lazy dog.")


def settle_layers(top_ids: torch.Tensor) -> list[int]:
    """Per position: the first layer from which the lens's top token stays the final layer's. (L+1, T) ids."""
    final = top_ids[-1]
    same = top_ids == final  # (L+1, T)
    out = []
    for t in range(top_ids.shape[1]):
        col = same[:, t].tolist()
        first = len(col) - 1
        while first > 0 and col[first - 1]:
            first -= 1
        out.append(first)
    return out


@torch.no_grad()
def measure(model, tok, sentences: tuple[str, ...] = SENTENCES) -> dict:
    rows = []
    for s in sentences:
        ids = torch.tensor(tok.encode(s))
        out = model(ids[None], return_hidden=True)
        lens = logit_lens(model, out.hidden_states, ids)
        settle = settle_layers(lens.top_ids)
        L = len(out.hidden_states) - 1
        rows.append({"sentence": s, "tokens": [tok.decode([i]) for i in ids.tolist()], "settle_layer": settle,
                     "mean_settle_fraction": sum(settle) / len(settle) / L,
                     "target_prob": lens.target_probs.tolist()})
    return {"sentences": rows, "n_layers": len(rows[0]["target_prob"]) - 1}


def plot(result: dict, out_stem) -> list[str]:
    """Probability of the actual next token per layer (rows) and position (columns), one panel a sentence."""
    from emergelab.science.plots import new_figure, save_figure

    rows = result["sentences"]
    fig, axes = new_figure(nrows=len(rows), width=9.0, height=2.4)
    for ax, r in zip(axes, rows):
        ax.imshow(torch.tensor(r["target_prob"]).numpy(), aspect="auto", origin="lower", cmap="viridis",
                  vmin=0, vmax=1)
        ax.set_xticks(range(len(r["tokens"]) - 1))
        ax.set_xticklabels([t.strip() or "␣" for t in r["tokens"][1:]], rotation=60, fontsize=6)
        ax.set_ylabel("layer", fontsize=7)
        ax.set_title(f"logit lens: p(next token) — settles at {r['mean_settle_fraction']:.0%} of depth on "
                     "average", fontsize=8)
    return save_figure(fig, out_stem)
