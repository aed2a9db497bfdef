"""The OpenAI-compatible server, specified through the official `openai` client and raw HTTP.

Oracle for the generated text: `emergelab.model.generate` (tested against Hugging Face) run on the same
prompt tokens with the same seed — the server must produce exactly those tokens, alone or batched.
"""

from __future__ import annotations

import string
import threading
import time

import httpx
import pytest
import torch
from openai import BadRequestError, NotFoundError, OpenAI

from emergelab.data.chat import render_messages
from emergelab.model import GPT, SamplingParams, generate
from emergelab.serve.app import create_app
from emergelab.serve.chat import ChatFormat
from emergelab.serve.engine import Engine
from emergelab.serve.schemas import Limits
from emergelab.serve.server import serve_in_thread

ALPHABET = string.ascii_letters + string.digits + " .,?!+-*=\n"


@pytest.fixture(scope="module")
def tiny(tiny_char_model):
    return tiny_char_model(ALPHABET)


@pytest.fixture(scope="module")
def server(tiny):
    model, tok = tiny
    engine = Engine(model, tok, (tok.eos_id,), max_batch=8, max_queue=16)
    app = create_app(engine, ChatFormat(), "tiny", Limits(max_tokens=100, max_n=4, max_inspect_tokens=50,
                                                   max_attention_values=2 * 4 * 30**2))
    with serve_in_thread(app) as url:
        yield url, engine
    engine.close()


@pytest.fixture()
def client(server):
    return OpenAI(base_url=server[0] + "/v1", api_key="unused", max_retries=0, timeout=60)


def oracle(model, tok, prompt_text: str, max_new: int, temperature: float, seed: int) -> str:
    """The text `generate` produces for this prompt (cut before a stop token, as the server does)."""
    # the server's rule: a text prompt gets the document start (<eos>) once; chat prompts already begin with it
    ids = tok.encode(prompt_text, doc_start=not prompt_text.startswith("<eos>"))
    out = generate(model, [ids], SamplingParams(max_new_tokens=max_new, temperature=temperature, seed=seed,
                                                stop_token_ids=(tok.eos_id,)))[0]
    tokens = out.tokens[:-1] if out.finish_reason == "stop" else out.tokens
    return tok.decode(tokens)


def test_models_lists_the_served_model_with_its_context_length(client):
    models = client.models.list().data
    assert [m.id for m in models] == ["tiny"]
    assert models[0].model_extra["context_length"] == 128


def test_chat_completion_equals_generate_on_the_chat_prompt(client, tiny):
    model, tok = tiny
    messages = [{"role": "user", "content": "What is 2+2?"}]
    r = client.chat.completions.create(model="tiny", messages=messages, max_tokens=24, temperature=0.8, seed=7)
    assert r.choices[0].message.content == oracle(model, tok, render_messages(messages), 24, 0.8, 7)
    assert r.usage.prompt_tokens == len(tok.encode(render_messages(messages)))
    assert r.usage.completion_tokens == 24 and r.choices[0].finish_reason == "length"


def test_streaming_chat_concatenates_to_the_non_streaming_answer(client):
    kw = dict(model="tiny", messages=[{"role": "user", "content": "hello"}], max_tokens=30, seed=3)
    full = client.chat.completions.create(**kw).choices[0].message.content
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw))
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([d for d in deltas if d]) > 1, "tokens must arrive as separate events"
    assert "".join(deltas) == full
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 30


@torch.no_grad()
def test_chat_logprobs_are_the_models_log_probabilities(client, tiny):
    model, tok = tiny
    messages = [{"role": "user", "content": "abc"}]
    r = client.chat.completions.create(model="tiny", messages=messages, max_tokens=5, temperature=0,
                                       logprobs=True, top_logprobs=3)
    ids = tok.encode(render_messages(messages))
    content = r.choices[0].logprobs.content
    assert len(content) == 5
    for item in content:  # brute force: a full forward pass over prompt + tokens so far
        logp = model(torch.tensor([ids])).logits[0, -1].log_softmax(-1)
        nxt = int(logp.argmax())  # greedy
        assert item.token == tok.decode([nxt])
        assert item.logprob == pytest.approx(float(logp[nxt]), abs=1e-4)
        assert [t.logprob for t in item.top_logprobs] == pytest.approx(logp.topk(3).values.tolist(), abs=1e-4)
        ids.append(nxt)


def test_completions_with_several_prompts_and_samples(client, tiny):
    model, tok = tiny
    r = client.completions.create(model="tiny", prompt=["ab", "hello world"], max_tokens=12, n=2,
                                  temperature=1.0, seed=11)
    assert len(r.choices) == 4 and [c.index for c in r.choices] == [0, 1, 2, 3]
    # choice order: prompt-major, sample k uses seed + k
    assert r.choices[0].text == oracle(model, tok, "ab", 12, 1.0, 11)
    assert r.choices[1].text == oracle(model, tok, "ab", 12, 1.0, 12)
    assert r.choices[3].text == oracle(model, tok, "hello world", 12, 1.0, 12)
    assert r.usage.prompt_tokens == (1 + 2) + (1 + 11)  # <eos> + the text, per prompt


def test_streaming_completion_and_stop_string(client, tiny):
    model, tok = tiny
    full = oracle(model, tok, "xy", 40, 1.0, 5)
    stop = full[10:12]
    stream = client.completions.create(model="tiny", prompt="xy", max_tokens=40, seed=5, stream=True, stop=[stop])
    text = "".join(c.choices[0].text for c in stream)
    assert text == full[:full.index(stop)]


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server, tiny):
    url, engine = server
    model, tok = tiny
    prompts = ["a", "hello there", "What is 12*3?", "xyz xyz xyz xyz"]
    results: dict[int, str] = {}

    def ask(i: int) -> None:
        c = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        r = c.completions.create(model="tiny", prompt=prompts[i], max_tokens=20 + i, temperature=1.0, seed=i)
        results[i] = r.choices[0].text

    gate = threading.Event()
    engine.call(lambda: gate.wait(30))  # hold the model thread until every request is queued
    before = dict(engine.stats)
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while engine.waiting < len(prompts) and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join(60)
    assert all(results[i] == oracle(model, tok, p, 20 + i, 1.0, i) for i, p in enumerate(prompts))
    steps = engine.stats["steps"] - before["steps"]
    rows = engine.stats["row_steps"] - before["row_steps"]
    sampled = [generate(model, [tok.encode(p)], SamplingParams(max_new_tokens=20 + i, seed=i,
                                                               stop_token_ids=(tok.eos_id,)))[0].tokens
               for i, p in enumerate(prompts)]
    assert rows == sum(map(len, sampled))  # one row-step per sampled token (the stop token included)
    assert steps < rows, "requests in flight together should share decode steps"


@pytest.mark.parametrize("body, status, words", [
    ({"messages": []}, 400, "messages"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": 5}, 400, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}], "top_p": 0}, 400, "top_p"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 9}, 400, "n"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 101}, 400, "max_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, 400, "max_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "logprobs": True, "top_logprobs": 9}, 400, "top_logprobs"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, "role"),
    ({"messages": [{"role": "user", "content": "%%%"}]}, 400, "alphabet"),
    ({"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4"}, 404, "tiny"),
    ({"messages": [{"role": "user", "content": "a" * 200}]}, 400, "longer than the limit"),
    ({"messages": [{"role": "user", "content": "a" * 100}], "max_tokens": 60}, 400, "context length"),
])
def test_invalid_requests_get_4xx_with_a_message_naming_the_problem(server, body, status, words):
    r = httpx.post(server[0] + "/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == status
    assert words in r.json()["error"]["message"]
    assert httpx.get(server[0] + "/health").json()["status"] == "ok"


def test_malformed_json_and_non_object_bodies_are_400(server):
    for content in (b"{not json", b"[1, 2]", b'"hi"'):
        r = httpx.post(server[0] + "/v1/completions", content=content,
                       headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


def test_oversized_body_is_413(server):
    r = httpx.post(server[0] + "/v1/completions", json={"prompt": "a" * 2_000_000})
    assert r.status_code == 413


def test_openai_client_raises_the_servers_error_message(client):
    with pytest.raises(BadRequestError, match="temperature"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "a"}], temperature=3)
    with pytest.raises(NotFoundError, match="not served here"):
        client.completions.create(model="nope", prompt="a")


class SlowGPT(GPT):
    """Sleeps in every decode step, so a client can disconnect while generation is surely running."""

    def forward(self, idx, *args, **kwargs):
        if idx.shape[1] == 1:
            time.sleep(0.02)
        return super().forward(idx, *args, **kwargs)


@pytest.mark.parametrize("route, body", [
    ("/v1/completions", {"prompt": "abc"}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "abc"}]}),
])
def test_client_disconnect_mid_stream_cancels_generation_and_server_keeps_serving(tiny, route, body):
    model, tok = tiny
    slow = SlowGPT(model.cfg).eval()
    slow.load_state_dict(model.state_dict())
    engine = Engine(slow, tok, (tok.eos_id,))
    with serve_in_thread(create_app(engine, ChatFormat(), "tiny")) as url:
        with httpx.stream("POST", url + route, json=body | {"max_tokens": 100, "stream": True}, timeout=30) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            assert next(lines).startswith("data: {")
        deadline = time.monotonic() + 20
        while engine.stats["cancelled"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.stats["cancelled"] == 1
        assert engine.stats["tokens"] < 50, "generation should stop soon after the disconnect"
        r = httpx.post(url + "/v1/completions", json={"prompt": "abc", "max_tokens": 5}, timeout=30)
        assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "length"
    engine.close()


def test_full_queue_answers_429_and_recovers(tiny):
    model, tok = tiny
    engine = Engine(model, tok, (tok.eos_id,), max_queue=1)
    gate, started = threading.Event(), threading.Event()
    engine.call(lambda: (started.set(), gate.wait(30)))  # occupy the model thread
    assert started.wait(10)
    with serve_in_thread(create_app(engine, ChatFormat(), "tiny")) as url:
        waiting = threading.Thread(target=httpx.post, args=(url + "/v1/completions",),
                                   kwargs={"json": {"prompt": "a", "max_tokens": 3}, "timeout": 30})
        waiting.start()
        while engine.waiting < 1:
            time.sleep(0.01)
        r = httpx.post(url + "/v1/completions", json={"prompt": "a", "max_tokens": 3})
        assert r.status_code == 429 and "busy" in r.json()["error"]["message"]
        gate.set()
        waiting.join(30)
        assert httpx.post(url + "/v1/completions", json={"prompt": "a", "max_tokens": 3}).status_code == 200
    engine.close()


def test_inspect_endpoint_and_its_limits(server):
    url = server[0] + "/api/inspect"
    r = httpx.post(url, json={"text": "the bank", "top_k": 3})
    assert r.status_code == 200
    got = r.json()
    assert got["tokens"] == list("the bank") and len(got["top_k"][0]) == 3
    assert len(got["attention"]) == 2 and len(got["lens_top_tokens"]) == 3
    text = "a" * 40  # all layers: 2 x 4 x 40^2 = 12,800 numbers > 7,200; one layer: 6,400
    assert httpx.post(url, json={"text": text}).status_code == 400
    assert httpx.post(url, json={"text": text, "layers": [1]}).status_code == 200
    for body, words in [({"text": "a" * 51}, "limit of 50"), ({"text": "ab", "layers": [2]}, "out of range"),
                        ({"text": ""}, "text"), ({"text": "ab", "top_k": 99}, "top_k")]:
        r = httpx.post(url, json=body)
        assert r.status_code == 400 and words in r.json()["error"]["message"]


def test_page_and_its_assets_are_served(server):
    url = server[0]
    page = httpx.get(url + "/")
    assert page.status_code == 200 and 'id="chat-form"' in page.text and "/static/app.js" in page.text
    assert httpx.get(url + "/static/app.js").status_code == 200
    assert httpx.get(url + "/static/style.css").status_code == 200
    info = httpx.get(url + "/api/info").json()
    assert info["config"]["n_layer"] == 2 and info["chat_template"] == "ours"
