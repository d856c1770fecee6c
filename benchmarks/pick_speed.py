"""Time `rigscope pick` over the whole catalog on one rig, and whole-catalog `plan`.

    .venv/bin/python benchmarks/pick_speed.py [--gpu rtx-3090] [--runs 3]

Prints the seconds of each: a fresh process (`rigscope pick --json`, as a user runs it, import
included), and the ranking alone in a warm process (catalog and quantizer results memoized).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpu", default="rtx-3090")
    ap.add_argument("--use", default="code")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    cli = [sys.executable, "-c", "from rigscope.cli import run; run()"]

    def timed(args: list[str]) -> float:
        runs = []
        for _ in range(a.runs):
            t = time.perf_counter()
            subprocess.run([*cli, *args], check=True, capture_output=True)
            runs.append(time.perf_counter() - t)
        return statistics.median(runs)

    fresh = timed(["pick", "--use", a.use, "--gpu", a.gpu, "--json"])
    plan = timed(["plan", "--min-params", "1", "--gpu", a.gpu, "--context", "16k", "--json"])
    from rigscope.catalog import evidence, models
    from rigscope.hardware import parse_rig
    from rigscope.pick import pick
    from rigscope.sources import catalog_model

    rig = parse_rig([a.gpu], None, None)
    t = time.perf_counter()
    specs = [catalog_model(m) for m in models()]
    first = pick(rig, a.use, specs=specs, scores=evidence())
    cold = time.perf_counter() - t
    warm = []
    for _ in range(a.runs):
        t = time.perf_counter()
        pick(rig, a.use, specs=specs, scores=evidence())
        warm.append(time.perf_counter() - t)
    print(f"pick --use {a.use} --gpu {a.gpu}: {len(first.rows)} models ranked, "
          f"{len(first.skipped)} do not run")
    print(f"  fresh process (CLI, import included): median {fresh:.2f} s")
    print(f"  in process, first ranking (quantizer work included): {cold:.2f} s")
    print(f"  in process, again (memoized): median {statistics.median(warm):.2f} s")
    print(f"plan --min-params 1 --gpu {a.gpu} --context 16k (whole catalog, fresh process): "
          f"median {plan:.2f} s")


if __name__ == "__main__":
    main()
