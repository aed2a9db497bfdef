"""Tokenizers round-trip text and keep the chat/reasoning special tokens as single reserved ids."""

from __future__ import annotations

import pytest

from emergelab.data.tokenizer import SPECIAL_TOKENS, Tokenizer, alphabet_of, char_tokenizer, train_bpe
from emergelab.errors import UserError

TEXTS = ["12+34=46<eos>", "<|user|>what is 2+2?<|assistant|><think>2+2=4</think><answer>4</answer><eos>",
         "all wugs are daxes .\nis rex a dax ? yes"]


def test_char_tokenizer_round_trip_and_special_ids(tmp_path):
    tok = char_tokenizer(alphabet_of(TEXTS))
    for i, t in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(t) == i
    for text in TEXTS:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
    assert tok.encode("<think>") == [SPECIAL_TOKENS.index("<think>")]
    assert len(tok.encode("12+34")) == 5  # one token per character
    tok.save(tmp_path / "tokenizer.json")
    again = Tokenizer.load(tmp_path / "tokenizer.json")
    assert again.encode(TEXTS[1]) == tok.encode(TEXTS[1]) and again.eos_id == 2


def test_char_tokenizer_without_printable_names_every_unknown_character_even_tag_characters():
    tok = char_tokenizer("0123456789")
    with pytest.raises(UserError, match=r"\['<', 'x', '\|'\] are not in this model's alphabet"):
        tok.encode("12x|<answer><")


def test_printable_char_tokenizer_covers_ascii_and_maps_the_rest_to_unk():
    tok = char_tokenizer("0123456789+=", printable=True)
    text = "What is 123+456? It's <think>|~</think>"
    assert tok.decode(tok.encode(text)) == text and tok.unknown_characters(text) == []
    assert tok.encode("né")[1] == tok.token_to_id("<unk>") == tok.vocab_size - 1
    assert tok.unknown_characters("né") == ["é"]
    assert tok.encode("1+2", doc_start=True) == [tok.eos_id, *tok.encode("1+2")]


def test_bpe_round_trip_including_unicode_and_specials():
    tok = train_bpe(TEXTS * 20 + ["naïve café — ünïcode"], vocab_size=300)
    for text in [*TEXTS, "naïve café — ünïcode", "never seen: zq∑"]:
        assert tok.decode(tok.encode(text)) == text
    assert tok.encode("<answer>") == [SPECIAL_TOKENS.index("<answer>")]
    with pytest.raises(UserError):
        train_bpe(TEXTS, vocab_size=100)


def test_bpe_file_loads_in_transformers(tmp_path):
    from transformers import PreTrainedTokenizerFast

    tok = train_bpe(TEXTS * 20, vocab_size=300)
    tok.save(tmp_path / "tokenizer.json")
    hf = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    assert hf.encode(TEXTS[1], add_special_tokens=False) == tok.encode(TEXTS[1])
