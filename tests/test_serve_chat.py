"""Chat templates: our format is exactly what SFT trains on; an imported model's Jinja template renders
exactly as `transformers` renders it."""

from __future__ import annotations

import string

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from emergelab.data.chat import chat_prompt, encode_prompt, render_messages
from emergelab.data.tokenizer import Tokenizer, char_tokenizer
from emergelab.serve.chat import ChatFormat, chat_format_for

# SmolLM2-Instruct's template (ChatML with a default system prompt), as shipped in its tokenizer config.
CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
          "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
CONVERSATION = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"},
                {"role": "user", "content": "And 3+3?"}]


def test_our_single_turn_prompt_is_the_sft_prompt_token_for_token():
    tok = char_tokenizer(string.ascii_letters + string.digits + " ?+")
    question = "What is 2+2?"
    ours = tok.encode(render_messages([{"role": "user", "content": question}]))
    assert ours == encode_prompt(tok, chat_prompt(question))


def test_our_multi_turn_prompt_closes_each_answer_with_eos_and_folds_system_into_the_user_turn():
    text = render_messages([{"role": "system", "content": "Be brief."}, *CONVERSATION])
    assert text == "<eos><|user|>Be brief.\n\nWhat is 2+2?<|assistant|>4<eos><|user|>And 3+3?<|assistant|>"
    assert chat_format_for(char_tokenizer("ab")).template is None


def test_imported_template_renders_like_transformers_apply_chat_template():
    hf = HFTokenizer(models.WordLevel({"<|im_start|>": 0, "<|im_end|>": 1, "[UNK]": 2}, unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    special = {"chat_template": CHATML, "bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}}
    fmt = chat_format_for(Tokenizer(hf, special))
    assert fmt == ChatFormat(CHATML, "<|im_start|>", "<|im_end|>")
    reference = PreTrainedTokenizerFast(tokenizer_object=hf, chat_template=CHATML)
    for messages in (CONVERSATION, [{"role": "system", "content": "Answer in French."}, *CONVERSATION[:1]]):
        assert fmt.render(messages) == reference.apply_chat_template(messages, tokenize=False,
                                                                     add_generation_prompt=True)
