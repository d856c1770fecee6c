"""How fast `rigscope serve` answers: estimate requests per second and their latency.

    .venv/bin/python benchmarks/web_speed.py [--seconds 10] [--clients 64]

Starts a real `rigscope serve` process, then keeps `--clients` concurrent keep-alive
connections asking for estimates (varied models, GPUs and contexts) and prints requests/s
with the p50 and p99 latency. A plan request's latency is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rigscope.bench.http import Pool
from rigscope.llamacpp.server import free_port

MODELS = ["llama-3-8b", "qwen2.5-7b", "mistral-7b-v0.3", "llama-3-70b"]
GPUS = ["rtx-3090", "rtx-4090", "2xrtx-3090", "m3-max-40c:64gb", "h100-sxm"]


async def load(url: str, clients: int, seconds: float) -> list[float]:
    pool = Pool(url)
    times: list[float] = []
    stop = time.perf_counter() + seconds

    async def client(i: int) -> None:
        n = i
        while time.perf_counter() < stop:
            n += clients
            q = (f"/api/estimate?model={MODELS[n % 4]}&gpu={GPUS[n % 5]}"
                 f"&context={1024 * (1 + n % 16)}")
            t = time.perf_counter()
            r = await pool.request("GET", q)
            body = await r.read()
            assert r.status == 200, body[:200]
            times.append(time.perf_counter() - t)

    await asyncio.gather(*(client(i) for i in range(clients)))
    await pool.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=64)
    args = ap.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("rigscope")), "serve",
                                 "--port", str(port)], env={"RIGSCOPE_DATA_DIR": d,
                                                            "PATH": "/usr/bin:/bin"})
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(url + "/api/quants", timeout=2).read()
                    break
                except OSError:
                    time.sleep(0.1)
            times = asyncio.run(load(url, args.clients, args.seconds))
            lat = sorted(times)
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            print(f"{args.clients} clients, {args.seconds:g} s: {len(lat)} estimates, "
                  f"{len(lat) / args.seconds:,.0f} requests/s; latency p50 "
                  f"{statistics.median(lat) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms")
            body = json.dumps({"models": ["llama-3-70b"], "quant": "Q4_K_M"}).encode()
            t = time.perf_counter()
            req = urllib.request.Request(url + "/api/plan", body,
                                         {"Content-Type": "application/json"})
            n = len(json.loads(urllib.request.urlopen(req, timeout=60).read())["options"])
            print(f"one whole-catalog plan (llama-3-70b Q4_K_M): "
                  f"{(time.perf_counter() - t) * 1e3:.0f} ms, {n} options")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
