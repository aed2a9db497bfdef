"""Hugging Face folder round trip with a tokenizer: transformers' Auto classes are the oracle."""

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer

from emergelab.errors import UserError
from emergelab.model import GPT, ModelConfig
from emergelab.model.hf import from_hf, to_hf_llama

SPECIALS = ["<pad>", "<bos>", "<eos>"]


def char_tokenizer():
    """Stands in for emergelab's Tokenizer: `.hf` plus bos/eos/pad ids (the contract hf.py uses)."""
    vocab = {t: i for i, t in enumerate(SPECIALS + list("abcdefghij "))}
    hf = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    hf.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    hf.add_special_tokens(SPECIALS)
    return SimpleNamespace(hf=hf, bos_id=1, eos_id=2, pad_id=0, vocab_size=len(vocab))


def test_export_writes_a_folder_auto_classes_load_and_import_reads_back(tmp_path):
    tok = char_tokenizer()
    model = GPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_embd=16, n_head=2, block_size=32)).eval()
    to_hf_llama(model, tok, tmp_path)

    hf_tok = AutoTokenizer.from_pretrained(tmp_path)
    text = "abc jab"
    assert hf_tok(text)["input_ids"] == tok.hf.encode(text).ids
    assert (hf_tok.bos_token, hf_tok.eos_token, hf_tok.pad_token) == ("<bos>", "<eos>", "<pad>")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert hf.config.eos_token_id == 2
    x = torch.tensor([tok.hf.encode(text).ids])
    assert (hf(x).logits - model(x).logits).abs().max() < 1e-5

    cfg, sd, tok2 = from_hf(tmp_path)
    assert cfg == replace(model.cfg, ffn_hidden=model.cfg.hidden, n_kv_head=model.cfg.kv_heads)
    assert tok2.encode(text).ids == tok.hf.encode(text).ids
    back = GPT(cfg)
    back.load_state_dict(sd)
    assert torch.equal(back.eval()(x).logits, model(x).logits)


def test_attention_only_model_cannot_be_exported(tmp_path):
    model = GPT(ModelConfig(vocab_size=10, n_layer=1, n_embd=16, n_head=2, use_mlp=False))
    with pytest.raises(UserError, match="use_mlp"):
        to_hf_llama(model, None, tmp_path)


def test_import_refuses_pickle_only_folders(tmp_path):
    model = GPT(ModelConfig(vocab_size=10, n_layer=1, n_embd=16, n_head=2))
    to_hf_llama(model, None, tmp_path)
    (tmp_path / "model.safetensors").rename(tmp_path / "pytorch_model.bin")
    with pytest.raises(UserError, match="safetensors"):
        from_hf(tmp_path)
