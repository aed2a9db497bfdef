"""The real-model stage's result as report material: the attention claim and one line per other measurement.

`attention_claim(result)` returns the fields of a report claim (verdict by docs/verdicts.md's "real model"
rule and why, a summary, numbers, plots, source, the rule's anchor, details); the report passes them through.
"""

from __future__ import annotations


def _pct(p: dict) -> str:
    lo, hi = p["ci95"]
    return f"{p['value']:.2f} [{lo:.2f}, {hi:.2f}]"


def _diff(d: dict) -> str:
    lo, hi = d["ci95"]
    return f"{d['value']:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def detail_lines(result: dict) -> list[dict]:
    """One {label, value} per measurement besides disambiguation (syllogisms, ICL, hallucination, lens)."""
    syl, icl, hal, lens = result["syllogisms"], result["icl"], result["hallucination"], result["lens"]
    ce = syl["content_effect"]
    icl_text = "; ".join(
        f"{name}: " + ", ".join(f"{k}-shot {a['value']:.2f}" for k, a in r["accuracy"].items())
        + f" (chance {r['chance']:.2f}); {r['gain']['k']}-shot − 0-shot {_diff(r['gain'])}"
        for name, r in icl.items())
    ct, q = hal["cannot_tell"], hal["questions"]
    settle = [s["mean_settle_fraction"] for s in lens["sentences"]]
    return [
        {"label": "syllogisms (real model)",
         "value": f"accuracy nonce {_pct(syl['nonce']['accuracy'])}, belief-consistent "
                  f"{_pct(syl['consistent']['accuracy'])}, belief-violating {_pct(syl['violating']['accuracy'])}; "
                  f"content effect {_diff(ce)} ({'shown' if ce['shown'] else 'not shown'}); 'yes' chosen "
                  f"{syl['consistent']['yes_rate']:.2f} of the time; log-prob margin content effect "
                  f"{_diff(syl['content_effect_margin'])} nats"},
        {"label": "in-context learning (real model)", "value": icl_text},
        {"label": "hallucination (real model)",
         "value": f"'cannot tell' syllogisms answered yes/no (confident and wrong) {_pct(ct['confident_wrong'])}, "
                  f"'cannot tell' chosen on valid items {_pct(ct['abstained_on_valid'])}; unanswerable questions "
                  f"answered without abstaining {_pct(q['hallucinated'])} (answerable twins correct "
                  f"{_pct(q['correct_answerable'])})"},
        {"label": "logit lens (real model)",
         "value": "the final prediction settles at " + ", ".join(f"{s:.0%}" for s in settle)
                  + f" of the {lens['n_layers']} layers (mean over positions, per sentence)"},
    ]


def attention_claim(result: dict) -> dict:
    """Report fields of the attention claim from a finished real_model stage result."""
    dis = result["disambiguation"]
    v = dis["verdict"]
    lo, hi = v["ci95"]
    share = v["share_items_more"]
    heads = ", ".join(h["head"] for h in dis["top_heads"][:3])
    summary = (f"On {result['model']}, over {share['n']} minimal pairs, an ambiguous word's hidden state moves "
               f"more between its two contexts than a control word in the same slot: by {v['mean_extra_move']:.3f} "
               f"(1 − cos, mean over layers; 95% interval [{lo:.3f}, {hi:.3f}]), for {share['value']:.0%} of the "
               f"words. Heads attending most from the word to the disambiguating cue, beyond the control: {heads}.")
    return {"verdict": v["verdict"], "summary": summary,
            "numbers": {"mean_extra_move": v["mean_extra_move"], "ci95_low": lo, "ci95_high": hi,
                        "share_items_more": share["value"], "pairs": share["n"]},
            "plots": [p for p in dis.get("plots", []) + result["lens"].get("plots", [])],
            "source": "real_model/", "rule": "real-model",  # the anchor of its rule in docs/verdicts.md
            "reason": f"mean extra move {v['mean_extra_move']:.3f} [{lo:.3f}, {hi:.3f}] (needs > 0), words moving more "
                      f"than their control {share['value']:.2f} [{share['ci95'][0]:.2f}, {share['ci95'][1]:.2f}] "
                      "(needs a lower bound > 0.5)",
            "details": detail_lines(result)}
