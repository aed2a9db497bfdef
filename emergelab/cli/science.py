"""Commands: sweep, scaling-fit, emergence, experiment."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emergelab.errors import UserError


def cmd_scaling_fit(args: argparse.Namespace) -> int:
    from emergelab.science import scaling

    data = scaling.read_scaling_csv(args.csv, args.loss_column)
    if args.law == "power":
        if args.x not in data:
            raise UserError(f"--x: column {args.x!r} is not in {args.csv} — use one of {sorted(set(data) - {'loss'})}")
        fit = scaling.fit_power_law(data[args.x], data["loss"], x_name=args.x, n_boot=args.boot, seed=args.seed)
    else:
        if "params" not in data or "tokens" not in data:
            raise UserError(f"--law chinchilla: {args.csv} needs both params and tokens columns")
        fit = scaling.fit_chinchilla(data["params"], data["tokens"], data["loss"], n_boot=args.boot, seed=args.seed)
    out = fit.to_json()
    if fit.law == "chinchilla":
        budget = args.budget or float(10 * (6 * data["params"] * data["tokens"]).max())
        out["compute_optimal"] = scaling.compute_optimal_with_ci(fit, budget)
    elif args.budget:
        out["predicted_loss_at_budget"] = float(fit.predict(args.budget)) if args.x == "flops" else None
    stem = Path(args.plot) if args.plot else Path(args.csv).with_name(f"scaling_{fit.law}_{fit.x.replace(',', '_')}")
    out["plots"] = scaling.plot_fit(fit, data, stem)
    print(json.dumps(out, indent=1))
    return 0


def cmd_emergence(args: argparse.Namespace) -> int:
    from emergelab.science import emergence

    rows = emergence.read_emergence_csv(args.csv)
    verdicts = emergence.analyse_table(rows, n_boot=args.boot, seed=args.seed, noise_floor=args.noise_floor)
    out_dir = Path(args.out) if args.out else Path(args.csv).parent / "emergence"
    for ability, verdict in verdicts.items():
        curves = {}
        for r in rows:
            if r["ability"] == ability:
                c = curves.setdefault(r["metric"], {"scale": [], "value": []})
                c["scale"].append(r["scale"])
                c["value"].append(r["value"])
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in ability)
        verdict["plots"] = emergence.plot_ability(ability, curves, verdict, out_dir / f"emergence_{safe}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "verdicts.json").write_text(json.dumps(verdicts, indent=1))
    print(json.dumps(verdicts, indent=1))
    return 0


def _parse_overrides(config: str | None, pairs: list[str]) -> dict:
    import yaml

    overrides = {}
    if config:
        path = Path(config)
        if not path.is_file():
            raise UserError(f"--config: {path} does not exist")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise UserError(f"--config: {path} must hold a mapping of setting: value")
        overrides.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"override: {pair!r} is not key=value")
        overrides[key] = yaml.safe_load(value)
    return overrides


def cmd_experiment(args: argparse.Namespace) -> int:
    from emergelab.science.experiments import run_experiment

    overrides = _parse_overrides(args.config, args.overrides)
    profile = overrides.pop("profile", None) or args.profile
    name = overrides.pop("experiment", None) or args.name
    out = args.out or str(Path("runs") / f"exp_{name}")
    try:
        verdicts = run_experiment(name, out, profile, overrides, threads=args.threads)
    except TypeError as e:  # an override that the experiment's settings do not have
        raise UserError(f"override: {e} — see the experiment's config dataclass for its settings") from None
    summary = {k: v for k, v in verdicts.items() if k not in ("history", "curve", "config")}
    print(json.dumps(summary, indent=1, default=float))
    print(f"wrote {Path(out) / 'verdicts.json'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from emergelab.science.sweep import run_sweep
    from emergelab.science.sweep_analysis import analyse_sweep
    from emergelab.threads import choose

    # a bad --jobs / --threads is one line, before any work (busy=0: only checked, so no 0.25 s load probe)
    choose(jobs=args.jobs, threads=args.threads, busy=0)

    out = Path(args.out or Path("runs") / f"sweep_{Path(args.recipe).stem}")
    result = run_sweep(args.recipe, out, jobs=args.jobs, backend=args.backend, threads=args.threads)
    print(f"wrote {out / 'sweep.csv'} ({len(result['rows'])} runs), {out / 'sweep.json'}, {out / 'emergence.csv'}")
    if args.analyse:
        analysis = analyse_sweep(out, n_boot=args.boot)
        print(json.dumps(analysis, indent=1, default=float))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="train and score a grid of sizes x budgets x seeds (resumable)",
                              description="Run a sweep recipe (see configs/sweep_*.yaml). Re-running the same "
                              "command continues a killed sweep; finished runs are skipped.")
    p.add_argument("recipe", help="sweep recipe YAML")
    p.add_argument("--out", default=None, help="output folder (default runs/sweep_RECIPE)")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs trained at once in local processes (default: one per core)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per run (default: the recipe's threads:, else chosen from the cores)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="ray: run each training run as a Ray task (pip install -r requirements-ray.txt)")
    p.add_argument("--no-analyse", dest="analyse", action="store_false",
                   help="skip the scaling fit and emergence analysis after the sweep")
    p.add_argument("--boot", type=int, default=200, help="bootstrap replicates of the analyses")
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser("experiment", help="run one experiment (plots + verdicts.json)",
                              description="Experiments: xor, fgsm, grokking, icl, cot-bridge. Settings can be "
                              "overridden with key=value pairs or a YAML file (--config).")
    p.add_argument("name", help="xor | fgsm | grokking | icl | cot-bridge")
    p.add_argument("overrides", nargs="*", help="setting=value overrides, e.g. epochs=3000")
    p.add_argument("--profile", default="quick", choices=("quick", "tiny", "gpu"),
                   help="tiny: seconds, no claims; quick: the CPU settings; gpu: bigger settings for CUDA")
    p.add_argument("--out", default=None, help="output folder (default runs/exp_NAME)")
    p.add_argument("--config", default=None, help="YAML with settings (and optionally experiment/profile)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: all cores when the machine is idle, else 1)")
    p.set_defaults(func=cmd_experiment)

    p = subparsers.add_parser("scaling-fit", help="fit a power law or Chinchilla law to a sweep table",
                              description="Fit L = E + A·X^-alpha (power) or L = E + A/N^alpha + B/D^beta "
                              "(chinchilla) with a Huber loss on log-residuals and bootstrap 95% intervals.")
    p.add_argument("csv", help="sweep.csv or any table with params, tokens[, flops] and a loss column")
    p.add_argument("--law", choices=("power", "chinchilla"), default="power",
                   help="power: loss = a·x^-α + c over one axis; chinchilla: E + A/N^α + B/D^β")
    p.add_argument("--x", choices=("params", "tokens", "flops"), default="params", help="scale axis of a power law")
    p.add_argument("--loss-column", default=None, help="default: the first of val_loss, loss, final_val_loss")
    p.add_argument("--budget", type=float, default=None, help="compute budget C in FLOPs for the optimal N, D")
    p.add_argument("--boot", type=int, default=200, help="bootstrap replicates for the 95%% intervals")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--plot", default=None, help="plot path without extension (default: beside the CSV)")
    p.set_defaults(func=cmd_scaling_fit)

    p = subparsers.add_parser(
        "emergence", help="emergence and mirage verdicts for metric-vs-scale curves",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Decide per ability whether a metric-vs-scale curve is emergent (a sharp rise from a plateau "
        "that a step model\nexplains better than a line or power law, by BIC) and, where an exact-match and a "
        "continuous metric\nexist, whether the jump is a mirage (the continuous metric is smooth). The criterion "
        "is documented in\nemergelab/science/emergence.py.\n\n"
        "CSV format (long; one row per measurement; extra columns ignored):\n"
        "  scale    model size, FLOPs or any positive scale\n"
        "  metric   e.g. exact_match, accuracy, pass@1 (discrete) or digit_accuracy, answer_logprob,\n"
        "           answer_nll, edit_distance (continuous; names with nll/loss/distance/error = lower is better)\n"
        "  value    the measurement\n"
        "  n        optional: number of items behind a proportion (binomial noise)\n"
        "  ability  optional (or `task`): group rows into abilities; default: one ability\n\n"
        "Example: emergelab emergence examples/emergence_reversed_addition.csv")
    p.add_argument("csv", help="table with a scale column (params, tokens or flops) and metric columns")
    p.add_argument("--out", default=None, help="output folder for plots and verdicts.json")
    p.add_argument("--boot", type=int, default=200, help="bootstrap replicates for the threshold interval")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--noise-floor", type=float, default=0.02, help="noise floor as a fraction of each curve's range")
    p.set_defaults(func=cmd_emergence)
