"""GRPO steps per second: emergelab vs TRL's GRPOTrainer on the same model, batch shape, lengths, threads.

    python bench/bench_grpo.py [--size 1m] [--steps 4] [--threads 2]

Both sides: the same randomly initialised Llama-architecture model (ours, exported with
`emergelab.model.hf.to_hf_llama`), 16 prompts × 8 samples, up to 64 new tokens, the same accuracy
reward (the task verifier), one optimizer step per rollout batch, the CPU with the same thread count.
The first step is a warm-up and is not timed; the median step time is reported (the
machine may be shared). TRL is optional (`pip install -r requirements-bench.txt`);
without it only emergelab's numbers are reported. Writes bench/results/grpo.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from emergelab.config import write_yaml
from emergelab.data.tokenizer import char_tokenizer
from emergelab.model import GPT, ModelConfig
from emergelab.rl.trainer import RLConfig, train_grpo
from emergelab.runs import save_checkpoint
from emergelab.tasks.base import sampling_stops
from emergelab.tasks.registry import get_task

SIZES = {"100k": (2, 64, 4), "1m": (4, 128, 4), "4m": (6, 224, 7)}
TASK = "add:digits=3"
P, G, MAX_NEW = 16, 8, 64


def make_run(root: Path, size: str) -> tuple[Path, GPT, object]:
    tok = char_tokenizer("0123456789+-=;cb \n")
    n_layer, n_embd, n_head = SIZES[size]
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=n_layer, n_embd=n_embd, n_head=n_head, block_size=128)
    torch.manual_seed(0)
    model = GPT(cfg)
    run = root / "base"
    run.mkdir()
    tok.save(run / "tokenizer.json")
    write_yaml({"model": cfg.__dict__}, run / "config.yaml")
    save_checkpoint(run, 0, model)
    return run, model, tok


def bench_emergelab(run: Path, root: Path, steps: int) -> float:
    cfg = RLConfig(task=TASK, steps=steps + 1, prompts_per_step=P, group_size=G, max_new_tokens=MAX_NEW,
                   eval_every=10_000, eval_n=1, progress=False, beta=0.0, loss_agg="token",
                   log_kl=False)  # like TRL with beta=0: no reference model
    train_grpo(cfg, run, root / "rl")
    rows = [json.loads(x) for x in (root / "rl" / "metrics.jsonl").read_text().splitlines()]
    times = sorted(r["step_s"] for r in rows if r["step"] >= 2)  # step 1 is the warm-up
    return 1 / times[len(times) // 2]  # median: robust to other processes on a shared machine


def bench_trl(model: GPT, tok, root: Path, steps: int) -> float | str:
    try:
        from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as e:
        return f"not run: {e}"
    from emergelab.model.hf import to_hf_llama

    hf_dir = to_hf_llama(model, tok, root / "hf")
    task = get_task(TASK)
    examples = task.generate(P * (steps + 1), "train", seed=0)
    by_prompt = {ex.prompt: ex for ex in examples}
    from datasets import Dataset
    from datasets.table import InMemoryTable

    # an explicit fingerprint skips datasets' dill hashing (which fails on this pyarrow build)
    data = Dataset(InMemoryTable.from_pydict({"prompt": [ex.prompt for ex in examples]}), fingerprint="bench")

    def accuracy(prompts, completions, **_):
        return [task.verify(by_prompt[p], c).score for p, c in zip(prompts, completions)]

    hf_tok = PreTrainedTokenizerFast.from_pretrained(hf_dir)
    args = GRPOConfig(output_dir=str(root / "trl"), per_device_train_batch_size=P * G, num_generations=G,
                      max_completion_length=MAX_NEW, max_steps=steps + 1, learning_rate=1e-4, beta=0.0,
                      logging_steps=1, report_to=[], use_cpu=True, save_strategy="no", temperature=1.0,
                      # the same stop rule as ours: <eos> or a newline ends a completion
                      generation_kwargs={"eos_token_id": list(sampling_stops(tok)["stop_token_ids"])})
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(hf_dir), reward_funcs=accuracy, args=args,
                          train_dataset=data, processing_class=hf_tok)
    stamps: list[float] = []

    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            stamps.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.train()
    if len(stamps) < 2:
        return "not enough steps"
    times = sorted(b - a for a, b in zip(stamps, stamps[1:]))
    return 1 / times[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="1m", choices=list(SIZES))
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run, model, tok = make_run(root, args.size)
        ours = bench_emergelab(run, root, args.steps)
        trl = bench_trl(model, tok, root, args.steps)
    result = {"size": args.size, "params": model.num_params(), "prompts_x_group": f"{P}x{G}",
              "max_new_tokens": MAX_NEW, "threads": args.threads, "emergelab_steps_per_s": ours,
              "trl_steps_per_s": trl,
              "ratio": ours / trl if isinstance(trl, float) else None}
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "grpo.json").write_text(json.dumps(result, indent=1))
    print(f"{'':12}{'steps/s':>10}\nemergelab   {ours:>10.3f}\nTRL         "
          f"{trl if isinstance(trl, str) else f'{trl:>10.3f}'}")
    if result["ratio"]:
        print(f"ratio {result['ratio']:.2f}x")


if __name__ == "__main__":
    main()
