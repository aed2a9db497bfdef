"""Benchmark: emergelab GPT vs Hugging Face LlamaForCausalLM — training tokens/s and MFU (decoding: bench_decode.py).

Both models get the identical config and weights, the same batches, AdamW settings and thread count.
Timings alternate between the two inside one process (A, B, A, B, ...); we report the median over
repeats, and the speed ratio as the median of the per-repeat ratios, in wall-clock time and in process
CPU time (the latter is steadier on a shared machine; on a quiet machine the two agree).
MFU = flops_per_token (6N + 12·L·C·T, see GPT.flops_per_token) × tokens/s / peak, where the peak is the
fp32 throughput of a 2048×2048 matmul timed between the training runs (median, same threads).

    python bench/bench_model.py [--quick] [--threads 1]   # table on stdout, JSON in bench/results/model.json
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
import torch.nn.functional as F

from emergelab.model import GPT, ModelConfig
from emergelab.model.hf import hf_config_dict, to_hf_state_dict

VOCAB, SEQ, BATCH = 256, 128, 16
SIZES = {  # name -> (config, training steps per timed repeat); params printed in the table
    "0.1M": (dict(n_layer=2, n_embd=64, n_head=4), 10),
    "1M": (dict(n_layer=4, n_embd=128, n_head=4), 5),
    "4M": (dict(n_layer=5, n_embd=256, n_head=8), 3),
}


def timed(f) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    w, c = time.perf_counter(), time.process_time()
    f()
    return time.perf_counter() - w, time.process_time() - c


def matmul_peak_flops(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n**3 / min(timed(lambda: a @ b)[0] for _ in range(reps))


def hf_twin(model: GPT):
    """LlamaForCausalLM with model's config and weights (SDPA attention, transformers' default)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    hf = LlamaForCausalLM(LlamaConfig(**hf_config_dict(model.cfg)))
    hf.load_state_dict(to_hf_state_dict(model))
    return hf


def compare(runs: dict, repeats: int, work: float) -> dict:
    """Alternate the runs `repeats` times; throughput = work / median time, ratio = median of hf/ours.

    A 2048² matmul is timed in every round too, so MFU divides by a peak measured under the same load."""
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    runs = runs | {"peak": lambda: [a @ b for _ in range(3)]}
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, f in runs.items():
            w, c = timed(f)
            wall[k].append(w)
            cpu[k].append(c)
    out = {k: work / statistics.median(v) for k, v in wall.items()}
    out["peak"] = 3 * 2 * n**3 / statistics.median(wall["peak"])
    out["ratio"] = statistics.median(h / o for o, h in zip(wall["emergelab"], wall["hf"]))
    out["cpu_ratio"] = statistics.median(h / o for o, h in zip(cpu["emergelab"], cpu["hf"]))
    return out


def bench_training(cfg: ModelConfig, steps: int, repeats: int) -> dict:
    torch.manual_seed(0)
    ours = GPT(cfg)
    hf = hf_twin(ours)
    data = torch.randint(0, VOCAB, (steps, BATCH, SEQ + 1), generator=torch.Generator().manual_seed(0))
    batches = [(d[:, :-1].contiguous(), d[:, 1:].contiguous()) for d in data]

    def trainer(model, logits_of):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)

        def run(bs=batches):
            for x, y in bs:
                logits = logits_of(model, x)
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        run(batches[:2])  # warm-up (allocator, optimizer state)
        return run

    runs = {"emergelab": trainer(ours, lambda m, x: m(x).logits),
            "hf": trainer(hf, lambda m, x: m(input_ids=x, use_cache=False).logits)}
    return compare(runs, repeats, steps * BATCH * SEQ)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and repeats (a smoke run)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "model.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 7
    load_before = os.getloadavg()
    peak = matmul_peak_flops()
    print(f"threads={args.threads}  fp32 matmul peak (2048^2, best of 10 at start): {peak / 1e9:.1f} GFLOP/s  "
          f"train batch {BATCH}x{SEQ}, vocab {VOCAB}; median of {repeats}; load before {load_before[0]:.2f}")
    print("| size | params | train tok/s (ours / HF) | speed-up wall (cpu) | MFU ours / HF (peak GFLOP/s) |")
    print("|---|---|---|---|---|")
    rows = []
    for name, (kw, steps) in SIZES.items():
        cfg = ModelConfig(vocab_size=VOCAB, block_size=SEQ, **kw)
        model = GPT(cfg)
        fpt = model.flops_per_token(seq_len=SEQ)
        tr = bench_training(cfg, 2 if args.quick else steps, repeats)
        r = dict(size=name, params=model.num_params(), non_embedding_params=model.num_params(True), config=kw,
                 flops_per_token=fpt, train_tok_s=tr["emergelab"], hf_train_tok_s=tr["hf"],
                 train_speedup=tr["ratio"], train_speedup_cpu=tr["cpu_ratio"],
                 peak_flops=tr["peak"], mfu=tr["emergelab"] * fpt / tr["peak"], hf_mfu=tr["hf"] * fpt / tr["peak"])
        rows.append(r)
        print(f"| {name} | {r['params']:,} | {r['train_tok_s']:,.0f} / {r['hf_train_tok_s']:,.0f} "
              f"| {r['train_speedup']:.2f}× ({r['train_speedup_cpu']:.2f}×) "
              f"| {100 * r['mfu']:.1f}% / {100 * r['hf_mfu']:.1f}% ({r['peak_flops'] / 1e9:.0f}) |", flush=True)
    meta = dict(torch=torch.__version__, threads=args.threads, peak_flops=peak, quick=args.quick,
                repeats=repeats, train_batch=BATCH, seq_len=SEQ, vocab=VOCAB, machine=platform.machine(),
                load_avg_before=list(load_before), load_avg_after=list(os.getloadavg()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(dict(meta=meta, rows=rows), indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
