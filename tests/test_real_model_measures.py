"""The real-model measurements' machinery on small models and synthetic numbers (no SmolLM2 needed).

Oracles: option log-probabilities against one unpadded forward per sequence summed by hand; the
disambiguation rule against synthetic moves where the answer is known by construction (positive and
negative controls); layer-0 moves against the fact that the same token has the same embedding.
"""

from __future__ import annotations

import random

import pytest
import torch

from emergelab.science.real_model import disambiguation, scoring
from emergelab.science.real_model.hallucination import abstains
from emergelab.science.real_model.lens import settle_layers

ALPHABET = "abcdefghijklmnopqrstuvwxyz ."


@pytest.fixture(scope="module")
def tiny(tiny_char_model):
    return tiny_char_model(ALPHABET)


def _brute_logprob(model, prompt: list[int], option: list[int]) -> float:
    seq = torch.tensor([prompt + option])
    with torch.no_grad():
        logp = model(seq).logits[0].log_softmax(-1)
    return sum(float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(option))


def test_option_logprobs_match_one_forward_per_sequence(tiny):
    model, tok = tiny
    prompts = [tok.encode(t) for t in ("the cat sat on the", "a dog", "every bird is a")]
    options = [tok.encode(o) for o in (" m", " mat", " x", " yes no")]  # one- and multi-token, ragged prompts
    got = scoring.option_logprobs(model, prompts, options, batch_size=2)
    want = torch.tensor([[_brute_logprob(model, p, o) for o in options] for p in prompts])
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    per_item = scoring.item_option_logprobs(model, prompts, [options[:2], options[1:], options[::2]])
    for n, opts in enumerate([options[:2], options[1:], options[::2]]):
        assert per_item[n] == pytest.approx([_brute_logprob(model, prompts[n], o) for o in opts], abs=1e-4)


def _moves(n_items: int, L: int, word: float, control: float, noise: float, seed: int):
    rng = random.Random(seed)
    mk = lambda m: [[0.0] + [max(0.0, m + rng.gauss(0, noise)) for _ in range(L)] for _ in range(n_items)]  # noqa: E731
    return mk(word), mk(control)


def test_rule_reproduced_when_only_the_ambiguous_word_moves():
    w, c = _moves(24, 30, word=0.10, control=0.02, noise=0.03, seed=1)
    assert disambiguation.disambiguation_verdict(w, c)["verdict"] == "reproduced"


def test_rule_not_reproduced_when_the_control_moves_as_much_or_more():
    w, c = _moves(24, 30, word=0.05, control=0.08, noise=0.03, seed=2)
    assert disambiguation.disambiguation_verdict(w, c)["verdict"] == "not reproduced"
    same = [[0.0] + [0.05] * 30 for _ in range(24)]
    assert disambiguation.disambiguation_verdict(same, same)["verdict"] == "not reproduced"


def test_rule_inconclusive_when_a_few_outliers_carry_the_mean():
    # 6 of 24 words move far more than their control, the other 18 slightly less: the mean is positive
    # but most words do not move more than their control
    d = [1.0] * 6 + [-0.01] * 18
    control = [[0.0] + [0.1] * 4 for _ in d]
    word = [[0.0] + [0.1 + x] * 4 for x in d]
    v = disambiguation.disambiguation_verdict(word, control)
    assert v["ci95"][0] > 0 and v["share_items_more"]["value"] == 0.25
    assert v["verdict"] == "inconclusive"


def test_word_states_do_not_move_at_the_embedding_and_not_at_all_with_the_same_cue(tiny):
    model, tok = tiny
    item = {"word": "bank", "control": "door", "template": "the {cue} sat by the {w}", "cues": ["fish", "cash"]}
    r = disambiguation.measure(model, tok, [item])["items"][0]
    assert r["move_word"][0] == pytest.approx(0.0, abs=1e-6) and r["move_control"][0] == pytest.approx(0.0, abs=1e-6)
    assert max(r["move_word"][1:]) > 1e-4  # a different cue does reach the word through attention
    same = disambiguation.measure(model, tok, [{**item, "cues": ["fish", "fish"]}])["items"][0]
    assert max(same["move_word"] + same["move_control"]) == pytest.approx(0.0, abs=1e-6)


def test_encode_item_finds_the_cue_span_and_the_word_position(tiny):
    _, tok = tiny
    ids, cue, word = disambiguation.encode_item(tok, "the {cue} sat by the {w}", "fish", "bank")
    text = tok.decode(ids)
    assert tok.decode([ids[i] for i in cue]) == " fish" and text.endswith("bank") and word == len(ids) - 1


def test_shipped_minimal_pairs_are_at_least_21_and_well_formed():
    items = disambiguation.minimal_pairs()
    assert len(items) >= 21 and len({it["word"] for it in items}) == len(items)
    for it in items:
        assert it["template"].index("{cue}") < it["template"].index("{w}") and it["template"].endswith("{w}")
        assert len(it["cues"]) == 2 and it["cues"][0] != it["cues"][1] and it["word"] != it["control"]


def test_settle_layer_is_the_first_layer_from_which_the_top_token_stays_final():
    top = torch.tensor([[5, 1, 7], [3, 1, 7], [3, 2, 7], [3, 2, 9]])  # (L+1=4, T=3); last row = final
    assert settle_layers(top) == [1, 2, 3]


def test_abstention_phrases():
    assert abstains("I'm sorry, but I don't know of a country called Veltoria.")
    assert abstains("There is no such element.")
    assert not abstains("The capital of Veltoria is Nova Terra.")


def test_intervals_from_the_data():
    assert scoring.proportion(0, 20)["ci95"][1] < 0.2 and scoring.proportion(0, 20)["ci95"][0] == 0
    far = scoring.difference_ci([1.0] * 40, [0.0] * 40)
    assert far["value"] == 1 and far["ci95"] == [1.0, 1.0]
    mixed = scoring.difference_ci([1.0, 0.0] * 20, [1.0, 0.0] * 20)
    assert mixed["ci95"][0] < 0 < mixed["ci95"][1]
