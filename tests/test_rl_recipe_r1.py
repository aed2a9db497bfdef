"""The four-stage R1 recipe end to end on a tiny model: every stage leaves a loadable run and the
recipe's bookkeeping is consistent (rejection-sampling counts, reward-model accuracy, hallucination)."""

from __future__ import annotations

import json

import pytest
import torch

from emergelab.config import write_yaml
from emergelab.data.tokenizer import char_tokenizer
from emergelab.model import GPT, ModelConfig
from emergelab.rl.recipes import run_recipe
from emergelab.runs import load_model, save_checkpoint
from emergelab.tasks.registry import get_task


@pytest.mark.slow
def test_r1_recipe_runs_all_stages_into_loadable_runs(tmp_path):
    torch.set_num_threads(1)
    texts = [task.render_prompt(e) + task.render_target(e, cot=cot)
             for task in (get_task("syllogism"), get_task("add:digits=2"))
             for e in task.generate(200, "train", seed=0) for cot in (False, True)]
    tok = char_tokenizer(sorted(set("".join(texts))))
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=192)
    base = tmp_path / "base"
    base.mkdir()
    tok.save(base / "tokenizer.json")
    write_yaml({"model": cfg.__dict__}, base / "config.yaml")
    torch.manual_seed(0)
    save_checkpoint(base, 0, GPT(cfg))
    out = tmp_path / "r1"
    result = run_recipe("r1", base, out, [
        "rl.task=add:digits=2", "rl.steps=2", "rl.prompts_per_step=2", "rl.group_size=4", "rl.eval_n=8",
        "rl.eval_every=2", "rl.max_new_tokens=24", "sft.n=24", "sft.epochs=1", "rs.n=8", "rs.samples=2",
        "rm.n_prompts=8", "rm.n_test_prompts=4", "rm.steps=4", "rm.k=2", "final.steps=1", "halluc.halluc_n=4"])
    stages = ["base", "1_cold_sft", "2_reason_rl", "3_rs_sft", "4_final_rl"]
    assert list(result["stages"]) == stages
    assert json.loads((out / "recipe.json").read_text()) == json.loads(json.dumps(result))
    for name in stages[1:]:
        model, _, _ = load_model(out / name)  # every stage is an ordinary run directory
        assert model.cfg.n_embd == 32
    for name in stages:
        s = result["stages"][name]
        assert 0.0 <= s["val_accuracy"] <= 1.0 and 0.0 <= s["val_think_rate"] <= 1.0
        h = s["hallucination"]
        assert h["items"] > 0  # the alphabet covers syllogisms, so the rate is measured, not skipped
        assert h["hallucination_rate"] + h["unparsed_rate"] + h["cannot_tell_rate"] == pytest.approx(1.0)
    rs = result["stages"]["3_rs_sft"]["rejection_sampling"]
    assert rs["kept"] <= rs["verified"] <= rs["sampled"] == 8 * 2
    rm = result["stages"]["4_final_rl"]["reward_model"]
    assert 0.0 <= rm["heldout_accuracy"] <= 1.0
    final_cfg = (out / "4_final_rl" / "config.yaml").read_text()
    assert "rm:" in final_cfg and str(out / "4a_rm") in final_cfg  # the preference reward is wired in
