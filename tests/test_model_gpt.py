"""GPT specification: Hugging Face Llama/Qwen2 are the oracle for logits, attention and hidden states."""

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from emergelab.errors import UserError
from emergelab.model import GPT, KVCache, ModelConfig
from emergelab.model.hf import from_hf, to_hf_llama


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Weights far from init (norm gains != 1, biases != 0) so a mis-mapped tensor changes the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))
    return model.eval()


def ours(seed=0, **kw) -> GPT:
    cfg = dict(vocab_size=61, n_layer=2, n_embd=32, n_head=4, block_size=64)
    return randomize_(GPT(ModelConfig(**(cfg | kw))), seed)


VARIANTS = [dict(), dict(n_kv_head=2), dict(n_kv_head=1, tie_embeddings=True), dict(attn_bias=True),
            dict(rope_theta=500.0, norm_eps=1e-6, ffn_hidden=40)]


def tokens(B=3, T=24, V=61, seed=1):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kw", VARIANTS)
def test_exported_folder_loads_in_transformers_with_identical_logits(kw, tmp_path):
    model = ours(**kw)
    to_hf_llama(model, None, tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(hf).__name__ == ("Qwen2ForCausalLM" if kw.get("attn_bias") else "LlamaForCausalLM")
    x = tokens()
    ref = hf(x).logits
    assert ref.std() > 0.1  # the comparison is not between two near-zero tensors
    assert (model(x).logits - ref).abs().max() < 1e-4


def hf_llama(**kw):
    c = dict(vocab_size=61, hidden_size=48, intermediate_size=72, num_hidden_layers=2, num_attention_heads=6,
             num_key_value_heads=kw.pop("num_key_value_heads", 6), max_position_embeddings=64)
    return randomize_(LlamaForCausalLM(LlamaConfig(**(c | kw))), seed=3)


@pytest.mark.parametrize("kw", [dict(), dict(num_key_value_heads=2), dict(tie_word_embeddings=True),
                                dict(rope_parameters={"rope_type": "default", "rope_theta": 1234.0})])
def test_imported_llama_folder_gives_identical_logits(kw, tmp_path):
    hf = hf_llama(**kw)
    hf.save_pretrained(tmp_path)
    cfg, sd, tok = from_hf(tmp_path)
    assert tok is None
    model = GPT(cfg)
    model.load_state_dict(sd)
    x = tokens(T=40)
    ref = hf(x).logits
    assert ref.std() > 0.1
    assert (model.eval()(x).logits - ref).abs().max() < 1e-4


def test_imported_qwen2_with_qkv_biases_gives_identical_logits(tmp_path):
    c = Qwen2Config(vocab_size=61, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                    tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    hf = randomize_(Qwen2ForCausalLM(c), seed=5)
    assert hf.model.layers[0].self_attn.q_proj.bias.abs().sum() > 0
    hf.save_pretrained(tmp_path)
    cfg, sd, _ = from_hf(tmp_path)
    assert cfg.attn_bias and cfg.tie_embeddings and cfg.kv_heads == 2 and cfg.rope_theta == 1e6
    model = GPT(cfg)
    model.load_state_dict(sd)
    x = tokens(T=30)
    assert (model.eval()(x).logits - hf(x).logits).abs().max() < 1e-4


def test_import_rejects_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(UserError, match="model_type"):
        from_hf(tmp_path)


def test_kv_cache_decoding_equals_full_forward():
    model = ours(n_kv_head=2)
    x = tokens(T=30)
    full = model(x).logits
    cache = KVCache(model.cfg, 3, 30)
    parts = [model(x[:, a:b], cache=cache).logits for a, b in [(0, 7), (7, 8), (8, 20), (20, 21), (21, 30)]]
    assert (torch.cat(parts, 1) - full).abs().max() < 1e-5


def test_last_logits_only_equals_the_last_column():
    model = ours()
    x = tokens()
    assert (model(x, last_logits_only=True).logits - model(x).logits[:, -1:]).abs().max() < 1e-5


def test_left_padded_rows_equal_the_prompts_alone():
    model = ours(n_kv_head=2)
    lens = [9, 4, 13]
    seqs = [tokens(1, n, seed=10 + n)[0] for n in lens]
    T = max(lens)
    idx = torch.stack([torch.cat([torch.zeros(T - len(s), dtype=torch.long), s]) for s in seqs])
    pad = torch.tensor([T - n for n in lens])
    batched = model(idx, pad_lens=pad).logits
    for b, s in enumerate(seqs):
        alone = model(s[None]).logits[0]
        assert (batched[b, pad[b]:] - alone).abs().max() < 1e-5


@pytest.mark.parametrize("kw", [dict(), dict(n_kv_head=2)])
def test_attention_weights_are_causal_softmax_rows_equal_to_hf_eager(kw, tmp_path):
    model = ours(**kw)
    to_hf_llama(model, None, tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    x = tokens(T=16)
    out = model(x, return_attention=True)
    ref = hf(x, output_attentions=True).attentions
    assert len(out.attentions) == len(ref) == 2
    for a, r in zip(out.attentions, ref):
        assert a.shape == (3, 4, 16, 16)
        assert torch.allclose(a.sum(-1), torch.ones(3, 4, 16), atol=1e-6)
        assert a.triu(diagonal=1).abs().max() == 0
        assert (a - r).abs().max() < 1e-5
    assert (out.logits - model(x).logits).abs().max() < 1e-5  # explicit path == SDPA path


def test_hidden_states_are_embeddings_then_each_block_output(tmp_path):
    model = ours()
    to_hf_llama(model, None, tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    x = tokens()
    hs = model(x, return_hidden=True).hidden_states
    ref = hf(x, output_hidden_states=True).hidden_states  # HF's last entry is after the final norm
    assert len(hs) == 3
    for a, r in zip(hs[:2], ref[:2]):
        assert (a - r).abs().max() < 1e-5
    assert (model.norm(hs[-1]) - ref[-1]).abs().max() < 1e-5


def test_loss_is_mean_cross_entropy_over_unmasked_targets():
    model = ours()
    x, y = tokens(T=10), tokens(T=10, seed=7)
    y[0, :3] = -100
    mask = torch.ones_like(y, dtype=torch.bool)
    mask[2, 5:] = False
    out = model(x, targets=y, loss_mask=mask)
    logp = out.logits.log_softmax(-1)
    terms = [-logp[b, t, y[b, t]] for b in range(3) for t in range(10) if y[b, t] != -100 and mask[b, t]]
    assert len(terms) == 30 - 3 - 5
    assert torch.allclose(out.loss, torch.stack(terms).mean(), atol=1e-6)


def test_gradients_match_hf(tmp_path):
    model = ours(n_kv_head=2)
    to_hf_llama(model, None, tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path)
    x = tokens(T=20)
    hf(x, labels=x).loss.backward()  # HF shifts the labels itself
    model(x[:, :-1], targets=x[:, 1:]).loss.backward()
    pairs = [(model.blocks[1].mlp.down.weight.grad, hf.model.layers[1].mlp.down_proj.weight.grad),
             (model.blocks[0].attn.qkv.weight.grad[:32], hf.model.layers[0].self_attn.q_proj.weight.grad),
             (model.tok_emb.weight.grad, hf.model.embed_tokens.weight.grad)]
    for ours_g, ref in pairs:
        assert ref.abs().max() > 1e-4
        assert (ours_g - ref).abs().max() < 1e-5


def test_attention_only_model_has_no_mlp_and_still_trains():
    model = GPT(ModelConfig(vocab_size=20, n_layer=2, n_embd=16, n_head=2, use_mlp=False, block_size=16))
    assert not any("mlp" in n for n, _ in model.named_parameters())
    x = tokens(2, 8, V=20)
    model(x, targets=x).loss.backward()
    assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_param_count_matches_hf_and_flops_formula(tmp_path):
    model = ours(n_kv_head=2)
    to_hf_llama(model, None, tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert model.num_params() == hf.num_parameters()
    c = model.cfg
    assert model.num_params(non_embedding=True) == model.num_params() - 2 * c.vocab_size * c.n_embd
    # per layer: q 32*32, k and v 32*16 each, o 32*32, gate/up/down 3*32*96 (8*32/3=85.3 -> 96), 2 norms
    per_layer = 32 * 32 * 2 + 2 * 32 * 16 + 3 * 32 * 96 + 2 * 32
    n_matmul = 2 * per_layer + 32 + 61 * 32
    assert model.flops_per_token() == 6 * n_matmul + 12 * 2 * 32 * 64
    assert model.flops_per_token(seq_len=10) == 6 * n_matmul + 12 * 2 * 32 * 10


def test_init_scales_residual_projections():
    model = GPT(ModelConfig(vocab_size=500, n_layer=8, n_embd=128, n_head=4))
    assert abs(model.blocks[0].attn.qkv.weight.std().item() - 0.02) < 1e-3
    assert abs(model.blocks[0].attn.proj.weight.std().item() - 0.02 / math.sqrt(16)) < 3e-4
    assert model.blocks[0].attn_norm.weight.eq(1).all()


def test_ffn_hidden_default_rule():
    assert ModelConfig(n_embd=64).hidden == 176  # 8*64/3 = 170.67 -> 170 -> next multiple of 16
    assert ModelConfig(n_embd=48).hidden == 128
    assert ModelConfig(n_embd=48, ffn_hidden=100).hidden == 100


@pytest.mark.parametrize("kw, field", [
    (dict(n_embd=100, n_head=3), "model.n_embd: 100 is not divisible by model.n_head=3"),
    (dict(n_head=4, n_kv_head=3), "model.n_kv_head"),
    (dict(n_embd=12, n_head=4), "model.n_head: head_dim"),
    (dict(n_layer=0), "model.n_layer"),
    (dict(vocab_size=-5), "model.vocab_size"),
    (dict(rope_theta=0.0), "model.rope_theta"),
    (dict(tie_embeddings="yes"), "model.tie_embeddings"),
])
def test_config_errors_name_the_field(kw, field):
    with pytest.raises(UserError, match=field):
        GPT(ModelConfig(**kw))


def test_sequence_longer_than_block_size_is_a_user_error():
    model = GPT(ModelConfig(vocab_size=10, block_size=8))
    with pytest.raises(UserError, match="block_size"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_cross_entropy_sanity_against_functional():
    model = ours()
    x = tokens()
    out = model(x, targets=x)
    assert torch.allclose(out.loss, F.cross_entropy(out.logits.flatten(0, 1), x.flatten()), atol=1e-6)
