"""Tokenizers, token files and batch sampling."""
