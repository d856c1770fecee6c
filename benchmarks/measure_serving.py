"""Measure what serving adds on this machine: llama-server (built here) with SmolLM2-135M, a
client on the same machine (rigscope bench), against llama-bench's in-process figures for the
same file, settings and lengths.

    .venv/bin/python benchmarks/measure_serving.py [--dry-run]

Per token: the served inter-token latency minus llama-bench's decode step at that context.
Per request: time to first token minus llama-bench's prefill of the same prompt. Appends a
"serving" row to benchmarks/data/own_measurements.jsonl (fit_serving.py... the constants in
rigscope/estimator/serving.py come from these rows) unless --dry-run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

from rigscope.bench.run import BenchConfig, run_bench
from rigscope.demo import smollm2_gguf
from rigscope.llamacpp.probe import probe_speed
from rigscope.llamacpp.server import LlamaServer, ServerSettings
from rigscope.store import Store

OUT = Path(__file__).resolve().parent / "data" / "own_measurements.jsonl"
PROMPTS = (16, 128, 768)  # tokens; each with a short and a long output
OUTPUT = 64


def served(url: str, store: Store, prompt: int, output: int) -> tuple[float, float]:
    """(TTFT p50, ITL p50) seconds over 5 requests at concurrency 1."""
    run_id, _ = run_bench(BenchConfig(url=url, model="smollm2", prompt_tokens=prompt,
                                      output_tokens=output, requests=5, warmup=1), store)
    run = store.run(run_id)
    (_, s), = run.summarized
    return s.ttft_s.p50, s.itl_s.p50


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    gguf = smollm2_gguf()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("RIGSCOPE_DATA_DIR", tmp)
        store = Store(Path(tmp) / "runs.db")
        settings = ServerSettings(model=gguf, alias="smollm2", context=2048, parallel=1)
        with LlamaServer(settings, Path(tmp) / "server.log") as server:
            for prompt in PROMPTS:
                ttft, itl = served(server.url, store, prompt, OUTPUT)
                bench = probe_speed(gguf, pp=prompt, tg=OUTPUT, reps=3)
                step = 1 / bench["tg"]
                prefill = prompt / bench["pp"]
                rows.append({"prompt": prompt, "output": OUTPUT, "ttft_s": ttft, "itl_s": itl,
                             "bench_step_s": step, "bench_prefill_s": prefill,
                             "token_overhead_s": itl - step,
                             "request_overhead_s": ttft - prefill})
                print(f"prompt {prompt:4}: TTFT {ttft * 1e3:7.1f} ms vs prefill "
                      f"{prefill * 1e3:7.1f} ms; ITL {itl * 1e3:5.2f} ms vs decode step "
                      f"{step * 1e3:5.2f} ms")
    token = statistics.median(r["token_overhead_s"] for r in rows)
    request = statistics.median(r["request_overhead_s"] for r in rows)
    print(f"serving adds {token * 1e3:.2f} ms per token and {request * 1e3:.1f} ms per request")
    record = {"kind": "serving", "engine": "llama-server", "model": "smollm2", "quant": "Q4_1",
              "cores": os.cpu_count(), "token_overhead_s": round(token, 6),
              "request_overhead_s": round(request, 6), "rows": rows,
              "source": f"own: llama-server + rigscope bench on {platform.machine()}, "
                        f"{os.cpu_count()} cores, {dt.date.today()}"}
    if not args.dry_run:
        with OUT.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"appended to {OUT}")


if __name__ == "__main__":
    main()
