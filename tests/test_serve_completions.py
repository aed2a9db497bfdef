"""/v1/completions with echo, logprobs and token-id prompts (the OpenAI legacy API / vLLM behaviour).

Oracle: log-softmax of one full forward pass of the same model over the prompt (brute force), and the
tokenizer's own encoding with its document start.
"""

from __future__ import annotations

import string

import httpx
import pytest
import torch

from emergelab.data.tokenizer import char_tokenizer
from emergelab.model import GPT, ModelConfig
from emergelab.serve.app import create_app
from emergelab.serve.chat import ChatFormat
from emergelab.serve.engine import Engine
from emergelab.serve.schemas import Limits
from emergelab.serve.server import serve_in_thread


@pytest.fixture(scope="module")
def served():
    torch.manual_seed(0)
    tok = char_tokenizer(string.ascii_letters + string.digits + " .,?+=\n")
    model = GPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=32, n_head=4, block_size=64)).eval()
    engine = Engine(model, tok, (tok.eos_id,), max_batch=4, max_queue=16)
    with serve_in_thread(create_app(engine, ChatFormat(), "tiny", Limits(max_tokens=32))) as url:
        yield url + "/v1/completions", model, tok
    engine.close()


@torch.no_grad()
def brute_logprobs(model, ids: list[int]) -> torch.Tensor:
    return model(torch.tensor([ids])).logits[0].log_softmax(-1)


def test_echo_with_max_tokens_0_scores_every_prompt_token_after_the_document_start(served):
    url, model, tok = served
    r = httpx.post(url, json={"prompt": "12+34=46", "echo": True, "max_tokens": 0, "logprobs": 2}).json()
    ids = tok.encode("12+34=46", doc_start=True)
    assert ids[0] == tok.eos_id
    lp = r["choices"][0]["logprobs"]
    assert lp["tokens"] == tok.token_pieces(ids) and r["choices"][0]["text"] == "<eos>12+34=46"
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    ref = brute_logprobs(model, ids)
    for t in range(1, len(ids)):
        assert lp["token_logprobs"][t] == pytest.approx(ref[t - 1, ids[t]].item(), abs=1e-5)
        top = lp["top_logprobs"][t]
        assert len(top) == 2 and max(top.values()) == pytest.approx(ref[t - 1].max().item(), abs=1e-5)
    assert lp["text_offset"] == [0, 5, 6, 7, 8, 9, 10, 11, 12]
    assert r["usage"]["prompt_tokens"] == len(ids) and r["usage"]["completion_tokens"] == 0


def test_token_id_prompts_are_taken_as_given_and_echo_appends_the_generated_token(served):
    url, model, tok = served
    ids = tok.encode("ab c")  # no document start: exactly these ids
    r = httpx.post(url, json={"prompt": [ids, ids[:2]], "echo": True, "max_tokens": 1, "logprobs": 1,
                              "temperature": 0}).json()
    first, second = r["choices"]
    assert len(first["logprobs"]["token_logprobs"]) == len(ids) + 1
    assert len(second["logprobs"]["token_logprobs"]) == 2 + 1
    ref = brute_logprobs(model, ids)
    assert first["logprobs"]["token_logprobs"][1] == pytest.approx(ref[0, ids[1]].item(), abs=1e-5)
    greedy = int(ref[-1].argmax())
    assert first["logprobs"]["token_logprobs"][-1] == pytest.approx(ref[-1, greedy].item(), abs=1e-5)
    assert first["text"] == tok.decode(ids) + tok.decode([greedy])
    assert r["usage"]["prompt_tokens"] == len(ids) + 2


def test_a_text_that_already_starts_with_the_document_start_gets_no_second_one(served):
    url, _, tok = served
    r = httpx.post(url, json={"prompt": "<eos>ab", "echo": True, "max_tokens": 0, "logprobs": 0}).json()
    assert r["choices"][0]["logprobs"]["tokens"] == ["<eos>", "a", "b"]


@pytest.mark.parametrize("body, field", [
    ({"prompt": [[1, 2, 10_000]]}, "prompt"),
    ({"prompt": [[]]}, "prompt"),
    ({"prompt": "ab", "echo": True, "stream": True}, "echo"),
    ({"prompt": "ab", "max_tokens": 0}, "max_tokens"),
    ({"prompt": "ab", "logprobs": 50}, "logprobs"),
])
def test_bad_completion_requests_name_the_field(served, body, field):
    r = httpx.post(served[0], json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == field, r.text
