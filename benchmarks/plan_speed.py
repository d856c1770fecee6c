"""How fast `rigscope plan` searches the whole catalog.

    .venv/bin/python benchmarks/plan_speed.py

Prints configurations estimated per second in-process, and the wall time of whole
`rigscope plan` processes (start-up, imports and rendering included; target: under 1 s).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from rigscope.plan import make_plan, workload_from
from rigscope.prices import price_table
from rigscope.sources import catalog_model

CASES = [["llama-3-70b"], ["llama-3-8b", "--users", "8"], ["qwen2.5-72b", "--profile", "agent"],
         ["mixtral-8x7b", "--profile", "rag", "--min-tps", "20"]]


def main() -> None:
    prices = price_table()
    for model in ("llama-3-8b", "llama-3-70b", "mixtral-8x7b"):
        w = workload_from([catalog_model(model)])
        make_plan(w, prices)  # warm the caches once
        start = time.perf_counter()
        plan = make_plan(w, prices, all_configs=True)
        dt = time.perf_counter() - start
        print(f"{model:13} --all: {plan.evaluated} configurations in {dt:.2f} s = "
              f"{plan.evaluated / dt:,.0f}/s; {len(plan.options)} options, "
              f"{len(plan.rejected)} rejected")
    exe = Path(sys.executable).with_name("rigscope")
    for args in CASES:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([str(exe), "plan", *args, "--json"], check=True,
                           capture_output=True)
            times.append(time.perf_counter() - start)
        print(f"rigscope plan {' '.join(args):42} whole process: median "
              f"{statistics.median(times):.2f} s")


if __name__ == "__main__":
    main()
