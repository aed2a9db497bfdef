"""export-hf / import-hf through run directories: transformers sees the same logits, imported runs work everywhere."""

from __future__ import annotations

import json

import torch
from conftest import run_cli

from emergelab.runs import load_model


def test_trained_run_exports_to_transformers_with_identical_logits(tmp_path, addition_corpus):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"size: 30k\ndata:\n  corpus: {addition_corpus}\ntrain:\n  max_steps: 4\n  batch_size: 4\n"
                   "  seq_len: 32\n  eval_batches: 1\nmodel:\n  block_size: 64\n")
    run_cli("pretrain", str(cfg), "--out", str(tmp_path / "run"))
    run_cli("export-hf", str(tmp_path / "run"), str(tmp_path / "hf"))
    ours, tok, _ = load_model(tmp_path / "run", device="cpu")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    hf_tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    text = "12+34=46<eos>7+8="
    ids = tok.encode(text)
    assert hf_tok.encode(text, add_special_tokens=False) == ids
    x = torch.tensor([ids])
    with torch.no_grad():
        assert (ours(x).logits - hf(x).logits).abs().max().item() < 1e-4

    # and back: the exported folder imported as a new run gives the same logits again
    run_cli("import-hf", str(tmp_path / "hf"), str(tmp_path / "back"))
    again, tok2, _ = load_model(tmp_path / "back", device="cpu")
    assert tok2.encode(text) == ids
    with torch.no_grad():
        assert (again(x).logits - ours(x).logits).abs().max().item() < 1e-5


def test_imported_qwen2_folder_is_a_working_run(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from emergelab.data.tokenizer import char_tokenizer

    tok = char_tokenizer("abcdefgh ")
    cfg = Qwen2Config(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True)
    torch.manual_seed(0)
    hf = Qwen2ForCausalLM(cfg).eval()
    hf.save_pretrained(tmp_path / "qwen")
    tok.save(tmp_path / "qwen" / "tokenizer.json")
    run_cli("import-hf", str(tmp_path / "qwen"), str(tmp_path / "run"))
    ours, _, _ = load_model(tmp_path / "run", device="cpu")
    x = torch.tensor([tok.encode("abc defg hab")])
    with torch.no_grad():
        assert (ours(x).logits - hf(x).logits).abs().max().item() < 1e-4
    (tmp_path / "t.txt").write_text("abc def")
    ppl = json.loads(run_cli("ppl", str(tmp_path / "run"), "--text-file", str(tmp_path / "t.txt")).stdout)
    assert ppl["tokens"] == 7 and ppl["ppl"] > 1
    out = run_cli("sample", str(tmp_path / "run"), "--prompt", "abc", "--max-new-tokens", "4", "--json")
    assert len(json.loads(out.stdout)["tokens"]) <= 4
    assert run_cli("import-hf", str(tmp_path / "qwen"), str(tmp_path / "run"), check=False).returncode == 2
