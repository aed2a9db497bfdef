"""The model worker: sampled tokens become streamed text with nothing half-sent or lost, and continuous
batching gives every job exactly the tokens `generate` gives it alone (same seed)."""

from __future__ import annotations

import string
import threading
import time

import pytest
import torch

from emergelab.data.tokenizer import char_tokenizer, train_bpe
from emergelab.model import GPT, ModelConfig, SamplingParams, generate
from emergelab.serve.engine import Engine, GenJob, _Row


def stream(tok, ids: list[int], stop: tuple[str, ...] = (), max_tokens: int = 100, stop_ids=()):
    events = []
    row = _Row(GenJob(prompt_ids=[0], max_tokens=max_tokens, stop=stop, emit=events.append), tok, set(stop_ids),
               "cpu")
    reason = None
    for i in ids:
        reason = row.push(i, -1.0, [])
        if reason:
            break
    return [e["text"] for e in events], reason


@pytest.fixture(scope="module")
def chars():
    return char_tokenizer(string.ascii_lowercase + "#")


def test_a_multibyte_character_is_sent_once_complete():
    tok = train_bpe(["plain ascii text only"] * 3, vocab_size=9 + 256 + 8)
    ids = tok.encode("aé")
    assert len(ids) == 3, "é is two byte tokens here"
    texts, reason = stream(tok, ids, max_tokens=3)
    assert texts == ["a", "", "é"] and reason == "length"


def test_a_possible_stop_string_prefix_is_held_back_then_released(chars):
    texts, reason = stream(chars, chars.encode("a#b##c"), stop=("##",))
    assert texts == ["a", "", "#b", "", ""] and reason == "stop"
    assert "".join(texts) == "a#b"


def test_held_back_text_is_flushed_when_the_model_stops(chars):
    texts, reason = stream(chars, [*chars.encode("a#"), chars.eos_id], stop=("##",), stop_ids=(chars.eos_id,))
    assert "".join(texts) == "a#" and reason == "stop"


def test_length_limit_flushes_everything(chars):
    texts, reason = stream(chars, chars.encode("ab#"), stop=("##",), max_tokens=3)
    assert "".join(texts) == "ab#" and reason == "length"


class SlowGPT(GPT):
    """Sleeps in every decode step, so later jobs surely join a batch that is already running."""

    def forward(self, idx, *args, **kwargs):
        if idx.shape[1] == 1:
            time.sleep(0.005)
        return super().forward(idx, *args, **kwargs)


def test_jobs_joining_a_running_batch_get_exactly_what_they_would_get_alone():
    torch.manual_seed(0)
    tok = char_tokenizer(string.ascii_lowercase + " ")
    model = SlowGPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=32, n_head=4, block_size=128)).eval()
    engine = Engine(model, tok, (tok.eos_id,), max_batch=4)
    specs = [("ab", 70, 1.0), ("a much longer prompt than the first one", 30, 1.0), ("xyz", 40, 0.0),
             ("hello", 25, 1.0)]
    out: dict[int, list[int]] = {i: [] for i in range(len(specs))}
    done = {i: threading.Event() for i in range(len(specs))}

    def submit(i: int) -> None:
        def emit(ev):
            if ev["type"] == "token":
                out[i].append(ev["token_id"])
            else:
                done[i].set()
        text, n, temp = specs[i]
        engine.submit(GenJob(prompt_ids=tok.encode(text), max_tokens=n, temperature=temp, seed=i, emit=emit))

    submit(0)
    for i in range(1, len(specs)):  # each joins once the batch has moved on a few tokens
        deadline = time.monotonic() + 30
        while len(out[i - 1]) < 5 and not done[i - 1].is_set() and time.monotonic() < deadline:
            time.sleep(0.001)
        submit(i)
    assert all(d.wait(60) for d in done.values())
    engine.close()
    assert engine.stats["prefills"] == len(specs) and engine.stats["steps"] < engine.stats["row_steps"]
    for i, (text, n, temp) in enumerate(specs):
        ref = generate(model, [tok.encode(text)], SamplingParams(max_new_tokens=n, temperature=temp, seed=i,
                                                                 stop_token_ids=(tok.eos_id,)))[0]
        expected = ref.tokens[:-1] if ref.finish_reason == "stop" else ref.tokens
        got = [t for t in out[i] if t != tok.eos_id]
        assert got == expected, f"job {i}"
