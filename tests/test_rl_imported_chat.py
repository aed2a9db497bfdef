"""An imported model is prompted, stopped and read in its own chat format (what R1-Zero on SmolLM2 needs).

Oracle for the prompt: `transformers`' own `apply_chat_template` on the same template and message.
"""

from __future__ import annotations

import string

import pytest
from tokenizers import Tokenizer as HFTokenizer

from emergelab.data.chat import (
    R1_INSTRUCTION,
    completion_text,
    encode_prompt,
    render_prompt,
    sampling_stops,
)
from emergelab.data.tokenizer import Tokenizer, char_tokenizer
from emergelab.rl.rewards import Sample, format_reward
from emergelab.tasks.registry import get_task

# SmolLM2's template, shortened (same structure: im_start/im_end turns, a default system turn)
TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            "{{ '<|im_start|>system\\nYou are helpful<|im_end|>\\n' }}{% endif %}"
            "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


@pytest.fixture(scope="module")
def imported():
    ours = char_tokenizer(string.printable)
    hf = HFTokenizer.from_str(ours.hf.to_str())
    hf.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    return Tokenizer(hf, {"chat_template": TEMPLATE, "eos_token": "<|im_end|>", "bos_token": "<|im_start|>"})


def test_chat_prompt_is_the_models_own_template_with_the_r1_instruction(imported):
    from transformers import PreTrainedTokenizerFast

    task = get_task("add:digits=2")
    ex = task.generate(1, "test", seed=0)[0]
    ids = encode_prompt(imported, render_prompt(task, ex, "chat"))
    fast = PreTrainedTokenizerFast(tokenizer_object=imported.hf, eos_token="<|im_end|>")
    fast.chat_template = TEMPLATE
    want = fast.apply_chat_template([{"role": "user", "content": f"{ex.prompt}\n{R1_INSTRUCTION}"}],
                                    add_generation_prompt=True, tokenize=False)
    assert imported.decode(ids) == want
    assert ids[-1] != imported.eos_id and imported.token_to_id("<|im_start|>") in ids


def test_imported_model_stops_only_at_its_end_of_turn(imported):
    assert sampling_stops(imported) == {"stop_token_ids": (imported.token_to_id("<|im_end|>"),), "stop_strings": ()}
    ours = char_tokenizer(string.printable)
    assert "\n" in sampling_stops(ours)["stop_strings"]


def test_multiline_reply_with_tags_is_read_whole_and_verified(imported):
    task = get_task("countdown:numbers=3")
    ex = task.generate(1, "test", seed=0)[0]
    reply = f"<think>\nlet me try\nsome steps\n</think>\n<answer> {ex.answer} </answer>"
    text = completion_text(imported, imported.encode(reply + "<|im_end|>"))
    assert "\n" not in text and task.verify(ex, text).score == 1.0
    assert format_reward([Sample(ex, "", text)]) == [1.0]
    assert format_reward([Sample(ex, "", f"<answer>{ex.answer}</answer>")]) == [0.0]
    # without the tags: up to the first newline, as for our models
    assert completion_text(imported, imported.encode("12\nmore text")) == "12"


def test_our_models_keep_the_eos_prefix_and_the_newline_rule():
    ours = char_tokenizer(string.printable)
    assert encode_prompt(ours, "1+2=") == [ours.eos_id, *ours.encode("1+2=")]
    assert completion_text(ours, ours.encode("<answer>3</answer>\nnext")) == "<answer>3</answer>"
