"""An exported run, read by transformers alone, sees text and chats the way emergelab does.

Oracles: `transformers` (AutoTokenizer's encoding and `apply_chat_template`, `generate` with the exported
generation_config) against our own tokenizer, chat renderer and KV-cache sampler on the same weights.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import string

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from emergelab.cli import main as cli_main
from emergelab.config import write_yaml
from emergelab.data.chat import render_messages
from emergelab.data.tokenizer import char_tokenizer
from emergelab.model import GPT, ModelConfig, SamplingParams, generate
from emergelab.model.hf import to_hf_llama
from emergelab.runs import save_checkpoint

MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is 2+3?"},
            {"role": "assistant", "content": "5"}, {"role": "user", "content": "And 4+4?"}]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tok = char_tokenizer(string.ascii_letters + string.digits + " .,?+=\n")
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=32, n_head=4, block_size=128)).eval()
    out = tmp_path_factory.mktemp("export")
    to_hf_llama(model, tok, out)
    return model, tok, out


def test_transformers_tokenizer_starts_text_with_the_document_start_pretraining_used(exported):
    _, tok, out = exported
    hf_tok = AutoTokenizer.from_pretrained(out)
    assert hf_tok.bos_token == "<eos>" and tok.doc_start_id == tok.eos_id
    assert hf_tok("12+34=")["input_ids"] == [tok.eos_id, *tok.encode("12+34=")]
    assert hf_tok("12+34=")["input_ids"] == tok.encode("12+34=", doc_start=True)
    config = json.loads((out / "config.json").read_text())
    gen = json.loads((out / "generation_config.json").read_text())
    assert config["bos_token_id"] == tok.eos_id and gen["eos_token_id"] == tok.eos_id
    assert gen["do_sample"] is False


def test_apply_chat_template_renders_and_encodes_our_chat_format(exported):
    _, tok, out = exported
    hf_tok = AutoTokenizer.from_pretrained(out)
    text = hf_tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == render_messages(MESSAGES)
    ids = hf_tok.apply_chat_template(MESSAGES, add_generation_prompt=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert list(ids) == tok.encode(render_messages(MESSAGES))
    assert ids[0] == tok.eos_id  # one document start, not two


@torch.no_grad()
def test_transformers_generate_reproduces_our_greedy_chat_reply_and_its_stop(exported, tmp_path):
    model, tok, _ = exported
    model = copy.deepcopy(model)
    prompt = tok.encode(render_messages(MESSAGES))
    free = generate(model, [prompt], SamplingParams(max_new_tokens=12, temperature=0))[0].tokens
    # make the model end its reply with <eos> where it would write its 4th new token, so the stop is exercised
    k = next(i for i in range(3, len(free)) if free[i] not in free[:i] and free[i] != tok.eos_id)
    model.lm_head.weight.data[tok.eos_id] = model.lm_head.weight.data[free[k]] * 2
    to_hf_llama(model, tok, tmp_path)
    ours = generate(model, [prompt], SamplingParams(max_new_tokens=20, temperature=0,
                                                    stop_token_ids=(tok.eos_id,)))[0]
    assert ours.finish_reason == "stop" and ours.tokens == [*free[:k], tok.eos_id]

    hf_tok = AutoTokenizer.from_pretrained(tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = hf_tok.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = hf.generate(**ids, max_new_tokens=20)[0, ids["input_ids"].shape[1]:].tolist()
    assert out == ours.tokens  # generation_config: greedy, stops at <eos>
    assert hf_tok.decode(out[:-1]) == tok.decode(ours.tokens[:-1])


def test_export_command_writes_a_model_card_with_size_data_and_eval_numbers(tmp_path):
    tok = char_tokenizer("0123456789+=\n")
    model = GPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_embd=16, n_head=2, block_size=32))
    run = tmp_path / "run"
    run.mkdir()
    tok.save(run / "tokenizer.json")
    write_yaml({"model": dataclasses.asdict(model.cfg), "data": {"corpus": "nowhere", "loss_on": "answers"}},
               run / "config.yaml")
    (run / "summary.json").write_text(json.dumps({"tokens": 8_192_000, "steps": 2000, "val_loss": 0.1234}))
    (run / "eval.json").write_text(json.dumps({"results": {"add:digits=6": {"0shot_direct": {
        "exact_match": 0.64, "ci95": [0.5, 0.76], "n": 50, "chance": 0.0}}}}))
    save_checkpoint(run, 1, model)
    assert cli_main(["export-hf", str(run), str(tmp_path / "hf")]) == 0
    card = (tmp_path / "hf" / "README.md").read_text()
    assert f"{model.num_params():,} parameters" in card
    assert "8,192,000 training tokens" in card and "answer and reasoning tokens only" in card
    assert "| `add:digits=6` | 0shot_direct | 0.640 [0.500, 0.760] | 50 |" in card
