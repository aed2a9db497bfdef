"""lm-evaluation-harness scores our models as `emergelab eval` does: on the exported folder (`--model hf`)
and on `emergelab serve` (`--model local-completions`), for generation and for log-likelihood.

Setting: a small model pretrained here on 2-digit addition, the shipped task examples/lm_eval/add2.jsonl
(60 items, no downloads) and its two lm-eval task files. Oracles: `emergelab eval`'s exact match (same
items, greedy), our harness's answer log-probability per item, and lm-eval's `hf` path (transformers)
for the served log-likelihoods. Needs `pip install -r requirements-eval.txt`; skipped otherwise.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
lm_eval = pytest.importorskip("lm_eval", reason="lm-eval not installed (pip install -r requirements-eval.txt)")

from emergelab.cli import main as cli_main  # noqa: E402
from emergelab.data.chat import encode_prompt  # noqa: E402
from emergelab.eval.harness import answer_logprobs  # noqa: E402
from emergelab.runs import load_model  # noqa: E402
from emergelab.serve.app import app_for_run  # noqa: E402
from emergelab.serve.server import serve_in_thread  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "lm_eval"
JSONL = EXAMPLES / "add2.jsonl"
TASKS = ["emergelab_add2", "emergelab_add2_ll"]


def addition_corpus(path: Path, n: int = 6000) -> Path:
    rng = random.Random(0)
    docs = []
    for _ in range(n):
        a, b = rng.randrange(10, 100), rng.randrange(10, 100)
        docs.append(f"{a}+{b}=<answer>{a + b}</answer>\n")
    path.mkdir()
    (path / "train.txt").write_text("<eos>".join(docs[:-200]) + "<eos>")
    (path / "val.txt").write_text("<eos>".join(docs[-200:]) + "<eos>")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lmeval")
    corpus = addition_corpus(tmp / "corpus")
    config = tmp / "c.yaml"
    config.write_text(f"data:\n  corpus: {corpus}\n  loss_on: answers\nmodel:\n  n_layer: 2\n  n_embd: 64\n"
                      "  n_head: 4\n  block_size: 64\ntrain:\n  max_steps: 250\n  batch_size: 32\n  seq_len: 64\n"
                      "  lr: 0.003\n  warmup_steps: 20\n  eval_every: 250\n  ckpt_every: 250\n  progress: false\n")
    run, export = tmp / "run", tmp / "hf"
    assert cli_main(["pretrain", str(config), "--out", str(run)]) == 0
    ours = tmp / "eval.json"
    assert cli_main(["eval", str(run), "--tasks", f"{JSONL}:verifier=exact", "--n", "60", "--json", str(ours)]) == 0
    assert cli_main(["export-hf", str(run), str(export)]) == 0
    include = tmp / "tasks"  # the shipped task files, their data path made absolute
    include.mkdir()
    for name in TASKS:
        text = (EXAMPLES / f"{name}.yaml").read_text().replace("examples/lm_eval/add2.jsonl", str(JSONL))
        (include / f"{name}.yaml").write_text(text)
    row = json.loads(ours.read_text())["results"][f"{JSONL}:verifier=exact"]["0shot_direct"]
    return run, export, include, row


def lm_eval_run(model: str, model_args: str, include: Path) -> tuple[dict, dict]:
    """(metrics per task, samples per task) of one lm-eval run."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    out = simple_evaluate(model=model, model_args=model_args, tasks=TASKS, log_samples=True,
                          task_manager=TaskManager(include_path=str(include)), batch_size=1, device="cpu")
    return out["results"], out["samples"]


def ll_by_prompt(samples: list[dict]) -> dict[str, float]:
    return {s["doc"]["prompt"]: s["resps"][0][0][0] for s in samples}


def our_answer_logprobs(run: Path) -> dict[str, float]:
    model, tok, _ = load_model(run, device="cpu")
    items = [json.loads(line) for line in JSONL.read_text().splitlines()]
    contexts = [encode_prompt(tok, it["prompt"] + "<answer>") for it in items]
    answers = [tok.encode(it["answer"] + "</answer>") for it in items]
    return dict(zip([it["prompt"] for it in items], answer_logprobs(model, tok, contexts, answers)))


def check_against_emergelab(results: dict, samples: dict, row: dict, ours_ll: dict[str, float]) -> dict:
    n = row["n"]
    assert n == 60
    em = results["emergelab_add2"]["exact_match,answer"]
    print(f"exact match: lm-eval {em:.3f}, emergelab eval {row['exact_match']:.3f} (n={n})")
    assert abs(em - row["exact_match"]) * n <= 1 + 1e-9, (em, row["exact_match"])
    ll = ll_by_prompt(samples["emergelab_add2_ll"])
    assert ll.keys() == ours_ll.keys()
    assert max(abs(ll[p] - ours_ll[p]) for p in ll) < 1e-4
    return ll


def test_lm_eval_on_the_export_and_on_the_server_matches_emergelab_eval(trained):
    run, export, include, row = trained
    # neither hopeless nor perfect, so a wrong document start or stop rule shows (without <eos>: 0 right)
    assert 3 <= row["exact_match"] * row["n"] <= 57, row["exact_match"]
    ours_ll = our_answer_logprobs(run)

    results, samples = lm_eval_run("hf", f"pretrained={export},dtype=float32", include)
    hf_ll = check_against_emergelab(results, samples, row, ours_ll)

    app, engine = app_for_run(run, device="cpu")
    try:
        with serve_in_thread(app) as url:
            args = (f"model={run.name},base_url={url}/v1/completions,tokenizer={export},"
                    "tokenizer_backend=huggingface,add_bos_token=True,max_length=64,num_concurrent=1,max_retries=1")
            results, samples = lm_eval_run("local-completions", args, include)
    finally:
        engine.close()
    api_ll = check_against_emergelab(results, samples, row, ours_ll)
    assert max(abs(api_ll[p] - hf_ll[p]) for p in hf_ll) < 1e-4
