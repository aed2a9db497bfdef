"""The evaluation harness: Wilson intervals, teacher-forced answer log-probs, scoring of perfect and
garbage generations, JSONL and user-module tasks, and the `eval` command on a run directory."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import run_cli
from scipy.stats import binomtest

from emergelab.config import write_yaml
from emergelab.data.chat import encode_prompt
from emergelab.data.tokenizer import char_tokenizer
from emergelab.eval import harness
from emergelab.eval.harness import PREFIX, answer_logprobs, evaluate
from emergelab.eval.metrics import wilson_interval
from emergelab.model import GPT, ModelConfig
from emergelab.model.generate import Completion
from emergelab.runs import save_checkpoint
from emergelab.tasks import get_task

ALPHABET = "".join(sorted(set("0123456789+-*/()=:;|>?., abcdefghijklmnopqrstuvwxyz\n")))
USER_TASK = '''
import random
from emergelab.tasks.base import Example, Task

class Parity(Task):
    """'1011?' -> 'odd' or 'even' (number of ones)."""
    name = "parity"
    supports_cot = False

    def __init__(self, bits=4, **options):
        super().__init__(**options)
        self.bits = int(bits)

    def _sample(self, rng):
        s = "".join(rng.choice("01") for _ in range(self.bits))
        return Example(s + "?", "odd" if s.count("1") % 2 else "even", None, {"bits": s})

    @property
    def chance(self):
        return 0.5
'''


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run far faster on one thread, especially on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    tok = char_tokenizer(ALPHABET)
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=768))
    return model.eval(), tok


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (57, 200), (1, 1000)])
def test_wilson_interval_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_answer_logprob_equals_step_by_step_forward(tiny):
    model, tok = tiny
    ctx, ans = tok.encode("12+34=<answer>"), tok.encode("46</answer>")
    (fast,) = answer_logprobs(model, tok, [ctx], [ans])
    slow, seq = 0.0, list(ctx)
    with torch.no_grad():
        for t in ans:  # one forward pass per answer token, no batching or padding
            logits = model(torch.tensor([seq])).logits[0, -1].double()
            slow += (logits.log_softmax(-1)[t]).item()
            seq.append(t)
    assert fast == pytest.approx(slow, abs=1e-4)
    # batching with a longer neighbour (padding) does not change it
    batch = answer_logprobs(model, tok, [ctx, tok.encode("999+999=<answer>")], [ans, tok.encode("1998</answer>")])
    assert batch[0] == pytest.approx(fast, abs=1e-4)


def _fake_generate(texts_by_prompt):
    """A stand-in for model.generate that writes given texts (keyed by the prompt text)."""

    def fake(model, prompts, params, tokenizer=None):
        out = []
        for i, p in enumerate(prompts):
            text = texts_by_prompt(tokenizer.decode(p))
            out.append(Completion(i, tokenizer.encode(text), [0.0] * len(text), "stop"))
        return out

    return fake


@pytest.mark.parametrize("spec", ["add:digits=3", "syllogism:hops=2", "countdown", "lexicon"])
def test_reference_completions_score_one_and_garbage_scores_zero(tiny, monkeypatch, spec):
    model, tok = tiny
    task = get_task(spec)
    examples = task.generate(20, "test", seed=0)  # the harness draws the same items in the same order
    seen = []

    def reference(prompt_text):
        ex = examples[len(seen) % len(examples)]
        seen.append(prompt_text)
        assert prompt_text.split("<answer>")[0].split("<think>")[0].rstrip().endswith(ex.prompt.rstrip()) or \
            ex.prompt in prompt_text
        for fmt, prefix in PREFIX.items():
            if prefix and prompt_text.endswith(prefix):
                return task.render_target(ex, cot=fmt == "cot")[len(prefix):]
        raise AssertionError(prompt_text)

    monkeypatch.setattr(harness, "generate", _fake_generate(reference))
    res = evaluate(model, tok, [spec], shots=(0, 2), cot=True, n=20)["results"][task.spec]
    for row in res.values():
        assert row["exact_match"] == 1.0 and row["n"] == 20
        assert row["ci95"][0] > 0.8 and row["ci95"][1] == 1.0
    monkeypatch.setattr(harness, "generate", _fake_generate(lambda p: "<think>?? <answer>"))
    res = evaluate(model, tok, [spec], shots=(0,), cot=True, n=20)["results"][task.spec]
    for row in res.values():
        assert row["exact_match"] == 0.0
        assert all(e["reason"] and e["score"] == 0.0 for e in row["examples"])


def test_random_model_runs_every_setting_and_reports_metrics(tiny):
    model, tok = tiny
    out = evaluate(model, tok, "add:digits=2,syllogism,countdown,copy", shots=(0, 1), cot=True, n=6,
                   batch_size=4, max_new_tokens=24)
    assert set(out["results"]) == {"add:digits=2", get_task("syllogism").spec, get_task("countdown").spec,
                                   get_task("copy").spec}
    copy_rows = out["results"][get_task("copy").spec]
    assert set(copy_rows) == {"0shot_direct", "1shot_direct"}  # copy has no chain of thought
    for rows in out["results"].values():
        for row in rows.values():
            assert 0.0 <= row["exact_match"] <= row["ci95"][1] <= 1.0
            assert math.isfinite(row["metrics"]["answer_logprob"]["mean"])
            assert row["metrics"]["answer_logprob"]["mean"] < 0
            assert abs(sum(row["formats_used"].values()) - 1.0) < 1e-9
            assert all(e["reason"] for e in row["examples"])


def test_jsonl_and_user_module_tasks_run_through_eval(tiny, tmp_path, monkeypatch):
    model, tok = tiny
    data = tmp_path / "sums.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"{a}+{a}=", "answer": str(2 * a), "split": "test"})
                              for a in range(30)) + "\n")
    module = tmp_path / "mytask.py"
    module.write_text(USER_TASK)
    specs = [f"{data}:verifier=numeric", f"{module}:Parity:bits=12"]
    right = {f"{a}+{a}=": str(2 * a) for a in range(30)}

    def answer(prompt_text):
        q = prompt_text.split("<eos>")[-1].removesuffix("<answer>")
        if q in right:
            return f"{right[q]}.0</answer>"  # numeric verifier: 60.0 == 60
        return ("odd" if q.count("1") % 2 else "even") + "</answer>"

    monkeypatch.setattr(harness, "generate", _fake_generate(answer))
    out = evaluate(model, tok, specs, n=30)["results"]
    assert out[f"{data}:verifier=numeric"]["0shot_direct"]["exact_match"] == 1.0
    assert out[f"{data}:verifier=numeric"]["0shot_direct"]["n"] == 30
    parity = next(v for k, v in out.items() if k.startswith("parity"))
    assert parity["0shot_direct"]["exact_match"] == 1.0 and parity["0shot_direct"]["chance"] == 0.5


def test_eval_command_writes_eval_json_into_the_run_or_to_json_out(tiny, tmp_path):
    model, tok = tiny
    run = tmp_path / "run"
    run.mkdir()
    tok.save(run / "tokenizer.json")
    write_yaml({"model": model.cfg.__dict__}, run / "config.yaml")
    save_checkpoint(run, 0, model)
    extra = tmp_path / "copy.json"
    proc = run_cli("eval", str(run), "--tasks", "add:digits=2,format=reversed,copy", "--n", "6",
                   "--shots", "0,1", "--cot", "--json", str(extra), env={"OMP_NUM_THREADS": "1"})
    result = json.loads(extra.read_text())
    assert not (run / "eval.json").exists()  # --json OUT writes OUT instead of RUN/eval.json
    assert set(result["results"]["add:digits=2,format=reversed"]) == {
        "0shot_direct", "0shot_cot", "1shot_direct", "1shot_cot"}
    assert "exact match" in proc.stdout
    bad = run_cli("eval", str(run), "--tasks", "nosuchtask", check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_prompts_start_at_a_document_boundary(tiny):
    _, tok = tiny
    assert encode_prompt(tok, "1+1=")[0] == tok.eos_id
