"""Request bodies of the OpenAI-compatible API, with the limits the server enforces.

Field names and defaults follow the OpenAI API reference (chat completions, completions); `top_k` is an
extension most open servers also accept. Unknown fields are ignored, as OpenAI clients send many.
`Limits` are the server's settings (documented in docs/serving.md); the `Field` bounds below are fixed
sanity bounds that no setting can raise (a seed must fit the 64-bit generator, a list must stay small).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from emergelab.model.generate import MIN_TEMPERATURE


@dataclass
class Limits:
    """What one request may ask for. `max_prompt_tokens=None` means the model's block_size - 1."""

    max_prompt_tokens: int | None = None
    max_tokens: int = 1024  # cap on max_tokens
    default_max_tokens: int = 256  # when a request names none (clipped to the room left in the context)
    max_n: int = 8  # choices per request (n x prompts)
    max_top_logprobs: int = 5
    max_inspect_tokens: int = 256
    max_attention_values: int = 4_000_000  # layers x heads x tokens^2 one /api/inspect may return
    max_body_bytes: int = 1_000_000  # counted as the body arrives, chunked bodies included
    max_stop: int = 16  # stop strings per request
    max_stop_chars: int = 200  # characters per stop string
    max_queue: int = 64
    max_batch: int = 8

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"Limits.{name}: {value!r} — must be a whole number >= 1")


SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1  # what a 64-bit generator seed holds


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Body):
    type: Literal["text"]
    text: str


class Message(_Body):
    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(_Body):
    include_usage: bool = False


class _Sampling(_Body):
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, le=2**31 - 1)
    n: int = Field(1, ge=1, le=2**31 - 1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)

    @field_validator("temperature")
    @classmethod
    def _not_vanishing(cls, t: float) -> float:
        # logits / T overflows float32 for a tiny T (sampling then fails on NaN); 0 already means greedy
        if 0 < t < MIN_TEMPERATURE:
            raise ValueError(f"must be 0 (greedy) or at least {MIN_TEMPERATURE}")
        return t

    def stop_list(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        return tuple(s for s in stops if s)


class ChatRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0)


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]  # text(s) or token ids (serve/completions.py)
    max_tokens: int | None = Field(16, ge=0)  # the completions API defaults to 16; 0 with echo scores the prompt
    logprobs: int | None = Field(None, ge=0)
    echo: bool = False


class InspectRequest(_Body):
    text: str = Field(min_length=1)
    top_k: int = Field(5, ge=1, le=20)
    layers: list[int] | None = Field(None, max_length=1024)  # attention of these layers only (None = all)

    def layer_ids(self) -> list[int] | None:
        """`layers` without repeats, in order (a repeated layer would only repeat the same numbers)."""
        return None if self.layers is None else sorted(set(self.layers))
