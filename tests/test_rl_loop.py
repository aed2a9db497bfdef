"""The GRPO loop end to end on a toy task: accuracy rises from a base model with pass@8 > 0; KL is logged."""

from __future__ import annotations

import json
import random

import pytest
import torch

from emergelab.config import load, write_yaml
from emergelab.data.tokenizer import char_tokenizer
from emergelab.errors import UserError
from emergelab.model import GPT, ModelConfig
from emergelab.rl.trainer import RLConfig, train_grpo
from emergelab.runs import load_model, save_checkpoint
from emergelab.tasks.base import Example, Task


class IsSmall(Task):
    """'abc=' → 'y' if a < 5 else 'n' (a plain one-character answer; chance among the vocabulary ≈ 1/15)."""

    name = "is_small"
    answer_alphabet = "yn"

    def _sample(self, rng: random.Random) -> Example:
        s = "".join(rng.choice("0123456789") for _ in range(3))
        return Example(s + "=", "y" if int(s[0]) < 5 else "n")


def _base_run(tmp_path):
    tok = char_tokenizer("0123456789=yn\n")
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=32)
    torch.manual_seed(0)
    model = GPT(cfg)
    run = tmp_path / "base"
    run.mkdir()
    tok.save(run / "tokenizer.json")
    write_yaml({"model": cfg.__dict__}, run / "config.yaml")
    save_checkpoint(run, 0, model)
    return run


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_grpo_raises_accuracy_on_a_toy_task_with_nonzero_pass_at_8(tmp_path):
    base = _base_run(tmp_path)
    cfg = RLConfig(task=f"{__file__}:IsSmall", steps=40, prompts_per_step=8, group_size=8, max_new_tokens=1,
                   lr=1e-2, loss_agg="token", adv_scale="group", beta=0.02, eval_every=40, eval_n=64,
                   sample_every=10, progress=False, seed=0)
    train_grpo(cfg, base, tmp_path / "rl")
    rows = _rows(tmp_path / "rl")
    steps = [r for r in rows if r["step"] >= 1]
    assert len(steps) == 40
    assert sum(r["pass_at_8"] for r in steps[:3]) > 0  # the premise: the base model sometimes succeeds
    early = sum(r["accuracy"] for r in steps[:5]) / 5
    late = sum(r["accuracy"] for r in steps[-5:]) / 5
    assert late > early + 0.3, (early, late)
    assert rows[-1]["val_accuracy"] > rows[0]["val_accuracy"] + 0.3  # held-out (test split) items too
    assert all(r["kl"] >= 0 and r["kl"] < float("inf") for r in steps) and steps[-1]["kl"] > 0
    for key in ("reward_accuracy", "zero_var_frac", "trunc_rate", "entropy", "self_check_base", "len_correct"):
        assert key in steps[-1]
    # the run directory loads like any other run
    model, _, _ = load_model(tmp_path / "rl")
    assert isinstance(model, GPT)
    assert (tmp_path / "rl" / "samples.jsonl").exists() and (tmp_path / "rl" / "plots" / "rl_curves.png").exists()


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(UserError, match="rl.loss_agg"):
        load(RLConfig, None, ["rl.loss_agg=mean"], section="rl")
    with pytest.raises(UserError, match="did you mean rl.group_size"):
        load(RLConfig, None, ["rl.group_sise=4"], section="rl")
    with pytest.raises(UserError, match="prompts_per_step"):
        load(RLConfig, None, ["rl.prompts_per_step=0"], section="rl")



def test_micro_batching_gives_the_same_update_as_the_full_batch(tmp_path):
    base = _base_run(tmp_path)
    params = []
    for mb in (0, 24):
        cfg = RLConfig(task=f"{__file__}:IsSmall", steps=2, prompts_per_step=8, group_size=8, max_new_tokens=3,
                       lr=1e-2, loss_agg="seq_mean", beta=0.05, eval_every=100, eval_n=4, micro_batch=mb,
                       progress=False)
        train_grpo(cfg, base, tmp_path / f"rl{mb}")
        params.append(load_model(tmp_path / f"rl{mb}")[0].state_dict())
    for k in params[0]:
        torch.testing.assert_close(params[0][k], params[1][k], rtol=1e-4, atol=1e-6)


class Unreachable(IsSmall):
    """An answer the model can never write (its characters are not in the vocabulary)."""

    name = "unreachable"

    def _sample(self, rng: random.Random) -> Example:
        ex = super()._sample(rng)
        return Example(ex.prompt, "zz")


def test_batches_without_learning_signal_leave_the_weights_unchanged(tmp_path):
    base = _base_run(tmp_path)
    cfg = RLConfig(task=f"{__file__}:Unreachable", steps=3, prompts_per_step=4, group_size=4, max_new_tokens=2,
                   lr=1e-2, weight_decay=0.1, beta=0.0, eval_every=100, eval_n=4, progress=False)
    train_grpo(cfg, base, tmp_path / "rl")  # an AdamW step would at least apply weight decay
    assert all(r["skipped"] == 1 for r in _rows(tmp_path / "rl") if r["step"] > 0)
    before, after = load_model(base)[0].state_dict(), load_model(tmp_path / "rl")[0].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_length_buckets_cover_every_row_once_and_are_optimal():
    from itertools import combinations

    from emergelab.rl.rollout import length_buckets

    rng = random.Random(0)
    for _ in range(30):
        lengths = [rng.randint(1, 40) for _ in range(rng.randint(1, 9))]
        cap, overhead = rng.choice([0, 2, 3]), rng.choice([0, 5, 50])
        buckets = length_buckets(lengths, cap, overhead)
        rows = sorted(int(i) for r, _ in buckets for i in r)
        assert rows == list(range(len(lengths)))
        assert all(s == max(lengths[int(i)] for i in r) for r, s in buckets)
        assert all(len(r) <= (cap or len(lengths)) for r, _ in buckets)
        cost = sum(len(r) * s + overhead for r, s in buckets)
        # brute force: every split of the sorted rows into contiguous runs
        ls, n = sorted(lengths), len(lengths)
        best = min(
            sum((b - a) * ls[b - 1] + overhead for a, b in zip((0, *cuts), (*cuts, n)))
            for k in range(n) for cuts in combinations(range(1, n), k)
            if all(b - a <= (cap or n) for a, b in zip((0, *cuts), (*cuts, n))))
        assert cost == best


def test_length_buckets_give_the_update_of_one_padded_batch(tmp_path, monkeypatch):
    import emergelab.rl.step as step

    base = _base_run(tmp_path)
    params = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls on a loaded machine are slower with more threads
    for overhead in (10**9, 0):  # one batch padded to the longest row vs. one micro-batch per length
        monkeypatch.setattr(step, "BUCKET_OVERHEAD", {"cpu": overhead, "cuda": overhead})
        cfg = RLConfig(task=f"{__file__}:IsSmall", steps=2, prompts_per_step=8, group_size=8, max_new_tokens=6,
                       lr=1e-2, loss_agg="token", adv_scale="group", beta=0.05, mu=2, eval_every=100, eval_n=4,
                       progress=False)
        train_grpo(cfg, base, tmp_path / f"rl{overhead}")
        params.append(load_model(tmp_path / f"rl{overhead}")[0].state_dict())
        rows = _rows(tmp_path / f"rl{overhead}")
        assert max(r["len_mean"] for r in rows if r["step"] > 0) < 6  # the premise: lengths vary
    torch.set_num_threads(threads)
    for k in params[0]:
        torch.testing.assert_close(params[0][k], params[1][k], rtol=1e-4, atol=1e-6)


def test_logprobs_from_a_start_position_equal_the_full_computation_there():
    from emergelab.model import GPT, ModelConfig
    from emergelab.rl.rollout import sequence_logprobs

    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=50, n_layer=2, n_embd=32, n_head=4, block_size=32))
    idx = torch.randint(0, 50, (3, 12))
    targets = torch.randint(0, 50, (3, 12))
    full, ent_full = sequence_logprobs(model, idx, targets, with_entropy=True)
    part, ent_part = sequence_logprobs(model, idx, targets, with_entropy=True, start=5)
    assert part.shape == full.shape
    torch.testing.assert_close(part[:, 5:], full[:, 5:])
    torch.testing.assert_close(ent_part[:, 5:], ent_full[:, 5:])
    assert (part[:, :5] == 0).all() and (ent_part[:, :5] == 0).all()
    # and the gradient of a loss on positions >= start is the same
    mask = torch.zeros(3, 12)
    mask[:, 6:] = 1
    (full * mask).sum().backward()
    g_full = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    (part * mask).sum().backward()
    for g, p in zip(g_full, model.parameters()):
        torch.testing.assert_close(p.grad, g)
