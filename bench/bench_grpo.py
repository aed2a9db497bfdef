"""GRPO steps per second: emergelab vs TRL's GRPOTrainer on the same model, batch shape, lengths, threads.

    python bench/bench_grpo.py [--sizes 100k,1m,4m] [--repeat 3] [--steps 6] [--threads 1]

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
  * a learning rate of 1e-6, constant, on both sides: the partial-credit reward favours longer
    completions, and at 1e-4 (with TRL's default linear decay vs. our constant rate) the two policies
    drifted apart within a few steps (4M model: our mean length 15 → 30, TRL's ~15), so the two sides
    no longer sampled the same amount of work; a step's cost does not depend on the lr value;
  * the same thread count (`torch.set_num_threads`), in one process, emergelab first.
The first step is a warm-up and is not timed; a run reports the median step time of the rest, with the
mean completion length each side sampled (random, so they differ a little) and the rollout time; each
size is run `--repeat` times (fresh model, both sides) and the medians over runs are reported.
Remaining asymmetries: ours is timed by the loop's own `step_s` (rollout, scoring, loss, backward,
optimizer; not the metrics-file write), TRL's between `on_step_end` callbacks (its whole step,
including its logging). Both sides run in float32 without gradient checkpointing (TRL's defaults, bf16
autocast and checkpointing, would slow it and inflate the ratio) with torch's AdamW, single-tensor on the CPU
(ours foreach=False, TRL optim="adamw_torch"). Each repeat runs emergelab then TRL, one after the other.
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
from emergelab.data.chat import encode_prompt
from emergelab.data.tokenizer import char_tokenizer
from emergelab.model import GPT, ModelConfig
from emergelab.rl.trainer import RLConfig, train_grpo
from emergelab.runs import save_checkpoint
from emergelab.tasks.arithmetic import Arithmetic
from emergelab.tasks.base import Example, Verdict, cut_at_stop, sampling_stops
from emergelab.tasks.registry import get_task
from emergelab.tasks.scoring import char_accuracy

SIZES = {"100k": (2, 64, 4), "1m": (4, 128, 4), "4m": (6, 224, 7)}
TASK = f"{Path(__file__).resolve()}:PartialAdd:digits=3"
P, G, MAX_NEW = 16, 8, 64
LR = 1e-6  # small enough that neither policy drifts during the benchmark (see the docstring)


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
                   adv_scale="group", ckpt_every=0, lr=LR)
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
        from transformers.trainer_callback import PrinterCallback
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
    # TRL tokenizes the prompt text with the exported tokenizer's special tokens: the export puts the
    # document start (<eos>) in front itself; an older export needs it in the text
    lead = "" if hf_tok("0")["input_ids"][0] == tok.eos_id else "<eos>"
    by_prompt = {lead + ex.prompt: ex for ex in examples}
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
                      max_completion_length=MAX_NEW, max_steps=steps + 1, learning_rate=LR,
                      lr_scheduler_type="constant", beta=0.0,
                      loss_type="dapo", scale_rewards="group", epsilon=0.2, num_iterations=1,
                      max_grad_norm=1.0, temperature=1.0, top_p=1.0, top_k=0, logging_steps=1, report_to=[],
                      use_cpu=True, save_strategy="no", disable_tqdm=True,
                      # like ours: float32 (TRL's default bf16=True autocasts on the CPU), no gradient
                      # checkpointing (TRL's default recomputes activations), torch AdamW (single-tensor on CPU)
                      bf16=False, gradient_checkpointing=False, optim="adamw_torch")
    trainer = GRPOTrainer(model=hf_model, reward_funcs=accuracy, args=args, train_dataset=data,
                          processing_class=hf_tok)
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            stamps.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.remove_callback(PrinterCallback)  # the per-step log dicts on stdout
    trainer.train()
    if len(stamps) < 2:
        return "not enough steps"
    times = [b - a for a, b in zip(stamps, stamps[1:])]
    lens = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    return {"steps_per_s": 1 / statistics.median(times), "step_s": [round(t, 3) for t in times],
            "gen_s": [round(t, 3) for t in gen_s[1:]],
            "mean_completion_len": statistics.mean(lens[1:]), "optimizer_steps_skipped": 0}


def bench_once(size: str, steps: int) -> dict:
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run, model, tok = make_run(root, size)
        ours = bench_emergelab(run, root, steps)
        trl = bench_trl(model, tok, root, steps)
    ratio = ours["steps_per_s"] / trl["steps_per_s"] if isinstance(trl, dict) else None
    return {"params": model.num_params(), "load_avg_1_5_15_before": [round(x, 2) for x in load],
            "emergelab": ours, "trl": trl, "ratio": ratio}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1m", help=f"comma-separated, from {','.join(SIZES)}")
    ap.add_argument("--repeat", type=int, default=3, help="independent runs per size (medians reported)")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per side and run (plus one warm-up)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    sizes = [s for s in args.sizes.split(",") if s]
    for s in sizes:
        if s not in SIZES:
            raise SystemExit(f"--sizes: {s!r} is not one of {list(SIZES)}")
    torch.set_num_threads(args.threads)
    os.environ["EMERGELAB_NO_PROGRESS"] = "1"
    result: dict = {"command": f"python bench/bench_grpo.py --sizes {args.sizes} --repeat {args.repeat} "
                               f"--steps {args.steps} --threads {args.threads}",
                    "prompts_x_group": f"{P}x{G}", "max_new_tokens": MAX_NEW, "threads": args.threads,
                    "timed_steps_per_run": args.steps, "sizes": {}}
    for size in sizes:
        runs = [bench_once(size, args.steps) for _ in range(args.repeat)]
        med = {"params": runs[0]["params"],
               "emergelab_steps_per_s": statistics.median(r["emergelab"]["steps_per_s"] for r in runs)}
        if all(r["ratio"] for r in runs):
            med["trl_steps_per_s"] = statistics.median(r["trl"]["steps_per_s"] for r in runs)
            med["ratio_median"] = statistics.median(r["ratio"] for r in runs)
            med["ratio_min_max"] = [min(r["ratio"] for r in runs), max(r["ratio"] for r in runs)]
        result["sizes"][size] = {**med, "runs": runs}
        print(f"{size}: {json.dumps(med)}", flush=True)
    result["load_avg_1_5_15_after"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "grpo.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
