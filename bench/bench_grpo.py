"""GRPO steps per second: emergelab vs TRL's GRPOTrainer on the same model, batch shape, lengths, threads.

    python bench/bench_grpo.py [--size 1m] [--steps 6] [--threads 1]

The same work on both sides:
  * the same randomly initialised Llama-architecture model (ours, exported with
    `emergelab.model.hf.to_hf_llama`), the same prompt token ids (`<eos>` + the problem, as
    `encode_prompt` builds them), 16 prompts × 8 samples, up to 64 new tokens, temperature 1, no
    top-k/top-p, the same stop rule (<eos> or a newline ends a completion: TRL gets both ids as the
    model's `generation_config.eos_token_id`, so its completion mask ends there too);
  * the same reward: the task verifier of a 3-digit addition task scored by position-wise agreement
    with the answer (`PartialAdd`), so that even a random model's groups have reward variance and both
    trainers take a real optimizer step every step (ours skips the step on a batch without signal);
  * the same objective: token-level (DAPO) aggregation, group-std advantage scaling, ε = 0.2, β = 0 (no
    reference model on either side), one optimizer step per rollout batch (μ = 1: neither side
    recomputes old log-probs), gradient clipping at 1.0, AdamW;
  * the same thread count (`torch.set_num_threads`), in one process, emergelab first.
The first step is a warm-up and is not timed; the median step time of the rest is reported, with the
mean completion length each side sampled (the lengths are random, so they differ a little step by step).
Remaining asymmetries: ours is timed by the loop's own `step_s` (rollout, scoring, loss, backward,
optimizer; not the metrics-file write), TRL's between `on_step_end` callbacks (its whole step,
including its logging); TRL uses its default fused AdamW and linear lr decay, ours plain AdamW
(foreach=False) at constant lr — the optimizer is a few ms either way.
TRL is optional (`pip install -r requirements-bench.txt`); without it only emergelab's numbers are
reported. Writes bench/results/grpo.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from emergelab.config import write_yaml
from emergelab.data.tokenizer import char_tokenizer
from emergelab.model import GPT, ModelConfig
from emergelab.rl.trainer import RLConfig, train_grpo
from emergelab.runs import save_checkpoint
from emergelab.tasks.arithmetic import Arithmetic
from emergelab.tasks.base import Example, Verdict, cut_at_stop, sampling_stops
from emergelab.tasks.registry import get_task
from emergelab.tasks.scoring import char_accuracy
from emergelab.train.sft import encode_prompt

SIZES = {"100k": (2, 64, 4), "1m": (4, 128, 4), "4m": (6, 224, 7)}
TASK = f"{Path(__file__).resolve()}:PartialAdd:digits=3"
P, G, MAX_NEW = 16, 8, 64


class PartialAdd(Arithmetic):
    """Addition scored by the share of answer characters the completion gets right, position by position."""

    def verify(self, example: Example, completion: str) -> Verdict:
        score = char_accuracy(completion.strip(), example.answer)
        return Verdict(score, "position-wise agreement", completion, "plain")


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


def bench_emergelab(run: Path, root: Path, steps: int) -> dict:
    cfg = RLConfig(task=TASK, steps=steps + 1, prompts_per_step=P, group_size=G, max_new_tokens=MAX_NEW,
                   eval_every=10_000, eval_n=1, progress=False, beta=0.0, log_kl=False, loss_agg="token",
                   adv_scale="group", ckpt_every=0)
    train_grpo(cfg, run, root / "rl")
    rows = [json.loads(x) for x in (root / "rl" / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if r["step"] >= 2]  # step 1 is the warm-up
    return {"steps_per_s": 1 / statistics.median(r["step_s"] for r in timed),
            "step_s": [round(r["step_s"], 3) for r in timed],
            "gen_s": [round(r["gen_s"], 3) for r in timed],
            "mean_completion_len": statistics.mean(r["len_mean"] for r in timed),
            "optimizer_steps_skipped": sum(r["skipped"] for r in timed)}


def bench_trl(model: GPT, tok, root: Path, steps: int) -> dict | str:
    try:
        from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, TrainerCallback
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as e:
        return f"not run: {e}"
    from datasets import Dataset
    from datasets.table import InMemoryTable

    from emergelab.model.hf import to_hf_llama

    hf_dir = to_hf_llama(model, tok, root / "hf")
    hf_tok = PreTrainedTokenizerFast.from_pretrained(hf_dir)
    task = get_task(TASK)
    examples = task.generate(P * (steps + 1), "train", seed=0)
    # "<eos>" + problem tokenizes to exactly our prompt ids
    by_prompt = {"<eos>" + ex.prompt: ex for ex in examples}
    for text, ex in by_prompt.items():
        assert hf_tok(text)["input_ids"] == encode_prompt(tok, ex.prompt), text
    # an explicit fingerprint skips datasets' dill hashing (which fails on this pyarrow build)
    data = Dataset(InMemoryTable.from_pydict({"prompt": list(by_prompt)}), fingerprint="bench")

    def accuracy(prompts, completions, **_):  # the reward our loop computes: verifier on the cut text
        return [task.verify(by_prompt[p], cut_at_stop(c)).score for p, c in zip(prompts, completions)]

    hf_model = AutoModelForCausalLM.from_pretrained(hf_dir)
    hf_model.generation_config.eos_token_id = list(sampling_stops(tok)["stop_token_ids"])
    gen_s: list[float] = []
    hf_generate = hf_model.generate

    def timed_generate(*a, **k):  # TRL's rollout time, to compare with our gen_s
        t0 = time.perf_counter()
        out = hf_generate(*a, **k)
        gen_s.append(time.perf_counter() - t0)
        return out

    hf_model.generate = timed_generate
    args = GRPOConfig(output_dir=str(root / "trl"), per_device_train_batch_size=P * G, num_generations=G,
                      max_completion_length=MAX_NEW, max_steps=steps + 1, learning_rate=1e-4, beta=0.0,
                      loss_type="dapo", scale_rewards="group", epsilon=0.2, num_iterations=1,
                      max_grad_norm=1.0, temperature=1.0, top_p=1.0, top_k=0, logging_steps=1, report_to=[],
                      use_cpu=True, save_strategy="no", disable_tqdm=True)
    trainer = GRPOTrainer(model=hf_model, reward_funcs=accuracy, args=args, train_dataset=data,
                          processing_class=hf_tok)
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            stamps.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.train()
    if len(stamps) < 2:
        return "not enough steps"
    times = [b - a for a, b in zip(stamps, stamps[1:])]
    lens = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    return {"steps_per_s": 1 / statistics.median(times), "step_s": [round(t, 3) for t in times],
            "gen_s": [round(t, 3) for t in gen_s[1:]],
            "mean_completion_len": statistics.mean(lens[1:]), "optimizer_steps_skipped": 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="1m", choices=list(SIZES))
    ap.add_argument("--steps", type=int, default=6, help="timed steps per side (plus one warm-up step)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["EMERGELAB_NO_PROGRESS"] = "1"
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run, model, tok = make_run(root, args.size)
        ours = bench_emergelab(run, root, args.steps)
        trl = bench_trl(model, tok, root, args.steps)
    ratio = ours["steps_per_s"] / trl["steps_per_s"] if isinstance(trl, dict) else None
    result = {"size": args.size, "params": model.num_params(), "prompts_x_group": f"{P}x{G}",
              "max_new_tokens": MAX_NEW, "threads": args.threads, "timed_steps": args.steps,
              "load_avg_1_5_15_before": [round(x, 2) for x in load],
              "load_avg_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
              "emergelab": ours, "trl": trl, "ratio": ratio}
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "grpo.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    if ratio:
        print(f"emergelab {ours['steps_per_s']:.3f} steps/s, TRL {trl['steps_per_s']:.3f} steps/s: {ratio:.2f}x")


if __name__ == "__main__":
    main()
