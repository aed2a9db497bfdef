"""Load test of `emergelab serve` on loopback: N concurrent streaming chat clients for a bounded time.

The server runs as a separate process (`python -m emergelab serve RUN --port P` on 127.0.0.1); each
client loops over streaming /v1/chat/completions requests until the time is up, then finishes its
request in flight. A request counts as complete when its stream ends with a finish_reason and [DONE]
and the token count matches max_tokens or a stop. Reports errors, completions, p50/p99 latency,
time to first token, generated tokens/s, and the mean number of requests sharing a decode step
("batch"); JSON goes to bench/results/serve.json.

    python bench/bench_serve.py [--run RUN] [--clients 1 8 32] [--seconds 10] [--max-tokens 32]
                                [--compare SRC_DIR]

With --compare, a second server runs the `emergelab` package found in SRC_DIR (e.g. an older commit
exported with `git archive REV emergelab | tar -x -C SRC_DIR`), and the two servers are measured
alternately, level by level, in the same run (the load average is recorded before and after).

Without --run a tiny random model (2 layers, 64 wide, char tokenizer) is created in a temporary run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def tiny_run(path: Path) -> Path:
    import torch
    import yaml

    from emergelab.data.tokenizer import char_tokenizer
    from emergelab.model import GPT, ModelConfig
    from emergelab.runs import save_checkpoint

    torch.manual_seed(0)
    tok = char_tokenizer(string.ascii_letters + string.digits + " .,?!+-*=\n")
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=64, n_head=4, block_size=256)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"model": dataclasses.asdict(cfg)}))
    tok.save(path / "tokenizer.json")
    save_checkpoint(path, 0, GPT(cfg))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, port: int, max_batch: int, source: Path | None = None) -> subprocess.Popen:
    env = os.environ | {"EMERGELAB_NO_PROGRESS": "1"}
    if source is not None:  # serve another source tree's emergelab package
        env["PYTHONPATH"] = str(source.resolve())
    proc = subprocess.Popen([sys.executable, "-m", "emergelab", "serve", str(run), "--port", str(port),
                             "--device", "cpu", "--max-batch", str(max_batch)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start within 120 s")


async def one_request(client: httpx.AsyncClient, body: dict) -> dict:
    t0 = time.perf_counter()
    ttft, tokens, finish, done = None, 0, None, False
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            return {"ok": False, "error": f"HTTP {r.status_code}: {(await r.aread())[:200]!r}"}
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                break
            chunk = json.loads(line[6:])
            if "error" in chunk:
                return {"ok": False, "error": chunk["error"]["message"]}
            for c in chunk["choices"]:
                if c.get("logprobs"):
                    tokens += len(c["logprobs"]["content"])
                    ttft = ttft or time.perf_counter() - t0
                finish = c.get("finish_reason") or finish
    complete = done and finish in ("stop", "length") and (finish == "stop" or tokens == body["max_tokens"])
    return {"ok": complete, "error": None if complete else f"incomplete stream ({finish}, {tokens} tokens)",
            "latency": time.perf_counter() - t0, "ttft": ttft, "tokens": tokens}


async def load(url: str, clients: int, seconds: float, max_tokens: int) -> dict:
    results: list[dict] = []
    stop_at = time.perf_counter() + seconds

    async def client_loop(i: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=300) as client:
            k = 0
            while time.perf_counter() < stop_at:
                body = {"messages": [{"role": "user", "content": f"Question {i}.{k}, what is {i}+{k}?"}],
                        "max_tokens": max_tokens, "temperature": 1.0, "seed": 1000 * i + k,
                        "stream": True, "logprobs": True}
                try:
                    results.append(await one_request(client, body))
                except httpx.HTTPError as e:
                    results.append({"ok": False, "error": repr(e)})
                k += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(client_loop(i) for i in range(clients)))
    wall = time.perf_counter() - t0
    ok = [r for r in results if r["ok"]]
    lat = sorted(r["latency"] for r in ok)
    ttft = sorted(r["ttft"] for r in ok if r["ttft"] is not None)

    def pct(xs: list[float], q: float) -> float | None:
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None

    return {"clients": clients, "seconds": round(wall, 2), "requests": len(results), "completed": len(ok),
            "errors": len(results) - len(ok), "error_examples": [r["error"] for r in results if not r["ok"]][:3],
            "latency_p50_s": pct(lat, 0.5), "latency_p99_s": pct(lat, 0.99),
            "ttft_p50_s": pct(ttft, 0.5), "ttft_p99_s": pct(ttft, 0.99),
            "tokens_per_s": sum(r["tokens"] for r in ok) / wall,
            "mean_latency_s": statistics.fmean(lat) if lat else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="run directory (default: a tiny random model)")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--seconds", type=float, default=10.0, help="time each level keeps starting requests")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--compare", type=Path, help="source tree whose emergelab to measure alternately with this one")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "serve.json")
    args = ap.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or tiny_run(Path(tmp) / "tiny")
        sources = {"this": None} | ({"compare": args.compare} if args.compare else {})
        servers, urls = {}, {}
        try:
            for name, source in sources.items():
                port = free_port()
                servers[name] = start_server(run, port, args.max_batch, source)
                urls[name] = f"http://127.0.0.1:{port}"
            rows = []
            for n in args.clients:
                for name, url in (reversed(urls.items()) if args.compare else urls.items()):
                    before = httpx.get(url + "/health").json()
                    row = {"server": name} | asyncio.run(load(url, n, args.seconds, args.max_tokens))
                    after = httpx.get(url + "/health").json()
                    steps = after["steps"] - before["steps"]
                    row["mean_batch_size"] = (after["row_steps"] - before["row_steps"]) / steps if steps else None
                    rows.append(row)
            alive = all(httpx.get(url + "/health").json()["status"] == "ok" for url in urls.values())
        finally:
            for server in servers.values():
                server.terminate()
                server.wait(30)
    load_after = os.getloadavg()

    def f(x, fmt=".3f"):
        return "-" if x is None else format(x, fmt)

    print(f"\nemergelab serve load test: {run if args.run else 'tiny random model'}, max_tokens={args.max_tokens}, "
          f"{args.seconds:g} s per level, max_batch={args.max_batch}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    print(f"{'server':>8} {'clients':>7} {'requests':>8} {'complete':>8} {'errors':>6} {'p50 s':>7} {'p99 s':>7} "
          f"{'ttft p50':>8} {'tok/s':>8} {'batch':>6}")
    for r in rows:
        print(f"{r['server']:>8} {r['clients']:>7} {r['requests']:>8} {r['completed']:>8} {r['errors']:>6} "
              f"{f(r['latency_p50_s']):>7} {f(r['latency_p99_s']):>7} {f(r['ttft_p50_s']):>8} "
              f"{r['tokens_per_s']:>8.1f} {f(r['mean_batch_size'], '.2f'):>6}")
        for e in r["error_examples"]:
            print(f"        error: {e}")
    print(f"server still healthy after the test: {alive}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"run": str(args.run or "tiny random"), "max_tokens": args.max_tokens,
                                    "max_batch": args.max_batch, "machine": platform.platform(),
                                    "cpus": os.cpu_count(), "compare": str(args.compare) if args.compare else None,
                                    "loadavg_before": load_before, "loadavg_after": load_after,
                                    "server_healthy_after": alive, "levels": rows},
                                   indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
