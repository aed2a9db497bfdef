"""One GRPO step, in its three parts: `rollout` samples and scores a group of completions per prompt,
`policy_update` takes `mu` optimizer steps on the GRPO loss, `step_record` is the step's metrics line.

The training loop (`trainer.py`) owns the run around them: settings, resume, evaluation, checkpoints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from emergelab.data.chat import encode_prompt, render_prompt
from emergelab.eval.completions import Checked, complete_and_verify
from emergelab.eval.metrics import pass_at_k
from emergelab.rl.grpo import GRPOLossConfig, group_advantages, grpo_loss, validate_batch_shape
from emergelab.rl.metrics import completion_stats, mean_or_nan
from emergelab.rl.rewards import RewardFn, Sample, combine
from emergelab.rl.rollout import RolloutBackend, length_buckets, pack_sequences, sequence_logprobs
from emergelab.tasks.base import Example, Task

# The fixed cost of one more forward/backward micro-batch, in tokens (`length_buckets`); measured on
# the CPU (1M model, 16×8 × ≤64 tokens: 0.91 s → 0.29 s per forward+backward); on GPUs padding is cheap.
BUCKET_OVERHEAD = {"cpu": 64, "cuda": 8192}


@dataclass
class Rollout:
    """A step's sampled groups: prompt-major, `group_size` completions per prompt, scored."""

    prompt_texts: list[str]
    prompt_ids: list[list[int]]
    checked: list[Checked]  # each completion, cut at the stop rule and verified
    samples: list[Sample]
    totals: list[float]  # the combined reward of each completion
    components: dict[str, list[float | None]]  # each reward's raw values (None: abstained)
    gen_s: float


@dataclass
class Update:
    """What the policy update did: the loss of its last inner iteration (a 0-d tensor), the gradient norm,
    the GRPO statistics, the mean token entropy, and whether it was skipped for lack of signal."""

    loss: torch.Tensor
    grad_norm: float
    stats: dict[str, float]
    entropy: float
    no_signal: bool
    zero_var_frac: float


def rollout(backend: RolloutBackend, tokenizer: Any, task: Task, examples: list[Example], shots: list[Example],
            cfg: Any, step: int, rewards: dict[str, tuple[float, RewardFn]]) -> Rollout:
    """Sample `cfg.group_size` completions for each of `examples` (seeded by (seed, step)) and score them."""
    t0 = time.perf_counter()
    prompt_texts = [render_prompt(task, ex, cfg.template, shots) for ex in examples]
    prompt_ids = [encode_prompt(tokenizer, t) for t in prompt_texts]
    checked = complete_and_verify(backend, tokenizer, task, examples, prompt_ids, max_new_tokens=cfg.max_new_tokens,
                                  temperature=cfg.temperature, top_p=cfg.top_p,
                                  seed=cfg.seed * 1_000_003 + step, num_samples=cfg.group_size)
    validate_batch_shape(cfg.prompts_per_step, cfg.group_size, len(checked))
    gen_s = time.perf_counter() - t0
    samples = [Sample(c.example, prompt_texts[c.completion.prompt_index], c.text, c.completion.finish_reason,
                      len(c.completion.tokens)) for c in checked]
    totals, components = combine(rewards, samples)
    return Rollout(prompt_texts, prompt_ids, checked, samples, totals, components, gen_s)


def policy_update(model: torch.nn.Module, ref: torch.nn.Module | None, opt: torch.optim.Optimizer, ro: Rollout,
                  cfg: Any, loss_cfg: GRPOLossConfig, device: torch.device, pad_id: int) -> Update:
    """Group-relative advantages, then `cfg.mu` optimizer steps on the GRPO loss over length-bucketed
    micro-batches (each distinct prompt run once per micro-batch)."""
    P, G = cfg.prompts_per_step, cfg.group_size
    R = torch.tensor(ro.totals, dtype=torch.float32).view(P, G)
    adv = group_advantages(R, cfg.adv_scale).flatten().to(device)
    comps = [c.completion for c in ro.checked]
    idx, targets, mask = pack_sequences([ro.prompt_ids[c.prompt_index] for c in comps],
                                        [c.tokens for c in comps], pad_id)
    idx, targets, mask = idx.to(device), targets.to(device), mask.to(device)
    # Every group has zero reward variance (all advantages 0) and β = 0: the batch carries no learning
    # signal. Skip the optimizer step, because AdamW would otherwise keep moving the weights along its
    # momentum from earlier batches, a drift that no reward asked for.
    no_signal = bool((adv == 0).all()) and cfg.beta == 0
    N, n_tok = idx.shape[0], int(mask.sum())
    # micro-batches of similar length, each trimmed to its longest row (no forward on padding)
    lengths = [len(ro.prompt_ids[c.prompt_index]) + len(c.tokens) - 1 for c in comps]
    chunks = [(r.to(device), s) for r, s in length_buckets(
        lengths, cfg.micro_batch, BUCKET_OVERHEAD.get(device.type, BUCKET_OVERHEAD["cuda"]))]
    prompt_lens = [len(ro.prompt_ids[c.prompt_index]) for c in comps]
    # each distinct prompt of a micro-batch runs once, not once per sample (prefix sharing)
    chunk_prompts = [[prompt_lens[i] for i in r.tolist()] for r, _ in chunks]
    with torch.no_grad():
        ref_logp = [sequence_logprobs(ref, idx[r, :s], targets[r, :s], prompt_lens=pl)[0]
                    if ref is not None else None for (r, s), pl in zip(chunks, chunk_prompts)]
    model.train()
    old_logp: list[torch.Tensor] = []
    ent_sum = 0.0
    for it in range(cfg.mu):
        opt.zero_grad(set_to_none=True)
        loss_sum, stat_sums = 0.0, {}
        for j, (r, s) in enumerate(chunks):
            m = mask[r, :s]
            with torch.set_grad_enabled(not no_signal):  # no signal: the gradient is 0, skip its backward
                logp, ent = sequence_logprobs(model, idx[r, :s], targets[r, :s], with_entropy=it == 0,
                                              prompt_lens=chunk_prompts[j])
            if it == 0:
                old_logp.append(logp.detach())
                ent_sum += float((ent * m).sum())
            loss, st = grpo_loss(logp, old_logp[j], adv[r], m, loss_cfg, ref_logp[j], N, n_tok)
            if not no_signal:
                loss.backward()  # micro-batch losses sum to the full-batch loss (global N, n_tok)
            loss_sum += loss.item()
            w = float(m.sum()) / max(n_tok, 1)
            for k, v in st.items():
                stat_sums[k] = stat_sums.get(k, 0.0) + w * v
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf"))
        if no_signal:
            continue  # see above: Adam's momentum would still move the policy on a zero gradient
        opt.step()
    return Update(torch.tensor(loss_sum), float(grad_norm), stat_sums, ent_sum / max(n_tok, 1), no_signal,
                  float((R.std(dim=1) == 0).float().mean()))


def step_record(step: int, cfg: Any, ro: Rollout, up: Update, self_check_base: float, t0: float) -> dict:
    """The metrics.jsonl line of (0-based) step `step`: rewards, accuracy, lengths, pass@k, GRPO statistics."""
    G = cfg.group_size
    comps = [c.completion for c in ro.checked]
    verdicts = [c.verdict for c in ro.checked]
    scores = [v.score for v in verdicts]
    correct_per_group = [sum(s >= 1.0 for s in scores[g * G:(g + 1) * G]) for g in range(cfg.prompts_per_step)]
    return {
        "step": step + 1, "loss": up.loss.item(), "lr": cfg.lr, "grad_norm": up.grad_norm,
        "reward": mean_or_nan(ro.totals),
        **{f"reward_{n}": mean_or_nan([x for x in v if x is not None]) for n, v in ro.components.items()},
        **completion_stats([c.text for c in ro.checked], scores, [v.format for v in verdicts],
                           [len(c.tokens) for c in comps], [c.finish_reason for c in comps]),
        "pass_at_1": mean_or_nan([pass_at_k(G, c, 1) for c in correct_per_group]),
        f"pass_at_{G}": mean_or_nan([pass_at_k(G, c, G) for c in correct_per_group]),
        "zero_var_frac": up.zero_var_frac,
        "entropy": up.entropy,
        "self_check_base": self_check_base, "skipped": int(up.no_signal),
        "step_s": time.perf_counter() - t0, "gen_s": ro.gen_s,
        **up.stats,
    }
