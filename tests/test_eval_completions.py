"""complete_and_verify: each completion is cut at the stop rule and verified against its own item."""

from __future__ import annotations

from emergelab.data.chat import EOS
from emergelab.data.tokenizer import char_tokenizer
from emergelab.eval.completions import complete_and_verify
from emergelab.model import Completion
from emergelab.tasks.base import Example, Task


class Echo:
    """A sampler that answers prompt i with the fixed texts[i*n:(i+1)*n] and records its parameters."""

    def __init__(self, tok, texts):
        self.tok, self.texts, self.params = tok, texts, None

    def generate(self, prompts, params):
        self.params = params
        n = params.num_samples
        return [Completion(i // n, self.tok.encode(t), [], "stop") for i, t in enumerate(self.texts)]


def test_completions_are_cut_at_the_stop_rule_and_verified_against_their_own_item():
    tok = char_tokenizer("0123456789+=\n")
    task = Task()
    examples = [Example("1+1=", "2"), Example("2+2=", "4")]
    texts = ["<answer>2</answer>\n<answer>9</answer>", "<answer>3</answer>",  # item 0: right, then wrong
             f"<answer>4</answer>{EOS}77", "4"]  # item 1: right in both formats
    sampler = Echo(tok, texts)
    checked = complete_and_verify(sampler, tok, task, examples, [[1], [2]], max_new_tokens=9, num_samples=2)
    assert [c.example.prompt for c in checked] == ["1+1=", "1+1=", "2+2=", "2+2="]
    assert [c.text for c in checked] == ["<answer>2</answer>", "<answer>3</answer>", "<answer>4</answer>", "4"]
    assert [c.verdict.score for c in checked] == [1.0, 0.0, 1.0, 1.0]
    assert [c.verdict.format for c in checked] == ["direct", "direct", "direct", "plain"]
    assert sampler.params.max_new_tokens == 9 and EOS in sampler.params.stop_strings  # the stop rule is added
