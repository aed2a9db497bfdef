"""The GRPO training loop: rollout a group per prompt, score, compute advantages, take μ policy steps.

    emergelab rl CONFIG.yaml --init RUN --out OUT [rl.key=value ...]
    emergelab rl --resume OUT [rl.key=value ...]

One step samples `prompts_per_step` training prompts × `group_size` completions (KV-cache sampler,
prefill shared within a group), scores them with the weighted rewards, computes group-relative
advantages and takes `mu` optimizer steps on the GRPO loss (`grpo.py`). The run directory follows
the contract of `emergelab.runs` (config.yaml with the policy's `model` section, tokenizer.json,
metrics.jsonl, checkpoints/), plus `samples.jsonl` (completions every `sample_every` steps) and
`plots/`. Held-out accuracy is measured on the task's *test* split at step 0 and every `eval_every`.

Resume: every `ckpt_every` steps a checkpoint holds the policy, AdamW state, torch RNG states, the
init checkpoint's step (the frozen reference is re-loaded from it) and the step-0 evaluation. Rollout
sampling is seeded by (seed, step) and the prompts of a step are a pure function of (seed, step)
(`PromptStream.batch`), so a resumed run — also one extended with a larger `rl.steps` — reproduces
the uninterrupted run; metrics.jsonl and samples.jsonl are cut back to the restored step.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import random
import shutil
import time
from pathlib import Path

import torch
from tqdm import tqdm

from emergelab.config import load, to_dict, write_yaml
from emergelab.data.chat import MAX_NEW_TOKENS, TEMPLATES, encode_prompt, render_prompt
from emergelab.errors import UserError
from emergelab.eval.completions import complete_and_verify, task_prompts
from emergelab.eval.metrics import pass_at_k
from emergelab.rl.grpo import GRPOLossConfig, group_advantages, grpo_loss, validate_batch_shape
from emergelab.rl.metrics import completion_stats, mean_or_nan
from emergelab.rl.rewards import Sample, build_rewards, combine
from emergelab.rl.rollout import (
    LocalBackend,
    RolloutBackend,
    length_buckets,
    pack_sequences,
    sequence_logprobs,
)
from emergelab.runs import (
    RunDir,
    latest_checkpoint,
    load_checkpoint_into,
    load_model,
    read_run_config,
    resolve_device,
    save_checkpoint,
)
from emergelab.tasks.base import Example, Task
from emergelab.tasks.registry import get_task
from emergelab.train.loop import MetricsLog
from emergelab.train.optim import make_optimizer

# The fixed cost of one more forward/backward micro-batch, in tokens (`length_buckets`); measured on
# the CPU (1M model, 16×8 × ≤64 tokens: 0.91 s → 0.29 s per forward+backward); on GPUs padding is cheap.
BUCKET_OVERHEAD = {"cpu": 64, "cuda": 8192}


@dataclasses.dataclass
class RLConfig:
    """GRPO settings. Defaults: the R1-Zero reference setting of EXPERIMENTS.md (16×8, Dr. GRPO, lr 1e-4)."""

    task: str = "add:digits=6"
    steps: int = 80
    prompts_per_step: int = 16
    group_size: int = 8
    mu: int = 1  # optimizer steps per rollout batch (GRPO's inner iterations; 1 = strictly on-policy)
    micro_batch: int = 0  # at most this many sequences per forward/backward (gradient accumulation); 0 = no cap
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
    max_new_tokens: int = MAX_NEW_TOKENS
    temperature: float = 1.0
    top_p: float = 1.0
    template: str = "plain"  # plain: the bare task prompt (R1-Zero); chat: <|user|>…<|assistant|> (after SFT)
    shots: int = 0
    eval_every: int = 10
    eval_n: int = 200
    eval_temperature: float = 1.0
    sample_every: int = 10
    samples_logged: int = 4
    ckpt_every: int = 10  # checkpoint (for --resume) every N steps; 0: only the final checkpoint
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def validate(self) -> None:
        validate_batch_shape(self.prompts_per_step, self.group_size)
        self.loss_config().validate()
        if self.ckpt_every < 0:
            raise UserError(f"rl.ckpt_every: must be >= 0 (0 = only the final checkpoint), got {self.ckpt_every}")
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


# ------------------------------------------------------------------------------------------ prompts


class PromptStream:
    """Training prompts over a fixed pool of train-split items; a step's prompts are a pure function of
    (seed, step). The first pass takes the pool in generation order (already random, and `Task.generate`
    is prefix-stable, so a larger pool for a longer run starts with the same items); each later pass is a
    fresh seeded shuffle."""

    def __init__(self, task: Task, n_pool: int, seed: int) -> None:
        self.pool = task.generate(n_pool, "train", seed=seed)
        self.seed = seed
        self._perm: tuple[int, list[int]] = (0, list(range(len(self.pool))))

    def _order(self, epoch: int) -> list[int]:
        if self._perm[0] != epoch:
            perm = list(range(len(self.pool)))
            if epoch:
                random.Random(f"{self.seed}|{epoch}").shuffle(perm)
            self._perm = (epoch, perm)
        return self._perm[1]

    def batch(self, step: int, n: int) -> list[Example]:
        """The `n` prompts of (0-based) step `step`."""
        out = []
        for i in range(step * n, (step + 1) * n):
            epoch, pos = divmod(i, len(self.pool))
            out.append(self.pool[self._order(epoch)[pos]])
        return out


# ------------------------------------------------------------------------------------------ evaluation


@torch.no_grad()
def evaluate_policy(backend: RolloutBackend, tokenizer, task: Task, examples: list[Example], template: str,
                    max_new_tokens: int, temperature: float, seed: int) -> tuple[dict, list[str]]:
    """One sample per held-out item; returns (val_* metrics, completion texts)."""
    checked = complete_and_verify(backend, tokenizer, task, examples, task_prompts(tokenizer, task, examples, template),
                                  max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    texts = [c.text for c in checked]
    stats = completion_stats(texts, [c.verdict.score for c in checked], [c.verdict.format for c in checked],
                             [len(c.completion.tokens) for c in checked],
                             [c.completion.finish_reason for c in checked])
    return {f"val_{k}": v for k, v in stats.items()}, texts


# ------------------------------------------------------------------------------------------ the loop


def _progress(cfg: RLConfig) -> bool:
    return cfg.progress and os.environ.get("EMERGELAB_NO_PROGRESS") != "1"


def _saved_rl_run(out_dir: Path) -> dict:
    """config.yaml of the RL run in `out_dir`; a UserError when there is none."""
    path = out_dir / "config.yaml"
    raw = read_run_config(out_dir) if path.exists() else {}
    if "rl" not in raw or "init" not in raw:
        raise UserError(f"--resume {out_dir}: no RL run there (no config.yaml with an rl: section) — "
                        f"start one with `emergelab rl CONFIG --init RUN --out {out_dir}`")
    return raw


def _init_step(init: str | Path) -> int:
    found = latest_checkpoint(init)
    if found is None:
        raise UserError(f"--init {init}: no valid checkpoint under checkpoints/ — is it a trained run?")
    return int(found[1]["step"])


def resume_grpo(out_dir: str | Path, overrides: list[str] | None = None,
                backend: RolloutBackend | None = None) -> dict:
    """Continue the RL run in `out_dir` from its last checkpoint (`rl.key=value` overrides, e.g. a larger
    rl.steps, apply on top of its saved settings); returns the last metrics record."""
    raw = _saved_rl_run(Path(out_dir))
    cfg = load(RLConfig, None, overrides, base={"rl": raw["rl"]}, section="rl")
    return train_grpo(cfg, raw["init"], out_dir, backend, resume=True)


def train_grpo(cfg: RLConfig, init: str | Path, out_dir: str | Path, backend: RolloutBackend | None = None,
               resume: bool = False) -> dict:
    """Run GRPO from the policy in run directory `init`; returns the last metrics record.

    With `resume`, continue the RL run already in `out_dir` from its newest valid checkpoint (from
    step 0 if it crashed before the first one)."""
    cfg.validate()
    out_dir = Path(out_dir)
    found = None
    if resume:
        saved = _saved_rl_run(out_dir)
        if Path(saved["init"]).resolve() != Path(init).resolve():
            raise UserError(f"resume: {out_dir} was started from --init {saved['init']}, not {init}")
        for stale in (out_dir / "checkpoints").glob(".tmp-*"):  # left by a killed save: never valid
            shutil.rmtree(stale, ignore_errors=True)
        found = latest_checkpoint(out_dir)
        if found is not None and found[1].get("kind") != "rl":
            raise UserError(f"--resume {out_dir}: its checkpoint is not an RL checkpoint")
    else:
        RunDir(out_dir).ensure_new(hint=f"continue it with `emergelab rl --resume {out_dir}` or choose a new "
                                        "directory")
    device = resolve_device(cfg.device)
    init_step = int(found[1]["init_step"]) if found else _init_step(init)
    try:
        model, tok, _ = load_model(init, device=str(device), step=init_step)
    except UserError as e:
        raise UserError(f"--init {init}: its checkpoint step {init_step}, the start of this RL run, is "
                        f"gone or damaged ({e})") from e
    task = get_task(cfg.task)
    if found is None:
        RunDir(out_dir).prepare(init, "rl", to_dict(cfg), {"init_step": init_step})
    else:  # keep the effective settings (e.g. a larger rl.steps) for the next resume
        write_yaml({**read_run_config(out_dir), "rl": to_dict(cfg)}, out_dir / "config.yaml")
    torch.manual_seed(cfg.seed)

    reward_model = None
    if cfg.reward_model:
        from emergelab.rl.reward_model import reward_model_fn

        reward_model = reward_model_fn(cfg.reward_model, device=str(device))
    rewards = build_rewards(cfg.rewards, task, cfg.max_new_tokens, cfg.length_cache, reward_model)
    # frozen π_ref: the initial policy (only needed for the KL term or for logging the KL); copied before
    # a resumed run's weights are loaded, so it is the init checkpoint in both cases
    ref = copy.deepcopy(model).eval().requires_grad_(False) if cfg.beta > 0 or cfg.log_kl else None
    backend = backend or LocalBackend(model, tok)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay, (0.9, 0.99), device.type)
    loss_cfg = cfg.loss_config()
    stream = PromptStream(task, min(cfg.prompts_per_step * cfg.steps, 20_000), cfg.seed)
    eval_set = task.generate(cfg.eval_n, "test", seed=cfg.seed)
    shots = task.shots_for(eval_set[0], cfg.shots, seed=cfg.seed) if cfg.shots else []
    log = MetricsLog(out_dir / "metrics.jsonl", True)
    samples_path = out_dir / "samples.jsonl"
    start = 0
    if found is not None:
        ckpt, meta = found
        load_checkpoint_into(ckpt, model, opt, meta)
        start = int(meta["step"])
        torch.set_rng_state(torch.tensor(meta["torch_rng"], dtype=torch.uint8))
        if "cuda_rng" in meta and torch.cuda.is_available():
            torch.cuda.set_rng_state(torch.tensor(meta["cuda_rng"], dtype=torch.uint8))
        backend.sync_weights(model)
        for p in (out_dir / "metrics.jsonl", samples_path):  # records past the checkpoint are redone
            MetricsLog(p, True).truncate_after(start)
    else:
        for p in (out_dir / "metrics.jsonl", samples_path):
            p.unlink(missing_ok=True)

    def run_eval(step: int) -> dict:
        return evaluate_policy(backend, tok, task, eval_set, cfg.template, cfg.max_new_tokens,
                               cfg.eval_temperature, seed=cfg.seed + 1)[0]

    if found is not None:
        base = found[1]["base"]
    else:
        base = run_eval(0)
        log.write({"step": 0, **base, "self_check_base": base["val_self_check_rate"]})
    self_check_base = base["val_self_check_rate"]
    last: dict = {}
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=f"rl {out_dir.name}", unit="step",
               disable=not _progress(cfg))
    P, G = cfg.prompts_per_step, cfg.group_size
    for step in bar:
        t0 = time.perf_counter()
        examples = stream.batch(step, P)
        prompt_texts = [render_prompt(task, ex, cfg.template, shots) for ex in examples]
        prompt_ids = [encode_prompt(tok, t) for t in prompt_texts]
        model.eval()
        checked = complete_and_verify(backend, tok, task, examples, prompt_ids, max_new_tokens=cfg.max_new_tokens,
                                      temperature=cfg.temperature, top_p=cfg.top_p,
                                      seed=cfg.seed * 1_000_003 + step, num_samples=G)
        validate_batch_shape(P, G, len(checked))
        t_gen = time.perf_counter() - t0
        comps = [c.completion for c in checked]
        texts = [c.text for c in checked]
        verdicts = [c.verdict for c in checked]
        samples = [Sample(c.example, prompt_texts[c.completion.prompt_index], c.text, c.completion.finish_reason,
                          len(c.completion.tokens)) for c in checked]
        totals, components = combine(rewards, samples)
        R = torch.tensor(totals, dtype=torch.float32).view(P, G)
        adv = group_advantages(R, cfg.adv_scale).flatten().to(device)

        idx, targets, mask = pack_sequences([prompt_ids[c.prompt_index] for c in comps],
                                            [c.tokens for c in comps], tok.pad_id or 0)
        idx, targets, mask = idx.to(device), targets.to(device), mask.to(device)
        # Every group has zero reward variance (all advantages 0) and β = 0: the batch carries no learning
        # signal. Skip the optimizer step, because AdamW would otherwise keep moving the weights along its
        # momentum from earlier batches, a drift that no reward asked for.
        no_signal = bool((adv == 0).all()) and cfg.beta == 0
        N, n_tok = idx.shape[0], int(mask.sum())
        # micro-batches of similar length, each trimmed to its longest row (no forward on padding)
        lengths = [len(prompt_ids[c.prompt_index]) + len(c.tokens) - 1 for c in comps]
        chunks = [(r.to(device), s) for r, s in length_buckets(
            lengths, cfg.micro_batch, BUCKET_OVERHEAD.get(device.type, BUCKET_OVERHEAD["cuda"]))]
        # the first scored position of a micro-batch: its shortest prompt's last token (no logits before it)
        prompt_lens = [len(prompt_ids[c.prompt_index]) for c in comps]
        starts = [min(prompt_lens[i] for i in r.tolist()) - 1 for r, _ in chunks]
        # each distinct prompt of a micro-batch runs once, not once per sample (prefix sharing)
        chunk_prompts = [[prompt_lens[i] for i in r.tolist()] for r, _ in chunks]
        with torch.no_grad():
            ref_logp = [sequence_logprobs(ref, idx[r, :s], targets[r, :s], start=b, prompt_lens=pl)[0]
                        if ref is not None else None for (r, s), b, pl in zip(chunks, starts, chunk_prompts)]
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
                                                  start=starts[j], prompt_lens=chunk_prompts[j])
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
            state = {"kind": "rl", "init_step": init_step, "base": base,
                     "torch_rng": torch.get_rng_state().tolist()}
            if torch.cuda.is_available():
                state["cuda_rng"] = torch.cuda.get_rng_state().tolist()
            save_checkpoint(out_dir, step + 1, model, opt, state)
    bar.close()
    if not last:  # resumed a finished run: report its last record
        last = json.loads((out_dir / "metrics.jsonl").read_text().splitlines()[-1])
    model.eval()
    from emergelab.rl.plots import plot_rl_metrics

    plot_rl_metrics(out_dir)
    summary = {"base": base, "final": last, "steps": cfg.steps}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return last
