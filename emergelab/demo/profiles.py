"""Demo profiles: what each stage of `emergelab demo` runs, at four scales.

- `tiny`: every stage in a few minutes of CPU; it exercises the plumbing and makes no claims.
- `quick` (default): the 2-core CPU recipe, ≤ ~20 minutes on an idle machine: 7 sizes over 1.5
  decades of parameters × 3 seeds; its verdicts are real measurements at this (small) scale.
- `full`: the CPU recipe for an hour: 10 sizes × 5 seeds, a params × steps grid for a Chinchilla-style
  fit, and the four-stage R1 recipe.
- `gpu`: the structure of `full` at larger sizes, bf16 on CUDA (see README); it states what it is
  expected to show rather than what was seen, since the reference machine has no GPU.

Each profile's `sweep_estimate_s` is measured per-step cost × steps on two cores (docs/sweeps.md; the gpu one a guess),
for the progress bar's ETA.
"""

from __future__ import annotations

import copy
from typing import Any

from emergelab.errors import UserError

# Arithmetic with place hints (a letter before each digit names its column): with them, and the loss on
# answers only (data.loss_on=answers), a 2-layer model learned reversed 4-digit addition in ~1,000 steps;
# without either, packed pretraining stayed on the plateau for 3,000 steps (docs/tasks.md). Packed windows
# also need document masking (train.doc_mask, on by default): without it, the same model on the same
# examples stayed at exact match 0 for 2,400 steps (scripts/probe_packing.py).
ADD4R = "add:digits=4,format=reversed,pad=true,hints=true"
ADD6 = "add:digits=6,hints=true"

# The embedded pretraining corpus (a `data build` recipe; see docs/tasks.md for every option).
CORPUS: dict[str, Any] = {
    "seed": 0,
    "documents": 30000,
    "val_fraction": 0.05,
    "tasks": [
        # emergence with scale: reversed, padded 4-digit addition (Lee et al. 2023; EXPERIMENTS.md)
        {"task": ADD4R, "weight": 3},
        # chain of thought + R1-Zero: 6-digit addition is weak direct and strong with the scratchpad;
        # 30% worked solutions (a few self-correcting) give RL a latent mode to amplify
        {"task": ADD6, "weight": 4, "cot": 0.3, "self_correct": 0.05},
        {"task": "expr:terms=3,max_num=20", "weight": 1, "cot": 0.5},
        # reasoning by form vs content
        {"task": "syllogism:hops=1-3", "weight": 2, "cot": 0.3},
        # in-context learning: episodes of solved lines sharing an invented lexicon
        {"task": "lexicon:size=4", "weight": 1, "lines": [2, 6]},
        {"task": "copy:length=8", "weight": 1},
        {"task": "countdown:numbers=3", "weight": 1, "cot": 0.4, "self_correct": 0.1},
    ],
}


# The quick profile's corpus: only the abilities it scores, weighted towards arithmetic, so small models
# see enough of each in minutes (EXPERIMENTS.md's effects needed ~1,500 steps of a single task).
QUICK_CORPUS: dict[str, Any] = {
    "seed": 0,
    "documents": 40000,
    "val_fraction": 0.05,
    "tasks": [
        # with 8:5 the 100k model reached only half-right 6-digit scratchpads in 2,000 steps; at 5:10 it
        # learned both (add4r 1.00, add6 direct 0.70, scratchpad 0.91 on 100 held-out items)
        {"task": ADD4R, "weight": 5},
        {"task": ADD6, "weight": 10, "cot": 0.3, "self_correct": 0.05},
        {"task": "syllogism:hops=1-3", "weight": 1.5, "cot": 0.3},
        {"task": "lexicon:size=4", "weight": 1, "lines": [2, 6]},
    ],
}

# Abilities scored at every size (the sweep's `eval.abilities`; see configs/sweep_emergence.yaml).
ABILITIES: list[dict[str, Any]] = [
    {"ability": "add4_reversed", "task": ADD4R, "shots": 0, "cot": False},
    {"ability": "add6_direct", "task": ADD6, "shots": 0, "cot": False},
    {"ability": "add6_scratchpad", "task": ADD6, "shots": 0, "cot": True},
    {"ability": "syllogism_nonce", "task": "syllogism:hops=1-3,vocab=nonce", "shots": 0, "cot": False},
    {"ability": "syllogism_agree", "task": "syllogism:hops=1-3,vocab=real,content=agree", "shots": 0, "cot": False},
    {"ability": "syllogism_conflict", "task": "syllogism:hops=1-3,vocab=real,content=conflict", "shots": 0,
     "cot": False},
    {"ability": "lexicon_0shot", "task": "lexicon:size=4", "shots": 0, "cot": False},
    {"ability": "lexicon_3shot", "task": "lexicon:size=4", "shots": 3, "cot": False},
]

# The CPU profiles' pretraining: 256-token windows, because a 6-digit worked solution is ~130 tokens and must fit
# whole in a window; loss on answers only (data.loss_on=answers).
CPU_PRETRAIN: dict[str, Any] = {"max_steps": 2000, "batch_size": 16, "seq_len": 256, "eval_every": 250,
                                "eval_batches": 8, "warmup_steps": 100, "block_size": 256, "loss_on": "answers"}

PROFILES: dict[str, dict[str, Any]] = {
    "tiny": {
        "corpus": {**CORPUS, "documents": 3000},
        "sizes": ["10k", "30k"],
        "pretrain": {"max_steps": 300, "batch_size": 16, "seq_len": 64, "eval_every": 100, "eval_batches": 2,
                     "warmup_steps": 20, "block_size": 256,
                     "loss_on": "answers"},
        "eval_n": 20,
        "experiments": "tiny",
        "rl": {"rl.task": ADD6, "rl.steps": 3, "rl.prompts_per_step": 2, "rl.group_size": 4, "rl.eval_n": 8,
               "rl.eval_every": 3,
               "rl.max_new_tokens": 48, "halluc.halluc_n": 8},
        "tts": {"n_items": 8, "samples": [1, 2, 4], "budgets": [8, 32], "max_new_tokens": 48},
        # yes / no / cannot tell: even a barely trained teacher is right by chance, so every step runs
        "distill": {"task": "syllogism:hops=1", "n": 32, "samples": 4, "student_size": "10k",
                    "sft": []},
        "cot_bridge_n": 8,
        "seeds": [0],
        "sweep_estimate_s": 40,
    },
    "quick": {
        "corpus": QUICK_CORPUS,
        # 2.7k … 106k parameters (1.6 decades) around the reversed-addition jump (EXPERIMENTS.md: 27k → 59k
        # at 1,500 steps; the quick demo: between 30k and 100k at 2,000 steps, seed-dependent at 50k). A 70k
        # point would cost as much as the 3k, 5k, 10k and 15k ones together: it is in the full profile.
        "sizes": ["3k", "5k", "10k", "15k", "30k", "50k", "100k"],
        "seeds": [0, 1, 2],
        "pretrain": CPU_PRETRAIN,
        "eval_n": 200,
        "experiments": "quick",
        # a hinted 6-digit scratchpad + answer is ~110 tokens: shorter limits would truncate every chain of thought
        "rl": {"rl.task": ADD6, "rl.steps": 60, "rl.max_new_tokens": 120},
        "tts": {"n_items": 100, "samples": [1, 2, 4, 8, 16], "budgets": [8, 16, 32, 64, 120],
                "max_new_tokens": 120},
        # the 50k model writes the scratchpad format but gets digits wrong; 15k and 3 SFT epochs at lr 3e-4
        # left both students at 0, so the student gets more epochs at a higher rate
        "distill": {"task": ADD6, "n": 1500, "samples": 2, "student_size": "50k",
                    "sft": ["sft.epochs=10", "train.lr=1e-3"]},
        "cot_bridge_n": 100,
        # SmolLM2-135M-Instruct, inference only (science/real_model): ~3 min on one thread; absent in `tiny`
        "real_model": {"syllogism_n": 48, "icl_n": 32, "cannot_tell_n": 48, "questions_n": 24, "threads": 1},
        "sweep_estimate_s": 740,
    },
    # the quick recipe at an hour's budget: 10 sizes × 5 seeds (2.7k … 166k parameters, 1.8 decades), a
    # params × steps grid for the Chinchilla-style fit, and the four-stage R1 recipe on the strongest model
    "full": {
        "corpus": QUICK_CORPUS,
        "sizes": ["3k", "5k", "10k", "15k", "30k", "40k", "50k", "70k", "100k", "150k"],
        "seeds": [0, 1, 2, 3, 4],
        "budget_grid": {"sizes": ["5k", "15k", "30k", "50k", "100k"], "steps": [500, 1000, 2000], "seeds": [0]},
        "pretrain": CPU_PRETRAIN,
        "eval_n": 200,
        "experiments": "quick",
        "rl": {"rl.task": ADD6, "rl.steps": 60, "rl.max_new_tokens": 120},
        "r1": {"rl.task": ADD6, "rl.max_new_tokens": 120},
        "tts": {"n_items": 100, "samples": [1, 2, 4, 8, 16], "budgets": [8, 16, 32, 64, 120],
                "max_new_tokens": 120},
        "distill": {"task": ADD6, "n": 1500, "samples": 2, "student_size": "100k", "fair": True,
                    # the fair comparison (rl/distill_fair.py) tunes lr on its own grid; a student not at 0
                    "sft": ["sft.epochs=10"]},
        "cot_bridge_n": 100,
        "real_model": {"syllogism_n": 100, "icl_n": 50, "cannot_tell_n": 100, "questions_n": 24, "threads": 1},
        "sweep_estimate_s": 2600,
    },
    "gpu": {
        "corpus": {**CORPUS, "documents": 400000},
        "sizes": ["5k", "15k", "30k", "50k", "100k", "300k", "1m", "3m", "10m", "30m"],
        "seeds": [0, 1, 2, 3, 4],
        "budget_grid": {"sizes": ["300k", "1m", "3m", "10m", "30m"], "steps": [1250, 2500, 5000], "seeds": [0]},
        "pretrain": {"max_steps": 5000, "batch_size": 64, "seq_len": 256, "eval_every": 500, "eval_batches": 20,
                     "warmup_steps": 200, "block_size": 512, "device": "cuda", "dtype": "bfloat16",
                     "loss_on": "answers"},
        "eval_n": 500,
        "experiments": "gpu",
        "r1": {"rl.task": ADD6, "rl.max_new_tokens": 160, "rl.device": "cuda"},
        "sweep_estimate_s": 3600,
        "rl": {"rl.task": ADD6, "rl.steps": 200, "rl.prompts_per_step": 32, "rl.group_size": 16, "rl.device": "cuda",
               "rl.max_new_tokens": 160},
        "tts": {"n_items": 500, "samples": [1, 2, 4, 8, 16, 32, 64], "budgets": [8, 16, 32, 64, 128],
                "max_new_tokens": 160},
        "distill": {"task": ADD6, "n": 4000, "samples": 8, "student_size": "300k", "sft": []},
        "cot_bridge_n": 500,
        "real_model": {"syllogism_n": 200, "icl_n": 100, "cannot_tell_n": 200, "questions_n": 24, "threads": None},
        # TinyZero-style R1-Zero on SmolLM2 (docs/real_model.md): countdown, accuracy + format rewards, lr 1e-6,
        # KL β 0.001; expected: the tag format learned early, countdown accuracy staying low at 135M parameters
        "real_model_rl": {"task": "countdown:numbers=3", "steps": 300, "prompts_per_step": 32, "group_size": 8,
                          "max_new_tokens": 256, "lr": 1e-6, "beta": 0.001, "micro_batch": 32, "device": "cuda",
                          "rewards": {"accuracy": 1.0, "format": 0.1}, "eval_n": 200, "eval_every": 20},
        "expected": "Emergence of reversed 4-digit addition between ~30k and ~100k parameters with the mirage "
                    "analysis able to tell metric artefacts from real jumps; a clean power law in FLOPs over "
                    "three decades; R1-Zero accuracy and response length rising together on 6-digit addition; "
                    "the grokking transformer of Nanda et al. (p=113) in ~10 minutes.",
    },
}


def get_profile(name: str) -> dict[str, Any]:
    if name not in PROFILES:
        raise UserError(f"--profile {name!r} is not one of {', '.join(PROFILES)}")
    return copy.deepcopy(PROFILES[name])
