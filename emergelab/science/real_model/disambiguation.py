"""Does attention disambiguate a word by its context? Minimal pairs ("bank" after "fisherman" vs "cashier").

For each item the ambiguous word and an unambiguous control word fill the last slot of two sentences that
differ only by a cue before it. Per layer we measure how far the word's hidden state (its last token, after
each block) moves between the two sentences, 1 − cos, and compare with the control word in the same slot:
the control is the in-data baseline for "any word moves a little when the sentence changes". In a causal
model the only path from the cue to the slot is attention, so a larger move of the ambiguous word is
context routed by attention. We also record, per head, the attention from the word to the cue.
The verdict rule (`disambiguation_verdict`) is docs/verdicts.md's "real model" rule, written in advance.
"""

from __future__ import annotations

import json
from importlib import resources

import torch

from emergelab.science.real_model.scoring import bootstrap_ci, proportion


def minimal_pairs() -> list[dict]:
    """The shipped items: word, control, template with {cue} and {w}, the two cues."""
    text = resources.files("emergelab.science.real_model").joinpath("data/minimal_pairs.json").read_text()
    return json.loads(text)["items"]


def encode_item(tok, template: str, cue: str, word: str) -> tuple[list[int], list[int], int]:
    """(ids, cue token positions, position of the word's last token) of one filled sentence."""
    head, _, tail = template.partition("{cue}")
    before = tok.encode(head.rstrip())
    with_cue = tok.encode(head + cue)
    ids = tok.encode(head + cue + tail.replace("{w}", word))
    if with_cue[:len(before)] != before or ids[:len(with_cue)] != with_cue:
        raise ValueError(f"cue {cue!r} does not tokenize as its own span in {template!r}")
    return ids, list(range(len(before), len(with_cue))), len(ids) - 1


@torch.no_grad()
def word_states(model, ids: list[int], cue_pos: list[int], word_pos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states of the word (L+1, C) and attention from the word to the cue, per layer and head (L, H)."""
    out = model(torch.tensor([ids]), return_attention=True, return_hidden=True)
    states = torch.stack([h[0, word_pos] for h in out.hidden_states]).float()
    to_cue = torch.stack([a[0, :, word_pos, cue_pos].sum(-1) for a in out.attentions]).float()
    return states, to_cue


def cosine_moves(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """1 − cos between matching rows of (L+1, C) states."""
    return (1 - torch.nn.functional.cosine_similarity(a, b, dim=-1)).tolist()


def measure(model, tok, items: list[dict] | None = None) -> dict:
    """Per-item, per-layer moves of the ambiguous and the control word, and attention to the cue."""
    items = items or minimal_pairs()
    rows, att_diff = [], None
    for it in items:
        moves, att = {}, {}
        for kind in ("word", "control"):
            enc = [encode_item(tok, it["template"], cue, it[kind]) for cue in it["cues"]]
            got = [word_states(model, *e) for e in enc]
            moves[kind] = cosine_moves(got[0][0], got[1][0])
            att[kind] = (got[0][1] + got[1][1]) / 2
        d = att["word"] - att["control"]
        att_diff = d if att_diff is None else att_diff + d
        rows.append({"word": it["word"], "control": it["control"], "cues": it["cues"],
                     "move_word": moves["word"], "move_control": moves["control"]})
    att_diff = att_diff / len(items)
    L, H = att_diff.shape
    heads = sorted(((float(att_diff[i, j]), i, j) for i in range(L) for j in range(H)), reverse=True)
    return {"items": rows, "attention_to_cue_minus_control": att_diff.tolist(),
            "top_heads": [{"head": f"L{i}H{j}", "extra_attention_to_cue": v} for v, i, j in heads[:5]]}


def disambiguation_verdict(move_word: list[list[float]], move_control: list[list[float]], seed: int = 0) -> dict:
    """docs/verdicts.md (real model): per item d = mean over layers 1..L of (word move − control move);
    reproduced when the bootstrap interval of mean d is above 0 and most items have d > 0 (Wilson)."""
    d = [sum(w[1:]) / (len(w) - 1) - sum(c[1:]) / (len(c) - 1) for w, c in zip(move_word, move_control)]
    mean = sum(d) / len(d)
    ci = bootstrap_ci(d, seed=seed)
    share = proportion(sum(x > 0 for x in d), len(d))
    if ci[0] > 0 and share["ci95"][0] > 0.5:
        verdict = "reproduced"
    elif ci[1] < 0 or (ci[0] <= 0 and mean <= 0):
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    return {"verdict": verdict, "mean_extra_move": mean, "ci95": ci, "share_items_more": share,
            "per_item": d}


def layer_profile(move_word: list[list[float]], move_control: list[list[float]], seed: int = 0) -> dict:
    """Mean move per layer of each word kind, with bootstrap intervals (for the picture)."""
    out = {}
    for name, m in (("word", move_word), ("control", move_control)):
        cols = list(zip(*m))
        out[name] = {"mean": [sum(c) / len(c) for c in cols],
                     "ci95": [bootstrap_ci(list(c), n_boot=500, seed=seed) for c in cols]}
    return out


def plot(result: dict, out_stem) -> list[str]:
    """Left: mean move per layer, ambiguous vs control; right: extra attention to the cue per layer × head."""
    from emergelab.science.plots import new_figure, save_figure

    prof = result["profile"]
    fig, axes = new_figure(ncols=2, width=5.0, height=3.6)
    for name, colour in (("word", "tab:red"), ("control", "tab:blue")):
        mean = prof[name]["mean"]
        lo, hi = zip(*prof[name]["ci95"])
        xs = range(len(mean))
        label = "ambiguous word" if name == "word" else "control word"
        axes[0].plot(xs, mean, color=colour, label=label)
        axes[0].fill_between(xs, lo, hi, color=colour, alpha=0.2)
    axes[0].set_xlabel("layer (0 = embedding)")
    axes[0].set_ylabel("1 − cos between the two contexts")
    axes[0].set_title(f"how far the word's state moves ({len(result['items'])} pairs)", fontsize=9)
    axes[0].legend(fontsize=8)
    att = torch.tensor(result["attention_to_cue_minus_control"])
    lim = float(att.abs().max()) or 1.0
    im = axes[1].imshow(att.T.numpy(), aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[1].set_xlabel("layer")
    axes[1].set_ylabel("head")
    axes[1].set_title("attention word→cue minus control→cue", fontsize=9)
    fig.colorbar(im, ax=axes[1])
    return save_figure(fig, out_stem)
