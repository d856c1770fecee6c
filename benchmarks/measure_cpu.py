"""Measure this machine: RAM bandwidth and matmul probes, then llama.cpp (llama-bench, built
here) on the SmolLM2-135M GGUF at Q4_1 and requantized to Q8_0: pp512 and tg128. Appends the rows to
benchmarks/data/own_measurements.jsonl (the speed fit reads them) unless --dry-run.

    .venv/bin/python benchmarks/measure_cpu.py [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
from pathlib import Path

from rigscope.demo import smollm2_gguf
from rigscope.llamacpp.locate import build_record
from rigscope.llamacpp.probe import probe_speed, quantize
from rigscope.system import measure_cpu_tflops, measure_ram_bandwidth

OUT = Path(__file__).resolve().parent / "data" / "own_measurements.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    gbs, tflops = measure_ram_bandwidth(), measure_cpu_tflops()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    build = (build_record() or {}).get("isa", "unknown build")
    print(f"probes: RAM {gbs:.2f} GB/s (one core, read), matmul {tflops * 1e3:.1f} GFLOPS (F32)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        q4 = smollm2_gguf()
        # two sizes of one model separate the per-token overhead from the bandwidth term
        for quant, path in (("Q4_1", q4), ("Q8_0", quantize(q4, Path(tmp) / "q8.gguf"))):
            speed = probe_speed(path)
            print(f"llama.cpp SmolLM2-135M {quant}: pp512 {speed['pp']:.1f} t/s, "
                  f"tg128 {speed['tg']:.1f} t/s")
            rows += [
                {"model": "smollm2", "quant": quant, "gpus": [], "test": test, "n": n,
                 "tokens_per_s": round(speed[test], 2), "cpu_gbs": round(gbs, 2),
                 "cpu_tflops": round(tflops, 4),
                 "source": f"own: llama-bench ({build}) on {machine}, "
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
