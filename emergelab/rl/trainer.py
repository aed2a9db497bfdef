"""The GRPO training loop: rollout a group per prompt, score, compute advantages, take μ policy steps.

    emergelab rl CONFIG.yaml --init RUN --out OUT [rl.key=value ...]

One step samples `prompts_per_step` training prompts × `group_size` completions (KV-cache sampler,
prefill shared within a group), scores them with the weighted rewards, computes group-relative
advantages and takes `mu` optimizer steps on the GRPO loss (`grpo.py`). The run directory follows
the contract of `emergelab.runs` (config.yaml with the policy's `model` section, tokenizer.json,
metrics.jsonl, checkpoints/), plus `samples.jsonl` (completions every `sample_every` steps) and
`plots/`. Held-out accuracy is measured on the task's *test* split at step 0 and every `eval_every`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import random
import time
from pathlib import Path

import torch
from tqdm import tqdm

from emergelab.config import deep_merge, from_dict, load_yaml, parse_overrides, to_dict
from emergelab.errors import UserError
from emergelab.model import SamplingParams
from emergelab.rl.grpo import GRPOLossConfig, group_advantages, grpo_loss, validate_batch_shape
from emergelab.rl.metrics import completion_stats, mean_or_nan, pass_at_k
from emergelab.rl.rewards import Sample, build_rewards, combine
from emergelab.rl.rollout import LocalBackend, RolloutBackend, pack_sequences, sequence_logprobs
from emergelab.runs import load_model, resolve_device, save_checkpoint
from emergelab.tasks.base import Example, Task, cut_at_stop, sampling_stops
from emergelab.tasks.registry import get_task
from emergelab.train.loop import MetricsLog
from emergelab.train.optim import make_optimizer
from emergelab.train.sft import encode_prompt, prepare_run, render_prompt

TEMPLATES = ("plain", "chat")


@dataclasses.dataclass
class RLConfig:
    """GRPO settings. Defaults: the R1-Zero reference setting of EXPERIMENTS.md (16×8, Dr. GRPO, lr 1e-4)."""

    task: str = "add:digits=6"
    steps: int = 80
    prompts_per_step: int = 16
    group_size: int = 8
    mu: int = 1  # optimizer steps per rollout batch (GRPO's inner iterations; 1 = strictly on-policy)
    micro_batch: int = 0  # sequences per forward/backward (gradient accumulation); 0 = the whole batch
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    loss_agg: str = "constant"  # seq_mean (R1) | token (DAPO) | constant (Dr. GRPO) — see grpo.py
    adv_scale: str = "none"  # group (R1) | batch | none (Dr. GRPO)
    eps_low: float = 0.2
    eps_high: float = 0.2
    beta: float = 0.0  # KL coefficient to the frozen initial model
    log_kl: bool = True  # with beta = 0, still run the reference forward to log the k3 KL (costs a forward)
    rewards: dict = dataclasses.field(default_factory=lambda: {"accuracy": 1.0})
    reward_model: str | None = None  # run directory from `emergelab rm`, for the `rm` reward
    length_cache: int = 0  # DAPO soft-overlong window for the `length` reward (0: max_new_tokens/4)
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    template: str = "plain"  # plain: the bare task prompt (R1-Zero); chat: <|user|>…<|assistant|> (after SFT)
    shots: int = 0
    eval_every: int = 10
    eval_n: int = 200
    eval_temperature: float = 1.0
    sample_every: int = 10
    samples_logged: int = 4
    ckpt_every: int = 0  # 0: only the final checkpoint
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def validate(self) -> None:
        validate_batch_shape(self.prompts_per_step, self.group_size)
        self.loss_config().validate()
        for name in ("steps", "mu", "max_new_tokens", "eval_every", "eval_n", "sample_every"):
            if getattr(self, name) < 1:
                raise UserError(f"rl.{name}: must be >= 1, got {getattr(self, name)}")
        if not 0 < self.lr < 1:
            raise UserError(f"rl.lr: {self.lr} must be in (0, 1) — GRPO typically uses 1e-6 … 1e-4")
        if self.micro_batch < 0:
            raise UserError(f"rl.micro_batch: must be >= 0 (0 = whole batch), got {self.micro_batch}")
        if self.template not in TEMPLATES:
            raise UserError(f"rl.template: {self.template!r} is not one of {TEMPLATES}")
        if self.temperature <= 0:
            raise UserError("rl.temperature: must be > 0 — GRPO needs diverse samples within a group")
        if not isinstance(self.rewards, dict) or not self.rewards:
            raise UserError("rl.rewards: give a mapping name → weight, e.g. {accuracy: 1.0, format: 0.1}")

    def loss_config(self) -> GRPOLossConfig:
        return GRPOLossConfig(self.loss_agg, self.adv_scale, self.eps_low, self.eps_high, self.beta,
                              self.max_new_tokens)


def load_rl_config(path: str | Path | None, overrides: list[str] | None = None, base: dict | None = None
                   ) -> RLConfig:
    """YAML (an `rl:` section) + `rl.key=value` overrides → a validated RLConfig."""
    raw = deep_merge(base or {}, load_yaml(path) if path else {})
    raw = deep_merge(raw, parse_overrides(overrides or []))
    unknown = set(raw) - {"rl"}
    if unknown:
        raise UserError(f"rl config: unknown section(s) {sorted(unknown)} — GRPO settings live under `rl:`")
    cfg = from_dict(RLConfig, raw.get("rl", {}), "rl")
    cfg.validate()
    return cfg


# ------------------------------------------------------------------------------------------ prompts


class PromptStream:
    """Training prompts, cycled in a seeded order over a fixed pool of train-split items."""

    def __init__(self, task: Task, n_pool: int, seed: int) -> None:
        self.pool = task.generate(n_pool, "train", seed=seed)
        self.rng = random.Random(seed)
        self.order: list[int] = []

    def take(self, n: int) -> list[Example]:
        out = []
        for _ in range(n):
            if not self.order:
                self.order = list(range(len(self.pool)))
                self.rng.shuffle(self.order)
            out.append(self.pool[self.order.pop()])
        return out


# ------------------------------------------------------------------------------------------ evaluation


@torch.no_grad()
def evaluate_policy(backend: RolloutBackend, tokenizer, task: Task, examples: list[Example], template: str,
                    max_new_tokens: int, temperature: float, seed: int) -> tuple[dict, list[str]]:
    """One sample per held-out item; returns (val_* metrics, completion texts)."""
    prompts = [render_prompt(task, ex, template) for ex in examples]
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                            **sampling_stops(tokenizer))
    comps = backend.generate([encode_prompt(tokenizer, p) for p in prompts], params)
    texts = [cut_at_stop(tokenizer.decode(c.tokens)) for c in comps]
    verdicts = [task.verify(ex, t) for ex, t in zip(examples, texts)]
    stats = completion_stats(texts, [v.score for v in verdicts], [v.format for v in verdicts],
                             [len(c.tokens) for c in comps], [c.finish_reason for c in comps])
    return {f"val_{k}": v for k, v in stats.items()}, texts


# ------------------------------------------------------------------------------------------ the loop


def _progress(cfg: RLConfig) -> bool:
    return cfg.progress and os.environ.get("EMERGELAB_NO_PROGRESS") != "1"


def train_grpo(cfg: RLConfig, init: str | Path, out_dir: str | Path, backend: RolloutBackend | None = None
               ) -> dict:
    """Run GRPO from the policy in run directory `init`; returns the last metrics record."""
    cfg.validate()
    out_dir = Path(out_dir)
    device = resolve_device(cfg.device)
    model, tok, _ = load_model(init, device=str(device))
    task = get_task(cfg.task)
    prepare_run(out_dir, init, "rl", to_dict(cfg))
    torch.manual_seed(cfg.seed)

    reward_model = None
    if cfg.reward_model:
        from emergelab.rl.reward_model import reward_model_fn

        reward_model = reward_model_fn(cfg.reward_model, device=str(device))
    rewards = build_rewards(cfg.rewards, task, cfg.max_new_tokens, cfg.length_cache, reward_model)
    # frozen π_ref: the initial policy (only needed for the KL term or for logging the KL)
    ref = copy.deepcopy(model).eval().requires_grad_(False) if cfg.beta > 0 or cfg.log_kl else None
    backend = backend or LocalBackend(model, tok)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay, (0.9, 0.99), device.type)
    loss_cfg = cfg.loss_config()
    stream = PromptStream(task, min(cfg.prompts_per_step * cfg.steps, 20_000), cfg.seed)
    eval_set = task.generate(cfg.eval_n, "test", seed=cfg.seed)
    shots = task.shots_for(eval_set[0], cfg.shots, seed=cfg.seed) if cfg.shots else []
    log = MetricsLog(out_dir / "metrics.jsonl", True)
    samples_path = out_dir / "samples.jsonl"
    for p in (out_dir / "metrics.jsonl", samples_path):
        p.unlink(missing_ok=True)

    def run_eval(step: int) -> dict:
        return evaluate_policy(backend, tok, task, eval_set, cfg.template, cfg.max_new_tokens,
                               cfg.eval_temperature, seed=cfg.seed + 1)[0]

    base = run_eval(0)
    self_check_base = base["val_self_check_rate"]
    log.write({"step": 0, **base, "self_check_base": self_check_base})
    last: dict = {}
    bar = tqdm(range(cfg.steps), desc=f"rl {out_dir.name}", unit="step", disable=not _progress(cfg))
    P, G = cfg.prompts_per_step, cfg.group_size
    for step in bar:
        t0 = time.perf_counter()
        examples = stream.take(P)
        prompt_texts = [render_prompt(task, ex, cfg.template, shots) for ex in examples]
        prompt_ids = [encode_prompt(tok, t) for t in prompt_texts]
        model.eval()
        comps = backend.generate(prompt_ids, SamplingParams(
            max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
            seed=cfg.seed * 1_000_003 + step, num_samples=G, **sampling_stops(tok)))
        validate_batch_shape(P, G, len(comps))
        t_gen = time.perf_counter() - t0
        texts = [cut_at_stop(tok.decode(c.tokens)) for c in comps]
        samples = [Sample(examples[c.prompt_index], prompt_texts[c.prompt_index], t, c.finish_reason,
                          len(c.tokens)) for c, t in zip(comps, texts)]
        totals, components = combine(rewards, samples)
        verdicts = [task.verify(s.example, s.completion) for s in samples]
        R = torch.tensor(totals, dtype=torch.float32).view(P, G)
        adv = group_advantages(R, cfg.adv_scale).flatten().to(device)

        idx, targets, mask = pack_sequences([prompt_ids[c.prompt_index] for c in comps],
                                            [c.tokens for c in comps], tok.pad_id or 0)
        idx, targets, mask = idx.to(device), targets.to(device), mask.to(device)
        # Every group has zero reward variance (all advantages 0) and β = 0: the batch carries no learning
        # signal. Skip the optimizer step, because AdamW would otherwise keep moving the weights along its
        # momentum from earlier batches, a drift that no reward asked for.
        no_signal = bool((adv == 0).all()) and cfg.beta == 0
        N, mb = idx.shape[0], cfg.micro_batch or idx.shape[0]
        chunks = [slice(a, min(a + mb, N)) for a in range(0, N, mb)]
        n_tok = int(mask.sum())
        with torch.no_grad():
            ref_logp = [sequence_logprobs(ref, idx[c], targets[c])[0] if ref is not None else None for c in chunks]
        model.train()
        old_logp: list[torch.Tensor] = []
        ent_sum = 0.0
        for it in range(cfg.mu):
            opt.zero_grad(set_to_none=True)
            loss_sum, stat_sums = 0.0, {}
            for j, c in enumerate(chunks):
                logp, ent = sequence_logprobs(model, idx[c], targets[c], with_entropy=it == 0)
                if it == 0:
                    old_logp.append(logp.detach())
                    ent_sum += float((ent * mask[c]).sum())
                loss, st = grpo_loss(logp, old_logp[j], adv[c], mask[c], loss_cfg, ref_logp[j], N, n_tok)
                loss.backward()  # micro-batch losses sum to the full-batch loss (global N, n_tok)
                loss_sum += loss.item()
                w = float(mask[c].sum()) / max(n_tok, 1)
                for k, v in st.items():
                    stat_sums[k] = stat_sums.get(k, 0.0) + w * v
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf"))
            if no_signal:
                continue  # see below: Adam's momentum would still move the policy on a zero gradient
            opt.step()
        stats = stat_sums
        loss = torch.tensor(loss_sum)
        if not torch.isfinite(loss):
            raise UserError(f"rl: loss became {float(loss)} at step {step} — lower rl.lr")
        backend.sync_weights(model)

        scores = [v.score for v in verdicts]
        correct_per_group = [sum(s >= 1.0 for s in scores[g * G:(g + 1) * G]) for g in range(P)]
        record = {
            "step": step + 1, "loss": loss.item(), "lr": cfg.lr, "grad_norm": float(grad_norm),
            "reward": mean_or_nan(totals),
            **{f"reward_{n}": mean_or_nan([x for x in v if x is not None]) for n, v in components.items()},
            **completion_stats(texts, scores, [v.format for v in verdicts], [len(c.tokens) for c in comps],
                               [c.finish_reason for c in comps]),
            "pass_at_1": mean_or_nan([pass_at_k(G, c, 1) for c in correct_per_group]),
            f"pass_at_{G}": mean_or_nan([pass_at_k(G, c, G) for c in correct_per_group]),
            "zero_var_frac": float((R.std(dim=1) == 0).float().mean()),
            "entropy": ent_sum / max(n_tok, 1),
            "self_check_base": self_check_base, "skipped": int(no_signal),
            "step_s": time.perf_counter() - t0, "gen_s": t_gen,
            **stats,
        }
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            model.eval()
            record.update(run_eval(step + 1))
        log.write(record)
        last = record
        if (step + 1) % cfg.sample_every == 0 or step == 0:
            with open(samples_path, "a") as f:
                for s, r in list(zip(samples, totals))[: cfg.samples_logged]:
                    f.write(json.dumps({"step": step + 1, "prompt": s.prompt, "completion": s.completion,
                                        "reward": r}) + "\n")
        bar.set_postfix(reward=f"{record['reward']:.2f}", acc=f"{record['accuracy']:.2f}",
                        len=f"{record['len_mean']:.0f}")
        if (cfg.ckpt_every and (step + 1) % cfg.ckpt_every == 0) or step + 1 == cfg.steps:
            save_checkpoint(out_dir, step + 1, model, opt, {"kind": "rl"})
    bar.close()
    model.eval()
    from emergelab.rl.plots import plot_rl_metrics

    plot_rl_metrics(out_dir)
    summary = {"base": base, "final": last, "steps": cfg.steps}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return last
