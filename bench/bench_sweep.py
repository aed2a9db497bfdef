"""Benchmark: the quick profile's sweep grid (sizes × seeds) — yesterday's path vs today's default.

- old: one run at a time with 1 torch thread (`--jobs 1`), the size table's former head counts
  (2 heads at widths 16–24), every run tokenizing the corpus itself;
- new: the default of `emergelab sweep` / `make demo` — jobs and threads from emergelab/threads.py
  (one 1-thread job per core on the 2-core CPU), heads of size ≥ 16, the corpus tokenized once.

Each system trains the whole grid (every size × seed of the quick profile, its batch shapes, no
ability scoring) twice, with S1 and S2 steps per run. The difference gives the marginal rate in
models × steps per second (fixed costs such as process start-up and tokenization cancel), the S1
pass gives the fixed cost, and together they project the wall time of the real grid (2,000 steps a
run). The systems alternate within each repeat (old, new, new, old, ...); we report medians and the
ratio of the medians, with the load average before and after (the reference machine is shared).

A second, load-proof part (`--step-costs`, also run by default first) times one training step of every
quick size in process CPU time, old heads vs new, alternating in one process, on the real quick corpus
batches; with the tokenization cost per run, it gives the grid's CPU seconds for both paths. CPU
time is steady on a shared machine where wall time is not; the parallel part (jobs) only shows in
wall time, on an idle machine.

    python bench/bench_sweep.py [--steps 10,40] [--repeat 2]   # table on stdout, JSON in bench/results/sweep.json
    python bench/bench_sweep.py --step-costs-only              # only the CPU-time part (minutes)
    python bench/bench_sweep.py --threads-only                 # 1 vs 2 threads, other core idle / busy

The last one backs emergelab/threads.py: the wall time of a training step (16×256 tokens, documents of
20–130 tokens, 1 layer d=16 … 2 layers d=64) with 1 and 2 torch threads, with the other core idle and
with a busy-loop process on it, and two 1-thread processes side by side; modes alternate per repeat.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from emergelab import sizes
from emergelab.demo.pipeline import _sweep_recipe
from emergelab.demo.profiles import get_profile
from emergelab.science import sweep
from emergelab.tasks.corpus import build_corpus
from emergelab.threads import choose

# the size table before issue 14 (name → n_head), for the old path
OLD_HEADS = {"3k": 1, "5k": 2, "10k": 2, "15k": 2}


@contextlib.contextmanager
def old_path():
    """Former head counts and per-run tokenization, in this process (the old path runs in-process)."""
    saved_sizes, saved_prep = dict(sizes.SIZES), sweep.prepare_shared_data
    sizes.SIZES.update({k: (*v[:2], OLD_HEADS.get(k, v[2])) for k, v in saved_sizes.items()})
    sweep.prepare_shared_data = lambda *a, **k: {}
    try:
        yield
    finally:
        sizes.SIZES.clear()
        sizes.SIZES.update(saved_sizes)
        sweep.prepare_shared_data = saved_prep


def grid_recipe(corpus: Path, steps: int) -> dict:
    r = _sweep_recipe(get_profile("quick"))
    r.pop("corpus_recipe")
    r["corpus"] = str(corpus)
    r["steps"] = [steps]
    r["eval"] = {}
    r["pretrain"].update({"train.eval_every": 10**6, "train.ckpt_every": steps, "train.warmup_steps": 1})
    return r


def one_pass(system: str, corpus: Path, steps: int, work: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=work))
    t0 = time.perf_counter()
    if system == "old":
        with old_path():
            sweep.run_sweep(grid_recipe(corpus, steps), out, jobs=1, threads=1, progress=False)
    else:
        sweep.run_sweep(grid_recipe(corpus, steps), out, progress=False)
    return time.perf_counter() - t0


def step_costs(corpus: Path, work: Path, names: list[str], steps: int, repeat: int) -> dict:
    """Per size: median process CPU ms of a training step with the old and the new head count, and the
    CPU seconds of tokenizing the corpus for one run (what each old run paid)."""
    import torch.nn.functional as F

    from emergelab.config import load_pretrain_config
    from emergelab.data.tokenizer import Tokenizer
    from emergelab.data.tokens import BatchSampler, TokenData
    from emergelab.model.gpt import GPT, ModelConfig
    from emergelab.train.pretrain import prepare_data

    torch.set_num_threads(1)
    recipe = grid_recipe(corpus, 10)
    cfg = load_pretrain_config(None, [f"data.corpus={corpus}", "size=5k",
                                      *(f"{k}={v}" for k, v in recipe["pretrain"].items())])
    prep = work / "prepared"
    prep.mkdir()
    c0 = time.process_time()
    prepare_data(cfg, prep)
    tokenize_cpu = time.process_time() - c0
    tok = Tokenizer.load(prep / "tokenizer.json")
    data = TokenData.open(prep / "data")
    t = cfg.train
    sampler = BatchSampler(data.train, t.seq_len, t.batch_size, 1, 1, 0, "train", data.train_mask, tok.eos_id)
    out = {"tokenize_cpu_s": tokenize_cpu, "ms": {}}
    for name in names:
        n_layer, n_embd, new_heads = sizes.SIZES[name]
        ms: dict[str, list[float]] = {"old": [], "new": []}
        for rep in range(repeat):
            for which in (["old", "new"] if rep % 2 == 0 else ["new", "old"]):
                heads = OLD_HEADS.get(name, new_heads) if which == "old" else new_heads
                torch.manual_seed(0)
                model = GPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=n_layer, n_embd=n_embd, n_head=heads,
                                        block_size=cfg.model.block_size))
                opt = torch.optim.AdamW(model.parameters(), 1e-3)
                for i in range(steps + 2):
                    if i == 2:  # two warm-up steps
                        c0 = time.process_time()
                    x, y, doc = sampler.batch(i)
                    logits = model(x, doc_ids=doc).logits
                    F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100).backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                ms[which].append(1000 * (time.process_time() - c0) / steps)
        out["ms"][name] = {k: statistics.median(v) for k, v in ms.items()}
        print(f"{name:>5}: old {out['ms'][name]['old']:6.1f} ms/step  new {out['ms'][name]['new']:6.1f} ms/step "
              f"(CPU, 1 thread; load {os.getloadavg()[0]:.2f})", flush=True)
    return out


THREAD_SIZES = ["5k", "50k", "100k"]


def _child_step_ms(names: list[str], threads: int, steps: int = 12) -> dict[str, float]:
    """Median wall ms of a synthetic document-masked training step per size, in this process."""
    import torch.nn.functional as F

    from emergelab.model.gpt import GPT, ModelConfig

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    B, T, V = 16, 256, 40
    doc = torch.zeros(B, T, dtype=torch.long)
    for b in range(B):
        d, t = 0, 0
        while t < T:
            n = int(torch.randint(20, 130, (1,), generator=g))
            doc[b, t:t + n], d, t = d, d + 1, t + n
    x = torch.randint(0, V, (B, T), generator=g)
    out = {}
    for name in names:
        n_layer, n_embd, n_head = sizes.SIZES[name]
        model = GPT(ModelConfig(vocab_size=V, n_layer=n_layer, n_embd=n_embd, n_head=n_head, block_size=T))
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        ts = []
        for _ in range(steps + 2):
            t0 = time.perf_counter()
            F.cross_entropy(model(x, doc_ids=doc).logits.flatten(0, 1), x.flatten()).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            ts.append(time.perf_counter() - t0)
        out[name] = 1000 * statistics.median(ts[2:])
    return out


def thread_choice(repeat: int) -> dict:
    """ms per step for: 1 thread, 2 threads (other core idle), the same with a busy core, 2 jobs × 1 thread."""
    import subprocess
    import sys

    def run(threads: int, n: int) -> list[dict]:
        cmd = [sys.executable, __file__, "--_child", str(threads)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(n)]
        return [json.loads(p.communicate()[0].splitlines()[-1]) for p in procs]

    modes = {"1 thread": (1, 1, False), "2 threads": (2, 1, False), "1 thread, other core busy": (1, 1, True),
             "2 threads, other core busy": (2, 1, True), "2 jobs x 1 thread (each)": (1, 2, False)}
    seen: dict[str, list[list[dict]]] = {m: [] for m in modes}
    for rep in range(repeat):
        for mode in (list(modes) if rep % 2 == 0 else list(reversed(modes))):
            threads, jobs, busy = modes[mode]
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                seen[mode].append(run(threads, jobs))
            finally:
                if hog:
                    hog.kill()
                    hog.wait()
            print(f"repeat {rep} {mode:<28} " + "  ".join(f"{k} {v:6.1f} ms" for k, v in seen[mode][-1][0].items())
                  + f"  load {os.getloadavg()[0]:.2f}", flush=True)
    return {m: {name: statistics.median(r[j][name] for r in runs for j in range(len(r))) for name in THREAD_SIZES}
            for m, runs in seen.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", default="10,40", help="S1,S2: steps per run of the two passes")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--real-steps", type=int, default=get_profile("quick")["pretrain"]["max_steps"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sweep.json"))
    ap.add_argument("--step-costs-only", action="store_true", help="only the CPU-time step costs")
    ap.add_argument("--threads-only", action="store_true", help="only 1 vs 2 threads, idle vs busy")
    ap.add_argument("--_child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--cost-steps", type=int, default=20, help="timed steps per size in the CPU-time part")
    args = ap.parse_args()
    if args._child is not None:
        print(json.dumps(_child_step_ms(THREAD_SIZES, args._child)))
        return
    if args.threads_only:
        load_before = os.getloadavg()
        result = thread_choice(args.repeat)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(dict(meta=dict(sizes=THREAD_SIZES, repeat=args.repeat,
                                                            load_avg_before=list(load_before),
                                                            load_avg_after=list(os.getloadavg())),
                                                  threads=result), indent=2) + "\n")
        return
    s1, s2 = (int(x) for x in args.steps.split(","))
    profile = get_profile("quick")
    n_runs = len(profile["sizes"]) * len(profile["seeds"])
    work = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    corpus = work / "corpus"
    build_corpus(profile["corpus"], corpus)
    load_before = os.getloadavg()
    costs = step_costs(corpus, work, profile["sizes"], args.cost_steps, 3)
    seeds = len(profile["seeds"])
    cpu = {which: seeds * args.real_steps * sum(c[which] for c in costs["ms"].values()) / 1000
           for which in ("old", "new")}
    cpu["old"] += n_runs * costs["tokenize_cpu_s"]
    cpu["new"] += costs["tokenize_cpu_s"]
    print(f"grid CPU seconds at {args.real_steps} steps (training + tokenization): old {cpu['old']:.0f}, "
          f"new {cpu['new']:.0f} ({cpu['old'] / cpu['new']:.2f}x less work); tokenizing once: "
          f"{costs['tokenize_cpu_s']:.1f} CPU s; load {load_before[0]:.2f} → {os.getloadavg()[0]:.2f}", flush=True)
    result = {"step_costs": costs, "grid_cpu_seconds": cpu}
    if args.step_costs_only:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        meta = dict(sizes=profile["sizes"], seeds=profile["seeds"], real_steps=args.real_steps,
                    torch=torch.__version__, load_avg_before=list(load_before), load_avg_after=list(os.getloadavg()))
        Path(args.out).write_text(json.dumps(dict(meta=meta, **result), indent=2) + "\n")
        return
    times: dict[str, dict[int, list[float]]] = {"old": {s1: [], s2: []}, "new": {s1: [], s2: []}}
    for rep in range(args.repeat):
        order = ["old", "new"] if rep % 2 == 0 else ["new", "old"]
        for steps in (s1, s2):
            for system in order:
                t = one_pass(system, corpus, steps, work)
                times[system][steps].append(t)
                print(f"repeat {rep} {system:>3} {steps:>3} steps/run: {t:6.1f} s  load {os.getloadavg()[0]:.2f}",
                      flush=True)
    rows = {}
    for system, by_steps in times.items():
        t1, t2 = statistics.median(by_steps[s1]), statistics.median(by_steps[s2])
        rate = n_runs * (s2 - s1) / max(t2 - t1, 1e-9)  # models × steps per second, fixed costs cancelled
        fixed = max(t1 - n_runs * s1 / rate, 0.0)
        rows[system] = {"pass_seconds": {str(s1): by_steps[s1], str(s2): by_steps[s2]},
                        "model_steps_per_s": rate, "fixed_seconds": fixed,
                        "projected_grid_seconds": fixed + n_runs * args.real_steps / rate}
    par = choose(n_tasks=n_runs)
    ratio = rows["new"]["model_steps_per_s"] / rows["old"]["model_steps_per_s"]
    end_to_end = rows["old"]["projected_grid_seconds"] / rows["new"]["projected_grid_seconds"]
    print(f"\nquick grid: {len(profile['sizes'])} sizes × {len(profile['seeds'])} seeds = {n_runs} runs; "
          f"new default = {par.jobs} jobs × {par.threads} thread(s)")
    print(f"{'system':<6} {'models×steps/s':>15} {'fixed s':>8} {f'grid at {args.real_steps} steps':>22}")
    for system, r in rows.items():
        print(f"{system:<6} {r['model_steps_per_s']:>15.1f} {r['fixed_seconds']:>8.1f} "
              f"{r['projected_grid_seconds'] / 60:>19.1f} min")
    print(f"ratio new/old: {ratio:.2f}x in models×steps/s, {end_to_end:.2f}x in projected grid time; "
          f"load {load_before[0]:.2f} → {os.getloadavg()[0]:.2f}")
    meta = dict(sizes=profile["sizes"], seeds=profile["seeds"], steps=[s1, s2], repeat=args.repeat,
                real_steps=args.real_steps, new_default={"jobs": par.jobs, "threads": par.threads},
                cores=os.cpu_count(), torch=torch.__version__, cpu=platform.processor() or platform.machine(),
                load_avg_before=list(load_before), load_avg_after=list(os.getloadavg()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(dict(meta=meta, rows=rows, ratio_rate=ratio, ratio_projected=end_to_end,
                                              **result), indent=2) + "\n")


if __name__ == "__main__":
    main()
