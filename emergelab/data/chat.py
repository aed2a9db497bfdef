"""The chat format in one place: the special tokens, how a prompt is rendered and encoded, and the stop rule.

Every stage that talks to a model (SFT, RL, eval, serve, tasks) renders text through this module, so a
model sees at evaluation exactly the format it was trained on.

    plain template:  <eos>PROMPT                       (the pretraining line format)
    chat template:   <eos><|user|>PROMPT<|assistant|>  (what SFT trains on)
    answer:          <think>worked solution</think><answer>46</answer>   then a stop

The leading `<eos>` is the document boundary pretraining saw before a first line. A completion ends at
the first newline or `<eos>` (`STOP_STRINGS`): pass `sampling_stops(tokenizer)` to `SamplingParams` and
cut decoded text with `cut_at_stop`. The special tokens are single ids 0..8, in `SPECIAL_TOKENS` order,
in every tokenizer emergelab builds, so `<think>` is one token and never seven characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
USER, ASSISTANT = "<|user|>", "<|assistant|>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
SPECIAL_TOKENS = [PAD, BOS, EOS, USER, ASSISTANT, THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE]
REASONING_TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)

STOP_STRINGS: tuple[str, ...] = ("\n", EOS)
# appended to a prompt to force a format: "<think>" for chain of thought, "<answer>" for a direct answer
FORMAT_PREFIX = {True: THINK_OPEN, False: ANSWER_OPEN}
TEMPLATES = ("plain", "chat")

# The one default generation budget for task answers (tokens). A hinted 6-digit scratchpad needs ~110,
# so recipes on such tasks raise it explicitly (the demo profiles' `rl.max_new_tokens`).
MAX_NEW_TOKENS = 64


def chat_prompt(user: str) -> str:
    """The text a chat model sees before it answers (without the leading `<eos>`)."""
    return f"{USER}{user}{ASSISTANT}"


def apply_template(text: str, template: str) -> str:
    """`text` wrapped for `template`: "plain" leaves it bare, "chat" wraps it in the chat tokens."""
    return chat_prompt(text) if template == "chat" else text


def render_prompt(task: Any, example: Any, template: str = "plain", shots: Sequence[Any] = (),
                  cot: bool = False) -> str:
    """A task item's prompt text (k solved `shots` lines, then the question) in `template`."""
    return apply_template(task.render_prompt(example, shots=shots, cot=cot), template)


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Prompt ids, preceded by `<eos>` — the document boundary pretraining saw before a first line.

    An imported model (`own_chat_template`) is prompted in its own format instead: a chat-template prompt
    becomes its template with `R1_INSTRUCTION` after the question; a plain one starts as its tokenizer says."""
    own = own_chat_template(tokenizer)
    if own is None:
        return [tokenizer.eos_id, *tokenizer.encode(text)]
    if text.startswith(USER) and text.endswith(ASSISTANT):
        question = text[len(USER):len(text) - len(ASSISTANT)]
        return tokenizer.encode(render_chat_template(tokenizer, [{"role": "user", "content":
                                                                   f"{question}\n{R1_INSTRUCTION}"}]))
    return tokenizer.encode(text, doc_start=True)


# An imported model does not know our chat tokens or tags: it is told the format the verifiers read (the
# R1-Zero template's instruction, DeepSeek-AI 2025, table 1; TinyZero words it the same way).
R1_INSTRUCTION = ("Think step by step inside <think> </think> tags, then write only the final answer inside "
                  "<answer> </answer> tags.")


def own_chat_template(tokenizer: Any) -> str | None:
    """The Jinja chat template an imported model's tokenizer brings (SmolLM2, Llama, Qwen2), else None."""
    return getattr(tokenizer, "chat_template", None) or None


def render_chat_template(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """`messages` through the tokenizer's own chat template, as `transformers` renders it (generation prompt
    on)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def text(i: int | None) -> str:
        return (tokenizer.id_to_token(i) or "") if i is not None else ""

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(own_chat_template(tokenizer)).render(
        messages=messages, add_generation_prompt=True, bos_token=text(tokenizer.bos_id),
        eos_token=text(tokenizer.eos_id))


def encode_pair(tokenizer: Any, prompt: str, response: str, template: str) -> tuple[list[int], list[int]]:
    """(input ids, targets) for one conversation: targets[t] is the token after position t on the response
    and its closing `<eos>`, -100 (ignored) on the prompt."""
    head_ids = encode_prompt(tokenizer, apply_template(prompt, template))
    body_ids = [*tokenizer.encode(response), tokenizer.eos_id]
    ids = head_ids + body_ids
    targets = [-100] * (len(head_ids) - 1) + body_ids + [-100]
    return ids, targets


def render_messages(messages: list[dict[str, str]]) -> str:
    """OpenAI-style messages in our format: `<eos>`, then `<|user|>text` / `<|assistant|>text<eos>` turns,
    then `<|assistant|>`. A system message has no token of its own; it is prepended to the next user turn."""
    out, system = [EOS], []
    for m in messages:
        if m["role"] == "system":
            system.append(m["content"])
        elif m["role"] == "user":
            out.append(USER + "\n\n".join([*system, m["content"]]))
            system = []
        else:
            out.append(ASSISTANT + m["content"] + EOS)
    return "".join(out) + ASSISTANT


def sampling_stops(tokenizer: Any) -> dict[str, tuple]:
    """Keyword arguments for `SamplingParams` implementing the stop rule for `tokenizer` (an imported model:
    its own end-of-turn token only, since its replies span lines)."""
    if own_chat_template(tokenizer) is not None:
        return {"stop_token_ids": (tokenizer.eos_id,), "stop_strings": ()}
    ids = [tokenizer.eos_id]
    nl = tokenizer.encode("\n")
    if len(nl) == 1:
        ids.append(nl[0])
    return {"stop_token_ids": tuple(ids), "stop_strings": STOP_STRINGS}


def completion_text(tokenizer: Any, tokens: Sequence[int]) -> str:
    """A completion as the verifiers read it: cut at the stop rule. An imported model's reply that uses the
    reasoning tags is read whole, its lines joined by spaces (the verifiers read one line); any other reply
    up to its first newline, as for our models."""
    if own_chat_template(tokenizer) is None:
        return cut_at_stop(tokenizer.decode(tokens))
    text = tokenizer.decode([t for t in tokens if t != tokenizer.eos_id]).strip()
    if any(tag in text for tag in REASONING_TAGS):
        return " ".join(text.split())
    return cut_at_stop(text)


def cut_at_stop(text: str) -> str:
    """The completion up to (not including) its first stop string."""
    end = len(text)
    for s in STOP_STRINGS:
        i = text.find(s)
        if i != -1:
            end = min(end, i)
    return text[:end]
