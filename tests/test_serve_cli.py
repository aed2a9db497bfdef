"""`emergelab serve` and `emergelab inspect` on a run directory, and the run files the page links to."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import string
import subprocess
import sys
import time

import httpx
import pytest
import torch
import yaml

from emergelab.cli import main as cli_main
from emergelab.data.tokenizer import char_tokenizer
from emergelab.model import GPT, ModelConfig
from emergelab.runs import save_checkpoint
from emergelab.serve.app import app_for_run
from emergelab.serve.server import serve_in_thread


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.manual_seed(0)
    tok = char_tokenizer(string.ascii_lowercase + " ")
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=32, n_head=4, block_size=64)
    run = tmp_path_factory.mktemp("run")
    (run / "config.yaml").write_text(yaml.safe_dump({"model": dataclasses.asdict(cfg)}))
    tok.save(run / "tokenizer.json")
    save_checkpoint(run, 0, GPT(cfg))
    (run / "report.html").write_text("<h1>the report</h1>")
    (run / "plots").mkdir()
    (run / "plots" / "loss.svg").write_text("<svg/>")
    (run / "secret.txt").write_text("not for the web")
    return run


def test_inspect_prints_probabilities_and_writes_json_and_plot(run_dir, tmp_path, capsys):
    out, png = tmp_path / "probe.json", tmp_path / "att.png"
    assert cli_main(["inspect", str(run_dir), "the cat sat", "--json", str(out), "--plot", str(png),
                     "--layer", "1"]) == 0
    printed = capsys.readouterr().out
    assert "logit lens" in printed and "'c'" in printed
    data = json.loads(out.read_text())
    assert data["tokens"] == list("the cat sat") and len(data["attention"]) == 2
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_inspect_rejects_text_outside_the_alphabet_with_a_user_error(run_dir, capsys):
    assert cli_main(["inspect", str(run_dir), "ÄÖÜ"]) == 2
    assert "alphabet" in capsys.readouterr().err


def test_run_files_are_linked_and_only_report_files_are_served(run_dir):
    app, engine = app_for_run(run_dir, device="cpu")
    try:
        with serve_in_thread(app) as url:
            info = httpx.get(url + "/api/info").json()
            assert info["model"] == run_dir.name
            assert info["links"] == ["/run/report.html", "/run/config.yaml", "/run/plots/loss.svg"]
            assert httpx.get(url + "/run/report.html").text == "<h1>the report</h1>"
            assert httpx.get(url + "/run/plots/loss.svg").status_code == 200
            assert httpx.get(url + "/run/secret.txt").status_code == 404
            assert httpx.get(url + "/run/plots/../secret.txt").status_code == 404
            assert httpx.get(url + "/run/checkpoints/step_00000000/state.json").status_code == 404
            r = httpx.post(url + "/v1/chat/completions", json={
                "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
            assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 4
    finally:
        engine.close()


def test_serve_command_starts_a_server_that_answers(run_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "emergelab", "serve", str(run_dir), "--port", str(port),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=os.environ | {"EMERGELAB_NO_PROGRESS": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert health["status"] == "ok"
        r = httpx.post(f"http://127.0.0.1:{port}/v1/completions", json={"prompt": "ab", "max_tokens": 3})
        assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] in ("stop", "length")
    finally:
        proc.terminate()
        proc.wait(30)


def test_serve_command_reports_a_missing_run_as_a_user_error(tmp_path, capsys):
    assert cli_main(["serve", str(tmp_path / "nope")]) == 2
    assert "config.yaml" in capsys.readouterr().err
