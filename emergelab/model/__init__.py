"""Decoder-only Transformer, KV-cache generation and Hugging Face interop."""

from emergelab.model.generate import Completion, SamplingParams, generate
from emergelab.model.gpt import GPT, KVCache, ModelConfig, ModelOutput

__all__ = ["GPT", "Completion", "KVCache", "ModelConfig", "ModelOutput", "SamplingParams", "generate"]
