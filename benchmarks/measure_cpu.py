"""Measure this machine: RAM bandwidth and matmul probes, then llama.cpp (llama-bench, built
here) on the SmolLM2-135M GGUF at Q4_1 and requantized to Q8_0: prompts of 16 to 768 tokens
(ppN) and 64 generated tokens after 0 and 768 tokens of context (tg64 @ dD). Replaces the
own rows in benchmarks/data/own_measurements.jsonl (the speed fit reads them) unless
--dry-run; rows of other kinds (serving) are kept.

    .venv/bin/python benchmarks/measure_cpu.py [--dry-run]

Run it on an idle machine: anything else on the cores shows up as a slower CPU.
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
from rigscope.llamacpp.probe import quantize
from rigscope.llamacpp.server import run_program
from rigscope.system import measure_cpu_tflops, measure_ram_bandwidth

OUT = Path(__file__).resolve().parent / "data" / "own_measurements.jsonl"
PROMPTS = "16,128,512,768"
DEPTHS = "0,768"


def bench(gguf: Path) -> list[dict]:
    """llama-bench's rows: ppN at depth 0, tg64 at each depth (mean of 3 runs)."""
    out = run_program("llama-bench", ["-m", str(gguf), "-p", PROMPTS, "-n", "64", "-d", DEPTHS,
                                      "-r", "3", "-o", "json"], timeout=1800).stdout
    rows = []
    for r in json.loads(out):
        depth = int(r.get("n_depth", 0))
        fa = r.get("flash_attn", -1) != 0  # -1: auto, which turns it on for the CPU
        if r["n_gen"] == 0 and depth == 0:
            rows.append({"test": "pp", "n": r["n_prompt"], "depth": 0, "flash_attn": fa,
                         "tokens_per_s": round(float(r["avg_ts"]), 2)})
        elif r["n_gen"]:
            rows.append({"test": "tg", "n": r["n_gen"], "depth": depth, "flash_attn": fa,
                         "tokens_per_s": round(float(r["avg_ts"]), 2)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    gbs, tflops = measure_ram_bandwidth(), measure_cpu_tflops()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    build = (build_record() or {}).get("isa", "unknown build")
    print(f"probes: RAM {gbs:.2f} GB/s (all cores, read), matmul {tflops * 1e3:.1f} GFLOPS (F32)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        q4 = smollm2_gguf()
        # two sizes of one model separate the per-token overhead from the bandwidth term
        for quant, path in (("Q4_1", q4), ("Q8_0", quantize(q4, Path(tmp) / "q8.gguf"))):
            for r in bench(path):
                print(f"llama.cpp SmolLM2-135M {quant}: {r['test']}{r['n']} @ d{r['depth']} "
                      f"{r['tokens_per_s']:.1f} t/s")
                rows.append({"model": "smollm2", "quant": quant, "gpus": [], **r,
                             "cpu_gbs": round(gbs, 2), "cpu_tflops": round(tflops, 4),
                             "source": f"own: llama-bench ({build}) on {machine}, "
                                       f"{dt.date.today().isoformat()}"})
    if not args.dry_run:
        kept = [line for line in (OUT.read_text().splitlines() if OUT.exists() else [])
                if line.strip() and json.loads(line).get("kind")]
        OUT.write_text("".join(f"{line}\n" for line in kept)
                       + "".join(json.dumps(r) + "\n" for r in rows))
        print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()
