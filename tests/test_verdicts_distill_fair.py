"""The fair distillation-vs-RL comparison trains both arms on the same lr grid, picks each by validation
accuracy, matches tokens, and scores both on the same test items (plumbing on a tiny student; the teacher's
traces are the task's own reference answers, so the test needs no trained teacher)."""

import json

import pytest
import torch

import emergelab.rl.distill as distill
from emergelab.data.chat import ANSWER_CLOSE, ANSWER_OPEN

TASK = "syllogism:hops=1"


def _reference_traces(model, tok, task, n, samples, template, max_new, seed):
    examples = task.generate(n, "train", seed=seed)
    pairs = [(task.render_prompt(e), ANSWER_OPEN + e.answer + ANSWER_CLOSE) for e in examples]
    return pairs, {"sampled": n, "verified": n, "kept": n}


@pytest.mark.slow
def test_both_arms_are_tuned_on_the_same_grid_and_scored_on_the_same_items(tmp_path, monkeypatch):
    from emergelab.rl.distill_fair import fair_distill
    from emergelab.tasks.corpus import build_corpus
    from emergelab.train.pretrain import pretrain

    torch.set_num_threads(1)
    build_corpus({"seed": 0, "documents": 300, "val_fraction": 0.1, "tasks": [{"task": TASK, "weight": 1}]},
                 tmp_path / "corpus")
    pretrain(None, tmp_path / "student", ["size=10k", f"data.corpus={tmp_path / 'corpus'}", "train.max_steps=5",
                                          "train.batch_size=4", "train.seq_len=64", "train.progress=false"])
    monkeypatch.setattr(distill, "teacher_traces", _reference_traces)
    r = fair_distill(tmp_path / "student", tmp_path / "student", tmp_path / "out", TASK, n=16, lr_grid=(1e-3, 3e-3),
                     val_n=8, test_n=8, sft_overrides=["sft.epochs=1"])
    f = r["fairness"]
    assert f["matched"] and set(f["val_accuracy_sft"]) == {"0.001", "0.003"} and len(f["val_accuracy_rl"]) == 2
    assert f["chosen_lr"]["sft"] in f["lr_grid_sft"] and f["chosen_lr"]["rl"] in f["lr_grid_rl"]
    assert all(len(v) == 8 for v in r["heldout_items"].values())
    assert json.loads((tmp_path / "out" / "distill.json").read_text())["fairness"]["matched"] is True
