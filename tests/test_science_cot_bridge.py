"""CoT bridge: answer log-probs with and without the verified reasoning, checked by a plain forward pass."""

from __future__ import annotations

import pytest
import torch

from emergelab.errors import UserError
from emergelab.science import cot_bridge, sweep


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bridge")
    corpus = tmp / "corpus.yaml"
    corpus.write_text("seed: 0\ndocuments: 600\nval_fraction: 0.05\ntasks:\n  - task: add:digits=2\n"
                      "    weight: 1\n    cot: 0.5\n")
    recipe = {"corpus_recipe": str(corpus), "sizes": ["10k"], "steps": [5], "threads": 1,
              "pretrain": {"train.batch_size": 8, "train.seq_len": 64, "model.block_size": 128,
                           "train.eval_every": 5, "train.eval_batches": 1, "train.warmup_steps": 1}}
    sweep.run_sweep(recipe, tmp / "sweep")
    return tmp / "sweep" / "runs" / "10k_5st_s0"


def test_bridge_matches_log_probs_from_one_plain_forward_pass(tiny_run):
    from emergelab.data.chat import encode_prompt
    from emergelab.runs import load_model
    from emergelab.tasks.registry import get_task

    row = cot_bridge.bridge_for_run(tiny_run, "add:digits=2", n=1, seed=3)
    model, tok, _ = load_model(tiny_run, device="cpu")
    task = get_task("add:digits=2")
    (ex,) = task.generate(1, "test", seed=3)

    def logp(prefix_text: str) -> float:
        prefix = encode_prompt(tok, prefix_text)
        answer = tok.encode(ex.answer + "</answer>")
        ids = torch.tensor([prefix + answer])
        with torch.no_grad():
            lp = model(ids[:, :-1]).logits.log_softmax(-1)[0]
        return sum(lp[len(prefix) - 1 + i, t].item() for i, t in enumerate(answer))

    direct = logp(task.render_prompt(ex) + "<answer>")
    with_cot = logp(task.render_prompt(ex, cot=True) + "<think>" + ex.cot + "</think><answer>")
    assert row["n"] == 1
    assert row["logp_direct"] == pytest.approx(direct, abs=1e-4)
    assert row["logp_cot"] == pytest.approx(with_cot, abs=1e-4)
    assert row["bridge_nats"] == pytest.approx(with_cot - direct, abs=1e-4)


def test_experiment_reads_a_sweep_and_writes_a_plot(tiny_run, tmp_path):
    out = cot_bridge.cot_bridge_experiment(tmp_path, "tiny", {"sweep": str(tiny_run.parent.parent),
                                                             "task": "add:digits=2", "n": 4})
    assert len(out["rows"]) == 1 and out["rows"][0]["n"] == 4 and (tmp_path / "cot_bridge.svg").exists()


def test_without_runs_it_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="needs trained runs"):
        cot_bridge.cot_bridge_experiment(tmp_path, "tiny", {})
