"""XOR and FGSM, the two small classics from essay 003, checked against brute force and hand computation."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from emergelab.science import classics
from emergelab.science.common import torch_threads

REPO = Path(__file__).resolve().parents[1]
XOR_TRUTH = np.array([a ^ b for a, b in [(0, 0), (0, 1), (1, 0), (1, 1)]])


def test_no_single_threshold_unit_computes_xor_by_brute_force():
    grid = np.linspace(-2, 2, 41)
    best = max(float(((classics.XOR_X @ np.array([w1, w2]) + b > 0) == XOR_TRUTH).mean())
               for w1, w2, b in itertools.product(grid, grid, grid))
    assert best == 0.75
    _, _, perceptron_acc = classics.train_perceptron(classics.XOR_X, classics.XOR_Y)
    assert perceptron_acc < 1.0


def test_the_essays_hand_set_network_computes_xor_through_its_hidden_features():
    out, hidden = classics.essay_xor_network(classics.XOR_X)
    assert out.tolist() == XOR_TRUTH.tolist()
    # the essay's table: (0,0)→(0,0), (0,1)→(0,1), (1,0)→(1,0), (1,1)→(0,0)
    assert hidden.tolist() == [[0, 0], [0, 1], [1, 0], [0, 0]]


def test_a_trained_two_layer_network_learns_xor():
    with torch_threads(1):
        net = classics.train_xor_mlp(seed=0)
    pred = (net(torch.tensor(classics.XOR_X, dtype=torch.float32)).squeeze(1) > 0).int().tolist()
    assert pred == XOR_TRUTH.tolist()


def test_fgsm_is_eps_times_the_sign_of_the_hand_computed_input_gradient():
    model = torch.nn.Linear(3, 2)
    w = np.array([[0.5, -1.0, 2.0], [-0.3, 0.8, 0.1]])
    b = np.array([0.1, -0.2])
    with torch.no_grad():
        model.weight.copy_(torch.tensor(w))
        model.bias.copy_(torch.tensor(b))
    x = np.array([[0.2, 0.4, -0.1], [1.0, -0.5, 0.3]])
    y = np.array([0, 1])
    logits = x @ w.T + b
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    grad = (p - np.eye(2)[y]) @ w / len(x)  # d mean-CE / dx for a linear model
    delta = classics.fgsm(model, torch.tensor(x, dtype=torch.float32), torch.tensor(y), eps=0.1)
    np.testing.assert_allclose(delta.numpy(), 0.1 * np.sign(grad), atol=1e-7)


def test_moons_lie_exactly_on_the_embedding_plane():
    x, y, basis = classics.moons_on_a_plane(200, 30, seed=0)
    np.testing.assert_allclose(x - x @ basis @ basis.T, 0, atol=1e-12)
    assert set(np.unique(y)) == {0, 1}


def test_fgsm_hurts_far_more_than_random_noise_of_the_same_size(tmp_path):
    with torch_threads(1):
        out = classics.fgsm_experiment(tmp_path, profile="tiny")
    assert out["clean_accuracy"] > 0.95
    assert out["accuracy_drop"] > 0.2 and out["random_noise_accuracy_drop"] < 0.05
    assert out["attack"]["eps_linf"] > 0 and (tmp_path / "fgsm_accuracy_vs_eps.svg").exists()


def test_xor_example_script_runs_and_exits_zero(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "xor.py"), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "input [1, 1] -> hidden [0, 0] -> output 0" in proc.stdout
    assert (tmp_path / "verdicts.json").exists() and (tmp_path / "xor_decision_regions.png").exists()


@pytest.mark.slow
def test_adversarial_example_script_runs(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "adversarial.py"), str(tmp_path), "--tiny"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "FGSM with eps=" in proc.stdout and (tmp_path / "verdicts.json").exists()
