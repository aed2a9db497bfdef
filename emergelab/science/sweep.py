"""Scale sweeps: train a grid of named sizes × token budgets × seeds, score each run, collect one table.

A recipe (YAML, see configs/sweep_*.yaml):

    corpus: data/default              # a corpus folder or text file …
    corpus_recipe: configs/corpus_default.yaml   # … or a `data build` recipe (path or inline), built
                                                 # once into OUT/corpus
    sizes: [10k, 30k, 100k]           # named sizes (emergelab/sizes.py)
    tokens: [null]                    # token budgets (null = the size's default) — or:
    steps: [600]                      # step budgets (train.max_steps)
    seeds: [0]
    pretrain: {train.batch_size: 32, model.block_size: 256}   # dotted overrides for every run
    eval:
      n: 200                          # items per ability
      abilities:                      # what to score at every size (the task harness)
        - {ability: add4_reversed, task: "add:digits=4,format=reversed,pad=true", shots: 0, cot: false}
    threads: 1                        # torch threads per run

Outputs in OUT: `runs/<size>_<budget>_s<seed>/` (ordinary run directories, plus `sweep_eval.json`),
`sweep.csv` and `sweep.json` (one row per run: size, seed, params, tokens, FLOPs, losses, every
ability's exact match and continuous metrics) and `emergence.csv` (the long table `emergelab emergence`
reads, scale = parameters). Resumable: a run with a summary and an evaluation is skipped, a run with
checkpoints is resumed (bitwise, see the foundation's resume tests), so a killed sweep restarted with
the same command produces the same table. `--jobs N` runs N runs at once in local processes;
`--backend ray` hands the same per-run function to Ray (`pip install -r requirements-ray.txt`;
`RAY_ADDRESS` selects a cluster, otherwise a local Ray instance starts).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emergelab.errors import UserError

TABLE_KEYS = ("run", "size", "seed", "budget", "params", "non_embedding_params", "tokens", "flops", "steps",
              "final_loss", "val_loss", "val_bpb")


@dataclass
class Recipe:
    sizes: list[str]
    corpus: str | None = None
    corpus_recipe: str | dict | None = None  # a data-build YAML path, or the recipe inline
    tokens: list[int | None] = field(default_factory=lambda: [None])
    steps: list[int] | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    pretrain: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)
    threads: int | None = 1


def load_recipe(path_or_dict: str | Path | dict) -> Recipe:
    """Read and validate a sweep recipe (YAML path or dict)."""
    import yaml

    if isinstance(path_or_dict, dict):
        data = dict(path_or_dict)
    else:
        path = Path(path_or_dict)
        if not path.is_file():
            raise UserError(f"recipe: {path} does not exist — see configs/sweep_*.yaml for examples")
        data = yaml.safe_load(path.read_text()) or {}
    known = set(Recipe.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"recipe: unknown key(s) {', '.join(unknown)} — known keys: {', '.join(sorted(known))}")
    if not data.get("sizes"):
        raise UserError("recipe.sizes: list at least one named size, e.g. sizes: [10k, 30k]")
    if not data.get("corpus") and not data.get("corpus_recipe"):
        raise UserError("recipe.corpus: set corpus (a corpus folder or text file) or corpus_recipe (a data-build YAML)")
    if data.get("steps") is not None and data.get("tokens") not in (None, [None]):
        raise UserError("recipe: give token budgets (tokens) or step budgets (steps), not both")
    from emergelab.sizes import size_defaults

    for s in data["sizes"]:
        size_defaults(str(s))  # raises a UserError naming the valid sizes
    recipe = Recipe(**{k: v for k, v in data.items() if v is not None or k == "threads"})
    recipe.sizes = [str(s) for s in recipe.sizes]
    for ab in recipe.eval.get("abilities", []):
        if not {"ability", "task"} <= set(ab):
            raise UserError(f"recipe.eval.abilities: {ab} needs at least ability: and task:")
    return recipe


def run_grid(recipe: Recipe) -> list[dict]:
    """The runs of the grid, in a fixed order: sizes × budgets × seeds."""
    budgets = [("steps", s) for s in recipe.steps] if recipe.steps else [("tokens", t) for t in recipe.tokens]
    runs = []
    for size in recipe.sizes:
        for kind, value in budgets:
            for seed in recipe.seeds:
                tag = "default" if value is None else f"{value}{'st' if kind == 'steps' else 'tok'}"
                runs.append({"name": f"{size}_{tag}_s{seed}", "size": size, "budget_kind": kind,
                             "budget": value, "seed": seed})
    return runs


def _overrides(recipe: Recipe, run: dict, corpus: str) -> list[str]:
    out = [f"size={run['size']}", f"data.corpus={corpus}", f"train.seed={run['seed']}", "train.progress=false"]
    if run["budget"] is not None:
        out.append(f"train.{'max_steps' if run['budget_kind'] == 'steps' else 'tokens'}={run['budget']}")
    out += [f"{k}={v}" for k, v in recipe.pretrain.items()]
    return out


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_one(recipe_dict: dict, run: dict, run_dir: str, corpus: str) -> dict:
    """Train (or resume, or skip) one run and score it; returns its table row. Safe to call again after a kill."""
    import torch

    from emergelab.runs import latest_checkpoint
    from emergelab.train.pretrain import pretrain

    recipe = Recipe(**recipe_dict)
    run_dir_p = Path(run_dir)
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    summary = _read_json(run_dir_p / "summary.json")
    if summary is None:
        resume = latest_checkpoint(run_dir_p) is not None
        # a killed run continues from its latest checkpoint with its saved config
        summary = pretrain(None, run_dir_p, [], resume=True) if resume else \
            pretrain(None, run_dir_p, _overrides(recipe, run, corpus))
    evaluation = _read_json(run_dir_p / "sweep_eval.json")
    if evaluation is None:
        evaluation = evaluate_run(run_dir_p, recipe.eval)
        _write_json_atomic(run_dir_p / "sweep_eval.json", evaluation)
    return table_row(run, summary, evaluation)


def evaluate_run(run_dir: Path, eval_cfg: dict) -> dict:
    """Score every ability of the recipe on one run with the task harness (greedy, fixed seed)."""
    from emergelab.eval.harness import evaluate_task
    from emergelab.runs import load_model

    abilities = eval_cfg.get("abilities", [])
    if not abilities:
        return {}
    model, tokenizer, _ = load_model(run_dir, device="cpu")
    model.eval()
    out = {}
    for ab in abilities:
        row = evaluate_task(model, tokenizer, ab["task"], shots=int(ab.get("shots", 0)),
                            fmt="cot" if ab.get("cot") else "direct", n=int(eval_cfg.get("n", 200)),
                            seed=int(eval_cfg.get("seed", 0)), progress=False, n_examples=2)
        out[ab["ability"]] = {"task": ab["task"], "shots": int(ab.get("shots", 0)), "cot": bool(ab.get("cot")),
                              "exact_match": row["exact_match"], "n": row["n"], "chance": row.get("chance"),
                              "metrics": {k: v["mean"] for k, v in row["metrics"].items()},
                              "examples": row.get("examples", [])}
    return out


def table_row(run: dict, summary: dict, evaluation: dict) -> dict:
    row = {"run": run["name"], "size": run["size"], "seed": run["seed"],
           "budget": "default" if run["budget"] is None else f"{run['budget']} {run['budget_kind']}"}
    for key in TABLE_KEYS[4:]:
        row[key] = summary.get(key)
    for ability, ev in evaluation.items():
        row[f"{ability}/exact_match"] = ev["exact_match"]
        row[f"{ability}/n"] = ev["n"]
        for name, value in sorted(ev["metrics"].items()):
            row[f"{ability}/{name}"] = value
    return row


def _prepare_corpus(recipe: Recipe, out_dir: Path) -> str:
    if recipe.corpus:
        if not Path(recipe.corpus).exists():
            raise UserError(f"recipe.corpus: {recipe.corpus} does not exist — build it with `emergelab data build`")
        return str(Path(recipe.corpus).resolve())
    from emergelab.tasks.corpus import build_corpus

    corpus_dir = out_dir / "corpus"
    if not (corpus_dir / "manifest.json").exists():  # the manifest is written last: present = complete
        build_corpus(recipe.corpus_recipe, corpus_dir)
    return str(corpus_dir.resolve())


def run_sweep(recipe: Recipe | str | Path | dict, out_dir: str | Path, jobs: int = 1, backend: str = "local") -> dict:
    """Run (or continue) the whole sweep and write sweep.csv, sweep.json and emergence.csv into `out_dir`."""
    import dataclasses

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    out_dir = Path(out_dir)
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    corpus = _prepare_corpus(recipe, out_dir)
    grid = run_grid(recipe)
    recipe_dict = dataclasses.asdict(recipe)
    args = [(recipe_dict, run, str(out_dir / "runs" / run["name"]), corpus) for run in grid]
    if backend == "ray":
        rows = _run_ray(args)
    elif backend != "local":
        raise UserError(f"--backend: {backend!r} — use local or ray")
    elif jobs <= 1:
        from emergelab.science.common import progress

        rows = [run_one(*a) for a in progress(args, total=len(args), desc="sweep")]
    else:
        import concurrent.futures as cf
        import multiprocessing as mp

        # spawn: fresh interpreters (no forked torch thread pools); results come back in grid order
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            rows = list(pool.map(run_one, *zip(*args)))
    return write_tables(rows, out_dir, recipe)


def _run_ray(args: list[tuple]) -> list[dict]:
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray: Ray is not installed — pip install -r requirements-ray.txt") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(run_one)
        return ray.get([remote.remote(*a) for a in args])
    finally:
        if started:
            ray.shutdown()


def write_tables(rows: list[dict], out_dir: Path, recipe: Recipe) -> dict:
    """sweep.csv (one row per run), sweep.json, and emergence.csv (scale, metric, value, n, ability)."""
    columns = list(TABLE_KEYS) + sorted({k for r in rows for k in r} - set(TABLE_KEYS))
    with (out_dir / "sweep.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _fmt(r.get(k)) for k in columns})
    long_rows = []
    several_budgets = len({r["budget"] for r in rows}) > 1
    for r in rows:
        for key, value in r.items():
            if "/" not in key or key.endswith("/n") or value is None:
                continue
            ability, metric = key.split("/", 1)
            # scale = parameters at a fixed budget: with several budgets each is its own curve
            name = f"{ability}@{r['budget']}" if several_budgets else ability
            long_rows.append({"ability": name, "metric": metric, "scale": r["params"], "value": value,
                              "n": r.get(f"{ability}/n"), "seed": r["seed"], "budget": r["budget"]})
    with (out_dir / "emergence.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["ability", "metric", "scale", "value", "n", "seed", "budget"])
        writer.writeheader()
        writer.writerows({k: _fmt(v) for k, v in r.items()} for r in long_rows)
    result = {"recipe": {k: v for k, v in recipe.__dict__.items()}, "columns": columns, "rows": rows}
    (out_dir / "sweep.json").write_text(json.dumps(result, indent=1))
    return result


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return "" if v is None else v


def analyse_sweep(out_dir: str | Path, n_boot: int = 200) -> dict:
    """After a sweep: a power-law fit of val loss in parameters and FLOPs, and the emergence/mirage verdicts.

    Writes OUT/scaling.json, OUT/emergence/verdicts.json and their plots; an analysis that needs more
    sizes than the sweep has is reported as skipped with the reason."""
    import numpy as np

    from emergelab.science import emergence, scaling

    out_dir = Path(out_dir)
    summary: dict[str, Any] = {}
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
    rows = emergence.read_emergence_csv(out_dir / "emergence.csv") if _has_rows(out_dir / "emergence.csv") else []
    if rows:
        verdicts = emergence.analyse_table(rows, n_boot=n_boot)
        for ability, verdict in verdicts.items():
            curves: dict[str, dict[str, list]] = {}
            for r in rows:
                if r["ability"] == ability:
                    c = curves.setdefault(r["metric"], {"scale": [], "value": []})
                    c["scale"].append(r["scale"])
                    c["value"].append(r["value"])
            verdict["plots"] = emergence.plot_ability(ability, curves, verdict, out_dir / "emergence" / f"{ability}")
        _write_json_atomic_mkdir(out_dir / "emergence" / "verdicts.json", verdicts)
        summary["emergence"] = {a: {k: v[k] for k in ("metric", "emergent", "threshold", "threshold_ci95", "mirage",
                                                      "mirage_reason")}
                                for a, v in verdicts.items()}
    return summary


def _has_rows(path: Path) -> bool:
    return path.is_file() and len(path.read_text().splitlines()) > 1


def _write_json_atomic_mkdir(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(path, data)
