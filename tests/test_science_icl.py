"""ICL phase change: the induction data, the prefix-matching score, and (slow) the 1- vs 2-layer contrast."""

from __future__ import annotations

import math

import pytest
import torch

from emergelab.science import icl_phase
from emergelab.science.experiments import run_experiment


def test_second_copy_repeats_the_prefix_and_lengths_vary():
    cfg = icl_phase.ICLConfig()
    tokens, n = icl_phase.repeated_sequences(cfg, 50, torch.Generator().manual_seed(0))
    assert tokens.shape == (50, 64) and int(n.min()) >= 8 and int(n.max()) <= 32 and len(set(n.tolist())) > 5
    for row, k in zip(tokens, n.tolist()):
        assert torch.equal(row[:k], row[k : 2 * k])


def test_position_masks_by_hand():
    repeat, first = icl_phase.position_masks(torch.tensor([3]), 8)
    # sequence a b c a b c x y: targets j predict token j+1; predictable: tokens 4, 5 (b, c of the copy)
    assert repeat[0].nonzero().flatten().tolist() == [3, 4]
    assert first[0].nonzero().flatten().tolist() == [0, 1]


def test_prefix_matching_score_is_one_for_a_perfect_induction_head_and_known_for_uniform_attention():
    n = torch.tensor([4, 5])
    T = 12
    perfect = torch.zeros(2, 2, T, T)
    for b, k in enumerate(n.tolist()):
        for q in range(k, 2 * k - 1):
            perfect[b, 0, q, q - k + 1] = 1.0
    perfect[:, 1] = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]  # uniform causal attention
    scores = icl_phase.prefix_matching_scores([perfect], n)
    uniform = sum(1 / (q + 1) for k in (4, 5) for q in range(k, 2 * k - 1)) / sum(k - 1 for k in (4, 5))
    assert scores[0, 0].item() == pytest.approx(1.0)
    assert scores[0, 1].item() == pytest.approx(uniform)


def test_phase_change_step_is_where_the_loss_crosses_the_midpoint():
    hist = [{"step": s, "repeat_loss": v} for s, v in zip(range(0, 800, 100), [4.1, 4.1, 4.0, 3.9, 2.0, 1.2, 1.1, 1.1])]
    assert icl_phase.phase_change_step(hist) == 400
    flat = [{"step": s, "repeat_loss": 4.0} for s in range(0, 500, 100)]
    assert icl_phase.phase_change_step(flat) is None


def test_tiny_run_writes_curves_and_an_untrained_model_is_at_chance(tmp_path):
    out = run_experiment("icl", tmp_path, "tiny")
    first = out["history"]["2"][0]
    assert abs(first["repeat_loss"] - math.log(64)) < 0.2 and abs(first["icl_score"]) < 0.1
    assert set(out["depths"]) == {"1", "2"} and (tmp_path / "icl_phase_change.svg").exists()
    assert len(first["prefix_matching"]) == 2 and len(first["prefix_matching"][0]) == 4


@pytest.mark.slow
def test_two_attention_layers_learn_induction_and_one_does_not(tmp_path):
    out = run_experiment("icl", tmp_path, "quick")
    assert out["checks"] == {"deep_model_phase_change": True, "induction_head_forms_at_the_phase_change": True,
                             "one_layer_has_no_phase_change": True}
    assert out["depths"]["2"]["final_repeat_loss"] < out["depths"]["1"]["final_repeat_loss"] - 1.0
    assert out["depths"]["2"]["max_prefix_matching"] > 0.3 > out["depths"]["1"]["max_prefix_matching"]
