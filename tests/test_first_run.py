"""What a first run writes says what happened: the saved config records the tokens actually trained on."""

from __future__ import annotations

import yaml

from emergelab.cli import main as cli_main


def test_saved_config_records_the_tokens_trained_on_not_the_size_budget(tmp_path, addition_corpus):
    config = tmp_path / "c.yaml"  # size 30k implies a 20-tokens-per-parameter budget; max_steps overrides it
    config.write_text(f"size: 30k\nmodel:\n  block_size: 64\ndata:\n  corpus: {addition_corpus}\ntrain:\n"
                      "  max_steps: 3\n  batch_size: 4\n  seq_len: 32\n  eval_every: 3\n  eval_batches: 1\n"
                      "  ckpt_every: 3\n  progress: false\n")
    run = tmp_path / "run"
    assert cli_main(["pretrain", str(config), "--out", str(run)]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["tokens"] == 3 * 4 * 32 and saved["train"]["max_steps"] == 3


def test_sample_reads_characters_outside_the_alphabet_as_unk_with_a_note(tmp_path, addition_corpus, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"size: 30k\nmodel:\n  block_size: 64\ndata:\n  corpus: {addition_corpus}\ntrain:\n"
                      "  max_steps: 1\n  batch_size: 2\n  seq_len: 16\n  eval_every: 1\n  eval_batches: 1\n"
                      "  ckpt_every: 1\n  progress: false\n")
    run = tmp_path / "run"
    assert cli_main(["pretrain", str(config), "--out", str(run)]) == 0
    capsys.readouterr()
    assert cli_main(["sample", str(run), "--prompt", "What is 1+2? né", "--max-new-tokens", "2"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("What is 1+2? né")  # capitals and punctuation are in the alphabet now
    assert "note: ['é'] are not in this model's alphabet" in out.err
