"""Hugging Face interop: export a GPT as a Llama (or Qwen2) folder, import local Llama / Qwen2 folders.

Our weights are HF's with q/k/v and gate/up concatenated, so conversion is renaming plus split/concat.
Models with q/k/v biases export as Qwen2 (Llama's `attention_bias` would also add an o_proj bias).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from emergelab.data.chat import ASSISTANT, REASONING_TAGS, USER
from emergelab.errors import UserError
from emergelab.model.gpt import GPT, ModelConfig

TAGS = (USER, ASSISTANT, *REASONING_TAGS)  # the chat format's tags: non-special on export


def hf_config_dict(cfg: ModelConfig, bos_id: int | None = None, eos_id: int | None = None,
                   pad_id: int | None = None) -> dict:
    """config.json contents for `cfg` (LlamaForCausalLM, or Qwen2ForCausalLM when cfg.attn_bias)."""
    if not cfg.use_mlp:
        raise UserError("model.use_mlp: attention-only models have no Llama/Qwen2 equivalent — cannot export")
    qwen = cfg.attn_bias
    d = dict(
        architectures=["Qwen2ForCausalLM" if qwen else "LlamaForCausalLM"],
        model_type="qwen2" if qwen else "llama",
        vocab_size=cfg.vocab_size, hidden_size=cfg.n_embd, intermediate_size=cfg.hidden,
        num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head, num_key_value_heads=cfg.kv_heads,
        head_dim=cfg.head_dim, hidden_act="silu", max_position_embeddings=cfg.block_size,
        rms_norm_eps=cfg.norm_eps, tie_word_embeddings=cfg.tie_embeddings,
        rope_theta=cfg.rope_theta,  # read by transformers < 5
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},  # transformers >= 5
        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id, torch_dtype="float32",
    )
    if qwen:
        d.update(use_sliding_window=False, sliding_window=None, max_window_layers=cfg.n_layer)
    else:
        d.update(attention_bias=False, mlp_bias=False)
    return d


def to_hf_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """Our state dict under HF Llama/Qwen2 names (contiguous float copies, tied head omitted)."""
    cfg = model.cfg
    sd = model.state_dict()
    q_n, kv_n = cfg.n_head * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    out = {"model.embed_tokens.weight": sd["tok_emb.weight"], "model.norm.weight": sd["norm.weight"]}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    for i in range(cfg.n_layer):
        p, h = f"blocks.{i}.", f"model.layers.{i}."
        names = ("weight", "bias") if cfg.attn_bias else ("weight",)
        for kind in names:
            q, k, v = sd[p + f"attn.qkv.{kind}"].split([q_n, kv_n, kv_n])
            out |= {h + f"self_attn.q_proj.{kind}": q, h + f"self_attn.k_proj.{kind}": k,
                    h + f"self_attn.v_proj.{kind}": v}
        gate, up = sd[p + "mlp.gate_up.weight"].chunk(2)
        out |= {h + "self_attn.o_proj.weight": sd[p + "attn.proj.weight"],
                h + "input_layernorm.weight": sd[p + "attn_norm.weight"],
                h + "post_attention_layernorm.weight": sd[p + "mlp_norm.weight"],
                h + "mlp.gate_proj.weight": gate, h + "mlp.up_proj.weight": up,
                h + "mlp.down_proj.weight": sd[p + "mlp.down.weight"]}
    return {k: v.detach().float().contiguous().cpu() for k, v in out.items()}


def from_hf_state_dict(hf: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """HF Llama/Qwen2 tensors -> a state dict that `GPT(cfg).load_state_dict` accepts."""
    def get(name):
        if name not in hf:
            raise UserError(f"weights: tensor {name!r} missing — is this a complete Llama/Qwen2 checkpoint?")
        return hf[name].float()

    sd = {"tok_emb.weight": get("model.embed_tokens.weight"), "norm.weight": get("model.norm.weight")}
    sd["lm_head.weight"] = sd["tok_emb.weight"] if cfg.tie_embeddings else get("lm_head.weight")
    for i in range(cfg.n_layer):
        p, h = f"blocks.{i}.", f"model.layers.{i}.self_attn."
        sd[p + "attn.qkv.weight"] = torch.cat([get(h + f"{x}_proj.weight") for x in "qkv"])
        if cfg.attn_bias:
            sd[p + "attn.qkv.bias"] = torch.cat([get(h + f"{x}_proj.bias") for x in "qkv"])
        m = f"model.layers.{i}."
        sd |= {p + "attn.proj.weight": get(h + "o_proj.weight"),
               p + "attn_norm.weight": get(m + "input_layernorm.weight"),
               p + "mlp_norm.weight": get(m + "post_attention_layernorm.weight"),
               p + "mlp.gate_up.weight": torch.cat([get(m + f"mlp.{x}_proj.weight") for x in ("gate", "up")]),
               p + "mlp.down.weight": get(m + "mlp.down_proj.weight")}
    return sd


# Our chat format (emergelab.data.chat.render_messages) as the Jinja template transformers renders;
# `bos_token` is the document start, `<eos>`. tests/test_export_chat.py checks the two agree.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(system=[]) %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% set ns.system = ns.system + [m['content']] %}"
    "{% elif m['role'] == 'user' %}{{ '<|user|>' + (ns.system + [m['content']]) | join('\\n\\n') }}"
    "{% set ns.system = [] %}"
    "{% else %}{{ '<|assistant|>' + m['content'] + '<eos>' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def to_hf_llama(model: GPT, tokenizer, out_dir: str | Path, card: str | None = None) -> Path:
    """Write config.json, model.safetensors and the tokenizer files that `AutoModelForCausalLM` /
    `AutoTokenizer.from_pretrained(out_dir)` load. `tokenizer` is our Tokenizer (`.hf`, bos/eos/pad ids)
    or None to write the model only. `card` is written as README.md.

    The tokenizer's `bos_token` is the document start the model was trained with (`<eos>` for ours), with
    `add_bos_token: true` and a post-processor that prepends it, so transformers, vLLM and
    lm-evaluation-harness (`add_bos_token=True`) give the model text as pretraining did.
    generation_config.json stops at `<eos>` and decodes greedily, as `emergelab eval` does."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids: dict = {}
    start = None
    if tokenizer is not None:
        start = getattr(tokenizer, "doc_start_id", None)
        ids = dict(bos_id=tokenizer.bos_id if start is None else start, eos_id=tokenizer.eos_id,
                   pad_id=tokenizer.pad_id)
    (out / "config.json").write_text(json.dumps(hf_config_dict(model.cfg, **ids), indent=2) + "\n")
    save_file(to_hf_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    if tokenizer is not None:
        _write_tokenizer(tokenizer, start, ids["bos_id"], out)
        gen = {"bos_token_id": ids["bos_id"], "eos_token_id": ids["eos_id"], "pad_token_id": ids["pad_id"],
               "do_sample": False}
        (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    if card is not None:
        (out / "README.md").write_text(card)
    return out


def _write_tokenizer(tokenizer, start: int | None, bos_id: int | None, out: Path) -> None:
    from tokenizers import Tokenizer as HFTokenizer
    from transformers import PreTrainedTokenizerFast  # heavy import, only when exporting a tokenizer

    from emergelab.data.tokenizer import doc_start_processor

    # A copy (the run's tokenizer stays as it is) in which the chat and reasoning tags are ordinary added
    # tokens: they are part of what the model writes, so `decode(..., skip_special_tokens=True)` (which
    # lm-eval uses on generations) must keep them; only <pad>/<bos>/<eos> stay special (Qwen3 does the same).
    data = json.loads(tokenizer.hf.to_str())
    for added in data.get("added_tokens", []):
        if added["content"] in TAGS:
            added["special"] = False
    hf = HFTokenizer.from_str(json.dumps(data))
    if start is not None and hf.post_processor is None:  # saved before tokenizers carried the rule
        hf.post_processor = doc_start_processor(hf, hf.id_to_token(start))

    def tok_str(i):
        return None if i is None else hf.id_to_token(i)
    fast = PreTrainedTokenizerFast(tokenizer_object=hf, bos_token=tok_str(bos_id),
                                   eos_token=tok_str(tokenizer.eos_id), pad_token=tok_str(tokenizer.pad_id),
                                   unk_token="<unk>" if hf.token_to_id("<unk>") is not None else None)
    ours = not getattr(tokenizer, "special", None)
    template = CHAT_TEMPLATE if ours else getattr(tokenizer, "chat_template", None)
    if template:
        fast.chat_template = template
    fast.save_pretrained(str(out))
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg |= {"add_bos_token": start is not None, "add_eos_token": False}
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")


def config_from_hf(c: dict) -> ModelConfig:
    """ModelConfig for an HF config.json dict; UserError for anything our model cannot represent."""
    kind = c.get("model_type")
    if kind not in ("llama", "qwen2"):
        raise UserError(f"config.json: model_type {kind!r} is not supported — only 'llama' and 'qwen2'")
    rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type != "default":
        raise UserError(f"config.json: RoPE scaling {rope_type!r} is not supported — only plain RoPE")
    if c.get("hidden_act", "silu") != "silu":
        raise UserError(f"config.json: hidden_act {c['hidden_act']!r} is not supported — only 'silu'")
    if kind == "llama" and (c.get("attention_bias") or c.get("mlp_bias")):
        raise UserError("config.json: Llama attention_bias/mlp_bias (o_proj/MLP biases) are not supported")
    if kind == "qwen2" and c.get("use_sliding_window"):
        raise UserError("config.json: sliding-window attention is not supported")
    n_head, n_embd = c["num_attention_heads"], c["hidden_size"]
    if c.get("head_dim") not in (None, n_embd // n_head):
        raise UserError(f"config.json: head_dim={c['head_dim']} != hidden_size/num_attention_heads "
                        "— not supported")
    return ModelConfig(
        vocab_size=c["vocab_size"], n_layer=c["num_hidden_layers"], n_embd=n_embd, n_head=n_head,
        n_kv_head=c.get("num_key_value_heads") or n_head, ffn_hidden=c["intermediate_size"],
        block_size=c.get("max_position_embeddings", 2048),
        rope_theta=float(rope.get("rope_theta", c.get("rope_theta", 10000.0))),
        norm_eps=float(c.get("rms_norm_eps", 1e-6)), tie_embeddings=bool(c.get("tie_word_embeddings", False)),
        attn_bias=kind == "qwen2", use_mlp=True,
    ).validate()


def from_hf(src_dir: str | Path):
    """Read a local HF Llama/Qwen2 folder -> (ModelConfig, our state_dict, tokenizers.Tokenizer or None)."""
    src = Path(src_dir)
    if not (src / "config.json").is_file():
        raise UserError(f"import-hf: {src}/config.json not found — point at a Hugging Face model folder")
    cfg = config_from_hf(json.loads((src / "config.json").read_text()))
    files = sorted(src.glob("*.safetensors"))
    if not files:
        raise UserError(f"import-hf: no *.safetensors in {src} — pickle (.bin) checkpoints are not loaded; "
                        "re-save with safe_serialization=True")
    hf: dict[str, torch.Tensor] = {}
    for f in files:  # single file or shards (model-00001-of-0000N.safetensors)
        hf |= load_file(str(f))
    sd = from_hf_state_dict(hf, cfg)
    tok = None
    if (src / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    return cfg, sd, tok
