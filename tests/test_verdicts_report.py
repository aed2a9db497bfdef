"""The report layer applies the rules to what the stages wrote: synthetic output folders with a known answer."""

import json

import yaml

from emergelab.demo import report_data as rd


def _items(k: int, n: int = 100) -> list[int]:
    return [1] * k + [0] * (n - k)


def _run(out, name, size, params, val_losses):
    run = out / "sweep" / "runs" / name
    run.mkdir(parents=True)
    lines = [{"step": i * 10, "tokens": i * 1000, "loss": 3.0} for i in range(3)]
    for line, v in zip(lines, val_losses):
        line["val_loss"] = v
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in lines))
    (run / "config.yaml").write_text(yaml.safe_dump({"model": {"vocab_size": 64}}))
    return {"run": name, "size": size, "seed": 0, "budget": "300 steps", "params": params, "tokens": 3000,
            "flops": 6 * params * 3000, "val_loss": val_losses[-1] if val_losses else None}


def test_lm_claim_without_a_logged_validation_loss_is_not_run(tmp_path):
    rows = [_run(tmp_path, "10k", "10k", 1e4, []), _run(tmp_path, "30k", "30k", 3e4, [])]
    assert rd.claim_lm(tmp_path, rows)["verdict"] == "not run"


def test_lm_claim_with_falling_validation_loss_is_reproduced_and_links_its_rule(tmp_path):
    rows = [_run(tmp_path, "10k", "10k", 1e4, [4.1, 3.0, 2.5]), _run(tmp_path, "30k", "30k", 3e4, [4.1, 2.5, 2.0])]
    claim = rd.claim_lm(tmp_path, rows)
    assert claim["verdict"] == "reproduced"
    assert claim["rule"]["doc"] == "docs/verdicts.md#lm" and claim["rule"]["version"] >= 1


def _tts(out, greedy, votes, budgets):
    (out / "tts").mkdir(parents=True)
    doc = {"items": len(greedy), "greedy": {"accuracy": sum(greedy) / len(greedy), "correct": greedy},
           "samples": [{"n": n, "vote_correct": c, "best_of_n_accuracy": min(1.0, sum(c) / len(c) + 0.05),
                        "vote_accuracy": sum(c) / len(c), "tokens": 100} for n, c in votes.items()],
           "budgets": [{"budget": b, "correct": c, "accuracy": sum(c) / len(c)} for b, c in budgets.items()]}
    (out / "tts" / "tts.json").write_text(json.dumps(doc))
    return {"tts": {"status": "ok"}}


def test_tts_claim_flat_votes_and_truncated_budgets_are_not_reproduced(tmp_path):
    # the quick run: vote 0.62 → 0.89 climbs back to greedy's 0.90; budgets cut the scratchpad
    results = _tts(tmp_path, _items(90), {1: _items(62), 4: _items(80), 16: _items(89)},
                   {8: _items(0), 32: _items(0), 64: _items(0), 120: _items(90)})
    assert rd.claim_tts(tmp_path, results)["verdict"] == "not reproduced"


def test_tts_claim_vote_beyond_greedy_is_reproduced(tmp_path):
    results = _tts(tmp_path, _items(50), {1: _items(45), 16: _items(85)}, {8: _items(0)})
    assert rd.claim_tts(tmp_path, results)["verdict"] == "reproduced"


def test_syllogism_claim_at_chance_is_not_reproduced(tmp_path):
    rows = [{"run": f"r{i}", "size": s, "seed": 0, "budget": "b", "params": p, "tokens": 1}
            for i, (s, p) in enumerate((("5k", 5e3), ("100k", 1e5)))]
    inputs = {"syllogism_choice": {r["run"]: {
        "nonce": {"items": _items(26), "chance": 0.25}, "agree": {"items": _items(50), "chance": 0.5},
        "conflict": {"items": _items(50), "chance": 0.5}} for r in rows}}
    claim = rd.claim_syllogisms(tmp_path, rows, inputs)
    assert claim["verdict"] == "not reproduced" and "chance" in claim["summary"]


def _sweep(out, sizes, seeds, em_by_size, char_by_size, n=100):
    """A synthetic multi-seed sweep: add4_reversed scored per item at every (size, seed)."""
    rows = []
    for size, params in sizes:
        for seed in seeds:
            name = f"{size}_s{seed}"
            run = out / "sweep" / "runs" / name
            run.mkdir(parents=True)
            em = _items(round(em_by_size[size] * n), n)
            char = [min(1.0, c) for c in [char_by_size[size]] * n]
            ev = {"add4_reversed": {"exact_match": sum(em) / n, "n": n, "metrics": {"char_accuracy": char[0]},
                                    "items": {"score": em, "char_accuracy": char}}}
            (run / "sweep_eval.json").write_text(json.dumps(ev))
            rows.append({"run": name, "size": size, "seed": seed, "budget": "2000 steps", "params": params,
                         "tokens": 8e6, "flops": 6 * params * 8e6, "val_loss": 1.0})
    return rows


SIZES = [("5k", 5e3), ("15k", 15e3), ("30k", 30e3), ("50k", 50e3), ("100k", 1e5)]


def test_scaling_claim_predicts_the_largest_run_from_the_others(tmp_path):
    rows = _sweep(tmp_path, SIZES, [0], {s: 0.0 for s, _ in SIZES}, {s: 0.2 for s, _ in SIZES})
    law = {r["run"]: {"loss": 1.5 + 40 * r["params"] ** -0.4} for r in rows}
    assert rd.claim_scaling(tmp_path, rows, {"heldout_loss": law})["verdict"] == "reproduced"
    off = dict(law)
    off["100k_s0"] = {"loss": law["100k_s0"]["loss"] * 0.6}  # far below the law (the 2.7x)
    assert rd.claim_scaling(tmp_path, rows, {"heldout_loss": off})["verdict"] == "not reproduced"


def test_emergence_claim_on_a_three_seed_sweep(tmp_path):
    em = {"5k": 0.0, "15k": 0.0, "30k": 0.0, "50k": 1.0, "100k": 1.0}
    char = {"5k": 0.22, "15k": 0.21, "30k": 0.23, "50k": 1.0, "100k": 1.0}
    rows = _sweep(tmp_path, SIZES, [0, 1, 2], em, char)
    claim = rd.claim_emergence(tmp_path, rows, "tiny")  # fewer bootstrap draws; the same rule
    assert claim["verdict"] == "reproduced"  # exact match and character accuracy jump together
    assert "false-mirage rate" in claim["summary"] and "simulated_false_mirage_rate" in claim["numbers"]


def test_a_claim_whose_inputs_are_malformed_is_not_run_with_the_error_not_a_crash(tmp_path):
    (tmp_path / "tts").mkdir()
    (tmp_path / "tts" / "tts.json").write_text(json.dumps({"items": 3, "greedy": {"accuracy": 0.5}}))  # no items
    claim = rd._guarded("tts", rd.claim_tts, tmp_path, {"tts": {"status": "ok"}})
    assert claim["verdict"] == "not run" and "KeyError" in claim["summary"]
