"""Commands: pretrain, sample, ppl, export-hf, import-hf."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emergelab.cli.args import add_quant, existing_file, float_in, int_at_least, out_dir, temperature
from emergelab.data.chat import MAX_NEW_TOKENS
from emergelab.errors import UserError


def cmd_pretrain(args: argparse.Namespace) -> int:
    from emergelab.train.pretrain import pretrain

    if args.resume:
        overrides = ([args.config] if args.config else []) + args.overrides
        summary = pretrain(None, args.resume, overrides, resume=True, allow_restart=args.allow_restart)
    else:
        if not args.config:
            raise UserError("pretrain: give a CONFIG.yaml (or --resume RUN_DIR)")
        if "=" in args.config:
            raise UserError(f"pretrain: the first argument {args.config!r} looks like an override — "
                            "put CONFIG.yaml first")
        out = args.out or str(Path("runs") / Path(args.config).stem)
        summary = pretrain(args.config, out, args.overrides)
    print(json.dumps(summary, indent=1))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from emergelab.model.generate import SamplingParams, generate
    from emergelab.model.quant import quantize
    from emergelab.runs import load_model

    model, tok, _ = load_model(args.run, device=args.device)
    quantize(model, args.quant)
    prompt = args.prompt.encode().decode("unicode_escape") if args.escapes else args.prompt
    ids = tok.encode(prompt, doc_start=not args.raw)  # as `eval` and pretraining: text starts after <eos>
    note_unknown(tok, prompt)
    params = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                            top_p=args.top_p, seed=args.seed, num_samples=args.n,
                            stop_token_ids=tuple(t for t in [tok.eos_id] if t is not None))
    for c in generate(model, [ids], params, tokenizer=tok):
        text = tok.decode(c.tokens)
        if args.json:
            print(json.dumps({"prompt": prompt, "completion": text, "tokens": c.tokens, "logprobs": c.logprobs,
                              "finish_reason": c.finish_reason}))
        else:
            print(prompt + text)
            print("-" * 40)
    return 0


def note_unknown(tok, text: str) -> None:
    """One line on stderr when characters of `text` are not in the model's alphabet (they become <unk>)."""
    unknown = tok.unknown_characters(text)
    if unknown:
        print(f"note: {unknown[:10]} are not in this model's alphabet; the model reads each as <unk>",
              file=sys.stderr)


def cmd_ppl(args: argparse.Namespace) -> int:
    from emergelab.eval.ppl import perplexity
    from emergelab.runs import load_model

    try:
        text = Path(args.text_file).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"--text-file {args.text_file}: not UTF-8 text (byte {e.start}) — save it as UTF-8") from None
    model, tok, _ = load_model(args.run, device=args.device)
    print(json.dumps(perplexity(model, tok, text)))
    return 0


def cmd_export_hf(args: argparse.Namespace) -> int:
    from emergelab.model.card import model_card
    from emergelab.model.hf import to_hf_llama
    from emergelab.runs import load_model

    model, tok, _ = load_model(args.run, device="cpu")
    out = to_hf_llama(model, tok, args.out, card=model_card(args.run, model))
    print(f"wrote {out} (load with transformers.AutoModelForCausalLM.from_pretrained)")
    return 0


def import_hf_run(src: str | Path, out_run: str | Path) -> Path:
    """Turn a local Hugging Face Llama/Qwen2 folder into an emergelab run directory."""
    import dataclasses

    from emergelab.config import write_yaml
    from emergelab.data.tokenizer import Tokenizer
    from emergelab.model.gpt import GPT
    from emergelab.model.hf import from_hf
    from emergelab.runs import RunDir, save_checkpoint

    src, out = Path(src), Path(out_run)
    RunDir(out).ensure_new("import-hf:")
    cfg, state_dict, hf_tok = from_hf(src)
    model = GPT(cfg)
    model.load_state_dict(state_dict)
    out.mkdir(parents=True, exist_ok=True)
    write_yaml({"model": dataclasses.asdict(cfg), "source": {"imported_from": str(src.resolve())}},
               out / "config.yaml")
    if hf_tok is not None:
        special = {}
        tc = src / "tokenizer_config.json"
        if tc.exists():
            raw = json.loads(tc.read_text())
            keys = ("bos_token", "eos_token", "pad_token", "chat_template", "add_bos_token")
            special = {k: raw[k] for k in keys if raw.get(k)}
        if not special.get("chat_template") and (src / "chat_template.jinja").exists():
            special["chat_template"] = (src / "chat_template.jinja").read_text()
        Tokenizer(hf_tok, special).save(out / "tokenizer.json")
    save_checkpoint(out, 0, model)
    return out


def cmd_import_hf(args: argparse.Namespace) -> int:
    out = import_hf_run(args.src, args.out)
    print(f"wrote run {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pretrain a model by next-token prediction",
                       description="emergelab pretrain CONFIG.yaml [--out DIR] [key=value ...] | "
                                   "--resume DIR [key=value ...]")
    p.add_argument("config", nargs="?", help="YAML config (see configs/, e.g. configs/pretrain_tiny.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. model.n_layer=2 train.max_steps=40")
    p.add_argument("--out", type=out_dir, help="run directory (default runs/<config name>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly from its last checkpoint")
    p.add_argument("--allow-restart", action="store_true",
                   help="with --resume: when no valid checkpoint is left, train again from step 0 (else exit 2)")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("sample", help="generate continuations of a prompt from a run",
                       description="Continue --prompt with the run's newest checkpoint (KV cache, batched). "
                                   "Like `eval`, the prompt is preceded by the document-start token the model "
                                   "was trained with (<eos> for our models) and decoding is greedy by default; "
                                   "set --temperature to sample. Stops at <eos> or --max-new-tokens.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", help="run directory (from pretrain, sft, rl, import-hf, ...)")
    p.add_argument("--prompt", default="", help="text to continue (empty: start a fresh document)")
    p.add_argument("--n", type=int_at_least(1), default=1, help="number of continuations")
    p.add_argument("--temperature", type=temperature, default=0.0,
                   help="0 = greedy (what eval uses); e.g. 0.8 for varied samples")
    p.add_argument("--top-k", type=int_at_least(0), default=0,
                   help="sample only from the k most likely tokens (0 = all)")
    p.add_argument("--top-p", type=float_in(0, 1, low_open=True), default=1.0,
                   help="nucleus sampling: smallest set with this probability")
    p.add_argument("--max-new-tokens", type=int_at_least(1), default=MAX_NEW_TOKENS, help="tokens to generate at most")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same samples on the CPU)")
    p.add_argument("--raw", action="store_true",
                   help="do not prepend the document-start token (the model then sees text it never saw begin)")
    p.add_argument("--escapes", action="store_true", help="interpret \\n etc. in --prompt")
    p.add_argument("--json", action="store_true", help="one JSON object per sample (tokens, log-probs)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_quant(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("ppl", help="perplexity and bits per byte of a text file",
                       description="Prints {tokens, nll_per_token, ppl, bits_per_byte} of the whole file, "
                                   "scored after the document-start token, in sliding windows of the model's "
                                   "context. Note: summary.json's val_ppl of a run trained with "
                                   "data.loss_on=answers is over answer tokens only, so it is much lower than "
                                   "the perplexity of whole documents printed here.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", help="run directory")
    p.add_argument("--text-file", required=True, type=existing_file, help="UTF-8 text file to score")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.set_defaults(func=cmd_ppl)

    p = sub.add_parser("export-hf", help="write a Hugging Face (Llama) folder from a run",
                       description="Writes config.json, model.safetensors, the tokenizer (with its document-start "
                                   "rule and chat template), generation_config.json and a model card README.md, "
                                   "loadable with transformers' AutoModelForCausalLM / AutoTokenizer, vLLM and "
                                   "lm-evaluation-harness (--model hf).")
    p.add_argument("run", help="run directory")
    p.add_argument("out", help="output folder (created)")
    p.set_defaults(func=cmd_export_hf)

    p = sub.add_parser("import-hf", help="turn a local HF Llama/Qwen2 folder into a run directory",
                       description="Reads config.json, *.safetensors and the tokenizer of a local folder "
                                   "(no downloads); Qwen2-style q/k/v biases are kept.")
    p.add_argument("src", help="Hugging Face model folder")
    p.add_argument("out", help="new run directory")
    p.set_defaults(func=cmd_import_hf)
