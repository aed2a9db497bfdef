"""Decoder-only Transformer, KV-cache generation and Hugging Face interop."""
