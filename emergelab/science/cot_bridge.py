"""Chain of thought as an information bridge (essays 002/003): how much a verified reasoning trace raises
the log-probability of the right answer, at each model size.

For every run and every held-out item we compare, teacher-forced,

    log p(answer | question)                 — the "direct" format: question, then <answer>
    log p(answer | question, reference CoT)  — the "cot" format: question, <think> the task's own worked
                                               solution </think>, then <answer>

The reference chain of thought is the task generator's worked solution, kept only when the task's verifier
accepts it. The bridge is the mean difference in nats (also per answer token). If reasoning steps carry
information the model cannot produce in one forward pass, the gap is positive; how it changes with scale
is the measurement (it can shrink when bigger models compute the answer directly).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from emergelab.errors import UserError


def bridge_for_run(run_dir: str | Path, task_spec: str, n: int = 100, seed: int = 0) -> dict:
    """Mean answer log-prob without and with the verified reference CoT, for one run."""
    from emergelab.data.chat import ANSWER_CLOSE, encode_prompt
    from emergelab.eval.harness import answer_context, answer_logprobs, prompt_text
    from emergelab.runs import load_model
    from emergelab.tasks.registry import get_task

    task = get_task(task_spec)
    if not task.supports_cot:
        raise UserError(f"task: {task.spec} has no chain-of-thought format — use e.g. add:digits=6")
    model, tokenizer, _ = load_model(run_dir, device="cpu")
    model.eval()
    examples = [ex for ex in task.generate(n, "test", seed=seed)
                if ex.cot is not None and task.verify(ex, task.render_target(ex, cot=True)).score >= 1.0]
    if not examples:
        raise UserError(f"task: {task.spec} produced no verified chains of thought")
    answers = [tokenizer.encode(ex.answer + ANSWER_CLOSE) for ex in examples]
    logp = {}
    for fmt in ("direct", "cot"):
        contexts = [encode_prompt(tokenizer, prompt_text(task, ex, [], fmt, "plain"))
                    + tokenizer.encode(answer_context(ex, fmt)) for ex in examples]
        logp[fmt] = np.array(answer_logprobs(model, tokenizer, contexts, answers))
    gap = logp["cot"] - logp["direct"]
    n_tok = np.array([len(a) for a in answers])
    return {
        "run": str(run_dir),
        "params": model.num_params(),
        "n": len(examples),
        "logp_direct": float(logp["direct"].mean()),
        "logp_cot": float(logp["cot"].mean()),
        "bridge_nats": float(gap.mean()),
        "bridge_nats_stderr": float(gap.std(ddof=1) / math.sqrt(len(gap))) if len(gap) > 1 else None,
        "bridge_nats_per_answer_token": float((gap / n_tok).mean()),
        "p_direct": float(np.exp(logp["direct"]).mean()),
        "p_cot": float(np.exp(logp["cot"]).mean()),
    }


def _find_runs(runs: list[str] | None, sweep: str | None) -> list[Path]:
    if runs:
        return [Path(r) for r in runs]
    if sweep:
        found = sorted(p.parent for p in Path(sweep).glob("runs/*/summary.json"))
        if found:
            return found
        raise UserError(f"sweep: no finished runs under {sweep}/runs — run `emergelab sweep` first")
    raise UserError("cot-bridge: needs trained runs — pass runs=[RUN_DIR, ...] or sweep=SWEEP_DIR")


def cot_bridge_experiment(out_dir: str | Path, profile: str = "quick", overrides: dict | None = None) -> dict:
    """The bridge at every run of a sweep (or a list of runs), sorted by size, with a plot."""
    from emergelab.science.common import progress
    from emergelab.science.plots import new_figure, save_figure

    opts = {"task": "add:digits=6", "n": {"tiny": 16, "quick": 100, "gpu": 500}[profile], "seed": 0,
            "runs": None, "sweep": None, **(overrides or {})}
    unknown = set(opts) - {"task", "n", "seed", "runs", "sweep"}
    if unknown:
        raise UserError(f"cot-bridge: unknown setting(s) {', '.join(sorted(unknown))} — use task, n, seed, runs, sweep")
    run_dirs = _find_runs(opts["runs"], opts["sweep"])
    rows = [bridge_for_run(r, opts["task"], int(opts["n"]), int(opts["seed"]))
            for r in progress(run_dirs, total=len(run_dirs), desc="cot bridge")]
    rows.sort(key=lambda r: r["params"])
    params = [r["params"] for r in rows]
    fig, (ax, ax2) = new_figure(ncols=2, width=4.4)
    ax.plot(params, [r["logp_direct"] for r in rows], marker="o", label="log p(answer | question)")
    ax.plot(params, [r["logp_cot"] for r in rows], marker="o", label="log p(answer | question, verified CoT)")
    ax.set_ylabel("mean answer log-prob (nats)")
    ax2.errorbar(params, [r["bridge_nats"] for r in rows], yerr=[r["bridge_nats_stderr"] or 0 for r in rows],
                 marker="o", color="C2")
    ax2.axhline(0, color="gray", ls=":", lw=1)
    ax2.set_ylabel("bridge: CoT − direct (nats)")
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_xlabel("parameters")
    ax.legend(fontsize=7)
    ax.set_title(opts["task"], fontsize=9)
    plots = save_figure(fig, Path(out_dir) / "cot_bridge")
    positive = [r["bridge_nats"] - 2 * (r["bridge_nats_stderr"] or 0) > 0 for r in rows]
    return {
        "experiment": "cot-bridge",
        "task": opts["task"],
        "rows": rows,
        "cot_helps_at_every_size": all(positive),
        "sizes_where_cot_helps": [r["params"] for r, p in zip(rows, positive) if p],
        "bridge_trend_with_size": _trend([r["bridge_nats"] for r in rows]),
        "plots": plots,
    }


def _trend(values: list[float]) -> str | None:
    """"grows" / "shrinks" / "mixed" along increasing size (None for fewer than 2 sizes)."""
    if len(values) < 2:
        return None
    diffs = np.diff(values)
    return "grows" if np.all(diffs > 0) else "shrinks" if np.all(diffs < 0) else "mixed"
