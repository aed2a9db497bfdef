"""`emergelab serve` refuses bad settings in one line: --max-batch 0, a port in use; loopback checks Host."""

from __future__ import annotations

import dataclasses
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


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.manual_seed(0)
    tok = char_tokenizer(string.ascii_lowercase + " ")
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_embd=16, n_head=2, block_size=32)
    run = tmp_path_factory.mktemp("run")
    (run / "config.yaml").write_text(yaml.safe_dump({"model": dataclasses.asdict(cfg)}))
    tok.save(run / "tokenizer.json")
    save_checkpoint(run, 0, GPT(cfg))
    return run


@pytest.mark.parametrize("flag", ["--max-batch", "--max-queue", "--max-tokens"])
def test_serve_refuses_a_zero_limit_in_one_line(run_dir, flag, capsys):
    assert cli_main(["serve", str(run_dir), flag, "0", "--device", "cpu"]) == 2
    out = capsys.readouterr()
    assert flag in out.err and len(out.err.strip().splitlines()) == 1 and "serving on" not in out.out


def test_a_port_in_use_is_one_line_before_serving_on(run_dir, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli_main(["serve", str(run_dir), "--port", str(port), "--device", "cpu"]) == 2
    out = capsys.readouterr()
    assert "serving on" not in out.out
    assert "already in use" in out.err and len(out.err.strip().splitlines()) == 1


def test_a_loopback_server_answers_its_own_names_only(run_dir):
    proc = subprocess.Popen([sys.executable, "-m", "emergelab", "serve", str(run_dir), "--port", "0",
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=os.environ | {"EMERGELAB_NO_PROGRESS": "1"})
    try:
        line = proc.stdout.readline()
        assert "serving" in line, line
        url = line.split(" on ")[1].split()[0]
        port = url.rsplit(":", 1)[1]
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(url + "/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert r.status_code == 200
        assert httpx.get(url + "/health", headers={"Host": f"localhost:{port}"}).status_code == 200
        r = httpx.get(url + "/health", headers={"Host": f"rebind.attacker.example:{port}"})
        assert r.status_code == 400 and "Host" in r.json()["error"]["message"]
    finally:
        proc.terminate()
        proc.wait(30)
