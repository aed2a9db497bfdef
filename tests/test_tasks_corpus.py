"""The corpus builder: byte-identical output for a seed, a manifest that matches the files, the
requested format shares, and no test item in the corpus."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from emergelab.errors import UserError
from emergelab.tasks import Example, get_task
from emergelab.tasks.corpus import build_corpus

RECIPE = {
    "seed": 3,
    "documents": 1500,
    "val_fraction": 0.1,
    "tasks": [
        {"task": "add:digits=4", "weight": 2, "cot": 0.3, "self_correct": 0.1},
        {"task": "syllogism:hops=1-3", "weight": 1, "cot": 0.5},
        {"task": "lexicon", "weight": 1, "lines": [2, 5]},
        {"task": "countdown", "documents": 200, "cot": 0.5, "self_correct": 0.2},
    ],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    return build_corpus(RECIPE, a), a, build_corpus(RECIPE, b), b


def test_same_recipe_and_seed_give_byte_identical_files(built, tmp_path):
    _, a, _, b = built
    for name in ("train.txt", "val.txt", "manifest.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    other = build_corpus({**RECIPE, "seed": 4}, tmp_path)
    assert other["sha256"]["train.txt"] != json.loads((a / "manifest.json").read_text())["sha256"]["train.txt"]


def test_manifest_counts_and_hashes_match_the_files(built):
    m, a, _, _ = built
    train, val = (a / "train.txt").read_text(), (a / "val.txt").read_text()
    assert m["sha256"]["train.txt"] == hashlib.sha256(train.encode()).hexdigest()
    assert train.count("<eos>") == m["documents"]["train"] and val.count("<eos>") == m["documents"]["val"]
    assert m["documents"]["train"] + m["documents"]["val"] == sum(r["documents"] for r in m["tasks"])
    rows = {r["task"]: r for r in m["tasks"]}
    add = rows[get_task("add:digits=4").spec]
    assert add["documents"] == 750 and sum(add["formats"].values()) == 750  # weight 2 of 2+1+1, of 1500
    assert train.count("wait, check:") + val.count("wait, check:") == add["formats"]["self_correct"] + rows[
        get_task("countdown").spec]["formats"]["self_correct"]
    plain = train + val
    for special in ("<eos>", "<think>", "</think>", "<answer>", "</answer>"):
        plain = plain.replace(special, "")
    assert m["alphabet"] == "".join(sorted(set(plain)))

def test_format_shares_follow_the_recipe(built):
    m, _, _, _ = built
    add = next(r for r in m["tasks"] if r["task"].startswith("add"))
    n = add["documents"]
    for fmt, want in (("cot", 0.3), ("self_correct", 0.1)):
        se = (want * (1 - want) / n) ** 0.5
        assert abs(add["format_shares"][fmt] - want) < 4 * se


def test_every_example_line_verifies_and_no_test_item_occurs(built):
    _, a, _, _ = built
    text = (a / "train.txt").read_text() + (a / "val.txt").read_text()
    lines = [line for doc in text.split("<eos>") for line in doc.split("\n") if line]
    add = get_task("add:digits=4")
    add_lines = [line for line in lines if "+" in line and " from " not in line]
    for line in add_lines:
        q, _, completion = line.partition("=")
        a_, b_ = map(int, q.split("+"))
        assert add.verify(Example(q + "=", "", None, {"a": a_, "b": b_, "op": "+"}), completion).score == 1.0
    prompts = {line.split("<")[0] for line in lines}
    for spec in ("add:digits=4", "syllogism:hops=1-3", "countdown"):
        test = get_task(spec).generate(300, "test", seed=0)
        assert not prompts & {e.prompt for e in test}, spec


def test_bad_recipes_are_user_errors(tmp_path):
    bad = [
        {"tasks": []},
        {"documents": 10, "tasks": [{"task": "add", "cot": 0.8, "self_correct": 0.5}]},
        {"documents": 10, "tasks": [{"task": "copy", "cot": 0.5}]},
        {"documents": 10, "tasks": [{"task": "add", "colour": 1}]},
        {"documents": 10, "typo": 1, "tasks": [{"task": "add"}]},
        {"tasks": [{"task": "add", "weight": 1}]},
    ]
    for recipe in bad:
        with pytest.raises(UserError):
            build_corpus(recipe, tmp_path / "x")
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"documents": 20, "tasks": [{"task": "add"}]}))
    assert build_corpus(path, tmp_path / "ok")["documents"]["train"] == 19


def test_shipped_recipes_build(tmp_path):
    from pathlib import Path

    for path in sorted(Path(__file__).resolve().parents[1].glob("configs/corpus_*.yaml")):
        recipe = yaml.safe_load(path.read_text())
        recipe["documents"] = 200  # same mix, smaller
        m = build_corpus(recipe, tmp_path / path.stem)
        assert m["documents"]["train"] > 0, path


def test_natural_text_paragraphs_become_documents(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("the first paragraph.\nstill the first.\n\nthe second one.\n\n\nthe third.\n")
    recipe = {"seed": 0, "val_fraction": 0.0, "documents": 10, "tasks": [{"task": "copy"}],
              "text": [{"path": str(notes)}]}
    m = build_corpus(recipe, tmp_path / "c")
    train = (tmp_path / "c" / "train.txt").read_text()
    assert m["documents"] == {"train": 13, "val": 0, "text": 3}
    for para in ("the first paragraph.\nstill the first.\n<eos>", "the second one.\n<eos>", "the third.\n<eos>"):
        assert para in train


def test_answer_mask_marks_tags_through_end_of_line_and_eos():
    from emergelab.data.tokenizer import char_tokenizer
    from emergelab.tasks.corpus import answer_mask

    tok = char_tokenizer("0123456789+=r\nab>-")
    text = "12+3=<answer>15</answer>\n<eos>r1+1=<think>1+1</think><answer>2</answer>\nab->a<answer>b</answer>\n<eos>"
    ids = tok.encode(text)
    mask = answer_mask(ids, tok)
    # oracle: walk the decoded pieces; a piece is an answer from an opening tag to its line's newline
    pieces = [tok.decode([i]) for i in ids]
    want, inside = [], False
    for p in pieces:
        inside = inside or p in ("<think>", "<answer>")
        want.append(inside or p == "<eos>")
        if p == "\n":
            inside = False
    assert mask.tolist() == want
    marked = "".join(p for p, m in zip(pieces, mask) if m)
    assert marked == "<answer>15</answer>\n<eos><think>1+1</think><answer>2</answer>\n<answer>b</answer>\n<eos>"
