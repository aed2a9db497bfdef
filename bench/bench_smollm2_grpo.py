"""One GRPO step on SmolLM2-135M-Instruct on the CPU: step time and peak memory (issue 17).

    python bench/bench_smollm2_grpo.py [--micro-batch 8,0] [--threads 1] [--task add:digits=3] [--length-reward 0.5]

The recipe's setting on the real model: 16 prompts × 8 samples, at most 64 new tokens, temperature 1, the
model's own chat template (`rl.template=chat`), accuracy reward, β = 0 with the reference model's KL logged
(so the frozen copy runs a forward over the 49k vocabulary), AdamW. A 135M model rarely answers correctly, so
with the accuracy reward alone the update is usually skipped (every advantage 0: no backward);
`--length-reward W` adds DAPO's overlong penalty so that the groups have reward variance and the backward
runs. Each `--micro-batch` setting runs in its own process (peak RSS is per process; 0 = no cap, the whole
batch in as few forwards as the length buckets allow), one after another, alternating when repeated. Reported
per run: the step's own time (`step_s`: rollout, rewards, reference and policy forwards, backward, optimizer —
not the step-0 evaluation), the rollout part, whether the update was skipped (every advantage 0), and the
process's peak RSS. The model is imported once, in a separate process, so the GGUF reader's memory is not
counted. Writes bench/results/smollm2_grpo[_length].json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def one_step(init: str, out: str, micro_batch: int, threads: int, task: str, length_reward: float) -> dict:
    import torch

    from emergelab.config import load
    from emergelab.rl.trainer import RLConfig, train_grpo

    torch.set_num_threads(threads)
    rewards = {"accuracy": 1.0, **({"length": length_reward} if length_reward else {})}
    cfg = load(RLConfig, None, {"rl": {"task": task, "steps": 1, "prompts_per_step": 16, "group_size": 8,
                                       "max_new_tokens": 64, "template": "chat", "micro_batch": micro_batch,
                                       "eval_n": 1, "eval_every": 1, "ckpt_every": 0, "log_kl": True,
                                       "rewards": rewards, "length_cache": 32, "progress": False}}, section="rl")
    load_before = os.getloadavg()
    rec = train_grpo(cfg, init, out)
    return {"micro_batch": micro_batch, "threads": threads, "task": task, "rewards": rewards, "step_s": rec["step_s"],
            "gen_s": rec["gen_s"], "skipped": rec["skipped"], "reward": rec["reward"], "len_mean": rec["len_mean"],
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--micro-batch", default="8,0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--task", default="add:digits=3")
    ap.add_argument("--length-reward", type=float, default=0.0,
                    help="weight of DAPO's overlong penalty: gives groups reward variance, so the backward runs")
    ap.add_argument("--child", nargs=2, metavar=("INIT", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_step(*args.child, int(args.micro_batch), args.threads, args.task, args.length_reward)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench_smol_"))
    init = tmp / "smollm2"
    subprocess.run([sys.executable, "-m", "emergelab", "import-smollm2", str(init)], check=True, capture_output=True)
    runs = []
    for r in range(args.repeat):
        for mb in args.micro_batch.split(","):
            out = tmp / f"rl_{mb}_{r}"
            proc = subprocess.run([sys.executable, __file__, "--child", str(init), str(out), "--micro-batch", mb,
                                   "--threads", str(args.threads), "--task", args.task,
                                   "--length-reward", str(args.length_reward)],
                                  check=True, capture_output=True, text=True, env={**os.environ,
                                                                                  "EMERGELAB_NO_PROGRESS": "1"})
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]))
    print(f"{'micro_batch':>11} {'step s':>7} {'rollout s':>9} {'skipped':>7} {'peak GiB':>8} {'load':>5}")
    for x in runs:
        print(f"{x['micro_batch']:>11} {x['step_s']:>7.1f} {x['gen_s']:>9.1f} {x['skipped']:>7} "
              f"{x['peak_rss_gib']:>8.2f} {x['loadavg_before'][0]:>5.1f}")
    dest = Path(__file__).parent / "results" / f"smollm2_grpo{'_length' if args.length_reward else ''}.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps({"runs": runs}, indent=1))


if __name__ == "__main__":
    main()
