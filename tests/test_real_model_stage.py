"""The real_model stage's plumbing without SmolLM2: every measurement on a tiny random model, its report claim
(valid against the report schema), and the "not run — install …" path when the packages are missing."""

from __future__ import annotations

import string

import pytest
import torch

from emergelab.data.tokenizer import char_tokenizer
from emergelab.model import GPT, ModelConfig
from emergelab.science.real_model import stage
from emergelab.science.real_model.claims import attention_claim

SMALL = {"syllogism_n": 4, "icl_n": 3, "cannot_tell_n": 4, "questions_n": 2, "threads": 1}


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    torch.manual_seed(0)
    tok = char_tokenizer(string.printable.replace("\x0b", "").replace("\x0c", "") + "’")
    model = GPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=32, n_head=4, block_size=512)).eval()
    out = tmp_path_factory.mktemp("real")
    return out, {"model": "tiny random", **stage.measure_all(model, tok, out, SMALL)}


def test_every_measurement_runs_and_reports_its_sizes(tiny_result):
    _, r = tiny_result
    assert r["syllogisms"]["nonce"]["accuracy"]["n"] == 4
    assert set(r["icl"]["lexicon"]["accuracy"]) == {"0", "1", "2", "4", "8"}
    assert r["hallucination"]["questions"]["hallucinated"]["n"] == 2
    assert r["hallucination"]["cannot_tell"]["abstained"]["n"] == 4
    assert len(r["disambiguation"]["items"]) >= 21 and r["lens"]["n_layers"] == 2


def test_attention_claim_fields_pass_the_report_schema(tiny_result):
    from emergelab.demo.report_data import claim_attention
    from emergelab.report.schema import validate_report

    out, r = tiny_result
    c = attention_claim(r)
    assert c["verdict"] in ("reproduced", "not reproduced", "inconclusive")
    claim = claim_attention(out, {"real_model": {"status": "ok", **r}})
    assert claim["summary"] == c["summary"] and len(claim["plots"]) == 2
    assert [d["label"] for d in claim["details"]][-4:] == [d["label"] for d in c["details"]]
    report = {"title": "t", "profile": "quick", "created": "", "machine": {}, "wall_seconds": 1.0,
              "claims": [claim], "model_cards": [], "s_curves": {}}
    assert validate_report(report, out) == []


def test_missing_packages_give_a_not_run_note_that_names_the_install(monkeypatch, tmp_path):
    from emergelab.demo.report_data import claim_attention

    monkeypatch.setattr(stage, "missing_packages", lambda: ["gguf"])
    r = stage.run_real_model(tmp_path)
    assert r["skipped"].startswith("not run — install") and "gguf" in r["skipped"]
    attention = {"status": "ok", "best_score": 0.5, "uniform_baseline": 0.1, "best_head": "L0H0", "plots": []}
    claim = claim_attention(tmp_path, {"real_model": {"status": "ok", **r}, "attention": attention})
    assert claim["summary"].startswith("Real model: not run — install")
