"""Analysing a finished sweep: seeds grouped per size, across-seed aggregates, scaling fits, emergence verdicts.

A sweep (science/sweep.py) leaves one row per (size, budget, seed). A claim read off one seed is an
anecdote — the README's own seed table shows a 50k model at 0.00 with seed 0 and 0.955 with seeds 1
and 2 — so every per-size number here is an aggregate over seeds: the mean, the min–max range and a
95% percentile-bootstrap interval of the mean, resampling seeds with replacement (Efron & Tibshirani
1993, ch. 13). With 3 seeds that interval is coarse (it cannot be wider than min–max); it is reported
beside min–max rather than instead of it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from emergelab.errors import UserError

ID_COLUMNS = ("run", "size", "seed", "budget")


def read_rows(out_dir: str | Path) -> list[dict]:
    """The rows of a finished sweep, one per (size, budget, seed): OUT/sweep.json, else OUT/sweep.csv."""
    out_dir = Path(out_dir)
    if (out_dir / "sweep.json").is_file():
        return json.loads((out_dir / "sweep.json").read_text())["rows"]
    if not (out_dir / "sweep.csv").is_file():
        raise UserError(f"sweep: no sweep.json or sweep.csv in {out_dir} — run `emergelab sweep RECIPE --out "
                        f"{out_dir}` first")
    with (out_dir / "sweep.csv").open(newline="") as f:
        return [{k: _number(k, v) for k, v in r.items()} for r in csv.DictReader(f)]


def _number(key: str, text: str) -> Any:
    if key in ("run", "size", "budget"):
        return text
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if key == "seed" or (value.is_integer() and "/" not in key and "loss" not in key) else value


def seed_groups(rows: list[dict]) -> list[dict]:
    """Rows grouped per (size, budget), smallest model first:
    [{"size", "budget", "params", "seeds": [0, 1, 2], "rows": [row of seed 0, row of seed 1, ...]}, ...]."""
    groups: dict[tuple, dict] = {}
    for r in rows:
        g = groups.setdefault((r["size"], r["budget"]), {"size": r["size"], "budget": r["budget"],
                                                         "params": r.get("params"), "rows": []})
        g["rows"].append(r)
    out = []
    for g in groups.values():
        g["rows"].sort(key=lambda r: r["seed"])
        g["seeds"] = [r["seed"] for r in g["rows"]]
        out.append(g)
    return sorted(out, key=lambda g: (g["params"] or 0, str(g["budget"])))


def across_seeds(values: list[float], n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean, min, max and a 95% bootstrap interval of the mean over the seeds' values (NaN/None dropped)."""
    x = np.array([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], float)
    if x.size == 0:
        return {"n_seeds": 0, "mean": None, "min": None, "max": None, "ci95": [None, None]}
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"n_seeds": int(x.size), "mean": float(x.mean()), "min": float(x.min()), "max": float(x.max()),
            "ci95": [float(lo), float(hi)]}


def metric_columns(rows: list[dict]) -> list[str]:
    """Numeric columns worth aggregating: losses and every ability's metrics (not ids or counts)."""
    skip = set(ID_COLUMNS) | {"params", "non_embedding_params", "tokens", "flops", "steps"}
    cols = {k for r in rows for k, v in r.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return sorted(c for c in cols - skip if not c.endswith("/n"))


def per_size(rows: list[dict], n_boot: int = 2000) -> list[dict]:
    """One record per (size, budget): ids, params, seeds, and `across_seeds` of every metric column."""
    columns = metric_columns(rows)
    return [{"size": g["size"], "budget": g["budget"], "params": g["params"], "seeds": g["seeds"],
             "metrics": {c: across_seeds([r.get(c) for r in g["rows"]], n_boot) for c in columns}}
            for g in seed_groups(rows)]


def write_per_size(records: list[dict], out_dir: Path) -> None:
    """OUT/sweep_by_size.json and a long OUT/sweep_by_size.csv (size, budget, params, metric, n_seeds, mean, …)."""
    (out_dir / "sweep_by_size.json").write_text(json.dumps(records, indent=1))
    with (out_dir / "sweep_by_size.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["size", "budget", "params", "metric", "n_seeds", "mean", "min", "max", "ci95_lo", "ci95_hi"])
        for rec in records:
            for name, a in rec["metrics"].items():
                w.writerow([rec["size"], rec["budget"], rec["params"], name, a["n_seeds"],
                            *("" if v is None else repr(v) for v in (a["mean"], a["min"], a["max"], *a["ci95"]))])


def plot_abilities(rows: list[dict], out_dir: Path) -> dict[str, list[str]]:
    """Per ability: exact match and its continuous metrics vs parameters, every seed's point drawn,
    the across-seed mean as a line and its 95% interval as a band (OUT/emergence/<ability>_seeds.png)."""
    from emergelab.science.plots import new_figure, plot_seed_curve, save_figure

    groups, columns = seed_groups(rows), metric_columns(rows)
    abilities = sorted({c.split("/", 1)[0] for c in columns if "/" in c})
    paths = {}
    for ability in abilities:
        metrics = [c for c in columns if c.startswith(f"{ability}/")]
        metrics.sort(key=lambda c: (not c.endswith("/exact_match"), c))
        fig, axes = new_figure(ncols=len(metrics), width=3.6, height=3.0)
        for ax, column in zip(axes, metrics):
            sized = [(g["params"], [v for r in g["rows"] if (v := r.get(column)) is not None]) for g in groups]
            sized = [(x, values) for x, values in sized if x and values]
            stats = [across_seeds(values) for _, values in sized]
            plot_seed_curve(ax, [x for x, _ in sized], [values for _, values in sized], [a["mean"] for a in stats],
                            [tuple(a["ci95"]) for a in stats], title=column.split("/", 1)[-1])
        fig.suptitle(f"{ability}: every seed (dots), mean (line), 95% interval over seeds (band)", fontsize=9)
        paths[ability] = save_figure(fig, out_dir / "emergence" / f"{ability}_seeds")
    return paths


def analyse_sweep(out_dir: str | Path, n_boot: int = 200) -> dict:
    """After a sweep: per-size aggregates across seeds, a power-law fit of val loss in parameters and
    FLOPs, and the emergence/mirage verdicts (on every seed's point).

    Writes OUT/sweep_by_size.{csv,json}, OUT/scaling.json, OUT/emergence/verdicts.json and their plots;
    an analysis that needs more sizes than the sweep has is reported as skipped with the reason."""
    from emergelab.science import emergence, scaling
    from emergelab.science.sweep import _write_json_atomic

    out_dir = Path(out_dir)
    summary: dict[str, Any] = {}
    rows = read_rows(out_dir)
    records = per_size(rows)
    write_per_size(records, out_dir)
    summary["by_size"] = {"sizes": len(records), "seeds_per_size": sorted({len(r["seeds"]) for r in records}),
                          "plots": plot_abilities(rows, out_dir)}
    data = scaling.read_scaling_csv(out_dir / "sweep.csv", "val_loss")
    fits = {}
    # One budget: L(params) and L(FLOPs). Several: L(FLOPs) and Chinchilla's L(N, D).
    laws = ["params", "flops"] if len(np.unique(data["tokens"])) == 1 else ["flops", "chinchilla"]
    for x in laws:
        try:
            if x == "chinchilla":
                fit = scaling.fit_chinchilla(data["params"], data["tokens"], data["loss"], n_boot=n_boot)
            else:
                fit = scaling.fit_power_law(data[x], data["loss"], x_name=x, n_boot=n_boot)
        except UserError as e:
            fits[x] = {"skipped": str(e)}
            continue
        stem = out_dir / ("scaling_chinchilla" if x == "chinchilla" else f"scaling_power_{x}")
        fits[x] = {**fit.to_json(), "plots": scaling.plot_fit(fit, data, stem)}
    (out_dir / "scaling.json").write_text(json.dumps(fits, indent=1))
    summary["scaling"] = {x: {k: f.get(k) for k in ("E", "A", "alpha", "B", "beta", "ci95", "skipped") if k in f}
                          for x, f in fits.items()}
    long_rows = emergence.read_emergence_csv(out_dir / "emergence.csv") if _has_rows(out_dir / "emergence.csv") \
        else []
    if long_rows:
        verdicts = emergence.analyse_table(long_rows, n_boot=n_boot)
        for ability, verdict in verdicts.items():
            curves: dict[str, dict[str, list]] = {}
            for r in long_rows:
                if r["ability"] == ability:
                    c = curves.setdefault(r["metric"], {"scale": [], "value": []})
                    c["scale"].append(r["scale"])
                    c["value"].append(r["value"])
            verdict["plots"] = emergence.plot_ability(ability, curves, verdict, out_dir / "emergence" / f"{ability}")
        (out_dir / "emergence").mkdir(parents=True, exist_ok=True)
        _write_json_atomic(out_dir / "emergence" / "verdicts.json", verdicts)
        summary["emergence"] = {a: {k: v[k] for k in ("metric", "emergent", "threshold", "threshold_ci95", "mirage",
                                                      "mirage_reason")}
                                for a, v in verdicts.items()}
    return summary


def _has_rows(path: Path) -> bool:
    return path.is_file() and len(path.read_text().splitlines()) > 1
