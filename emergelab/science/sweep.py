"""Running scale sweeps: train a grid of named sizes × token budgets × seeds, score each run, collect one table.

(Analysing a finished sweep — per-size aggregates across seeds, scaling fits, emergence verdicts — is
`science/sweep_analysis.py`.)

A recipe (YAML, see configs/sweep_*.yaml):

    corpus: data/default              # a corpus folder or text file …
    corpus_recipe: configs/corpus_default.yaml   # … or a `data build` recipe (path or inline), built
                                                 # once into OUT/corpus
    sizes: [10k, 30k, 100k]           # named sizes (emergelab/sizes.py)
    tokens: [null]                    # token budgets (null = the size's default) — or:
    steps: [600]                      # step budgets (train.max_steps)
    seeds: [0, 1, 2]                  # each seed: its own initialisation and data order
    pretrain: {train.batch_size: 32, model.block_size: 256}   # dotted overrides for every run
    eval:
      n: 200                          # items per ability
      abilities:                      # what to score at every size (the task harness)
        - {ability: add4_reversed, task: "add:digits=4,format=reversed,pad=true", shots: 0, cot: false}
    threads: null                     # torch threads per run (null: chosen by emergelab/threads.py)
    budget_grid:                      # optional extra runs for a params × tokens (Chinchilla) fit
      {sizes: [10k, 30k, 100k], steps: [300, 600, 1200], seeds: [0]}

Outputs in OUT: `runs/<size>_<budget>_s<seed>/` (ordinary run directories, plus `sweep_eval.json`),
`sweep.csv` and `sweep.json` (one row per run, i.e. per (size, budget, seed): params, tokens, FLOPs,
losses, every ability's exact match and continuous metrics) and `emergence.csv` (the long table
`emergelab emergence` reads, scale = parameters, with a seed column). Resumable: a run with a summary
and an evaluation is skipped, a run with checkpoints is resumed (bitwise, see the foundation's resume
tests), so a killed sweep restarted with the same command produces the same table. Runs go to `jobs`
local processes at once (default: one per core, see emergelab/threads.py); a run trained inside the
sweep is identical to the same run trained alone (tests/test_science_sweep.py). `--backend ray` hands
the same per-run function to Ray (`pip install -r requirements-ray.txt`; `RAY_ADDRESS` selects a
cluster, otherwise a local Ray instance starts).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
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
    threads: int | None = None  # torch threads per run; None: emergelab.threads.choose
    budget_grid: dict[str, Any] | None = None  # extra sizes × budgets × seeds runs (scaling fits only)


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
    extra = data.get("budget_grid")
    if extra is not None:
        keys_ok = isinstance(extra, dict) and not set(extra) - {"sizes", "steps", "tokens", "seeds"}
        if not keys_ok or not extra.get("sizes") or bool(extra.get("steps")) == bool(extra.get("tokens")):
            raise UserError("recipe.budget_grid: give sizes, and steps or tokens (not both), optionally seeds — "
                            "e.g. {sizes: [10k, 30k], steps: [300, 600, 1200], seeds: [0]}")
        for s in extra["sizes"]:
            size_defaults(str(s))
    recipe = Recipe(**{k: v for k, v in data.items() if v is not None})
    recipe.sizes = [str(s) for s in recipe.sizes]
    if not recipe.seeds or len(set(recipe.seeds)) != len(recipe.seeds) or \
            not all(isinstance(x, int) and x >= 0 for x in recipe.seeds):
        raise UserError(f"recipe.seeds: {recipe.seeds} — list distinct whole numbers ≥ 0, e.g. seeds: [0, 1, 2]")
    if recipe.threads is not None and (not isinstance(recipe.threads, int) or recipe.threads < 1):
        raise UserError(f"recipe.threads: {recipe.threads!r} must be a whole number ≥ 1, or null to choose "
                        "from the cores available")
    for ab in recipe.eval.get("abilities", []):
        if not {"ability", "task"} <= set(ab):
            raise UserError(f"recipe.eval.abilities: {ab} needs at least ability: and task:")
    return recipe


def run_grid(recipe: Recipe) -> list[dict]:
    """The runs of the grid, in a fixed order: sizes × budgets × seeds, then the budget grid's runs that
    the main grid does not already have (marked `extra`)."""
    runs = _grid(recipe.sizes, recipe.steps, recipe.tokens, recipe.seeds)
    if recipe.budget_grid:
        g = recipe.budget_grid
        names = {r["name"] for r in runs}
        runs += [{**r, "extra": True} for r in _grid([str(s) for s in g["sizes"]], g.get("steps"),
                                                      g.get("tokens") or [None], g.get("seeds") or recipe.seeds[:1])
                 if r["name"] not in names]
    return runs


def _grid(sizes: list[str], steps: list[int] | None, tokens: list[int | None], seeds: list[int]) -> list[dict]:
    budgets = [("steps", s) for s in steps] if steps else [("tokens", t) for t in tokens]
    runs = []
    for size in sizes:
        for kind, value in budgets:
            for seed in seeds:
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


def run_one(recipe_dict: dict, run: dict, run_dir: str, corpus: str, data_dir: str | None = None) -> dict:
    """Train (or resume, or skip) one run and score it; returns its table row. Safe to call again after a kill.

    `data_dir`: the sweep's one preparation of the tokenizer and token files for this run's data settings
    (`prepare_shared_data`), copied in instead of tokenizing the corpus again."""
    from emergelab.runs import latest_checkpoint
    from emergelab.threads import set_torch_threads
    from emergelab.train.pretrain import pretrain

    recipe = Recipe(**recipe_dict)
    run_dir_p = Path(run_dir)
    if recipe.threads:
        set_torch_threads(recipe.threads)
    summary = _read_json(run_dir_p / "summary.json")
    if summary is None:
        resume = latest_checkpoint(run_dir_p) is not None
        # a killed run continues from its latest checkpoint with its saved config
        if resume:
            summary = pretrain(None, run_dir_p, [], resume=True)
        else:
            if data_dir:
                run_dir_p.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(data_dir) / "tokenizer.json", run_dir_p / "tokenizer.json")
                shutil.copytree(Path(data_dir) / "data", run_dir_p / "data", dirs_exist_ok=True)
            summary = pretrain(None, run_dir_p, _overrides(recipe, run, corpus), data_ready=bool(data_dir))
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
                            seed=int(eval_cfg.get("seed", 0)), progress=False, n_examples=2, keep_items=True)
        # per-item values: the verdicts' intervals come from the items (emergelab/science/verdicts/noise.py)
        items = {k: [round(float(it[k]), 6) for it in row["items"]] for k in ("score", *row["metrics"])}
        out[ab["ability"]] = {"task": ab["task"], "shots": int(ab.get("shots", 0)), "cot": bool(ab.get("cot")),
                              "exact_match": row["exact_match"], "n": row["n"], "chance": row.get("chance"),
                              "metrics": {k: v["mean"] for k, v in row["metrics"].items()},
                              "examples": row.get("examples", []), "items": items}
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


def run_sweep(recipe: Recipe | str | Path | dict, out_dir: str | Path, jobs: int | None = None,
              backend: str = "local", threads: int | None = None, progress: bool = True) -> dict:
    """Run (or continue) the whole sweep and write sweep.csv, sweep.json and emergence.csv into `out_dir`.

    `jobs` runs train at once with `threads` torch threads each; unset, both come from
    emergelab.threads.choose (a recipe's own `threads:` counts as set)."""
    import dataclasses

    from emergelab.threads import choose

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    out_dir = Path(out_dir)
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    corpus = _prepare_corpus(recipe, out_dir)
    grid = run_grid(recipe)
    dirs = [out_dir / "runs" / run["name"] for run in grid]
    pending = sum(not _finished(d) for d in dirs)
    par = choose(jobs, threads or recipe.threads, n_tasks=max(pending, 1), device=_device(recipe))
    recipe_dict = {**dataclasses.asdict(recipe), "threads": par.threads}
    data = prepare_shared_data(recipe, grid, corpus, out_dir) if pending else {}
    args = [(recipe_dict, run, str(d), corpus, data.get(run["name"])) for run, d in zip(grid, dirs)]
    if backend == "ray":
        rows = _run_ray(args)
    elif backend != "local":
        raise UserError(f"--backend: {backend!r} — use local or ray")
    else:
        rows = _run_local(args, par.jobs, SweepProgress(dirs, f"sweep ×{par.jobs} jobs", progress))
    return write_tables(rows, out_dir, recipe, {"jobs": par.jobs, "threads": par.threads, "backend": backend})


def prepare_shared_data(recipe: Recipe, grid: list[dict], corpus: str, out_dir: Path) -> dict[str, str]:
    """Tokenize the corpus once per distinct data setting of the grid's runs (OUT/prepared/<hash>/);
    returns run name → prepared folder. Every run used to tokenize the whole corpus itself."""
    import dataclasses
    import hashlib

    from emergelab.config import load_pretrain_config
    from emergelab.train.pretrain import prepare_data

    out: dict[str, str] = {}
    for run in grid:
        cfg = load_pretrain_config(None, _overrides(recipe, run, corpus))
        key = hashlib.sha256(json.dumps(dataclasses.asdict(cfg.data), sort_keys=True).encode()).hexdigest()[:12]
        folder = out_dir / "prepared" / key
        if not (folder / "done").exists():  # written last: present = complete
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            prepare_data(cfg, folder)
            (folder / "done").write_text(json.dumps(dataclasses.asdict(cfg.data), indent=1))
        out[run["name"]] = str(folder)
    return out


def _device(recipe: Recipe) -> str:
    return str(recipe.pretrain.get("train.device", "cpu"))


def _finished(run_dir: Path) -> bool:
    return (run_dir / "summary.json").exists() and (run_dir / "sweep_eval.json").exists()


def _run_local(args: list[tuple], jobs: int, bar: SweepProgress) -> list[dict]:
    """Run every (recipe, run, dir, corpus) in `jobs` workers, polling the runs' logs for the bar; grid order."""
    import concurrent.futures as cf
    import multiprocessing as mp

    if jobs <= 1:  # in this process (a thread, so that the bar keeps moving)
        pool: cf.Executor = cf.ThreadPoolExecutor(max_workers=1)
    else:  # spawn: fresh interpreters (no forked torch thread pools)
        pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"))
    with pool, bar:
        # largest runs first (longest-processing-time order): the last worker to finish then waits on a
        # small run instead of the other workers idling while one trains the largest model alone
        order = sorted(range(len(args)), key=lambda i: -_cost(args[i][1]))
        by_index = {i: pool.submit(run_one, *args[i]) for i in order}
        futures = [by_index[i] for i in range(len(args))]
        pending = set(futures)
        while pending:
            _, pending = cf.wait(pending, timeout=1.0, return_when=cf.FIRST_EXCEPTION)
            bar.poll()
            failed = [f for f in futures if f.done() and f.exception() is not None]
            if failed:
                for f in pending:
                    f.cancel()
                raise failed[0].exception()
        return [f.result() for f in futures]


def _cost(run: dict) -> float:
    """A run's relative training cost for scheduling: non-embedding parameters × its budget."""
    from emergelab.sizes import SIZES, approx_params

    n_layer, n_embd, _ = SIZES[run["size"].lower()]
    return approx_params(n_layer, n_embd) * float(run["budget"] or 1)


class SweepProgress:
    """One bar for the whole sweep, fed by the runs' own files (so it works across processes): fraction of
    runs done, and the run being trained with its step, loss and the ETA."""

    def __init__(self, run_dirs: list[Path], desc: str, enabled: bool = True):
        import sys

        from tqdm import tqdm

        show = enabled and os.environ.get("EMERGELAB_NO_PROGRESS") != "1" and sys.stderr.isatty()
        self.dirs, self.max_steps = run_dirs, {}
        self.bar = tqdm(total=len(run_dirs), desc=desc, unit="run", disable=not show, dynamic_ncols=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} runs "
                                   "[{elapsed}<{remaining}]{postfix}")

    def poll(self) -> None:
        done, active = 0.0, []
        for d in self.dirs:
            if _finished(d):
                done += 1
                continue
            step, loss = _last_logged(d)
            total = self._max_steps(d)
            if step and total:
                done += 0.95 * min(step / total, 1.0)  # the last 5%: scoring the abilities
                if step >= total:
                    active.append(f"{d.name} scoring its abilities")
                else:
                    active.append(f"{d.name} step {step}/{total} loss {loss:.3f}" if loss is not None else d.name)
        self.bar.n = round(done, 2)
        self.bar.set_postfix_str(" | ".join(active[:2]), refresh=False)
        self.bar.refresh()

    def _max_steps(self, d: Path) -> int | None:
        if d not in self.max_steps:
            import yaml

            try:
                self.max_steps[d] = int(yaml.safe_load((d / "config.yaml").read_text())["train"]["max_steps"])
            except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
                return None
        return self.max_steps[d]

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.poll()
        self.bar.close()


def _last_logged(run_dir: Path) -> tuple[int | None, float | None]:
    """Step and loss of the last complete line of `run_dir/metrics.jsonl` (None, None before the first)."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return None, None
    for line in reversed(lines):
        try:
            rec = json.loads(line)
            return rec.get("step"), rec.get("loss")
        except ValueError:  # a line being written
            continue
    return None, None


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


def write_tables(rows: list[dict], out_dir: Path, recipe: Recipe, parallelism: dict | None = None) -> dict:
    """sweep.csv (one row per run), sweep.json, and emergence.csv (scale, metric, value, n, ability).
    `parallelism`: the jobs × threads of the invocation that wrote the tables (for the report)."""
    columns = list(TABLE_KEYS) + sorted({k for r in rows for k in r} - set(TABLE_KEYS))
    with (out_dir / "sweep.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _fmt(r.get(k)) for k in columns})
    long_rows = []
    # the emergence table is the main grid's (the budget grid feeds the scaling fits)
    main = {run["name"] for run in run_grid(recipe) if not run.get("extra")}
    rows_main = [r for r in rows if r["run"] in main]
    several_budgets = len({r["budget"] for r in rows_main}) > 1
    for r in rows_main:
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
    result = {"recipe": {k: v for k, v in recipe.__dict__.items()}, "parallelism": parallelism, "columns": columns,
              "rows": rows}
    (out_dir / "sweep.json").write_text(json.dumps(result, indent=1))
    return result


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return "" if v is None else v


