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

import json
from pathlib import Path

from emergelab.config import parse_overrides, to_dict
from emergelab.errors import UserError
from emergelab.model import SamplingParams, generate
from emergelab.tasks.base import cut_at_stop, sampling_stops
from emergelab.train.sft import encode_prompt, render_prompt

UNANSWERABLE = "cannot tell"


def hallucination_rate(model, tok, task_spec: str = "syllogism", n: int = 100, template: str = "plain",
                       max_new_tokens: int = 80, seed: int = 0) -> dict:
    """Share of confident wrong assertions on held-out items whose answer is "cannot tell"."""
    from emergelab.tasks.registry import get_task

    task = get_task(task_spec)
    pool = task.generate(20 * n, "test", seed=seed) if n else []
    items = [ex for ex in pool if ex.answer.strip().lower() == UNANSWERABLE][:n]
    if not items:
        return {"task": task_spec, "items": 0, "note": "no 'cannot tell' items"}
    try:
        prompts = [encode_prompt(tok, render_prompt(task, ex, template)) for ex in items]
    except UserError as e:  # the model's alphabet cannot even write this task
        return {"task": task_spec, "items": 0, "note": str(e)}
    comps = generate(model, prompts, SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0,
                                                    **sampling_stops(tok)), tokenizer=tok)
    asserted = abstained = 0
    for ex, c in zip(items, comps):
        v = task.verify(ex, cut_at_stop(tok.decode(c.tokens)))
        if v.predicted is None:
            abstained += 1
        elif v.score < 1:
            asserted += 1
    return {"task": task_spec, "items": len(items), "hallucination_rate": asserted / len(items),
            "unparsed_rate": abstained / len(items), "cannot_tell_rate": 1 - (asserted + abstained) / len(items)}


def _stage_report(run: Path, task, template: str, cfg: dict) -> dict:
    from emergelab.runs import load_model
    from emergelab.train.sft import greedy_accuracy

    model, tok, _ = load_model(run)
    eval_set = task.generate(cfg.get("eval_n", 200), "test", seed=0)
    report = {"run": str(run), **greedy_accuracy(model, tok, task, eval_set, template, cfg.get("max_new_tokens", 80))}
    report["hallucination"] = hallucination_rate(model, tok, cfg.get("halluc_task", "syllogism"),
                                                 cfg.get("halluc_n", 100), template)
    return report


def run_recipe(name: str, init: str | Path, out: str | Path, overrides: list[str] | None = None) -> dict:
    from emergelab.rl.trainer import load_rl_config, train_grpo
    from emergelab.tasks.registry import get_task

    ov = parse_overrides(overrides or [])
    unknown = set(ov) - {"rl", "sft", "rs", "rm", "final", "halluc"}
    if unknown:
        raise UserError(f"recipe overrides: unknown section(s) {sorted(unknown)} — use rl., sft., rs., rm., "
                        "final. or halluc.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    halluc = {"halluc_task": "syllogism", "halluc_n": 100, **ov.get("halluc", {})}
    flat = lambda section: [f"{section}.{k}={v}" for k, v in ov.get(section, {}).items()]  # noqa: E731

    if name == "r1-zero":
        rl = load_rl_config(None, ["rl.steps=40", *flat("rl")])
        task = get_task(rl.task)
        stages = {"base": _stage_report(Path(init), task, rl.template, {**halluc, **to_dict(rl)})}
        train_grpo(rl, init, out / "rl")
        stages["rl"] = _stage_report(out / "rl", task, rl.template, {**halluc, **to_dict(rl)})
    elif name == "r1":
        stages = _run_r1(Path(init), out, ov, flat, halluc)
    else:
        raise UserError(f"recipe: unknown recipe {name!r} — choose r1-zero or r1")
    result = {"recipe": name, "init": str(init), "stages": stages}
    (out / "recipe.json").write_text(json.dumps(result, indent=1))
    return result


def _run_r1(init: Path, out: Path, ov: dict, flat, halluc: dict) -> dict:
    from emergelab.rl.reward_model import load_rm_config, train_reward_model
    from emergelab.rl.trainer import load_rl_config, train_grpo
    from emergelab.tasks.registry import get_task
    from emergelab.train.sft import load_sft_config, task_pairs, train_sft

    rl = load_rl_config(None, ["rl.template=chat", "rl.steps=30", "rl.loss_agg=seq_mean", "rl.adv_scale=group",
                               "rl.beta=0.04", "rl.rewards={accuracy: 1.0, format: 0.2, consistency: 0.1}",
                               *flat("rl")])
    task = get_task(rl.task)
    rep = {**halluc, "max_new_tokens": rl.max_new_tokens}
    stages = {"base": _stage_report(init, task, "chat", rep)}

    cold = load_sft_config(None, [f"sft.task={rl.task}", "sft.n=3000", "sft.template=chat", "sft.epochs=3",
                                  f"sft.max_new_tokens={rl.max_new_tokens}", "train.seq_len=256", *flat("sft")])
    train_sft(cold, init, out / "1_cold_sft")
    stages["1_cold_sft"] = _stage_report(out / "1_cold_sft", task, "chat", rep)

    train_grpo(rl, out / "1_cold_sft", out / "2_reason_rl")
    stages["2_reason_rl"] = _stage_report(out / "2_reason_rl", task, "chat", rep)

    # 3. rejection sampling from the stage-2 policy + non-reasoning (direct-answer) data, SFT on the base
    from emergelab.rl.distill import teacher_traces
    from emergelab.runs import load_model

    rs = {"n": 3000, "samples": 4, "direct_fraction": 0.3, **ov.get("rs", {})}
    model, tok, _ = load_model(out / "2_reason_rl")
    kept, counts = teacher_traces(model, tok, task, rs["n"], rs["samples"], "chat", rl.max_new_tokens, seed=1)
    direct = task_pairs(rl.task, max(1, int(rs["direct_fraction"] * max(1, len(kept)))), cot_fraction=0.0, seed=2)
    rs_cfg = load_sft_config(None, [f"sft.task={rl.task}", "sft.template=chat", "sft.epochs=2",
                                    f"sft.max_new_tokens={rl.max_new_tokens}", "train.seq_len=256", *flat("sft")])
    train_sft(rs_cfg, init, out / "3_rs_sft", pairs=kept + direct)
    stages["3_rs_sft"] = {**_stage_report(out / "3_rs_sft", task, "chat", rep), "rejection_sampling": counts,
                          "non_reasoning_pairs": len(direct)}

    # 4. reward model on stage-3 samples, then RL with rule + preference rewards
    rm_cfg = load_rm_config(None, [f"rm.task={rl.task}", "rm.template=chat", "rm.n_prompts=200",
                                   f"rm.max_new_tokens={rl.max_new_tokens}", *flat("rm")])
    rm_summary = train_reward_model(rm_cfg, out / "3_rs_sft", out / "4a_rm")
    final = load_rl_config(None, [*[f"rl.{k}={json.dumps(v)}" for k, v in to_dict(rl).items()
                                    if k not in ("rewards", "reward_model")],
                                  "rl.rewards={accuracy: 1.0, format: 0.2, rm: 0.5}",
                                  f"rl.reward_model={out / '4a_rm'}",
                                  "rl.steps=20", *[f"rl.{k}={v}" for k, v in ov.get("final", {}).items()]])
    train_grpo(final, out / "3_rs_sft", out / "4_final_rl")
    stages["4_final_rl"] = {**_stage_report(out / "4_final_rl", task, "chat", rep), "reward_model": rm_summary}
    return stages
