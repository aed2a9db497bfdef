"""Probes behind /api/inspect (`emergelab.eval.probes`), checked against Hugging Face `LlamaForCausalLM`
with eager attention on the same weights: attention maps, next-token top-k, and the logit lens."""

from __future__ import annotations

import string

import pytest
import torch
from transformers import AutoModelForCausalLM

from emergelab.data.tokenizer import char_tokenizer
from emergelab.eval.probes import inspect_text
from emergelab.model import GPT, ModelConfig
from emergelab.model.hf import to_hf_llama

ROUNDING = 5e-5 + 1e-6  # inspect_text rounds to 4 decimals for JSON


def f64(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    torch.manual_seed(1)
    tok = char_tokenizer(string.ascii_lowercase + " .")
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=3, n_embd=32, n_head=4, n_kv_head=2, block_size=64)
    model = GPT(cfg).eval()
    with torch.no_grad():  # larger weights than the init, so attention is far from uniform
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(8)
    folder = to_hf_llama(model, tok, tmp_path_factory.mktemp("hf"))
    hf = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    return model, tok, hf


@torch.no_grad()
def test_inspect_matches_hf_attention_topk_and_logit_lens(pair):
    model, tok, hf = pair
    text = "the bank of the river. the bank."
    ids = tok.encode(text)
    got = inspect_text(model, tok, ids, top_k=4)
    ref = hf(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)

    assert got["tokens"] == list(text)
    att = f64(got["attention"])  # (layers, heads, T, T)
    assert att.shape == (3, 4, len(ids), len(ids))
    torch.testing.assert_close(att, torch.stack(ref.attentions)[:, 0].double(), atol=ROUNDING, rtol=0)
    assert att.std() > 0.05, "attention should not be uniform in this test"

    probs = ref.logits[0].softmax(-1)
    top = probs.topk(4)
    assert [[c["id"] for c in row] for row in got["top_k"]] == top.indices.tolist()
    torch.testing.assert_close(f64([[c["prob"] for c in row] for row in got["top_k"]]),
                               top.values.double(), atol=ROUNDING, rtol=0)
    target = probs[:-1].gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1)
    torch.testing.assert_close(f64(got["target_prob"]), target.double(), atol=ROUNDING, rtol=0)

    # logit lens: each layer's residual through the final norm and head. HF's last hidden state is already
    # normed, so the last lens row must equal the model's own prediction.
    lens_target = f64(got["lens_target_probs"])
    assert lens_target.shape == (4, len(ids) - 1)
    for layer, h in enumerate(ref.hidden_states[:-1]):
        p = hf.lm_head(hf.model.norm(h[0])).softmax(-1)
        ref_target = p[:-1].gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1)
        torch.testing.assert_close(lens_target[layer], ref_target.double(), atol=ROUNDING, rtol=0)
        assert got["lens_top_tokens"][layer] == [tok.decode([i]) for i in p.argmax(-1).tolist()]
    torch.testing.assert_close(lens_target[-1], target.double(), atol=ROUNDING, rtol=0)
    assert got["lens_top_tokens"][-1] == [tok.decode([i]) for i in probs.argmax(-1).tolist()]


def test_inspect_can_return_a_subset_of_layers(pair):
    model, tok, _ = pair
    got = inspect_text(model, tok, tok.encode("abc abc"), layers=[2])
    assert got["attention_layers"] == [2] and len(got["attention"]) == 1
    rows = f64(got["attention"][0])
    torch.testing.assert_close(rows.sum(-1), torch.ones(4, 7, dtype=torch.float64), atol=1e-3, rtol=0)
    assert torch.all(rows.triu(1) == 0), "causal: no token attends to a later one"
