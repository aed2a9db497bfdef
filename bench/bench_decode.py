"""Benchmark: greedy decoding, emergelab `generate` vs transformers `LlamaForCausalLM.generate`, same weights.

    python bench/bench_decode.py [--quick] [--threads 1] [--sizes 0.1M,1M,4M]   # JSON in bench/results/decode.json

Cases per size: batch 1; batch 16 of equal prompts; batch 16 of left-padded prompts of unequal length
(4–16 tokens, transformers gets the attention mask, so positions and masking match ours). Every case
decodes `--new-tokens` greedy tokens per row with no stop token, log-probs off on our side (transformers
computes none either). The two systems alternate inside one process (A, B, A, B, ...); tokens/s use the
median time, the speed-up is the median of the per-round ratios. "same" says whether the greedy tokens
are identical on both sides (they should be: same weights, float32). The load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from emergelab.model import GPT, ModelConfig, SamplingParams, generate
from emergelab.model.hf import hf_config_dict, to_hf_state_dict

VOCAB = 256
SIZES = {"0.1M": dict(n_layer=2, n_embd=64, n_head=4), "1M": dict(n_layer=4, n_embd=128, n_head=4),
         "4M": dict(n_layer=5, n_embd=256, n_head=8)}


def prompts_for(case: str) -> list[list[int]]:
    g = torch.Generator().manual_seed(1)
    if case == "batch 1":
        return [torch.randint(3, VOCAB, (16,), generator=g).tolist()]
    if case == "batch 16":
        return torch.randint(3, VOCAB, (16, 16), generator=g).tolist()
    lens = torch.randint(4, 17, (16,), generator=g).tolist()
    return [torch.randint(3, VOCAB, (n,), generator=g).tolist() for n in lens]


def runners(model: GPT, hf, prompts: list[list[int]], n: int):
    params = SamplingParams(max_new_tokens=n, temperature=0, logprobs=False)
    L = max(len(p) for p in prompts)
    ids = torch.tensor([[0] * (L - len(p)) + p for p in prompts])
    att = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in prompts])

    def ours():
        return [c.tokens for c in generate(model, prompts, params)]

    def theirs():
        with torch.inference_mode():
            out = hf.generate(ids, attention_mask=att, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                              eos_token_id=None, pad_token_id=0)
        return out[:, L:].tolist()
    return ours, theirs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats, 32 new tokens")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "decode.json"))
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.new_tokens = 3, 32
    torch.set_num_threads(args.threads)
    from transformers import LlamaConfig, LlamaForCausalLM

    load_before = os.getloadavg()
    print(f"greedy, {args.new_tokens} new tokens, threads={args.threads}, median of {args.repeats}, "
          f"load before {load_before[0]:.2f}")
    print("| size | case | emergelab tok/s | transformers tok/s | speed-up | same tokens |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name in args.sizes.split(","):
        cfg = ModelConfig(vocab_size=VOCAB, block_size=256, **SIZES[name])
        torch.manual_seed(0)
        model = GPT(cfg).eval()
        hf = LlamaForCausalLM(LlamaConfig(**hf_config_dict(cfg))).eval()
        hf.load_state_dict(to_hf_state_dict(model))
        for case in ("batch 1", "batch 16", "batch 16 left-padded"):
            prompts = prompts_for(case)
            ours, theirs = runners(model, hf, prompts, args.new_tokens)
            same = ours() == theirs()  # also the warm-up
            t: dict[str, list[float]] = {"ours": [], "hf": []}
            for _ in range(args.repeats):
                for k, f in (("ours", ours), ("hf", theirs)):
                    t0 = time.perf_counter()
                    f()
                    t[k].append(time.perf_counter() - t0)
            work = len(prompts) * args.new_tokens
            r = dict(size=name, params=model.num_params(), case=case, batch=len(prompts),
                     tok_s=work / statistics.median(t["ours"]), hf_tok_s=work / statistics.median(t["hf"]),
                     speedup=statistics.median(h / o for o, h in zip(t["ours"], t["hf"])), same_tokens=same)
            rows.append(r)
            print(f"| {name} | {case} | {r['tok_s']:,.0f} | {r['hf_tok_s']:,.0f} | {r['speedup']:.2f}× | {same} |",
                  flush=True)
    meta = dict(torch=torch.__version__, threads=args.threads, repeats=args.repeats, new_tokens=args.new_tokens,
                vocab=VOCAB, machine=platform.machine(), load_avg_before=list(load_before),
                load_avg_after=list(os.getloadavg()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(dict(meta=meta, rows=rows), indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
