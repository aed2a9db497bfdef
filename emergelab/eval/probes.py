"""Probes that look inside a model on one text: next-token top-k, attention maps, the logit lens.

The logit lens (nostalgebraist 2020) reads each layer's residual stream through the model's final norm
and output head, as if the network stopped there: which token would it predict, and how much
probability would it give the token that actually comes next. Its last layer is the model's own output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from emergelab.model import GPT


@dataclass
class LogitLens:
    top_ids: torch.Tensor  # (L+1, T) argmax token read from the embeddings and after each block
    top_probs: torch.Tensor  # (L+1, T) its probability
    target_probs: torch.Tensor  # (L+1, T-1) probability of the actual next token


@torch.no_grad()
def logit_lens(model: GPT, hidden_states: list[torch.Tensor], ids: torch.Tensor) -> LogitLens:
    """hidden_states: per layer (1, T, C) from `model(..., return_hidden=True)`; ids: (T,) the tokens."""
    top_ids, top_probs, target_probs = [], [], []
    for h in hidden_states:  # one layer at a time: (layers, T, vocab) at once can be gigabytes
        probs = model.lm_head(model.norm(h[0])).float().softmax(-1)  # (T, V)
        p, i = probs.max(-1)
        top_ids.append(i)
        top_probs.append(p)
        target_probs.append(probs[:-1].gather(-1, ids[1:, None]).squeeze(-1))
    return LogitLens(torch.stack(top_ids), torch.stack(top_probs), torch.stack(target_probs))


def next_token_top_k(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, V) logits -> (probs, ids), each (T, k), most probable first."""
    return logits.float().softmax(-1).topk(min(k, logits.size(-1)), dim=-1)


@torch.no_grad()
def inspect_text(model: GPT, tokenizer, ids: list[int], top_k: int = 5,
                 layers: list[int] | None = None) -> dict:
    """Everything the web page's inspector shows for one token sequence, as JSON-ready lists.

    tokens[t], top_k[t] (the prediction after token t), target_prob[t] (probability of token t+1),
    attention[layer][head][query][key] for `layers` (default all), lens_* per layer of the logit lens.
    """
    was_training = model.training
    model.eval()
    dev = model.lm_head.weight.device
    idx = torch.tensor([ids], device=dev)
    out = model(idx, return_attention=True, return_hidden=True)
    model.train(was_training)
    logits = out.logits[0].float()
    probs, top = next_token_top_k(logits, top_k)
    target = logits.softmax(-1)[:-1].gather(-1, idx[0, 1:, None]).squeeze(-1)
    lens = logit_lens(model, out.hidden_states, idx[0])
    pieces = tokenizer.token_pieces(ids)
    layer_ids = list(range(model.cfg.n_layer)) if layers is None else layers

    def r(x: torch.Tensor) -> list:
        return x.double().mul(1e4).round().div(1e4).tolist()  # 4 decimals keep the JSON small

    return {
        "ids": ids,
        "tokens": pieces,
        "top_k": [[{"token": tokenizer.decode([i]), "id": i, "prob": p} for i, p in zip(ti, pi)]
                  for ti, pi in zip(top.tolist(), r(probs))],
        "target_prob": r(target),
        "attention_layers": layer_ids,
        "attention": [r(out.attentions[i][0]) for i in layer_ids],
        "lens_top_tokens": [[tokenizer.decode([i]) for i in row] for row in lens.top_ids.tolist()],
        "lens_top_probs": r(lens.top_probs),
        "lens_target_probs": r(lens.target_probs),
    }
