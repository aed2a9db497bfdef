"""Test-time scaling helpers: majority vote and pass@k against brute force."""

from __future__ import annotations

import itertools
import random

import pytest

from emergelab.eval.metrics import pass_at_k
from emergelab.eval.tts import majority_vote
from emergelab.rl.metrics import self_check_rate


def test_majority_vote_ignores_unparsed_answers_and_breaks_ties_by_first_seen():
    assert majority_vote(["12", None, "13", "12", None, None]) == "12"
    assert majority_vote(["7", "8", "8", "7"]) == "7"
    assert majority_vote([None, None]) is None


@pytest.mark.parametrize("n,c", [(5, 0), (5, 2), (6, 3), (4, 4)])
def test_pass_at_k_equals_brute_force_over_all_k_subsets(n, c):
    samples = [1] * c + [0] * (n - c)
    for k in range(1, n + 1):
        subsets = list(itertools.combinations(samples, k))
        assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


def test_vote_beats_single_samples_when_the_right_answer_is_the_plurality():
    # 40% right, errors spread over 6 wrong answers: vote@15 should be right far more often than 40%
    rng = random.Random(0)
    wins = 0
    for _ in range(300):
        draws = ["ok" if rng.random() < 0.4 else f"bad{rng.randrange(6)}" for _ in range(15)]
        wins += majority_vote(draws) == "ok"
    assert wins / 300 > 0.8


def test_self_check_rate_counts_completions_with_a_check_phrase():
    assert self_check_rate(["1+2=4 wait, check: 1+2=3", "<answer>3</answer>", "Hmm, re-evaluate", "checked"]) == 0.5
