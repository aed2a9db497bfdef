"""Inference weights in fewer bytes: float32 matmuls with hand-dequantized weights are the oracle."""

import contextlib
import copy
import io
import json

import pytest
import torch
import torch.nn as nn

from emergelab.cli import main as cli_main
from emergelab.config import write_yaml
from emergelab.data.tokenizer import char_tokenizer
from emergelab.errors import UserError
from emergelab.model import GPT, ModelConfig, SamplingParams, generate
from emergelab.model.quant import Int8Linear, quantize, weight_bytes
from emergelab.runs import save_checkpoint


def model_(**kw) -> GPT:
    torch.manual_seed(0)
    cfg = dict(vocab_size=50, n_layer=2, n_embd=64, n_head=4, block_size=64) | kw
    m = GPT(ModelConfig(**cfg))
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() > 1:
                p.mul_(6.0)  # greedy paths far from ties
    return m.eval()


def test_int8_linear_is_the_rowwise_dequantized_matmul():
    torch.manual_seed(1)
    lin = nn.Linear(48, 20, bias=True)
    q = Int8Linear(lin)
    w = lin.weight.detach()
    s = w.abs().amax(1) / 127  # symmetric per-row scale, by hand
    w_hat = torch.round(w / s[:, None]).clamp(-127, 127) * s[:, None]
    assert q.weight.dtype == torch.int8 and (w_hat - w).abs().max() <= s.max() / 2 + 1e-7
    x = torch.randn(3, 5, 48)
    ref = x @ w_hat.T + lin.bias.detach()
    got = q(x)
    assert got.shape == (3, 5, 20)
    # bfloat16 activations: relative error of one rounding (2^-8) per product, summed over 48 terms
    assert (got - ref).abs().max() < 0.02 * ref.abs().max()


@pytest.mark.parametrize("mode", ["bf16", "int8"])
@pytest.mark.parametrize("kw", [dict(), dict(n_kv_head=2, tie_embeddings=True, attn_bias=True)])
def test_quantized_model_keeps_logits_close_and_greedy_tokens(mode, kw):
    model = model_(**kw)
    q = quantize(copy.deepcopy(model), mode)
    x = torch.randint(0, 50, (2, 20), generator=torch.Generator().manual_seed(2))
    ref = model(x).logits
    err = (q(x).logits.float() - ref).abs().max() / ref.abs().max()
    assert 0 < err < 0.03  # changed (it is quantized) but close
    prompts, p = [[1, 2, 3], [4, 5, 6, 7, 8]], SamplingParams(max_new_tokens=10, temperature=0)
    assert [c.tokens for c in generate(q, prompts, p)] == [c.tokens for c in generate(model, prompts, p)]


def test_int8_stores_a_quarter_of_the_bytes_and_keeps_the_embedding():
    model = model_(tie_embeddings=True)
    emb = model.tok_emb.weight.detach().clone()
    n = weight_bytes(model)
    quantize(model, "int8")
    assert all(type(m) is not nn.Linear for m in model.modules())
    assert torch.equal(model.tok_emb.weight, emb)
    assert n / 4 < weight_bytes(model) < n / 4 * 1.1  # int8 weights + one float32 scale per row


def test_unknown_mode_is_a_user_error():
    with pytest.raises(UserError, match="quant"):
        quantize(model_(), "int4")


def test_int8_leaves_layers_the_kernel_cannot_take_in_float32():
    model = model_(n_embd=24, n_head=2, ffn_hidden=64)  # q/k/v, gate/up and head read width 24; down reads 64
    ref = model(torch.arange(10)[None]).logits
    quantize(model, "int8")
    kinds = {name: type(m).__name__ for name, m in model.named_modules() if isinstance(m, nn.Linear | Int8Linear)}
    assert kinds["blocks.0.mlp.down"] == "Int8Linear" and kinds["blocks.0.attn.qkv"] == "Linear"
    out = model(torch.arange(10)[None]).logits
    assert torch.isfinite(out).all() and (out - ref).abs().max() < 0.03 * ref.abs().max()


def test_sample_cli_with_quant_int8_decodes_what_the_library_does(tmp_path):
    tok = char_tokenizer("abcdefgh ")
    model = model_(vocab_size=tok.vocab_size)
    run = tmp_path / "run"
    run.mkdir()
    tok.save(run / "tokenizer.json")
    write_yaml({"model": model.cfg.__dict__}, run / "config.yaml")
    save_checkpoint(run, 0, model)
    ids = tok.encode("abc", doc_start=True)
    ref = generate(quantize(copy.deepcopy(model), "int8"), [ids], SamplingParams(max_new_tokens=8, temperature=0,
                                                                                  stop_token_ids=(tok.eos_id,)))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli_main(["sample", str(run), "--prompt", "abc", "--quant", "int8", "--max-new-tokens", "8",
                         "--json", "--device", "cpu"]) == 0
    assert json.loads(buf.getvalue().splitlines()[0])["tokens"] == ref[0].tokens
