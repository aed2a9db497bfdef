"""POST /api/disambiguate: one minimal pair measured on the served model.

Oracle: `disambiguation.measure` called directly on the same model with the shipped item — the endpoint
must return exactly its per-layer moves and top heads.
"""

from __future__ import annotations

import json
import string

import httpx
import pytest

from emergelab.science.real_model.disambiguation import measure, minimal_pairs
from emergelab.serve.app import create_app
from emergelab.serve.chat import ChatFormat
from emergelab.serve.disambiguate import item_from_sentences, pair_sentences
from emergelab.serve.engine import Engine
from emergelab.serve.http_errors import ApiError
from emergelab.serve.schemas import Limits
from emergelab.serve.server import serve_in_thread

ALPHABET = string.ascii_letters + string.digits + " .,?!'-"


@pytest.fixture(scope="module")
def tiny(tiny_char_model):
    return tiny_char_model(ALPHABET)


@pytest.fixture(scope="module")
def url(tiny):
    model, tok = tiny
    engine = Engine(model, tok, (tok.eos_id,), max_batch=2, max_queue=8)
    app = create_app(engine, ChatFormat(), "tiny", Limits(max_inspect_tokens=50))
    with serve_in_thread(app) as u:
        yield u
    engine.close()


def post(url: str, body: dict) -> httpx.Response:
    return httpx.post(url + "/api/disambiguate", json=body, timeout=60)


def test_every_shipped_pair_round_trips_through_its_sentences():
    for it in minimal_pairs():
        s = pair_sentences(it)
        got = item_from_sentences(s["sentence_a"], s["sentence_b"], s["word"], s["control"])
        assert got == {k: it[k] for k in ("template", "cues", "word", "control")}


def test_pairs_lists_the_shipped_items_as_sentences(url):
    pairs = httpx.get(url + "/api/disambiguate/pairs", timeout=30).json()["pairs"]
    assert pairs == [pair_sentences(it) for it in minimal_pairs()]
    assert pairs[0]["sentence_a"] == "The fisherman was waiting at the bank"


def test_endpoint_equals_a_direct_measure_of_the_pair(url, tiny):
    model, tok = tiny
    item = minimal_pairs()[0]
    r = post(url, pair_sentences(item))
    assert r.status_code == 200, r.text
    got, want = r.json(), measure(model, tok, [item])
    assert got["move_word"] == want["items"][0]["move_word"]
    assert got["move_control"] == want["items"][0]["move_control"]
    assert len(got["move_word"]) == model.cfg.n_layer + 1
    assert got["top_heads"] == want["top_heads"]
    assert got["attention_to_cue_minus_control"] == want["attention_to_cue_minus_control"]
    assert got["cues"] == item["cues"] and got["template"] == item["template"]


def test_a_word_the_sentences_do_not_end_with_is_a_clear_400(url):
    r = post(url, {"sentence_a": "The fisherman was at the bank", "sentence_b": "The cashier was at the bank",
                   "word": "river", "control": "door"})
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == "sentence_a" and "must end with the word 'river'" in err["message"]


def test_sentences_that_do_not_differ_by_a_cue_are_a_400(url):
    r = post(url, {"sentence_a": "The man was at the bank", "sentence_b": "The man was at the bank",
                   "word": "bank", "control": "door"})
    assert r.status_code == 400 and "differ only by a cue" in r.json()["error"]["message"]


def test_a_word_outside_the_models_alphabet_is_a_400(url):
    r = post(url, {"sentence_a": "The fisherman was at the bänk", "sentence_b": "The cashier was at the bänk",
                   "word": "bänk", "control": "door"})
    assert r.status_code == 400 and "not in this model's" in r.json()["error"]["message"]


def test_oversized_input_is_refused_with_the_inspect_limit(url):
    long = "The fisherman " + "very " * 20 + "was at the bank"  # > 50 tokens of a character model
    r = post(url, {"sentence_a": long, "sentence_b": "The cashier was at the bank", "word": "bank",
                   "control": "door"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    assert r.json()["error"]["param"] == "sentence_a"
    r = post(url, {"sentence_a": "The a was at the bank", "sentence_b": "The b was at the bank", "word": "bank",
                   "control": "d" * 101})
    assert r.status_code == 400 and r.json()["error"]["param"] == "control"


def test_a_long_control_that_overflows_its_sentence_is_refused(url):
    r = post(url, {"sentence_a": "The a was at the bank", "sentence_b": "The b was at the bank", "word": "bank",
                   "control": "d" * 40})
    assert r.status_code == 400 and r.json()["error"]["param"] == "control"


def test_placeholders_in_user_text_are_refused():
    with pytest.raises(ApiError, match="placeholders"):
        item_from_sentences("The {cue} was at the bank", "The b was at the bank", "bank", "door")


@pytest.mark.parametrize("body", [
    {"sentence_a": "\ud800 bank", "sentence_b": "The b bank", "word": "bank", "control": "door"},
    {"sentence_a": "The a\x00 bank", "sentence_b": "The b bank", "word": "bank", "control": "door"},
    {"sentence_a": "The a bank", "sentence_b": "The b bank", "word": "\ud800", "control": "door"},
    {"sentence_a": "The a bank", "sentence_b": "The b bank", "word": " bank", "control": "door"},
    {"sentence_a": "bank", "sentence_b": "bank", "word": "bank", "control": "door"},
    {"sentence_a": "a bank", "sentence_b": "b bank", "word": "bank", "control": "door"},
    {"sentence_a": "   ", "sentence_b": "b bank", "word": "bank", "control": "door"},
    {"sentence_a": 3, "sentence_b": "b bank", "word": "bank", "control": "door"},
    {"sentence_a": "The a bank", "sentence_b": "The b bank", "word": "bank"},
    {"sentence_a": "x" * 900_000, "sentence_b": "b bank", "word": "bank", "control": "door"},
])
def test_hostile_bodies_get_a_4xx_or_an_answer_never_a_5xx(url, body):
    r = httpx.post(url + "/api/disambiguate", content=json.dumps(body), timeout=60,
                   headers={"Content-Type": "application/json"})
    assert r.status_code < 500, r.text
