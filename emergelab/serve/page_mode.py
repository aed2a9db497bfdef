"""Which mode the web page opens in: chat for chat-trained runs, plain completion for base models.

A base model never saw `<|user|>…<|assistant|>`, so wrapping its input in the chat template only
confuses it; a run is chat-trained when it, or a run it was post-trained from (`init` in config.yaml),
was trained with the chat template (SFT, GRPO with `template: chat`, DPO on an SFT model), or when an
imported model brings its own chat template.
"""

from __future__ import annotations

from pathlib import Path

import yaml

CHAT_SECTIONS = ("sft", "rl", "distill")  # stages whose `template` setting says how prompts were wrapped


def page_mode(run_dir: str | Path | None, has_own_template: bool = False) -> str:
    """"chat" or "completion" for the run at `run_dir` (no run or no config: "chat", the page's old default)."""
    if has_own_template:
        return "chat"
    path = Path(run_dir) if run_dir else None
    seen: set[Path] = set()
    found_config = False
    while path is not None and path.resolve() not in seen and (path / "config.yaml").is_file():
        seen.add(path.resolve())
        found_config = True
        cfg = yaml.safe_load((path / "config.yaml").read_text()) or {}
        for section in CHAT_SECTIONS:
            block = cfg.get(section)
            if isinstance(block, dict) and block.get("template", "chat" if section == "sft" else "plain") == "chat":
                return "chat"
        path = Path(cfg["init"]) if cfg.get("init") else None
    return "completion" if found_config else "chat"
