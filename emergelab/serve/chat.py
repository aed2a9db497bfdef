"""Chat templates: messages -> prompt text, for our models and for imported ones.

Our models use the chat format SFT trains on (`emergelab.data.chat.render_messages`): `<eos>` (the
document boundary pretraining saw), then `<|user|>question<|assistant|>answer<eos>` turns, the assistant
answering with `<think>...</think><answer>...</answer>` after post-training. An imported model
(e.g. SmolLM2) brings its own Jinja template (kept by the tokenizer from its `tokenizer_config.json`),
rendered here the way `transformers` renders it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from jinja2.sandbox import ImmutableSandboxedEnvironment

from emergelab.data.chat import BOS, EOS, own_chat_template, render_messages


@dataclass
class ChatFormat:
    template: str | None = None  # Jinja source; None = our own format
    bos_token: str = BOS
    eos_token: str = EOS

    def render(self, messages: list[dict[str, str]]) -> str:
        """Prompt text ending where the assistant's next reply begins."""
        if self.template is None:
            return render_messages(messages)
        return _compiled(self.template).render(messages=messages, add_generation_prompt=True,
                                               bos_token=self.bos_token, eos_token=self.eos_token)


@lru_cache(maxsize=8)
def _compiled(template: str):
    """The Jinja template compiled once per source, not on every request."""
    # transformers renders chat templates with these settings (PreTrainedTokenizerBase.apply_chat_template)
    return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(template)


def chat_format_for(tokenizer) -> ChatFormat:
    """The tokenizer's own template when it has one (imported models), else our format."""
    template = own_chat_template(tokenizer)
    if template is None:
        return ChatFormat()
    special = tokenizer.special

    def token_text(v) -> str:  # tokenizer_config.json stores "<s>" or {"content": "<s>", ...}
        return v.get("content", "") if isinstance(v, dict) else (v or "")

    return ChatFormat(template, token_text(special.get("bos_token")),
                      token_text(special.get("eos_token")))
