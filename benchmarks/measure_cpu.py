"""Measure this machine: RAM bandwidth and matmul probes, then llama.cpp (llama-cpp-python) on
the SmolLM2-135M GGUF: pp512 and tg128. Appends the rows to benchmarks/data/own_measurements.jsonl
(the speed fit reads them) unless --dry-run.

    .venv/bin/python benchmarks/measure_cpu.py [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
from pathlib import Path

from rigscope.demo import smollm2_gguf
from rigscope.llamacpp_probe import probe_speed
from rigscope.system import measure_cpu_tflops, measure_ram_bandwidth

OUT = Path(__file__).resolve().parent / "data" / "own_measurements.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    gbs, tflops = measure_ram_bandwidth(), measure_cpu_tflops()
    path = smollm2_gguf()
    speed = probe_speed(path)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"probes: RAM {gbs:.2f} GB/s (one core, read), matmul {tflops * 1e3:.1f} GFLOPS (F32)")
    print(f"llama.cpp SmolLM2-135M Q4_1: pp512 {speed['pp']:.1f} t/s, tg128 {speed['tg']:.1f} t/s")
    rows = [
        {"model": "smollm2", "quant": "Q4_1", "gpus": [], "test": test, "n": n,
         "tokens_per_s": round(speed[test], 2), "cpu_gbs": round(gbs, 2),
         "cpu_tflops": round(tflops, 4), "source": f"own: llama-cpp-python 0.3.36 on {machine}, "
         f"{dt.date.today().isoformat()}"}
        for test, n in (("pp", 512), ("tg", 128))
    ]
    if not args.dry_run:
        with OUT.open("a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        print(f"appended to {OUT}")


if __name__ == "__main__":
    main()
