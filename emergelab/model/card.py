"""The model card (README.md) of an exported run: what it was trained on, its size, its eval numbers,
and how to load it so that outside tools see text the way the model was trained to.

Everything comes from the run directory (config.yaml, summary.json, eval.json, the corpus manifest);
a fact the run did not record is left out rather than guessed.
"""

from __future__ import annotations

import json
from pathlib import Path

from emergelab.model.gpt import GPT


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def _training_lines(cfg: dict, summary: dict) -> list[str]:
    lines = []
    data = cfg.get("data") or {}
    if data.get("corpus"):
        scored = "answer and reasoning tokens only" if data.get("loss_on") == "answers" else "every token"
        lines.append(f"- corpus: `{data['corpus']}` (built by `emergelab data build`), loss on {scored}")
        manifest = _read_json(Path(data["corpus"]) / "manifest.json")
        for row in manifest.get("tasks", []):
            lines.append(f"  - `{row['task']}`: {row.get('share', 0):.1%} of the documents")
    for key in ("init", "init_run", "teacher"):
        for section in cfg.values():
            if isinstance(section, dict) and section.get(key):
                lines.append(f"- post-trained from `{section[key]}` ({key})")
    if (cfg.get("source") or {}):
        lines.append(f"- imported from {json.dumps(cfg['source'])}")
    if summary.get("tokens"):
        lines.append(f"- {summary['tokens']:,} training tokens in {summary.get('steps', '?')} steps")
    if summary.get("val_loss") is not None:
        lines.append(f"- final validation loss {summary['val_loss']:.4f} nats per scored token")
    return lines


def _eval_lines(result: dict) -> list[str]:
    rows = []
    for spec, settings in (result.get("results") or {}).items():
        for key, row in settings.items():
            lo, hi = row.get("ci95", (float("nan"), float("nan")))
            rows.append(f"| `{spec}` | {key} | {row['exact_match']:.3f} [{lo:.3f}, {hi:.3f}] | {row.get('n', '')} "
                        f"| {row.get('chance', 0):.3g} |")
    if not rows:
        return ["No `emergelab eval` results were recorded in this run (`RUN/eval.json`)."]
    return ["Greedy decoding, `emergelab eval` (exact match with 95% interval):", "",
            "| task | setting | exact match | items | chance |", "|---|---|---|---|---|", *rows]


def model_card(run_dir: str | Path, model: GPT, name: str | None = None) -> str:
    """README.md text for the Hugging Face folder exported from `run_dir`."""
    run = Path(run_dir)
    cfg: dict = {}
    if (run / "config.yaml").is_file():
        import yaml

        cfg = yaml.safe_load((run / "config.yaml").read_text()) or {}
    summary = _read_json(run / "summary.json")
    c = model.cfg
    name = name or run.resolve().name
    lines = [
        "---", "library_name: transformers", "tags: [emergelab, llama]", "---", "",
        f"# {name}", "",
        f"A Llama-style decoder trained from scratch with emergelab (run `{run.resolve().name}`).", "",
        "## Size", "",
        f"{model.num_params():,} parameters ({model.num_params(non_embedding=True):,} without embeddings): "
        f"{c.n_layer} layers, width {c.n_embd}, {c.n_head} heads ({c.kv_heads} key/value heads), "
        f"vocabulary {c.vocab_size}, context {c.block_size} tokens.", "",
        "## Training", "", *(_training_lines(cfg, summary) or ["- not recorded in the run directory"]), "",
        "## Evaluation", "", *_eval_lines(_read_json(run / "eval.json")), "",
        "## Use", "",
        "Every training document started right after `<eos>`, so the tokenizer's `bos_token` is `<eos>` and it is "
        "prepended by default (`add_special_tokens=True`). Text encoded without it scores lower. "
        "`generation_config.json` decodes greedily and stops at `<eos>`, as `emergelab eval` does; task answers "
        "also end at a newline, so pass `stop_strings=[\"\\n\"]` (with the tokenizer) for task prompts.", "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "tok = AutoTokenizer.from_pretrained(PATH); model = AutoModelForCausalLM.from_pretrained(PATH)",
        "ids = tok(\"12+34=\", return_tensors=\"pt\").input_ids   # starts with <eos>",
        "print(tok.decode(model.generate(ids, max_new_tokens=16)[0]))",
        "```", "",
        "Chat-trained runs (SFT, GRPO) answer after the chat template: "
        "`tok.apply_chat_template(messages, add_generation_prompt=True)`.", "",
        "lm-evaluation-harness: `lm_eval --model hf --model_args pretrained=PATH ...`; against `emergelab serve`, "
        "`--model local-completions --model_args base_url=http://HOST:PORT/v1/completions,tokenizer=PATH,"
        "add_bos_token=True` (the server takes token-id prompts as given, like vLLM).", "",
    ]
    return "\n".join(lines)
