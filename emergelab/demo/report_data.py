"""Turn the demo's stage outputs into `report.json` (claims with verdicts, model cards, S-curves) and render it.

This module reads the output folder's layout and assembles each claim; the verdict itself comes from the
claim's pre-registered rule in `emergelab.science.verdicts.rules` (docs/verdicts.md), which sees only
numbers. Per-seed, per-item data is used wherever the stages recorded it, so every number a verdict uses
carries an interval from the data.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from emergelab.demo.profiles import get_profile
from emergelab.science.verdicts import RULES_VERSION
from emergelab.science.verdicts import rules as R
from emergelab.science.verdicts.noise import mean_interval, newcombe_diff

NOT_RUN = R.NOT_RUN
RULES_DOC = Path(__file__).resolve().parents[2] / "docs" / "verdicts.md"


def _round(v: Any, digits: int = 1) -> Any:
    return round(v, digits) if _finite(v) else v


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _numbers(d: dict) -> dict:
    """Keep finite numbers and [lo, hi] intervals only (the report shows non-finite values as problems)."""
    out = {}
    for k, v in d.items():
        if _finite(v):
            out[k] = round(float(v), 6) if isinstance(v, float) else v
        elif isinstance(v, list | tuple) and len(v) == 2 and all(_finite(x) for x in v):
            out[k] = [round(float(x), 6) for x in v]
    return out


def _png(out: Path, paths: list[str] | None) -> list[str]:
    """PNG paths relative to `out`, skipping missing ones."""
    rel = []
    for p in paths or []:
        path = Path(p)  # stages record paths absolute, relative to the working directory, or to `out`
        path = path if path.exists() else out / path
        if path.suffix == ".png" and path.exists():
            rel.append(os.path.relpath(path.resolve(), out.resolve()))
    return rel


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _claim(cid: str, v: R.Verdict, summary: str, numbers: dict | None = None, plots: list[str] | None = None,
           source: str = "") -> dict:
    """A report.json claim: the verdict, its reason and a link to its rule in docs/verdicts.md."""
    from emergelab.report.schema import CLAIMS

    doc = f"docs/verdicts.md#{v.rule}"
    return {"id": cid, "title": CLAIMS.get(cid, cid), "claim": CLAIMS.get(cid, cid), "verdict": v.verdict,
            "summary": summary, "numbers": _numbers({**v.numbers, **(numbers or {})}), "plots": plots or [],
            "source": source,
            "rule": {"id": v.rule, "version": RULES_VERSION, "doc": doc,
                     "url": RULES_DOC.as_uri() + f"#{v.rule}" if RULES_DOC.exists() else doc},
            "details": [{"label": "why this verdict", "value": v.reason}]}


def _not_run(cid: str, why: str, rule: str | None = None) -> dict:
    return _claim(cid, R.Verdict(NOT_RUN, why, rule or cid), why)


def _ok(results: dict, name: str) -> dict | None:
    r = results.get(name)
    return r if r and r.get("status") == "ok" else None


def _ci_text(m: float, lo: float, hi: float, signed: bool = False) -> str:
    f = "+.2f" if signed else ".2f"
    return f"{m:{f}} [{lo:{f}}, {hi:{f}}]"


# ------------------------------------------------------------------------------------------ sweep data


def get_sweep_rows(out: Path) -> list[dict]:
    """One row per sweep run (size × budget × seed), smallest model first."""
    path = out / "sweep" / "sweep.json"
    return sorted(json.loads(path.read_text())["rows"], key=lambda r: (r["params"], r.get("seed", 0))) \
        if path.exists() else []


def by_size(rows: list[dict]) -> list[tuple[str, float, list[dict]]]:
    """(size, params, the runs of that size — one per seed), smallest first; the largest budget only."""
    budgets = sorted({str(r.get("budget")) for r in rows})
    top = max(budgets, key=lambda b: max(r["tokens"] for r in rows if str(r.get("budget")) == b)) if budgets else None
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if str(r.get("budget")) == top:
            groups[r["size"]].append(r)
    return sorted(((s, float(g[0]["params"]), g) for s, g in groups.items()), key=lambda t: t[1])


def _eval_of(out: Path, run: dict) -> dict:
    return _read_json(out / "sweep" / "runs" / run["run"] / "sweep_eval.json")


def seed_items(out: Path, runs: list[dict], ability: str, metric: str = "score") -> list[list[float]] | None:
    """Per-seed, per-item values of one ability's metric; for exact match without recorded items, the
    0/1 items implied by the accuracy and n (pairing is then unknown: use them unpaired only)."""
    result = []
    for r in runs:
        ev = _eval_of(out, r).get(ability, {})
        if ev.get("items", {}).get(metric) is not None:
            result.append(ev["items"][metric])
        elif metric == "score" and f"{ability}/exact_match" in r and r.get(f"{ability}/n"):
            n, acc = int(r[f"{ability}/n"]), r[f"{ability}/exact_match"]
            k = round(acc * n)
            result.append([1.0] * k + [0.0] * (n - k))
        else:
            return None
    return result


def _has_items(out: Path, runs: list[dict], ability: str) -> bool:
    return all("items" in _eval_of(out, r).get(ability, {}) for r in runs)


def _seeds(rows: list[dict]) -> int:
    return len({r.get("seed", 0) for r in rows})


# ------------------------------------------------------------------------------------------ claims


def claim_transformer(out: Path, results: dict) -> dict:
    r = _ok(results, "attention")
    if not r:
        return _not_run("transformer", "the inspect stage did not run", "others")
    v = R.transformer_rule(r["hf_max_abs_diff"])
    return _claim("transformer", v,
                  f"The strongest demo model, exported to Hugging Face format, gives logits within "
                  f"{r['hf_max_abs_diff']:.1e} of transformers' LlamaForCausalLM: the architecture is the standard "
                  "decoder-only Transformer.", source="stages/attention.json")


def claim_lm(out: Path, rows: list[dict], inputs: dict | None = None) -> dict:
    if not rows:
        return _not_run("lm", "the sweep did not run")
    import yaml

    from emergelab.report.claim_plots import plot_val_loss

    curves, losses, vocab = {}, {}, None
    for r in rows:
        run = out / "sweep" / "runs" / r["run"]
        hist = [m for m in _read_jsonl(run / "metrics.jsonl") if _finite(m.get("val_loss"))]
        losses[r["run"]] = [m["val_loss"] for m in hist]
        if hist:
            curves[r["run"]] = ([m.get("tokens", m["step"]) for m in hist], losses[r["run"]])
        if vocab is None and (run / "config.yaml").exists():
            vocab = yaml.safe_load((run / "config.yaml").read_text())["model"]["vocab_size"]
    v = R.lm_rule(losses, math.log(vocab or 2))
    if v.verdict == NOT_RUN:
        return _claim("lm", v, "No validation loss was logged, so nothing can be said about held-out prediction.")
    plots = _png(out, plot_val_loss(curves, out / "report_plots" / "val_loss"))
    best = min((r for r in rows if _finite(r.get("val_loss"))), key=lambda r: r["val_loss"])
    bpb = best.get("val_bpb")
    scored = (f"{bpb:.3f} bits/byte) on held-out text" if _finite(bpb) else
              "on the held-out answers; the loss is on answer tokens only, data.loss_on=answers)")
    held = (inputs or {}).get("heldout_loss", {}).get(best["run"], {})
    all_tokens, extra = {}, ""
    if _finite(held.get("loss")) and held.get("ci95"):
        extra = (f" On all tokens of held-out text it scores {_ci_text(held['loss'], *held['ci95'])} nats/token "
                 f"({held['tokens']} tokens).")
        all_tokens = {"heldout_all_token_loss": held["loss"], "heldout_all_token_loss_ci": held["ci95"]}
    return _claim("lm", v,
                  f"Next-token cross-entropy on held-out data: the best model ({best['size']}) reaches "
                  f"{best['val_loss']:.3f} nats/token (perplexity {math.exp(best['val_loss']):.2f}, " + scored
                  + f"; uniform guessing is ln V = {math.log(vocab or 2):.2f}." + extra,
                  {"best_val_loss": best["val_loss"], "best_val_ppl": math.exp(best["val_loss"]),
                   "best_val_bpb": bpb, "ln_vocab": math.log(vocab or 2), **all_tokens}, plots,
                  "sweep/runs/*/metrics.jsonl")


def claim_scaling(out: Path, rows: list[dict], inputs: dict) -> dict:
    import numpy as np

    from emergelab.errors import UserError
    from emergelab.science import scaling

    held = inputs.get("heldout_loss", {})
    pts = [(r, held[r["run"]]["loss"]) for r in rows if _finite(held.get(r["run"], {}).get("loss"))]
    if len(pts) < 5:
        return _not_run("scaling", f"{len(pts)} runs with an all-token held-out loss; the rule needs ≥ 5 "
                                   "(4 to fit, the largest to predict)")
    largest_flops = max(r["flops"] for r, _ in pts)
    fit_pts = [(r, loss) for r, loss in pts if r["flops"] < largest_flops]
    test_pts = [(r, loss) for r, loss in pts if r["flops"] == largest_flops]
    n = np.array([r["params"] for r, _ in fit_pts], dtype=float)
    d = np.array([r["tokens"] for r, _ in fit_pts], dtype=float)
    y = np.array([loss for _, loss in fit_pts])
    chinchilla = len(np.unique(d)) > 1
    try:
        fit = scaling.fit_chinchilla(n, d, y, n_boot=100) if chinchilla else \
            scaling.fit_power_law(n, y, x_name="params", n_boot=100)
    except UserError as e:
        return _not_run("scaling", str(e))
    t = test_pts[0][0]
    predicted = float(fit.predict(np.array([t["params"]]), np.array([t["tokens"]]) if chinchilla else None)[0])
    observed = float(np.mean([loss for _, loss in test_pts]))
    observed_ci = held[test_pts[0][0]["run"]].get("ci95") if len(test_pts) == 1 else None
    v = R.scaling_rule(fit.params["alpha"], tuple(fit.ci95["alpha"]), predicted, observed, len(fit_pts))
    law = "L(N, D) = E + A·N^(−α) + B·D^(−β)" if chinchilla else "L(N) = E + A·N^(−α) at one token budget"
    plots = _png(out, scaling.plot_fit(fit, {"params": n, "tokens": d, "loss": y, "flops": n * d * 6},
                                       out / "report_plots" / "scaling_heldout"))
    return _claim("scaling", v,
                  f"All-token held-out loss of each run's final checkpoint, fitted with {law} on {len(fit_pts)} runs "
                  f"without the largest ({t['size']}): {v.reason}.",
                  {"E": fit.params["E"], "A": fit.params["A"],
                   **({"observed_largest_ci": observed_ci} if observed_ci else {})},
                  plots, "verdict_inputs/inputs.json")


def emergence_rows(out: Path, rows: list[dict]) -> list[dict]:
    """The long table (ability, metric, scale, value, n, seed, items) from the runs' per-item evaluations."""
    long = []
    budgets = {str(r.get("budget")) for r in rows}
    for r in rows:
        for ability, ev in _eval_of(out, r).items():
            name = ability if len(budgets) == 1 else f"{ability}@{r.get('budget')}"
            its = ev.get("items", {})
            metrics = {"exact_match": (ev["exact_match"], its.get("score"))}
            metrics.update({m: (val, its.get(m)) for m, val in ev.get("metrics", {}).items()})
            for m, (val, item_values) in metrics.items():
                if _finite(val):
                    long.append({"ability": name, "metric": m, "scale": r["params"], "value": val, "n": ev["n"],
                                 "seed": r.get("seed", 0), **({"items": item_values} if item_values else {})})
    return long


def claim_emergence(out: Path, rows: list[dict], profile: str) -> dict:
    from emergelab.science import emergence
    from emergelab.science.verdicts.mirage import simulate_mirage_rates

    long = emergence_rows(out, rows)
    if not long:
        return _not_run("emergence", "the sweep recorded no per-ability evaluation")
    tiny = profile == "tiny"
    verdicts = emergence.analyse_table(long, n_boot=10 if tiny else 25)
    plots = []
    for ability, verdict in verdicts.items():
        if verdict.get("emergent") is not None:
            plots += _png(out, emergence.plot_ability(ability, emergence.raw_curves(long, ability), verdict,
                                                      out / "report_plots" / f"emergence_{ability}"))
    (out / "report_plots").mkdir(exist_ok=True)
    (out / "report_plots" / "emergence_verdicts.json").write_text(json.dumps(verdicts, indent=1, default=str))
    v = R.emergence_rule(verdicts)
    scales = sorted({r["scale"] for r in long})
    n_items = int(max(r["n"] for r in long))
    rates = simulate_mirage_rates(scales, n_items, _seeds(rows), worlds=6 if tiny else 20) \
        if len(scales) >= 4 else {}
    numbers = {}
    lines = []
    for a, av in verdicts.items():
        if _finite(av.get("threshold")):
            numbers[f"{a}_threshold_params"] = av["threshold"]
            numbers[f"{a}_threshold_params_ci"] = av["threshold_ci95"]
        beyond = f", threshold interval reaches {av['threshold_beyond']} the tested range" \
            if av.get("threshold_beyond") else ""
        lines.append(f"{a}: emergent={av.get('emergent')}, mirage={av.get('mirage')} ({av.get('mirage_reason')})"
                     + beyond)
    for k in ("false_mirage_rate", "missed_mirage_rate", "jump_world_emergent_rate", "smooth_world_emergent_rate"):
        if k in rates:
            numbers[f"simulated_{k}"] = rates[k]
    sim = (f" Simulated at this design ({len(scales)} sizes, {n_items} items, {_seeds(rows)} seed(s), "
           f"{rates['worlds']} sweeps per world): false-mirage rate {rates['false_mirage_rate']:.2f}, missed-mirage "
           f"rate {rates['missed_mirage_rate']:.2f}; a smooth p^L world looks emergent in "
           f"{rates['smooth_world_emergent_rate']:.2f} of sweeps, a real jump in "
           f"{rates['jump_world_emergent_rate']:.2f}."
           if rates else "")
    c = _claim("emergence", v, f"The same step-vs-smooth test on every metric, noise from the items: {v.reason}."
               + sim, numbers, plots, "sweep/runs/*/sweep_eval.json")
    c["details"].append({"label": "per ability", "value": "; ".join(lines)})
    return c


def claim_icl(out: Path, results: dict, rows: list[dict]) -> dict:
    r = _ok(results, "icl")
    if not r:
        return _not_run("icl", "the ICL experiment did not run")

    def drop(hist: list[dict]) -> dict:
        return R.abrupt_drop([h["step"] for h in hist], [h["repeat_loss"] for h in hist],
                             [max(max(layer) for layer in h["prefix_matching"]) for h in hist])

    seeds = r.get("deep_history_by_seed") or {"0": r["history"][max(r["history"], key=int)]}
    deep = [drop(h) for h in seeds.values()]
    shallow_key = min(r["history"], key=int)
    shallow = drop(r["history"][shallow_key]) if shallow_key != max(r["history"], key=int) else None
    gains = {}  # size → 3-shot − 0-shot exact match on the invented lexicon, with its 95% interval
    for size, _, runs in by_size(rows):
        zero, few = seed_items(out, runs, "lexicon_0shot"), seed_items(out, runs, "lexicon_3shot")
        if zero and few:
            paired = _has_items(out, runs, "lexicon_0shot") and _has_items(out, runs, "lexicon_3shot")
            gains[size] = R.fewshot_gain(zero, few) if paired else \
                newcombe_diff(sum(map(sum, few)), sum(map(len, few)), sum(map(sum, zero)), sum(map(len, zero)))
    gain = gains[list(gains)[-1]] if gains else None
    gain_text = (" Invented lexicon, 3-shot − 0-shot exact match by size: "
                 + ", ".join(f"{s} {_ci_text(*g, signed=True)}" for s, g in gains.items()) + ".") if gains else ""
    v = R.icl_rule(deep, shallow, gain)
    per_seed = ", ".join(f"seed {s}: {d['drop_nats']:.2f} nats over steps {d['window'][0]}–{d['window'][1]} "
                         f"({'phase change' if d['phase_change'] else 'no phase change'})"
                         for s, d in zip(seeds, deep))
    depth = max(r["history"], key=int)
    return _claim("icl", v, f"Induction sequences, {depth}-layer attention-only model — {per_seed}; "
                            f"chance ln V = {r.get('ln_vocab', float('nan')):.2f}." + gain_text,
                  {"repeat_loss_final": r["depths"][max(r["depths"], key=int)]["final_repeat_loss"],
                   **{f"fewshot_gain_{s}": g[0] for s, g in gains.items()},
                   **{f"fewshot_gain_{s}_ci": [g[1], g[2]] for s, g in gains.items()}},
                  _png(out, r.get("plots")), "icl/verdicts.json")


def claim_syllogisms(out: Path, rows: list[dict], inputs: dict) -> dict:
    from emergelab.report.claim_plots import plot_with_intervals

    choice = inputs.get("syllogism_choice", {})
    groups = [(s, p, runs) for s, p, runs in by_size(rows) if all(r["run"] in choice for r in runs)]
    if len(groups) < 2:
        return _not_run("syllogisms", "multiple-choice syllogism scores were not measured at two sizes or more")
    sets = {name: [[choice[r["run"]][name]["items"] for r in runs] for _, _, runs in groups]
            for name in ("nonce", "agree", "conflict")}
    chance = choice[groups[0][2][0]["run"]]["nonce"]["chance"]
    v = R.syllogism_rule([s for s, _, _ in groups], sets["nonce"], sets["agree"], sets["conflict"], chance)
    series = {name: [(p, *mean_interval(items)) for (_, p, _), items in zip(groups, sets[name])] for name in sets}
    plots = _png(out, plot_with_intervals(series, "parameters", "accuracy by choice (log-prob of each option)",
                                          out / "report_plots" / "syllogisms", chance=chance))
    return _claim("syllogisms", v, f"Scored by multiple choice (the most probable answer option): {v.reason}.",
                  {}, plots, "verdict_inputs/inputs.json")


def claim_cot(out: Path, results: dict, rows: list[dict]) -> dict:
    r = _ok(results, "cot_bridge")
    groups = by_size(rows)
    if not r or not groups:
        return _not_run("cot", "the CoT bridge experiment did not run")
    size, _, runs = groups[-1]
    direct, cot = seed_items(out, runs, "add6_direct"), seed_items(out, runs, "add6_scratchpad")
    if not direct or not cot:
        return _not_run("cot", "6-digit addition was not scored direct and with the scratchpad")
    bridge = r["rows"][-1]["bridge_nats"] if r.get("rows") else None
    if not (_has_items(out, runs, "add6_direct") and _has_items(out, runs, "add6_scratchpad")):
        return _not_run("cot", "per-item scores were not recorded, so the paired comparison cannot be made")
    v = R.cot_rule(direct, cot, bridge)
    return _claim("cot", v, f"6-digit addition at {size}, the same items answered directly and after a scratchpad: "
                            f"{v.reason} (trend of the bridge with size: {r.get('bridge_trend_with_size')}).",
                  {}, _png(out, r.get("plots")), "sweep/runs/*/sweep_eval.json, cot_bridge/verdicts.json")


def claim_r1_zero(out: Path, results: dict, inputs: dict) -> dict:
    r = _ok(results, "r1_zero")
    b = inputs.get("r1_zero", {})
    if not r or "rl_greedy" not in b:
        return _not_run("r1_zero", b.get("skipped", "the R1-Zero stage did not run"))
    v = R.r1_zero_rule(b["base_greedy"]["items"], b["base_forced_think"]["items"], b["rl_greedy"]["items"],
                       b["base_greedy"]["think_rate"], b["rl_greedy"]["think_rate"])
    hist = [m for m in _read_jsonl(out / "r1_zero" / "rl" / "metrics.jsonl") if "val_accuracy" in m]
    len0, len1 = (hist[0].get("val_len_mean"), hist[-1].get("val_len_mean")) if hist else (None, None)
    base, rl = r["stages"]["base"], r["stages"]["rl"]
    h0, h1 = base.get("hallucination", {}), rl.get("hallucination", {})
    halluc = ""
    if _finite(h0.get("hallucination_rate")) and _finite(h1.get("hallucination_rate")):
        halluc = (f" On syllogisms whose answer is 'cannot tell', confident wrong answers "
                  f"{h0['hallucination_rate']:.2f} → {h1['hallucination_rate']:.2f} (unparseable answers "
                  f"{h0['unparsed_rate']:.2f} → {h1['unparsed_rate']:.2f}).")
    n = len(b["rl_greedy"]["items"])
    acc = {arm: mean_interval([b[arm]["items"]]) for arm in ("base_greedy", "base_forced_think", "rl_greedy")}
    return _claim("r1_zero", v,
                  f"GRPO with an accuracy reward only, on {n} held-out items: base greedy "
                  f"{_ci_text(*acc['base_greedy'])}, base forced to write the scratchpad "
                  f"{_ci_text(*acc['base_forced_think'])}, RL greedy {_ci_text(*acc['rl_greedy'])}; {v.reason}. "
                  f"Mean sampled response length {_round(len0)} → {_round(len1)} tokens." + halluc,
                  {**{f"accuracy_{arm}": a[0] for arm, a in acc.items()},
                   **{f"accuracy_{arm}_ci": [a[1], a[2]] for arm, a in acc.items()},
                   "len_base": len0, "len_rl": len1},
                  _png(out, [str(p) for p in (out / "r1_zero" / "rl" / "plots").glob("*.png")]),
                  "verdict_inputs/inputs.json, r1_zero/recipe.json")


def claim_tts(out: Path, results: dict) -> dict:
    t = _read_json(out / "tts" / "tts.json")
    if not _ok(results, "tts") or not t:
        return _not_run("tts", "the test-time scaling stage did not run")
    if "greedy" not in t:
        return _not_run("tts", "the greedy baseline was not recorded (tts.json from an older version): re-run tts")
    settings = {f"vote@{s['n']}": s["vote_correct"] for s in t["samples"] if s["n"] > 1}
    settings.update({f"budget@{b['budget']}": b["correct"] for b in t["budgets"]})
    v = R.tts_rule(t["greedy"]["correct"], settings)
    best = {s["n"]: s["best_of_n_accuracy"] for s in t["samples"]}
    curve = ", ".join(f"{k} {sum(c) / len(c):.2f}" for k, c in settings.items())
    accuracy = {k: mean_interval([c]) for k, c in {"greedy": t["greedy"]["correct"], **settings}.items()}
    return _claim("tts", v,
                  f"On {t['items']} items, greedy decoding {t['greedy']['accuracy']:.2f}; {curve}; best-of-"
                  f"{max(best)} with the exact verifier (an oracle bound, not judged) {best[max(best)]:.2f}. "
                  f"{v.reason}.",
                  {**{f"best_of_{k}": val for k, val in best.items()},
                   **{f"accuracy_{k}": a[0] for k, a in accuracy.items()},
                   **{f"accuracy_{k}_ci": [a[1], a[2]] for k, a in accuracy.items()}},
                  _png(out, [str(p) for p in (out / "tts").glob("*.png")]), "tts/tts.json")


def claim_distill(out: Path, results: dict) -> dict:
    r = _ok(results, "distill")
    if not r:
        return _not_run("distill", (results.get("distill") or {}).get("error", "the distillation stage did not run"))
    if "skipped" in r:
        return _not_run("distill", r["skipped"])
    acc = r["heldout_greedy_accuracy"]
    base, dist, rl = acc.get("student_base"), acc.get("student_distilled"), acc.get("student_rl")
    if not all(_finite(x) for x in (base, dist, rl)):
        return _not_run("distill", "the RL arm did not run")
    items = r.get("heldout_items") or {}
    if items.get("student_distilled") and items.get("student_rl"):  # the fair comparison: same items, paired
        from emergelab.science.verdicts.noise import paired_diff_interval

        gain = paired_diff_interval([items["student_distilled"]], [items["student_rl"]])
    else:
        n = int(r.get("heldout_n") or 200)  # rl.distill scores 200 test items
        gain = newcombe_diff(round(dist * n), n, round(rl * n), n)
    matched = bool((r.get("fairness") or {}).get("matched"))
    v = R.distill_rule(base, gain, matched)
    return _claim("distill", v,
                  f"Student ({Path(r['student']).name}): {base:.2f} before, {dist:.2f} after SFT on "
                  f"{r['traces'].get('kept', '?')} verified teacher traces, {rl:.2f} after GRPO on its own at matched "
                  f"training tokens; {v.reason}." + (
                      f" Learning rates chosen on validation items from the same grid: SFT "
                      f"{r['fairness']['chosen_lr']['sft']:g}, GRPO {r['fairness']['chosen_lr']['rl']:g}."
                      if matched else ""),
                  {"student_distilled": dist, "student_rl": rl}, [], "distill/distill.json")


def claim_attention(out: Path, results: dict) -> dict:
    real = _ok(results, "real_model")
    if real and "skipped" not in real:  # the real model decides this claim (science/real_model/claims.py)
        from emergelab.science.real_model.claims import attention_claim

        c = attention_claim(real)
        claim = _claim("attention", R.Verdict(c["verdict"], c["reason"], c["rule"]), c["summary"], c["numbers"],
                       _png(out, c["plots"]), c["source"])
        claim["details"] += c["details"]
        return claim
    r = _ok(results, "attention")
    if not r:
        return _not_run("attention", "the inspect stage did not run")
    v = R.attention_rule(r["best_score"], r["uniform_baseline"])
    return _claim("attention", v,
                  (f"Real model: {real['skipped']}. " if real else "") +
                  f"Our character-level models cannot show the essays' 'bank' example; on a repeated random string, "
                  f"head {r['best_head']} puts {r['best_score']:.2f} of its attention on the token after the earlier "
                  f"occurrence: {v.reason}.",
                  {"best_prefix_matching": r["best_score"], "uniform_baseline": r["uniform_baseline"]},
                  _png(out, r.get("plots")), "attention/")


def claim_classics(out: Path, results: dict) -> dict:
    r = _ok(results, "classics")
    if not r:
        return _not_run("classics", "the classics stage did not run", "others")
    xor, fgsm = r["xor"], r["fgsm"]
    attack_works = fgsm["accuracy_drop"] > 0.1 and fgsm["random_noise_accuracy_drop"] < 0.05
    off_manifold = fgsm["off_manifold_part_accuracy_drop"] > fgsm["on_manifold_part_accuracy_drop"]
    v = R.classics_rule(bool(xor.get("claim_holds")), attack_works, off_manifold)
    return _claim("classics", v,
                  f"XOR: a perceptron reaches {xor['perceptron_best_accuracy']:.2f}, the essay's hand-set 2-layer "
                  f"network {xor['essay_network_accuracy']:.2f}, a trained MLP {xor['trained_mlp_accuracy']:.2f}. "
                  f"FGSM at L∞ ε={fgsm['attack']['eps_linf']}: accuracy {fgsm['clean_accuracy']:.2f} → "
                  f"{fgsm['attack']['acc_fgsm']:.2f} (random signs of the same size: "
                  f"{fgsm['attack']['acc_random_sign']:.2f}). Split along the data manifold, the off-manifold part "
                  f"alone costs {fgsm['off_manifold_part_accuracy_drop']:.3f} accuracy and the on-manifold part "
                  f"{fgsm['on_manifold_part_accuracy_drop']:.3f}"
                  + (" — the damage is off the manifold, as the essay says." if off_manifold else
                     " — here the damage comes from the on-manifold part, against the essay's account."),
                  {"perceptron_accuracy": xor["perceptron_best_accuracy"],
                   "trained_mlp_accuracy": xor["trained_mlp_accuracy"], "fgsm_accuracy_drop": fgsm["accuracy_drop"],
                   "random_noise_drop": fgsm["random_noise_accuracy_drop"],
                   "off_manifold_part_drop": fgsm["off_manifold_part_accuracy_drop"],
                   "on_manifold_part_drop": fgsm["on_manifold_part_accuracy_drop"],
                   "off_manifold_energy_fraction": fgsm["attack"]["off_manifold_energy_fraction"]},
                  _png(out, xor.get("plots", []) + fgsm.get("plots", [])), "classics/")


def claim_grokking(out: Path, results: dict) -> dict:
    r = _ok(results, "grokking")
    if not r:
        return _not_run("grokking", "the grokking experiment did not run", "others")
    test_then = r.get("test_acc_when_train_reached_99") or 0.0
    return _claim("grokking", R.grokking_rule(bool(r.get("grokked"))),
                  f"Modular addition (p={r['config']['p']}): train accuracy reaches 99% at epoch "
                  f"{r.get('epoch_train_acc_99')} (test accuracy then {test_then:.3f}); "
                  f"test accuracy passes 50% at epoch {r.get('epoch_test_acc_50')} and 95% at "
                  f"{r.get('epoch_test_acc_95')}.",
                  {k: r.get(k) for k in ("epoch_train_acc_99", "epoch_test_acc_50", "epoch_test_acc_95",
                                         "final_test_acc")},
                  _png(out, r.get("plots")), "grokking/verdicts.json")


# ------------------------------------------------------------------------------------------ assembly


def model_cards(out: Path, rows: list[dict]) -> list[dict]:
    cards = []
    for r in rows:
        run = out / "sweep" / "runs" / r["run"]
        summary = json.loads((run / "summary.json").read_text())
        cards.append({"name": f"pretrain {r['size']} seed {r.get('seed', 0)}", "params": r["params"],
                      "tokens": r["tokens"], "flops": r["flops"], "train_seconds": summary["train_seconds"],
                      "tokens_per_s": r["tokens"] / max(summary["train_seconds"], 1e-9),
                      "val_loss": r["val_loss"], "run_dir": os.path.relpath(run, out)})
    return cards


def s_curves(out: Path, rows: list[dict], results: dict) -> dict:
    curves: dict[str, dict] = {}
    if rows:
        r = rows[-1]
        per_token = r["flops"] / max(r["tokens"], 1)
        hist = [m for m in _read_jsonl(out / "sweep" / "runs" / r["run"] / "metrics.jsonl") if "val_loss" in m]
        if hist:
            curves["pretrain"] = {"flops": [m["tokens"] * per_token for m in hist],
                                  "loss": [m["val_loss"] for m in hist]}
    if _ok(results, "r1_zero") and rows:
        import yaml

        n = rows[-1]["params"]
        rl = yaml.safe_load((out / "r1_zero" / "rl" / "config.yaml").read_text())["rl"]
        per_step = rl["prompts_per_step"] * rl["group_size"]
        total, xs, ys = 0.0, [], []
        for m in _read_jsonl(out / "r1_zero" / "rl" / "metrics.jsonl"):
            if "len_mean" in m and _finite(m["len_mean"]):
                # ≈ 2N per sampled token + 6N per trained token (prompt tokens not counted)
                total += 8 * n * per_step * m["len_mean"]
            if "val_accuracy" in m and m["step"] > 0:
                xs.append(total)
                ys.append(m["val_accuracy"])
        if xs:
            curves["rl"] = {"flops": xs, "accuracy": ys}
    tts_path = out / "tts" / "tts.json"
    if _ok(results, "tts") and tts_path.exists() and rows:
        t = json.loads(tts_path.read_text())
        n = rows[-1]["params"]
        pts = [(2 * n * s["tokens"] / max(t["items"], 1), s["vote_accuracy"]) for s in t["samples"] if s["tokens"]]
        if pts:
            curves["tts"] = {"flops": [p[0] for p in pts], "accuracy": [p[1] for p in pts]}
    return curves


def _guarded(cid: str, fn, *args) -> dict:
    """One claim; a bug in its assembly shows as "not run" with the error (and a traceback on stderr) instead
    of losing the whole report."""
    try:
        return fn(*args)
    except Exception as e:  # any failure here means the same thing to the reader: this claim was not judged
        import traceback

        traceback.print_exc()
        return _not_run(cid, f"the report could not judge this claim ({type(e).__name__}: {e})",
                        {"transformer": "others", "classics": "others", "grokking": "others"}.get(cid, cid))


def build_report(out: Path, profile: str, results: dict) -> dict:
    """Write OUT/report.json and OUT/report.html; returns the verdict of each claim."""
    from emergelab.report import render_report, validate_report

    rows = get_sweep_rows(out)
    inputs = _read_json(out / "verdict_inputs" / "inputs.json")
    r1_note = ("the full R1 recipe (cold-start SFT → GRPO → rejection sampling → SFT → GRPO with a reward model) is "
               "not part of the demo's time budget: run `emergelab recipe r1 --init RUN`")
    claims = [
        _guarded("transformer", claim_transformer, out, results), _guarded("lm", claim_lm, out, rows, inputs),
        _guarded("scaling", claim_scaling, out, rows, inputs),
        _guarded("emergence", claim_emergence, out, rows, profile),
        _guarded("icl", claim_icl, out, results, rows), _guarded("syllogisms", claim_syllogisms, out, rows, inputs),
        _guarded("cot", claim_cot, out, results, rows), _not_run("r1", r1_note, "r1_zero"),
        _guarded("r1_zero", claim_r1_zero, out, results, inputs), _guarded("tts", claim_tts, out, results),
        _guarded("distill", claim_distill, out, results), _guarded("attention", claim_attention, out, results),
        _guarded("classics", claim_classics, out, results), _guarded("grokking", claim_grokking, out, results),
    ]
    seconds = sum(r.get("seconds", 0) for r in results.values() if isinstance(r, dict))
    title = "emergelab: where does a language model's intelligence come from?"
    if profile == "tiny":
        title += " (tiny profile: a smoke test of every stage; its verdicts are not claims)"
    report = {
        "title": title,
        "profile": profile, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "cores": os.cpu_count()},
        "wall_seconds": seconds, "claims": claims, "model_cards": model_cards(out, rows),
        "s_curves": s_curves(out, rows, results), "rules_version": RULES_VERSION,
        "profile_note": get_profile(profile).get("expected", ""),
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    render_report(out)
    problems = validate_report(report, out)
    return {"verdicts": {c["id"]: c["verdict"] for c in claims}, "problems": problems}
