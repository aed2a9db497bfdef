"""CLI for tasks: `tasks list`, `tasks sample`, `data build`, `eval`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emergelab.cli.args import add_quant, int_at_least, ints_at_least
from emergelab.errors import UserError


def cmd_tasks_list(args: argparse.Namespace) -> int:
    from emergelab.tasks.registry import builtin_names, builtin_options, get_task

    for name in builtin_names():
        task = get_task(name)
        opts = ", ".join(f"{k}={v}" for k, v in builtin_options(name).items())
        print(f"{name:<10} {task.description}")
        print(f"{'':<10} options: {opts}   chance (defaults): {task.chance:.3g}")
    print("\nAlso: a .jsonl file of {prompt, answer} items (verifier=exact|numeric|choice|regex) or "
          "module:Class — see docs/tasks.md.")
    return 0


def cmd_tasks_sample(args: argparse.Namespace) -> int:
    from emergelab.tasks.registry import get_task

    task = get_task(args.task)
    for i, ex in enumerate(task.generate(args.n, args.split, seed=args.seed)):
        shots = task.shots_for(ex, args.shots, seed=args.seed + i)
        prompt = task.render_prompt(ex, shots=shots, cot=args.cot)
        target = task.render_target(ex, cot=args.cot)
        if args.json:
            print(json.dumps({"task": task.spec, "prompt": prompt, "answer": ex.answer, "target": target,
                              "cot": ex.cot, "meta": ex.meta}))
        else:
            print(prompt + target, end="")
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    from emergelab.tasks.corpus import build_corpus

    m = build_corpus(args.recipe, args.out)
    print(f"wrote {args.out}/train.txt ({m['documents']['train']} documents, {m['characters']['train.txt']} "
          f"characters), val.txt ({m['documents']['val']}), manifest.json")
    for row in m["tasks"]:
        fmts = ", ".join(f"{k} {v}" for k, v in row["formats"].items() if v)
        print(f"  {row['task']:<48} {row['documents']:>7} docs ({row['share']:.1%})  {fmts}")
    return 0


def _default_tasks(run: Path) -> str:
    """The task specs of the corpus the run was pretrained on (its manifest), if recorded."""
    from emergelab.runs import read_run_config

    corpus = (read_run_config(run).get("data") or {}).get("corpus")
    manifest = Path(corpus) / "manifest.json" if corpus else None
    if not manifest or not manifest.is_file():
        raise UserError("--tasks: not given and the run's corpus has no manifest.json — pass --tasks add,countdown")
    return ";".join(row["task"] for row in json.loads(manifest.read_text())["tasks"])


def cmd_eval(args: argparse.Namespace) -> int:
    from emergelab.eval.harness import evaluate
    from emergelab.model.quant import quantize
    from emergelab.runs import load_model

    run = Path(args.run)
    model, tok, _ = load_model(run, device=args.device)
    quantize(model, args.quant)
    tasks = args.tasks or _default_tasks(run)
    formats = ("direct",) + (("cot",) if args.cot else ()) + (("free",) if args.free else ())
    result = evaluate(model, tok, tasks, shots=args.shots, cot=args.cot, n=args.n, seed=args.seed,
                      batch_size=args.batch_size, formats=formats, template=args.template,
                      keep_items=args.items)
    result["run"] = str(run)
    if args.quant != "none":
        result["quant"] = args.quant
    text = json.dumps(result, indent=2) + "\n"
    out = Path(args.json) if args.json else run / "eval.json"  # --json OUT leaves RUN/eval.json as it was
    out.write_text(text)
    print(f"{'task':<44} {'setting':<14} {'exact match':<22} {'chance':>7}  continuous")
    for spec, rows in result["results"].items():
        for key, row in rows.items():
            lo, hi = row["ci95"]
            cont = "  ".join(f"{k}={v['mean']:.3g}" for k, v in row["metrics"].items())
            print(f"{spec[:44]:<44} {key:<14} {row['exact_match']:.3f} [{lo:.3f}, {hi:.3f}]  "
                  f"{row['chance']:>7.3g}  {cont}")
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("tasks", help="list built-in tasks or print sample items")
    sub = p.add_subparsers(dest="tasks_command", metavar="SUBCOMMAND")
    q = sub.add_parser("list", help="built-in tasks with their options and chance levels")
    q.set_defaults(func=cmd_tasks_list)
    q = sub.add_parser("sample", help="print generated items (prompt + reference completion)")
    q.add_argument("task", help="task spec, e.g. add:digits=3,format=reversed or data.jsonl:verifier=numeric")
    q.add_argument("--n", type=int_at_least(0), default=20, help="items to print")
    q.add_argument("--split", default="train", choices=["train", "test"], help="which part of the item space")
    q.add_argument("--seed", type=int, default=0, help="same seed, same items")
    q.add_argument("--shots", type=int_at_least(0), default=0, help="demonstrations before each question")
    q.add_argument("--cot", action="store_true", help="render the chain-of-thought format")
    q.add_argument("--json", action="store_true", help="one JSON object per line: prompt, answer, meta, ...")
    q.set_defaults(func=cmd_tasks_sample)
    p.set_defaults(func=lambda a: p.print_help() or 1)

    p = subparsers.add_parser("data", help="build a pretraining corpus from a recipe")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    q = sub.add_parser("build", help="mix task text into OUT/train.txt, OUT/val.txt + manifest.json")
    q.add_argument("recipe", help="corpus recipe YAML, e.g. configs/corpus_default.yaml")
    q.add_argument("out", help="output directory")
    q.set_defaults(func=cmd_data_build)
    p.set_defaults(func=lambda a: p.print_help() or 1)

    p = subparsers.add_parser("eval", help="score a run on tasks: exact match [95%% CI], continuous metrics, chance")
    p.add_argument("run", help="run directory")
    p.add_argument("--tasks", default=None,
                   help="task specs, comma-separated (default: the tasks of the run's corpus manifest)")
    p.add_argument("--shots", type=ints_at_least(0), default="0", help="comma-separated shot counts, e.g. 0,3")
    p.add_argument("--cot", action="store_true", help="also score the chain-of-thought format")
    p.add_argument("--free", action="store_true", help="also score with no forced prefix: the model chooses its format")
    p.add_argument("--n", type=int_at_least(1), default=500, help="test items per task")
    p.add_argument("--seed", type=int, default=0, help="seed of the item sample and of the few-shot examples")
    p.add_argument("--batch-size", type=int_at_least(1), default=64, help="prompts decoded together (greedy)")
    p.add_argument("--template", default="plain", choices=["plain", "chat"],
                   help="chat wraps prompts in <|user|>…<|assistant|> (for SFT/RL runs)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_quant(p)
    p.add_argument("--items", action="store_true", help="keep every item's completion, verdict and metrics")
    p.add_argument("--json", default=None, metavar="OUT",
                   help="write the results to OUT instead of RUN/eval.json (which the model card and report read)")
    p.set_defaults(func=cmd_eval)
