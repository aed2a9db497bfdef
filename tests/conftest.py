"""Shared fixtures: a tiny generated corpus and a helper to run the CLI in a subprocess."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("EMERGELAB_NO_PROGRESS", "1")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def addition_corpus(tmp_path_factory) -> Path:
    """3-digit addition lines separated by <eos>: a small, learnable corpus."""
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("corpus") / "add.txt"
    path.write_text("".join(f"{a}+{b}={a + b}<eos>" for a, b in
                            ((rng.randint(0, 999), rng.randint(0, 999)) for _ in range(3000))))
    return path


def run_cli(*args: str, check: bool = True, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m emergelab ARGS` and return the completed process (text output)."""
    full_env = {**os.environ, "EMERGELAB_NO_PROGRESS": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "emergelab", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"emergelab {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_char_model():
    """A factory: a 2-layer, width-32 random GPT (seed 0, eval mode) over a character tokenizer of `alphabet`."""
    import torch

    from emergelab.data.tokenizer import char_tokenizer
    from emergelab.model import GPT, ModelConfig

    def build(alphabet: str):
        torch.manual_seed(0)
        tok = char_tokenizer(alphabet)
        model = GPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=32, n_head=4, block_size=128)).eval()
        return model, tok

    return build
