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

Tracking: `rl.tracker` (none | tensorboard | trackio, `emergelab.train.tracking`) receives every
metrics.jsonl record too, as `train.tracker` does for pretraining; a resumed run re-sends the records
it redoes after the checkpoint, as a resumed pretraining run does.
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
from emergelab.data.chat import MAX_NEW_TOKENS, TEMPLATES
from emergelab.errors import UserError
from emergelab.eval.completions import complete_and_verify, task_prompts
from emergelab.rl.grpo import GRPOLossConfig, validate_batch_shape
from emergelab.rl.metrics import completion_stats
from emergelab.rl.rewards import build_rewards
from emergelab.rl.rollout import LocalBackend, RolloutBackend
from emergelab.rl.step import Rollout, policy_update, rollout, step_record
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
from emergelab.train.tracking import check_tracker, open_tracker


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
    tracker: str = "none"  # none | tensorboard | trackio (train/tracking.py); metrics.jsonl is always written

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
        check_tracker(self.tracker, "rl.tracker")

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


def _open_run(out_dir: Path, init: str | Path, resume: bool) -> tuple[Path, dict] | None:
    """The checkpoint to resume from (None: start at step 0), after checking `out_dir` suits the request."""
    if not resume:
        RunDir(out_dir).ensure_new(hint=f"continue it with `emergelab rl --resume {out_dir}` or choose a new "
                                        "directory")
        return None
    saved = _saved_rl_run(out_dir)
    if Path(saved["init"]).resolve() != Path(init).resolve():
        raise UserError(f"resume: {out_dir} was started from --init {saved['init']}, not {init}")
    for stale in (out_dir / "checkpoints").glob(".tmp-*"):  # left by a killed save: never valid
        shutil.rmtree(stale, ignore_errors=True)
    found = latest_checkpoint(out_dir)
    if found is not None and found[1].get("kind") != "rl":
        raise UserError(f"--resume {out_dir}: its checkpoint is not an RL checkpoint")
    return found


def _load_policy(init: str | Path, init_step: int, device: torch.device):
    try:
        return load_model(init, device=str(device), step=init_step)[:2]
    except UserError as e:
        raise UserError(f"--init {init}: its checkpoint step {init_step}, the start of this RL run, is "
                        f"gone or damaged ({e})") from e


def _restore(found: tuple[Path, dict] | None, model, opt, backend: RolloutBackend, logs: list[Path]) -> int:
    """Load a resumed run's policy, optimizer and RNG states and cut its logs back; the step to start at."""
    if found is None:
        for p in logs:
            p.unlink(missing_ok=True)
        return 0
    ckpt, meta = found
    load_checkpoint_into(ckpt, model, opt, meta)
    start = int(meta["step"])
    torch.set_rng_state(torch.tensor(meta["torch_rng"], dtype=torch.uint8))
    if "cuda_rng" in meta and torch.cuda.is_available():
        torch.cuda.set_rng_state(torch.tensor(meta["cuda_rng"], dtype=torch.uint8))
    backend.sync_weights(model)
    for p in logs:  # records past the checkpoint are redone
        MetricsLog(p, True).truncate_after(start)
    return start


def _rewards(cfg: RLConfig, task: Task, device: torch.device) -> dict:
    reward_model = None
    if cfg.reward_model:
        from emergelab.rl.reward_model import reward_model_fn

        reward_model = reward_model_fn(cfg.reward_model, device=str(device))
    return build_rewards(cfg.rewards, task, cfg.max_new_tokens, cfg.length_cache, reward_model)


def _log_samples(path: Path, step: int, ro: Rollout, n: int) -> None:
    with open(path, "a") as f:
        for s, r in list(zip(ro.samples, ro.totals))[:n]:
            f.write(json.dumps({"step": step, "prompt": s.prompt, "completion": s.completion, "reward": r}) + "\n")


def _save(out_dir: Path, step: int, model, opt, init_step: int, base: dict) -> None:
    state = {"kind": "rl", "init_step": init_step, "base": base, "torch_rng": torch.get_rng_state().tolist()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state().tolist()
    save_checkpoint(out_dir, step, model, opt, state)


def train_grpo(cfg: RLConfig, init: str | Path, out_dir: str | Path, backend: RolloutBackend | None = None,
               resume: bool = False) -> dict:
    """Run GRPO from the policy in run directory `init`; returns the last metrics record.

    With `resume`, continue the RL run already in `out_dir` from its newest valid checkpoint (from
    step 0 if it crashed before the first one)."""
    cfg.validate()
    out_dir = Path(out_dir)
    found = _open_run(out_dir, init, resume)
    device = resolve_device(cfg.device)
    init_step = int(found[1]["init_step"]) if found else _init_step(init)
    model, tok = _load_policy(init, init_step, device)
    task = get_task(cfg.task)
    if found is None:
        RunDir(out_dir).prepare(init, "rl", to_dict(cfg), {"init_step": init_step})
    else:  # keep the effective settings (e.g. a larger rl.steps) for the next resume
        write_yaml({**read_run_config(out_dir), "rl": to_dict(cfg)}, out_dir / "config.yaml")
    torch.manual_seed(cfg.seed)

    rewards = _rewards(cfg, task, device)
    # frozen π_ref: the initial policy (only needed for the KL term or for logging the KL); copied before
    # a resumed run's weights are loaded, so it is the init checkpoint in both cases
    ref = copy.deepcopy(model).eval().requires_grad_(False) if cfg.beta > 0 or cfg.log_kl else None
    backend = backend or LocalBackend(model, tok)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay, (0.9, 0.99), device.type)
    loss_cfg = cfg.loss_config()
    stream = PromptStream(task, min(cfg.prompts_per_step * cfg.steps, 20_000), cfg.seed)
    eval_set = task.generate(cfg.eval_n, "test", seed=cfg.seed)
    shots = task.shots_for(eval_set[0], cfg.shots, seed=cfg.seed) if cfg.shots else []
    samples_path = out_dir / "samples.jsonl"
    start = _restore(found, model, opt, backend, [out_dir / "metrics.jsonl", samples_path])
    # rl.tracker gets every metrics.jsonl record too; opened after the logs are cut back, closed on error
    log = MetricsLog(out_dir / "metrics.jsonl", True,
                     open_tracker(cfg.tracker, out_dir, to_dict(cfg), setting="rl.tracker"))
    try:
        def run_eval() -> dict:
            return evaluate_policy(backend, tok, task, eval_set, cfg.template, cfg.max_new_tokens,
                                   cfg.eval_temperature, seed=cfg.seed + 1)[0]

        if found is not None:
            base = found[1]["base"]
        else:
            base = run_eval()
            log.write({"step": 0, **base, "self_check_base": base["val_self_check_rate"]})
        last: dict = {}
        bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=f"rl {out_dir.name}", unit="step",
                   disable=not _progress(cfg))
        for step in bar:
            t0 = time.perf_counter()
            examples = stream.batch(step, cfg.prompts_per_step)
            model.eval()
            ro = rollout(backend, tok, task, examples, shots, cfg, step, rewards)
            up = policy_update(model, ref, opt, ro, cfg, loss_cfg, device, tok.pad_id or 0)
            if not torch.isfinite(up.loss):
                raise UserError(f"rl: loss became {float(up.loss)} at step {step} — lower rl.lr")
            backend.sync_weights(model)
            record = step_record(step, cfg, ro, up, base["val_self_check_rate"], t0)
            if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
                model.eval()
                record.update(run_eval())
            log.write(record)
            last = record
            if (step + 1) % cfg.sample_every == 0 or step == 0:
                _log_samples(samples_path, step + 1, ro, cfg.samples_logged)
            bar.set_postfix(reward=f"{record['reward']:.2f}", acc=f"{record['accuracy']:.2f}",
                            len=f"{record['len_mean']:.0f}")
            if (cfg.ckpt_every and (step + 1) % cfg.ckpt_every == 0) or step + 1 == cfg.steps:
                _save(out_dir, step + 1, model, opt, init_step, base)
        bar.close()
    finally:
        log.close()
    if not last:  # resumed a finished run: report its last record
        last = json.loads((out_dir / "metrics.jsonl").read_text().splitlines()[-1])
    model.eval()
    from emergelab.rl.plots import plot_rl_metrics

    plot_rl_metrics(out_dir)
    summary = {"base": base, "final": last, "steps": cfg.steps}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return last
