"""How right is `rigscope bench` under load? Client figures vs what the server really did.

    .venv/bin/python benchmarks/bench_accuracy.py [--quick]

Starts the in-repo fake server in its own process (it schedules chunks at absolute deadlines
and logs when it really wrote each one), benchmarks it from this process, and prints, per
concurrency: client TTFT p50 minus the server's realized TTFT p50, client ITL (per token)
minus the server's, and client throughput vs the server's. Then the ceiling: streamed
requests per second against a zero-delay server, with the client's CPU cost.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rigscope.bench.fake_server import read_log, served_rate
from rigscope.bench.run import BenchConfig
from rigscope.bench.run import run_bench as run
from rigscope.contract import run_json
from rigscope.store import Store


def start_server(log: Path, *knobs: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "rigscope.bench.fake_server", "--port", "0",
                             "--log", str(log), *knobs], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[-1])
    return proc, f"http://127.0.0.1:{port}"


def accuracy(concurrency: int, requests: int, tmp: Path, warmup: int | None = None,
             ttft: float = 0.05, itl: float = 0.01, tokens: int = 32) -> None:
    log = tmp / f"acc-{concurrency}-{requests}.jsonl"
    proc, url = start_server(log, "--ttft", str(ttft), "--itl", str(itl))
    try:
        store = Store(tmp / "acc.db")
        run_id, _ = run(BenchConfig(url=url, model="fake-model", concurrency=(concurrency,),
                                    requests=requests,
                                    warmup=concurrency if warmup is None else warmup,
                                    output_tokens=tokens), store)
        doc = run_json(store.run(run_id))
    finally:
        proc.terminate()
        proc.wait()
    served = read_log(log)
    measured = [r for r in doc["requests"] if not r["warmup"] and r["status"] == "ok"]
    pairs = [(r, min(served, key=lambda s: abs(s.received - r["start"]))) for r in measured]
    client_ttft = statistics.median(r["ttft_s"] for r, _ in pairs)
    server_ttft = statistics.median(s.sent[0] - s.received for _, s in pairs)
    client_itl = statistics.median(r["itl_s"] for r, _ in pairs)
    server_itl = statistics.median((s.sent[-1] - s.sent[0]) / (len(s.sent) - 1) for _, s in pairs)
    level = doc["levels"][0]
    server_tps = served_rate(served, concurrency)
    server_wall = served_rate(served)
    print(f"concurrency {concurrency:3}: n={len(pairs):4}  TTFT p50 client-server "
          f"{(client_ttft - server_ttft) * 1e3:+6.2f} ms  ITL client-server "
          f"{(client_itl - server_itl) * 1e3:+6.3f} ms  throughput "
          f"{level['output_tokens_per_s']:8.1f} vs server {server_tps:8.1f} tok/s "
          f"({(level['output_tokens_per_s'] / server_tps - 1) * 100:+.1f}%; wall "
          f"{level['output_tokens_per_s_wall']:.1f} vs {server_wall:.1f}, "
          f"{(level['output_tokens_per_s_wall'] / server_wall - 1) * 100:+.1f}%)")


def ceiling(seconds: float, tmp: Path) -> None:
    log = tmp / "zero.jsonl"
    proc, url = start_server(log, "--output-tokens", "16")
    try:
        store = Store(tmp / "zero.db")
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        run_id, _ = run(BenchConfig(url=url, model="fake-model", concurrency=(64,),
                                    requests=None, duration=seconds, warmup=0,
                                    output_tokens=16), store)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        level = run_json(store.run(run_id))["levels"][0]
    finally:
        proc.terminate()
        proc.wait()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ok = level["requests_ok"]
    print(f"zero-delay server, 16 tokens per request, concurrency 64: "
          f"{level['requests_per_s']:,.0f} streamed requests/s ({ok} ok, "
          f"{level['requests_failed']} failed in {wall:.1f} s); "
          f"client CPU {cpu / wall:.0%} of one core, {cpu / max(ok, 1) * 1e6:.0f} us per request "
          "(SQLite commit included)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer requests")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for c, n in ((1, 20), (16, 160), (64, 384)):
            accuracy(c, n // 2 if args.quick else n, tmp)
        print("ragged last wave (64 measured + 1 warm-up; TTFT 100 ms, 10 ms/token, 64 tokens):")
        for c in (16, 64):
            accuracy(c, 64, tmp, warmup=1, ttft=0.1, itl=0.01, tokens=64)
        ceiling(2.0 if args.quick else 5.0, tmp)


if __name__ == "__main__":
    main()
