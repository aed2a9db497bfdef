"""Multi-stage post-training recipes (DeepSeek-R1, 2025) and the hallucination check between stages.

    emergelab recipe r1-zero --init BASE --out OUT [rl.steps=40 ...]
    emergelab recipe r1      --init BASE --out OUT [sft.n=3000 rl.steps=30 final.steps=20 ...]

r1-zero: the pretrained model → GRPO with rule rewards on the bare prompt (no SFT), so any chain of
         thought must come from the model itself (OUT/rl).
r1:      1. cold start: SFT on a small set of chat-format worked solutions (OUT/1_cold_sft);
         2. reasoning RL: GRPO with accuracy + format + consistency rewards (OUT/2_reason_rl);
         3. rejection sampling: sample the stage-2 policy, keep verified-correct, well-formed answers,
            mix with non-reasoning data (direct answers), and SFT the *base* model on it, as R1
            re-trains DeepSeek-V3-Base (OUT/3_rs_sft);
         4. all-scenario RL: a Bradley–Terry reward model (OUT/4a_rm) trained on stage-3 samples, then
            GRPO with the rule rewards plus the preference reward (OUT/4_final_rl).
After every stage the recipe measures held-out accuracy and the hallucination rate (below) and
writes OUT/recipe.json. Overrides are `SECTION.key=value` with SECTION in rl, sft, rs, rm, final, halluc.

Hallucination: on items whose correct answer is "cannot tell" (syllogisms with an invalid form), the
share of answers that assert something else (yes / no / contradiction) — a confident wrong claim —
rather than "cannot tell" or no parseable answer.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from emergelab.config import TrainConfig, load, parse_overrides
from emergelab.data.chat import MAX_NEW_TOKENS
from emergelab.errors import UserError
from emergelab.eval.completions import complete_and_verify, greedy_accuracy, task_prompts
from emergelab.rl.trainer import RLConfig, train_grpo
from emergelab.tasks.base import Task

UNANSWERABLE = "cannot tell"
SECTIONS = ("rl", "sft", "rs", "rm", "final", "halluc")


@dataclasses.dataclass
class HallucConfig:
    """The hallucination check run after every stage."""

    halluc_task: str = "syllogism"
    halluc_n: int = 100

    def validate(self) -> None:
        if self.halluc_n < 0:
            raise UserError(f"halluc.halluc_n: must be >= 0, got {self.halluc_n}")


@dataclasses.dataclass
class RejectionConfig:
    """Stage 3 of R1: rejection sampling from the reasoning-RL policy."""

    n: int = 3000  # training prompts sampled
    samples: int = 4  # completions per prompt
    direct_fraction: float = 0.3  # non-reasoning (direct-answer) pairs added, as a share of the kept traces

    def validate(self) -> None:
        if self.n < 1 or self.samples < 1 or self.direct_fraction < 0:
            raise UserError("rs: n and samples must be >= 1 and direct_fraction >= 0")


def hallucination_rate(model, tok, task_spec: str = "syllogism", n: int = 100, template: str = "plain",
                       max_new_tokens: int = MAX_NEW_TOKENS, seed: int = 0) -> dict:
    """Share of confident wrong assertions on held-out items whose answer is "cannot tell"."""
    from emergelab.tasks.registry import get_task

    task = get_task(task_spec)
    pool = task.generate(20 * n, "test", seed=seed) if n else []
    items = [ex for ex in pool if ex.answer.strip().lower() == UNANSWERABLE][:n]
    if not items:
        return {"task": task_spec, "items": 0, "note": "no 'cannot tell' items"}
    try:
        prompts = task_prompts(tok, task, items, template)
    except UserError as e:  # the model's alphabet cannot even write this task
        return {"task": task_spec, "items": 0, "note": str(e)}
    checked = complete_and_verify(model, tok, task, items, prompts, max_new_tokens=max_new_tokens, temperature=0.0)
    abstained = sum(c.verdict.predicted is None for c in checked)
    asserted = sum(c.verdict.predicted is not None and c.verdict.score < 1 for c in checked)
    return {"task": task_spec, "items": len(items), "hallucination_rate": asserted / len(items),
            "unparsed_rate": abstained / len(items), "cannot_tell_rate": 1 - (asserted + abstained) / len(items)}


def stage_report(run: Path, task: Task, template: str, max_new_tokens: int, halluc: HallucConfig,
                 eval_n: int = 200) -> dict:
    """Greedy held-out accuracy of the stage's model and its hallucination rate, with one token budget."""
    from emergelab.runs import load_model

    model, tok, _ = load_model(run)
    eval_set = task.generate(eval_n, "test", seed=0)
    report = {"run": str(run), **greedy_accuracy(model, tok, task, eval_set, template, max_new_tokens)}
    report["hallucination"] = hallucination_rate(model, tok, halluc.halluc_task, halluc.halluc_n, template,
                                                 max_new_tokens)
    return report


def run_recipe(name: str, init: str | Path, out: str | Path, overrides: list[str] | dict | None = None) -> dict:
    """Run recipe `name`; `overrides` are `SECTION.key=value` strings or a {section: {key: value}} mapping."""
    ov = overrides if isinstance(overrides, dict) else parse_overrides(overrides or [])
    unknown = set(ov) - set(SECTIONS)
    if unknown:
        raise UserError(f"recipe overrides: unknown section(s) {sorted(unknown)} — use rl., sft., rs., rm., "
                        "final. or halluc.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    halluc = load(HallucConfig, None, ov.get("halluc", {}))
    if name == "r1-zero":
        rl = load(RLConfig, None, {"rl": ov.get("rl", {})}, base=RLConfig(steps=40, **imported_defaults(init)),
                  section="rl")
        stages = r1_zero(Path(init), out, rl, halluc)
    elif name == "r1":
        stages = _run_r1(Path(init), out, ov, halluc)
    else:
        raise UserError(f"recipe: unknown recipe {name!r} — choose r1-zero or r1")
    result = {"recipe": name, "init": str(init), "stages": stages}
    (out / "recipe.json").write_text(json.dumps(result, indent=1))
    return result


def imported_defaults(init: str | Path) -> dict:
    """RL defaults for an imported model (its tokenizer brings a chat template): prompts in its own template
    (`data.chat.encode_prompt`), and micro-batches of 8 sequences, so that the (rows × tokens × vocabulary)
    log-probabilities of a 49k vocabulary stay near 150 MB per forward instead of growing with the batch."""
    from emergelab.data.chat import own_chat_template
    from emergelab.data.tokenizer import Tokenizer

    if own_chat_template(Tokenizer.load(init)) is None:
        return {}
    return {"template": "chat", "micro_batch": 8}


def r1_zero(init: Path, out: Path, rl: RLConfig, halluc: HallucConfig) -> dict:
    """GRPO on the bare prompt (OUT/rl), with the stage report before and after."""
    from emergelab.tasks.registry import get_task

    task = get_task(rl.task)

    def report(run: Path) -> dict:
        return stage_report(run, task, rl.template, rl.max_new_tokens, halluc, rl.eval_n)

    stages = {"base": report(init)}
    train_grpo(rl, init, out / "rl")
    stages["rl"] = report(out / "rl")
    return stages


def _run_r1(init: Path, out: Path, ov: dict, halluc: HallucConfig) -> dict:
    from emergelab.rl.distill import teacher_traces
    from emergelab.rl.reward_model import RMConfig, train_reward_model
    from emergelab.runs import load_model
    from emergelab.tasks.registry import get_task
    from emergelab.train.sft import SFTConfig, SFTDataConfig, task_pairs, train_sft

    rl = load(RLConfig, None, {"rl": ov.get("rl", {})}, section="rl", base=RLConfig(
        template="chat", steps=30, loss_agg="seq_mean", adv_scale="group", beta=0.04,
        rewards={"accuracy": 1.0, "format": 0.2, "consistency": 0.1}))
    task = get_task(rl.task)

    def report(run: Path) -> dict:
        return stage_report(run, task, "chat", rl.max_new_tokens, halluc)

    def sft_config(**sft: object) -> SFTConfig:
        # train: TrainConfig's own defaults with 256-token rows, as the recipe has always run
        base = SFTConfig(SFTDataConfig(task=rl.task, template="chat", max_new_tokens=rl.max_new_tokens, **sft),
                         TrainConfig(seq_len=256))
        return load(SFTConfig, None, {"sft": ov.get("sft", {})}, base=base)

    stages = {"base": report(init)}
    train_sft(sft_config(n=3000, epochs=3), init, out / "1_cold_sft")
    stages["1_cold_sft"] = report(out / "1_cold_sft")

    train_grpo(rl, out / "1_cold_sft", out / "2_reason_rl")
    stages["2_reason_rl"] = report(out / "2_reason_rl")

    # 3. rejection sampling from the stage-2 policy + non-reasoning (direct-answer) data, SFT on the base
    rs = load(RejectionConfig, None, ov.get("rs", {}))
    model, tok, _ = load_model(out / "2_reason_rl")
    kept, counts = teacher_traces(model, tok, task, rs.n, rs.samples, "chat", rl.max_new_tokens, seed=1)
    direct = task_pairs(rl.task, max(1, int(rs.direct_fraction * max(1, len(kept)))), cot_fraction=0.0, seed=2)
    train_sft(sft_config(epochs=2), init, out / "3_rs_sft", pairs=kept + direct)
    stages["3_rs_sft"] = {**report(out / "3_rs_sft"), "rejection_sampling": counts,
                          "non_reasoning_pairs": len(direct)}

    # 4. reward model on stage-3 samples, then RL with rule + preference rewards
    rm_cfg = load(RMConfig, None, {"rm": ov.get("rm", {})}, section="rm", base=RMConfig(
        task=rl.task, template="chat", n_prompts=200, max_new_tokens=rl.max_new_tokens))
    rm_summary = train_reward_model(rm_cfg, out / "3_rs_sft", out / "4a_rm")
    final = load(RLConfig, None, {"rl": ov.get("final", {})}, section="rl", base=dataclasses.replace(
        rl, rewards={"accuracy": 1.0, "format": 0.2, "rm": 0.5}, reward_model=str(out / "4a_rm"), steps=20))
    train_grpo(final, out / "3_rs_sft", out / "4_final_rl")
    stages["4_final_rl"] = {**report(out / "4_final_rl"), "reward_model": rm_summary}
    return stages
