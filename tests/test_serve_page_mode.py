"""The page opens in chat mode only for chat-trained runs (following `init` back to the base run)."""

from __future__ import annotations

from emergelab.serve.page_mode import page_mode


def write(run, text: str):
    run.mkdir()
    (run / "config.yaml").write_text(text)
    return run


def test_base_runs_complete_and_chat_trained_descendants_chat(tmp_path):
    base = write(tmp_path / "base", "model: {n_layer: 2}\ndata: {corpus: c}\n")
    sft = write(tmp_path / "sft", f"model: {{n_layer: 2}}\nsft: {{template: chat}}\ninit: {base}\n")
    plain_sft = write(tmp_path / "psft", f"model: {{n_layer: 2}}\nsft: {{template: plain}}\ninit: {base}\n")
    r1_zero = write(tmp_path / "r1z", f"model: {{n_layer: 2}}\nrl: {{template: plain}}\ninit: {base}\n")
    rl_after_sft = write(tmp_path / "rl", f"model: {{n_layer: 2}}\nrl: {{template: plain}}\ninit: {sft}\n")
    assert page_mode(base) == "completion" and page_mode(r1_zero) == "completion"
    assert page_mode(plain_sft) == "completion"
    assert page_mode(sft) == "chat" and page_mode(rl_after_sft) == "chat"
    assert page_mode(base, has_own_template=True) == "chat"  # an imported model with its own template
    assert page_mode(None) == "chat" and page_mode(tmp_path / "missing") == "chat"
