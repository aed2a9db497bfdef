"""Verifiers and labels agree with independent brute-force oracles."""

import itertools
import random
import re
from fractions import Fraction

import pytest

from emergelab.tasks import get_task
from emergelab.tasks.exprparse import ExprError, parse_expression

# ---- arithmetic: Python integers ----------------------------------------------------------------


@pytest.mark.parametrize("op,fmt,pad", [("add", "plain", False), ("add", "reversed", True),
                                        ("sub", "plain", False), ("mul", "reversed", False)])
def test_arithmetic_verifier_agrees_with_python_ints(op, fmt, pad):
    task = get_task(f"{op}:digits=4,format={fmt},pad={pad}")
    for ex in task.generate(300, "test", seed=0):
        a, b = map(int, re.split(r"[-+*]", ex.prompt.lstrip("r")[:-1]))  # read back from the prompt text
        value = {"add": a + b, "sub": a - b, "mul": a * b}[op]
        text = str(value).zfill({"add": 5, "sub": 4, "mul": 8}[op]) if pad else str(value)
        text = text[::-1] if fmt == "reversed" else text
        assert task.verify(ex, f"<answer>{text}</answer>").score == 1.0
        wrong = str(value + 1).zfill(len(text)) if pad else str(value + 1)
        wrong = wrong[::-1] if fmt == "reversed" else wrong
        assert task.verify(ex, f"<answer>{wrong}</answer>").score == 0.0


@pytest.mark.parametrize("fmt", ["plain", "reversed"])
def test_index_hints_label_every_digit_with_its_place(fmt):
    task = get_task(f"add:digits=5,format={fmt},hints=true")
    for ex in task.generate(200, "test", seed=0):
        a, b = map(int, re.sub("[a-z]", "", ex.prompt)[:-1].split("+"))
        digits = re.sub("[a-z]", "", ex.answer)
        assert int(digits[::-1] if fmt == "reversed" else digits) == a + b
        letters = re.sub("[0-9]", "", ex.answer)  # one distinct letter per place, the same set as operands'
        assert len(letters) == len(digits) == len(set(letters))
        places = dict(zip(letters, digits))  # letter -> digit; the units letter holds (a + b) % 10
        units = ex.prompt[ex.prompt.index("+") - 2]  # the letter before operand a's last digit
        assert int(places[units]) == (a + b) % 10
        assert task.verify(ex, f"<answer>{ex.answer}</answer>").score == 1.0
        assert task.verify(ex, f"<answer>{digits}</answer>").score == 0.0  # hints are part of the format
        assert task.continuous_metrics(ex, f"<answer>{digits}</answer>")["char_accuracy"] == 1.0


def test_addition_scratchpad_columns_spell_the_answer():
    task = get_task("add:digits=6")
    for ex in task.generate(200, "test", seed=1):
        cols = ex.cot.split(";")
        digits = [int(c.split("=")[1].split()[0]) for c in cols]
        carry = int(cols[-1].split("c")[-1])
        assert int(str(carry) + "".join(map(str, reversed(digits)))) == int(ex.answer)


def test_expression_values_match_python_precedence():
    task = get_task("expr:terms=4,max_num=20")
    for ex in task.generate(300, "test", seed=0):
        assert int(ex.answer) == eval(ex.meta["expression"])  # test oracle on our own generated text


# ---- countdown: exhaustive search ---------------------------------------------------------------


def _reachable(nums: list[Fraction]) -> set[Fraction]:
    """All values of expressions using every number exactly once (any order, any bracketing)."""
    if len(nums) == 1:
        return {nums[0]}
    out = set()
    for i, j in itertools.permutations(range(len(nums)), 2):
        rest = [n for k, n in enumerate(nums) if k not in (i, j)]
        a, b = nums[i], nums[j]
        for v in {a + b, a - b, a * b} | ({a / b} if b else set()):
            out |= _reachable(rest + [v])
    return out


def test_countdown_targets_are_solvable_by_exhaustive_search():
    task = get_task("countdown:numbers=4")
    for ex in task.generate(60, "test", seed=0):
        assert ex.meta["target"] in _reachable([Fraction(n) for n in ex.meta["numbers"]])


def test_countdown_verifier_checks_numbers_and_value():
    task = get_task("countdown")
    ex = task.generate(1, "test", seed=0)[0]
    nums, target = ex.meta["numbers"], ex.meta["target"]
    assert task.verify(ex, f"<answer>{ex.answer}</answer>").score == 1.0
    extra = f"({ex.answer})*1+0"  # uses numbers that were not given
    assert task.verify(ex, f"<answer>{extra}</answer>").score == 0.0
    assert task.verify(ex, f"<answer>{'+'.join(map(str, nums))}</answer>").score == float(sum(nums) == target)
    assert task.verify(ex, "<answer>__import__('os').system('ls')</answer>").score == 0.0


def test_expression_parser_is_exact_and_rejects_code():
    assert parse_expression("(25-3)*7/2") == (Fraction(77), [25, 3, 7, 2])
    assert parse_expression("1/3+1/3+1/3")[0] == 1
    for bad in ["2**10", "1/0", "abs(3)", "3 4", "", "(1+2", "1e3", "9" * 20]:
        with pytest.raises(ExprError):
            parse_expression(bad)


# ---- syllogisms: enumerate set models ----------------------------------------------------------


def _holds(stmt, cells, index):
    q, s, p = stmt
    si, pi = 1 << index[s], 1 << index[p]
    if q == "all":
        return not any(c & si and not c & pi for c in cells)
    if q == "no":
        return not any(c & si and c & pi for c in cells)
    if q == "some":
        return any(c & si and c & pi for c in cells)
    return any(c & si and not c & pi for c in cells)


def _label_by_models(premises, question, max_models=1 << 15):
    """Brute force: a model is the set of non-empty Venn cells; every term non-empty (existential
    import). Enumerates every subset of the cells that the universal premises leave possible."""
    terms = sorted({t for _, s, p in premises + [question] for t in (s, p)})
    index = {t: i for i, t in enumerate(terms)}
    all_cells = range(1, 1 << len(terms))
    possible = [c for c in all_cells if all(_holds(st, [c], index) for st in premises if st[0] in ("all", "no"))]
    assert 1 << len(possible) <= max_models, "item too large for brute force"
    values = set()
    for r in range(len(possible) + 1):
        for cells in itertools.combinations(possible, r):
            if not all(any(c >> i & 1 for c in cells) for i in range(len(terms))):
                continue
            if all(_holds(st, cells, index) for st in premises):
                values.add(_holds(question, cells, index))
    if not values:
        return "contradiction"
    return "cannot tell" if len(values) == 2 else ("yes" if values == {True} else "no")


def _label_by_maximal_model(premises, question):
    """Monadic logic: premises plus (not) question are satisfiable iff the model making every
    universally-permitted cell non-empty satisfies them. Checked against brute force below."""
    terms = sorted({t for _, s, p in premises + [question] for t in (s, p)})
    index = {t: i for i, t in enumerate(terms)}
    neg = {"all": "some_not", "no": "some", "some": "no", "some_not": "all"}

    def sat(stmts):
        cells = [c for c in range(1, 1 << len(terms))
                 if all(_holds(st, [c], index) for st in stmts if st[0] in ("all", "no"))]
        return all(any(c >> i & 1 for c in cells) for i in range(len(terms))) and all(
            _holds(st, cells, index) for st in stmts)

    if not sat(premises):
        return "contradiction"
    can_true, can_false = sat(premises + [question]), sat(premises + [(neg[question[0]], *question[1:])])
    return "cannot tell" if can_true and can_false else ("yes" if can_true else "no")


def test_syllogism_labels_match_brute_force_set_models():
    task = get_task("syllogism:hops=1-2,distractors=1")
    items = task.generate(400, "test", seed=0)
    for ex in items:
        prem = [tuple(p) for p in ex.meta["premises"]]
        q = tuple(ex.meta["question"])
        assert _label_by_models(prem, q) == ex.answer == _label_by_maximal_model(prem, q), ex.prompt
    assert {e.answer for e in items} == {"yes", "no", "cannot tell", "contradiction"}
    assert {e.meta["form"] for e in items} >= {"undistributed_middle", "illicit_major", "illicit_minor"}


def test_multi_hop_syllogism_labels_match_set_model_oracle():
    task = get_task("syllogism:hops=3-5,distractors=2")
    for ex in task.generate(400, "test", seed=0):
        prem = [tuple(p) for p in ex.meta["premises"]]
        assert _label_by_maximal_model(prem, tuple(ex.meta["question"])) == ex.answer, ex.prompt


def test_syllogism_content_sets_conflict_both_directions_and_mix_vocabularies():
    from emergelab.tasks.syllogism import world_truth

    items = get_task("syllogism:hops=1-5,content=conflict").generate(400, "test", seed=0)
    directions = set()
    for ex in items:
        world = world_truth(*ex.meta["question"])
        assert world != (ex.answer == "yes") and ex.meta["content"] == "conflict"
        directions.add(ex.answer)
    assert directions == {"yes", "no"}
    agree = get_task("syllogism:vocab=real,content=agree").generate(200, "test", seed=0)
    assert all(world_truth(*e.meta["question"]) == (e.answer == "yes") for e in agree)
    mixed = get_task("syllogism:vocab=mixed,hops=3").generate(50, "test", seed=0)
    from emergelab.tasks.syllogism import NONCE_WORDS, REAL_WORDS

    for ex in mixed:
        words = {w for p in ex.meta["premises"] for w in p[1:]}
        assert words & set(NONCE_WORDS) and words & set(REAL_WORDS)


def test_no_single_premise_keyword_rule_beats_chance_by_much():
    """EXPERIMENTS.md pitfall: "answer no if a premise starts with no" solved 70% of the old items."""
    task = get_task("syllogism:hops=1-3")
    items = task.generate(2000, "test", seed=0)
    rule = sum(("no" if any(p[0] == "no" for p in e.meta["premises"]) else "yes") == e.answer for e in items)
    assert rule / len(items) < 0.4
    # nor does the question's quantifier: the best label per quantifier, fitted on the test items
    by_q: dict[str, dict[str, int]] = {}
    for e in items:
        by_q.setdefault(e.meta["question"][0], {}).setdefault(e.answer, 0)
        by_q[e.meta["question"][0]][e.answer] += 1
    assert sum(max(c.values()) for c in by_q.values()) / len(items) < 0.4


# ---- in-context tasks: the mapping is only in the prompt ----------------------------------------


def _read_shots_oracle(prompt: str, sep: str) -> str | None:
    lines = prompt.split("\n")
    query = lines[-1]
    for line in lines[:-1]:
        q, _, rest = line.partition(sep)
        if q + sep == query:
            return rest.replace("<answer>", "").replace("</answer>", "")
    return None


@pytest.mark.parametrize("spec,sep", [("lexicon:size=6", "->"), ("labels:classes=3", "=>")])
def test_icl_tasks_are_solvable_from_the_prompt_and_not_from_memory(spec, sep):
    task = get_task(spec)
    train, test = task.generate(2000, "train", seed=0), task.generate(500, "test", seed=0)
    def oracle(ex, prompt):
        if spec.startswith("lexicon"):
            return _read_shots_oracle(prompt, sep)
        for line in prompt.split("\n")[:-1]:  # the label of a demonstration from the same range
            x, _, lab = line.partition(sep)
            if int(x) * task.classes // 1000 == ex.meta["x"] * task.classes // 1000:
                return lab.replace("<answer>", "").replace("</answer>", "")

    k = 6
    acc = sum(task.verify(ex, oracle(ex, task.render_prompt(ex, task.shots_for(ex, k))) or "?").score
              for ex in test) / len(test)
    assert acc == 1.0
    # memory of the training episodes does not help: the most frequent training answer per question
    memory: dict[str, dict[str, int]] = {}
    for ex in train:
        memory.setdefault(ex.prompt, {}).setdefault(ex.answer, 0)
        memory[ex.prompt][ex.answer] += 1
    mem_acc = sum(task.verify(ex, max(memory.get(ex.prompt, {"?": 1}).items(), key=lambda kv: kv[1])[0]).score
                  for ex in test) / len(test)
    assert mem_acc < task.chance + 0.1


# ---- copy, modular, analogy --------------------------------------------------------------------


def test_copy_answer_is_the_rest_of_the_repeated_segment():
    task = get_task("copy:length=10,prefix=3,vocab=5")
    for ex in task.generate(200, "test", seed=0):
        seg = ex.meta["segment"]
        assert ex.prompt == seg + "|" + seg[:3]
        assert task.verify(ex, seg[3:]).score == 1.0 and task.verify(ex, seg[3:][::-1] + "a").score == 0.0


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_modular_verifier_matches_table_and_splits_partition_the_table(op):
    task = get_task(f"modular:p=13,op={op},test_fraction=0.5")
    train, test = task.all_items("train"), task.all_items("test")
    assert len(train) + len(test) == 13 * (12 if op == "/" else 13)
    assert not {e.prompt for e in train} & {e.prompt for e in test}
    for ex in train + test:
        a, b = ex.meta["a"], ex.meta["b"]
        truth = [x for x in range(13) if {"+": (a + b - x), "-": (a - b - x), "*": (a * b - x),
                                          "/": (a - b * x)}[op] % 13 == 0]
        assert len(truth) == 1 and task.verify(ex, str(truth[0])).score == 1.0
        assert task.verify(ex, str((truth[0] + 1) % 13)).score == 0.0


def test_analogy_answers_are_unique_under_every_relation_of_the_world():
    from emergelab.tasks.analogy import RELATIONS

    task = get_task("analogy:length=3")
    for ex in task.generate(300, "test", seed=0):
        a, b, c = ex.meta["a"], ex.meta["b"], ex.meta["c"]
        answers = {f(c) for f in RELATIONS.values() if f(a) == b}
        assert answers == {ex.answer}


def test_random_relation_baseline_is_near_chance_for_analogies():
    from emergelab.tasks.analogy import RELATIONS

    task = get_task("analogy")
    rng = random.Random(0)
    items = task.generate(2000, "test", seed=0)
    acc = sum(task.verify(e, rng.choice(list(RELATIONS.values()))(e.meta["c"])).score for e in items)
    assert abs(acc / len(items) - task.chance) < 0.03
