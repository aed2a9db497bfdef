"""Properties every task must have: reference solutions verify, baselines sit at chance, splits are
disjoint, generation is deterministic, and malformed model text scores 0 without crashing."""

import random
import re

import pytest

from emergelab.errors import UserError
from emergelab.tasks import get_task
from emergelab.tasks.scoring import char_accuracy, edit_distance, extract_answer

SPECS = [
    "add:digits=3", "add:digits=6,format=reversed,pad=true", "sub:digits=4", "mul:digits=3,digits_b=2",
    "add:digits=4,format=reversed,pad=true,hints=true", "sub:digits=5,hints=true",
    "expr:terms=4", "countdown", "countdown:numbers=4", "syllogism", "syllogism:hops=3-5,vocab=mixed",
    "syllogism:hops=5,vocab=real,content=conflict", "lexicon", "labels:classes=3", "copy", "modular:test_fraction=0.3",
    "modular:op=/,test_fraction=0.3", "analogy",
]


@pytest.mark.parametrize("spec", SPECS)
def test_reference_solution_scores_one_in_every_format(spec):
    task = get_task(spec)
    items = task.generate(1000 if "hops=5" not in spec else 300, "test", seed=3)
    for ex in items:
        for cot in (False, True):
            v = task.verify(ex, task.render_target(ex, cot=cot))
            assert v.score == 1.0, (spec, ex.prompt, v)
        if task.supports_self_correction:
            sc = task.render_target(ex, cot=True, self_correct=True)
            assert "wait, check:" in sc and task.verify(ex, sc).score == 1.0


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text.lower())


@pytest.mark.parametrize("spec", SPECS)
def test_no_test_item_appears_in_train(spec):
    task = get_task(spec)
    for seed in (0, 1):
        train = task.generate(2000 if "modular" not in spec else 5000, "train", seed=seed)
        test = task.generate(300, "test", seed=seed)
        assert not {task.key(e) for e in train} & {task.key(e) for e in test}
        assert not {_norm(e.prompt) for e in train} & {_norm(e.prompt) for e in test}


@pytest.mark.parametrize("spec", SPECS)
def test_same_seed_same_items_other_seed_other_items(spec):
    task = get_task(spec)
    a, b, c = (task.generate(50, "train", seed=s) for s in (7, 7, 8))
    assert [(e.prompt, e.answer, e.cot) for e in a] == [(e.prompt, e.answer, e.cot) for e in b]
    assert [e.prompt for e in a] != [e.prompt for e in c]


@pytest.mark.parametrize("spec", SPECS)
def test_malformed_output_scores_zero_with_a_reason_and_never_raises(spec):
    task = get_task(spec)
    ex = task.generate(1, "test", seed=0)[0]
    rng = random.Random(0)
    pieces = ["<think>", "</think>", "<answer>", "</answer>", "<eos>", "\n", "1", "(", "yes", "-", "*",
              "x" * 50, "9" * 40, "((((", "__import__('os')"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        v = task.verify(ex, text)
        assert v.score in (0.0, 1.0) and v.reason
        task.continuous_metrics(ex, text)
    for bad in ["", "<think>never closed", "<answer>unclosed", "<answer></answer>", "<think></think>"]:
        v = task.verify(ex, bad)
        assert v.score == 0.0 and v.format == "malformed" and v.reason


CANDIDATES = {  # the answers a guesser who knows the answer format picks from, per item
    "syllogism": lambda ex: ["yes", "no", "cannot tell", "contradiction"],
    "labels": lambda ex: ex.meta["labels"],
    "lexicon": lambda ex: [t for _, t in ex.meta["mapping"]],
}


@pytest.mark.parametrize("spec,constant", [("syllogism", "yes"), ("syllogism", "cannot tell"),
                                           ("labels", "ti"), ("lexicon", "red")])
def test_constant_and_random_baselines_score_at_chance(spec, constant):
    task = get_task(spec)
    items = task.generate(2000, "test", seed=0)
    rng = random.Random(1)
    random_acc = sum(task.verify(e, rng.choice(CANDIDATES[spec](e))).score for e in items) / len(items)
    tol = 4.5 * (task.chance * (1 - task.chance) / len(items)) ** 0.5  # ~4.5 binomial standard errors
    assert abs(random_acc - task.chance) < tol
    const_acc = sum(task.verify(e, constant).score for e in items) / len(items)
    assert const_acc < task.chance + tol


def test_arithmetic_random_guesses_are_at_chance_zero():
    task = get_task("add:digits=4")
    rng = random.Random(0)
    items = task.generate(1000, "test", seed=0)
    assert sum(task.verify(e, str(rng.randrange(20000))).score for e in items) <= 2


def test_extract_answer_accepts_every_documented_format():
    assert extract_answer("<think>a</think><answer> 42 </answer>\nmore") == ("42", "cot", "ok")
    assert extract_answer("<answer>42</answer><eos>") == ("42", "direct", "ok")
    assert extract_answer("<think>a</think> 42") == ("42", "cot", "ok")
    assert extract_answer("42</answer>") == ("42", "direct", "ok")
    assert extract_answer("42") == ("42", "plain", "ok")
    assert extract_answer("<answer>4<think>2</answer>")[0] is None


def test_string_metrics_by_hand():
    assert edit_distance("kitten", "sitting") == 3
    assert char_accuracy("125", "135") == pytest.approx(2 / 3)
    assert char_accuracy("25", "125", align="right") == pytest.approx(2 / 3)
    assert char_accuracy("25", "125", align="left") == 0.0


def test_unknown_option_and_bad_values_are_user_errors():
    for spec in ["add:digitz=3", "add:format=sideways", "syllogism:hops=9", "nosuchtask", "modular:p=96"]:
        with pytest.raises(UserError):
            get_task(spec)
