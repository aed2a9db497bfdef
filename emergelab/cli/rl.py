"""Commands: sft, rl, rm, dpo, distill, tts, recipe (post-training and test-time scaling)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emergelab.cli.args import int_at_least, ints_at_least, out_dir, temperature

DEFAULT_BUDGETS = [8, 16, 32, 64]  # tts thinking budgets (tokens) when --budgets is not given


def _out(args: argparse.Namespace, kind: str) -> str:
    if args.out:
        return args.out
    stem = Path(args.config).stem if getattr(args, "config", None) else kind
    return str(Path("runs") / stem)


def _config_and_overrides(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """CONFIG is optional: a first positional containing '=' is an override, not a file."""
    if args.config and "=" in args.config:
        return None, [args.config, *args.overrides]
    return args.config, args.overrides


def cmd_sft(args: argparse.Namespace) -> int:
    from emergelab.config import load
    from emergelab.train.sft import SFTConfig, train_sft

    path, overrides = _config_and_overrides(args)
    summary = train_sft(load(SFTConfig, path, overrides), args.init, _out(args, "sft"))
    print(json.dumps(summary, indent=1))
    return 0


def cmd_rl(args: argparse.Namespace) -> int:
    from emergelab.config import load
    from emergelab.errors import UserError
    from emergelab.rl.trainer import RLConfig, resume_grpo, train_grpo

    path, overrides = _config_and_overrides(args)
    if args.resume:
        if path or args.init or args.out:
            raise UserError("rl --resume RUN_DIR: the run's own config, --init and directory are used — "
                            "give only rl.key=value overrides (e.g. rl.steps=200)")
        last = resume_grpo(args.resume, overrides)
    else:
        if not args.init:
            raise UserError("rl: --init RUN is required (the initial policy), or --resume RUN_DIR")
        last = train_grpo(load(RLConfig, path, overrides, section="rl"), args.init, _out(args, "rl"))
    print(json.dumps(last, indent=1))
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from emergelab.config import load
    from emergelab.rl.reward_model import RMConfig, train_reward_model

    path, overrides = _config_and_overrides(args)
    cfg = load(RMConfig, path, overrides, section="rm")
    print(json.dumps(train_reward_model(cfg, args.init, _out(args, "rm")), indent=1))
    return 0


def cmd_dpo(args: argparse.Namespace) -> int:
    from emergelab.config import load
    from emergelab.rl.dpo import DPOConfig, train_dpo

    path, overrides = _config_and_overrides(args)
    print(json.dumps(train_dpo(load(DPOConfig, path, overrides, section="dpo"), args.init, _out(args, "dpo")),
                     indent=1))
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from emergelab.rl.distill import distill

    summary = distill(args.teacher, args.student, args.out or "runs/distill", task=args.task, n=args.n,
                      samples=args.samples, overrides=args.overrides, compare_rl=args.compare_rl)
    print(json.dumps(summary, indent=1))
    return 0


def cmd_tts(args: argparse.Namespace) -> int:
    from emergelab.data.chat import THINK_CLOSE
    from emergelab.data.tokenizer import Tokenizer
    from emergelab.eval.tts import test_time_scaling

    samples = args.samples
    budgets = args.budgets
    if budgets is None:  # the defaults need a </think> token; an imported model has none: skip them, say so
        budgets = DEFAULT_BUDGETS
        if Tokenizer.load(Path(args.run) / "tokenizer.json").token_to_id(THINK_CLOSE) is None:
            print(f"tts: this model's tokenizer has no {THINK_CLOSE} token — thinking budgets skipped "
                  "(vote@N, best-of-N and pass@k still measured)", file=sys.stderr)
            budgets = []
    result = test_time_scaling(args.run, args.task, n_items=args.n, samples=samples, budgets=budgets,
                               template=args.template, max_new_tokens=args.max_new_tokens,
                               temperature=args.temperature, seed=args.seed, out=args.out)
    print(json.dumps(result["summary"], indent=1))
    return 0


def cmd_recipe(args: argparse.Namespace) -> int:
    from emergelab.rl.recipes import run_recipe

    print(json.dumps(run_recipe(args.name, args.init, args.out or f"runs/{args.name}", args.overrides), indent=1))
    return 0


def _stage(sub, name: str, func, help_: str, init_help: str, init_required: bool = True
           ) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=help_)
    p.add_argument("config", nargs="?", help="YAML config (optional)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides")
    p.add_argument("--init", required=init_required, help=init_help)
    p.add_argument("--out", help="output run directory (default runs/<config stem>)")
    p.set_defaults(func=func)
    return p


def register(subparsers) -> None:
    _stage(subparsers, "sft", cmd_sft, "supervised fine-tuning on chat-format demonstrations",
           "run directory of the model to fine-tune")
    p = _stage(subparsers, "rl", cmd_rl, "GRPO reinforcement learning with rule-based rewards",
               "run directory of the initial policy (required unless --resume)", init_required=False)
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an RL run exactly from its last checkpoint (rl.key=value overrides apply)")
    _stage(subparsers, "rm", cmd_rm, "train a Bradley–Terry reward model on generated preference pairs",
           "run directory whose model initialises the reward model and samples the pairs")
    _stage(subparsers, "dpo", cmd_dpo, "direct preference optimisation on generated preference pairs",
           "run directory of the policy (also the frozen reference)")

    p = subparsers.add_parser("distill", help="teacher traces (verified, deduplicated) → student SFT")
    p.add_argument("--teacher", required=True, help="run directory of the teacher")
    p.add_argument("--student", required=True, help="run directory of the student's initial model")
    p.add_argument("--task", default=None, help="task spec (default: the teacher's RL/SFT task)")
    p.add_argument("--n", type=int, default=1000, help="training prompts to sample the teacher on")
    p.add_argument("--samples", type=int, default=4, help="teacher samples per prompt")
    p.add_argument("--compare-rl", action="store_true", help="also run GRPO on the student at matched compute")
    p.add_argument("--out", help="output directory")
    p.add_argument("overrides", nargs="*", help="sft.* / train.* overrides for the student SFT")
    p.set_defaults(func=cmd_distill)

    p = subparsers.add_parser("tts", help="test-time scaling: vote@N, best-of-N, pass@k, thinking budget")
    p.add_argument("run", help="run directory")
    p.add_argument("--task", required=True, help="task spec, e.g. add:digits=6")
    p.add_argument("--n", type=int_at_least(1), default=100, help="held-out items")
    p.add_argument("--samples", type=ints_at_least(1), default="1,2,4,8,16", help="comma-separated N")
    p.add_argument("--budgets", type=ints_at_least(1), default=None,
                   help=f"comma-separated thinking budgets in tokens (default {','.join(map(str, DEFAULT_BUDGETS))}; "
                        "skipped for a model without </think>)")
    p.add_argument("--template", default="plain", choices=["plain", "chat"],
                   help="chat wraps prompts in <|user|>…<|assistant|> (for SFT/RL runs)")
    p.add_argument("--max-new-tokens", type=int_at_least(1), default=96, help="thinking + answer budget per sample")
    p.add_argument("--temperature", type=temperature, default=1.0,
                   help="sampling temperature of the N samples (votes need diversity; 0 = greedy)")
    p.add_argument("--seed", type=int, default=0, help="seed of the items and the samples")
    p.add_argument("--out", type=out_dir, help="directory for tts.json and plots (default RUN/tts)")
    p.set_defaults(func=cmd_tts)

    p = subparsers.add_parser("recipe", help="multi-stage post-training recipes: r1-zero, r1")
    p.add_argument("name", choices=["r1-zero", "r1"],
                   help="r1-zero: GRPO on the base model; r1: cold-start SFT → GRPO → rejection sampling → RL")
    p.add_argument("--init", required=True, help="run directory of the pretrained base model")
    p.add_argument("--out", help="output directory (one sub-directory per stage)")
    p.add_argument("overrides", nargs="*", help="stage.key=value overrides, e.g. rl.steps=40 sft.n=500")
    p.set_defaults(func=cmd_recipe)
