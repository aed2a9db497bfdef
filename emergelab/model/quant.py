"""Weights in fewer bytes for inference: bfloat16, or int8 weight-only with per-output-channel scales.

Decoding one token at batch 1 reads every weight once and does two FLOPs with it, so on a CPU its speed
is memory bandwidth / bytes per weight: fp32 SmolLM2-135M reads ~540 MB per token. `bf16` halves that
(every tensor, activations included, in bfloat16). `int8` stores each matrix as round(W / s) in int8 with
one float32 scale s = max|W_row| / 127 per output row (symmetric, as LLM.int8()'s vector-wise
quantization without its outlier split; Dettmers et al. 2022), and multiplies with torch's CPU
weight-packed kernel `aten._weight_int8pack_mm` on bfloat16 activations; the scale is applied in
float32 afterwards. Norms, attention, the embedding lookup and the residual stream stay float32.
The accuracy cost (NLL on held-out text vs float32) is measured by bench/bench_smollm2.py.
A quantized model is for inference only: it cannot be trained or saved as a checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from emergelab.errors import UserError
from emergelab.model.gpt import GPT

QUANT_MODES = ("none", "bf16", "int8")
INT8_K_MULTIPLE = 16  # aten._weight_int8pack_mm needs the input width to be a multiple of this


class Int8Linear(nn.Module):
    """y = (x · round(W/s)ᵀ) · s (+ bias): an nn.Linear with int8 weights and float32 row scales."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        self.register_buffer("weight", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scale)
        self.register_buffer("ones", torch.ones_like(scale, dtype=torch.bfloat16))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = torch.ops.aten._weight_int8pack_mm(flat, self.weight, self.ones).to(x.dtype) * self.scales
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.out_features)


def quantize(model: GPT, mode: str) -> GPT:
    """Convert `model` in place for inference (`mode` in QUANT_MODES; "none" leaves it as it is).

    int8 replaces every nn.Linear (q/k/v, attention out, MLP, output head — also when the head shares the
    embedding matrix, which then stays float32 for the lookup) whose input width is a multiple of 16: the
    kernel returns NaN or crashes on other widths (torch 2.13, found by trying), so those stay float32."""
    if mode not in QUANT_MODES:
        raise UserError(f"quant: {mode!r} is not one of {QUANT_MODES} — e.g. --quant int8")
    if mode == "none":
        return model
    model.eval().requires_grad_(False)
    if mode == "bf16":
        return model.to(torch.bfloat16)
    if model.tok_emb.weight.device.type != "cpu":
        raise UserError("quant: int8 weight-only uses a CPU kernel — use --quant bf16 on a GPU")
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear and child.in_features % INT8_K_MULTIPLE == 0:
                setattr(module, name, Int8Linear(child))
    return model


def weight_bytes(model: GPT) -> int:
    """Bytes of the matrices a decode step reads (linear layers and head; not the embedding table)."""
    seen: set[int] = set()
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Linear | Int8Linear):
            for t in (m.weight, getattr(m, "scales", None), m.bias):
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    total += t.numel() * t.element_size()
    return total
