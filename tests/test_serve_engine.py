"""How the model worker turns sampled tokens into streamed text: nothing half-sent, nothing lost."""

from __future__ import annotations

import string

import pytest

from emergelab.data.tokenizer import char_tokenizer, train_bpe
from emergelab.serve.engine import GenJob, _Row


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
