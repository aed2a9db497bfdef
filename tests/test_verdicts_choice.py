"""Multiple-choice scoring (eval/choice.py) against a brute-force oracle: one full forward pass per
(item, option), log-probabilities summed by hand, the argmax compared with the scorer's pick."""

import string

import pytest
import torch

from emergelab.data.chat import ANSWER_CLOSE, FORMAT_PREFIX, encode_prompt, render_prompt
from emergelab.data.tokenizer import char_tokenizer
from emergelab.errors import UserError
from emergelab.eval.choice import answer_options, evaluate_choice
from emergelab.model import GPT, ModelConfig
from emergelab.tasks.registry import get_task

SPEC = "syllogism:hops=1,vocab=nonce"


@pytest.fixture(scope="module")
def tiny():
    tok = char_tokenizer(string.ascii_letters + string.digits + string.punctuation + " \n")
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=512))
    return model.eval(), tok


@torch.no_grad()
def _oracle_pick(model, tok, prompt_ids, options):
    best, best_lp = None, -float("inf")
    for o in options:
        ans = tok.encode(o + ANSWER_CLOSE)
        seq = torch.tensor([prompt_ids + ans])
        logp = model(seq).logits[0].log_softmax(-1)
        lp = sum(logp[len(prompt_ids) - 1 + j, t].item() for j, t in enumerate(ans))
        if lp > best_lp:
            best, best_lp = o, lp
    return best


def test_choice_picks_the_most_probable_option_by_brute_force(tiny):
    model, tok = tiny
    out = evaluate_choice(model, tok, SPEC, n=12, seed=3)
    task = get_task(SPEC)
    examples = task.generate(12, "test", seed=3, allow_fewer=True)
    for ex, got in zip(examples, out["items"]):
        prompt = encode_prompt(tok, render_prompt(task, ex) + FORMAT_PREFIX[False])
        assert got == int(_oracle_pick(model, tok, prompt, out["options"]) == ex.answer)


def test_chance_is_one_over_k_or_the_commonest_answer_and_is_corrected(tiny):
    model, tok = tiny
    out = evaluate_choice(model, tok, SPEC, n=20)
    assert out["chance"] >= 1 / len(out["options"])
    assert out["chance_corrected"] == pytest.approx((out["accuracy"] - out["chance"]) / (1 - out["chance"]))


def test_answer_options_by_task():
    assert answer_options(get_task("syllogism:hops=1,vocab=real,content=agree")) == ("yes", "no")
    assert len(answer_options(get_task(SPEC))) == 4
    with pytest.raises(UserError, match="cannot be scored by choice"):
        answer_options(get_task("add:digits=2"))
