"""Reward functions and how their weighted sum treats abstentions."""

from __future__ import annotations

import random

import pytest

from emergelab.errors import UserError
from emergelab.rl.rewards import Sample, build_rewards, combine, format_reward, length_reward
from emergelab.tasks.base import Example, Task


class AddTask(Task):
    """a+b= with the default exact-match verifier."""

    name = "toy_add"
    answer_alphabet = "0123456789"

    def _sample(self, rng: random.Random) -> Example:
        a, b = rng.randrange(10), rng.randrange(10)
        return Example(f"{a}+{b}=", str(a + b), cot=f"{a}+{b}")


EX = Example("3+4=", "7", cot="3+4")


def _s(completion: str, n_tokens: int = 5) -> Sample:
    return Sample(EX, EX.prompt, completion, "stop", n_tokens)


def test_format_reward_requires_exact_think_answer_shape():
    got = format_reward([
        _s("<think>3+4</think><answer>7</answer>"),
        _s("<think>3+4</think><answer>7</answer>\nleftover after the stop"),
        _s("<answer>7</answer>"),
        _s("<think>3+4</think><answer>7</answer>x"),
        _s("<think></think><answer>7</answer>"),
        _s("<think>3+4<answer>7</answer>"),
    ])
    assert got == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_accuracy_reward_is_the_task_verifier():
    r = build_rewards({"accuracy": 1.0}, AddTask(), max_new_tokens=16)
    samples = [_s("<answer>7</answer>"), _s("<think>x</think><answer>8</answer>"), _s("<think>")]
    totals, _ = combine(r, samples)
    assert totals == [1.0, 0.0, 0.0]


def test_consistency_abstains_without_thinking_and_counts_foreign_characters():
    r = build_rewards({"consistency": 1.0}, AddTask(), max_new_tokens=16)
    _, comp = combine(r, [_s("<answer>7</answer>"), _s("<think>3+4=7</think><answer>7</answer>"),
                          _s("<think>3+4 xy</think><answer>7</answer>")])
    # "3+4 xy": 3 of 6 characters occur in the prompt, the digits or the reference solution
    assert comp["consistency"] == [None, 1.0, pytest.approx(3 / 6)]


def test_abstaining_reward_adds_nothing_and_weights_are_not_renormalised():
    r = build_rewards({"accuracy": 1.0, "format": 0.5, "consistency": 2.0}, AddTask(), max_new_tokens=16)
    totals, comp = combine(r, [_s("<answer>7</answer>"), _s("<think>3+4 xy</think><answer>7</answer>")])
    assert comp["consistency"][0] is None
    assert totals[0] == pytest.approx(1.0 * 1 + 0.5 * 0)  # no consistency term at all
    assert totals[1] == pytest.approx(1.0 * 1 + 0.5 * 1 + 2.0 * 3 / 6)


def test_length_shaping_is_dapo_soft_overlong_punishment():
    fn = length_reward(max_len=20, cache=5)
    got = fn([_s("", n) for n in (3, 15, 16, 18, 20, 25)])
    assert got == pytest.approx([0.0, 0.0, -0.2, -0.6, -1.0, -1.0])


def test_unknown_or_all_zero_rewards_are_user_errors():
    with pytest.raises(UserError, match="unknown reward 'acc'"):
        build_rewards({"acc": 1.0}, AddTask(), 16)
    with pytest.raises(UserError, match="every weight is 0"):
        build_rewards({"accuracy": 0.0}, AddTask(), 16)
    with pytest.raises(UserError, match="reward_model"):
        build_rewards({"rm": 1.0}, AddTask(), 16)
