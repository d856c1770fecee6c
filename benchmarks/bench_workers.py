"""How far `bench --workers N` lifts the client's ceiling: streamed requests per second
against the zero-delay fake server, one client process against N.

    .venv/bin/python benchmarks/bench_workers.py [--seconds 5] [--workers 1,2,4]

The fake server runs in a process of its own and takes a core: on a machine with fewer cores
than client workers + 1, the figure measures the machine, not the client (the core count is
printed beside it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rigscope.bench.config import BenchConfig
from rigscope.bench.run import run_bench
from rigscope.contract import run_json
from rigscope.store import Store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    proc = subprocess.Popen([sys.executable, "-m", "rigscope.bench.fake_server", "--port", "0",
                             "--output-tokens", "16"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = f"http://127.0.0.1:{int(proc.stdout.readline().split()[-1])}"
    try:
        with tempfile.TemporaryDirectory() as d:
            store = Store(Path(d) / "w.db")
            base = None
            for n in (int(x) for x in args.workers.split(",")):
                t = time.perf_counter()
                run_id, _ = run_bench(BenchConfig(
                    url=url, model="fake-model", concurrency=(64,), requests=None,
                    duration=args.seconds, warmup=0, output_tokens=16, telemetry=False,
                    workers=n), store)
                level = run_json(store.run(run_id))["levels"][0]
                rps = level["requests_per_s_wall"]
                base = base or rps
                print(f"workers {n}: {rps:,.0f} streamed requests/s ({level['requests_ok']} ok, "
                      f"{level['requests_failed']} failed; {time.perf_counter() - t:.1f} s), "
                      f"x{rps / base:.2f} of one process; {cores} cores here")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
