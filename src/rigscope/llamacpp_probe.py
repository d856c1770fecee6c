"""Measure llama.cpp in-process through llama-cpp-python, to check estimates.

`probe_buffers` loads a GGUF in a subprocess (the C library logs to stderr) at several
settings and returns the buffer sizes llama.cpp reported; `probe_speed` times prompt
processing (ppN) and generation from an empty context (tgN) the way llama-bench does.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

_BUFFER = re.compile(r"(\w+)\s+(model|KV|compute|output) buffer size\s*=\s*([\d.]+) MiB")
KV_GGML_TYPES = {"f16": 1, "f32": 0, "bf16": 30, "q8_0": 8, "q4_0": 2, "q4_1": 3, "q5_0": 6,
                 "q5_1": 7, "iq4_nl": 20}

_PROBE = """
import json, sys
from llama_cpp import Llama
path, configs = sys.argv[1], json.loads(sys.argv[2])
for ctx, fa, kv in configs:
    llm = Llama(model_path=path, n_ctx=ctx, flash_attn=fa, type_k=kv, type_v=kv, verbose=True)
    del llm
    print("=== loaded", file=sys.stderr, flush=True)
"""


def parse_buffers(log: str) -> dict[str, float]:
    """MiB per buffer kind ('model', 'KV', 'compute', 'output'), summed over devices."""
    sizes: dict[str, dict[str, float]] = {}
    for device, kind, mib in _BUFFER.findall(log):
        sizes.setdefault(kind, {})[device] = float(mib)  # a later report replaces an earlier
    return {kind: sum(per_device.values()) for kind, per_device in sizes.items()}


def probe_buffers(
    gguf: str | Path, configs: Sequence[tuple[int, bool, str]], timeout: float = 600
) -> list[dict[str, float]]:
    """Load `gguf` once per (n_ctx, flash_attn, kv_type); the buffers llama.cpp reported."""
    args = json.dumps([[ctx, fa, KV_GGML_TYPES[kv]] for ctx, fa, kv in configs])
    out = subprocess.run([sys.executable, "-c", _PROBE, str(gguf), args],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"llama-cpp-python failed: {out.stderr[-2000:]}")
    blocks = out.stderr.split("=== loaded")[: len(configs)]
    return [parse_buffers(b) for b in blocks]


_SPEED = """
import json, statistics, sys, time
from llama_cpp import Llama
path, pp, tg, threads, reps = sys.argv[1], *map(int, sys.argv[2:6])
llm = Llama(model_path=path, n_ctx=pp + tg + 16, n_batch=pp, n_ubatch=min(pp, 512),
            n_threads=threads, n_threads_batch=threads, verbose=False)
tokens = [(i * 7919) % 40000 + 100 for i in range(pp)]
def run_pp():
    llm.reset(); t = time.perf_counter(); llm.eval(tokens); return pp / (time.perf_counter() - t)
def run_tg():
    llm.reset(); t = time.perf_counter()
    for i in range(tg):
        llm.eval([tokens[i]])
    return tg / (time.perf_counter() - t)
run_pp(); run_tg()  # warm-up
print(json.dumps({"pp": statistics.median(run_pp() for _ in range(reps)),
                  "tg": statistics.median(run_tg() for _ in range(reps))}))
"""


def probe_speed(
    gguf: str | Path, pp: int = 512, tg: int = 128, threads: int | None = None, reps: int = 3,
    timeout: float = 600,
) -> dict[str, float]:
    """Tokens/s of ppN and tgN (median of `reps` runs after a warm-up), all cores by default."""
    import os

    n = threads or os.cpu_count() or 1
    out = subprocess.run([sys.executable, "-c", _SPEED, str(gguf), str(pp), str(tg), str(n),
                          str(reps)], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"llama-cpp-python failed: {out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


_QUANTIZE = """
import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + sys.argv[3])
p.allow_requantize = True
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(),
                                        ctypes.byref(p)))
"""


def quantize(src: str | Path, dst: str | Path, mix: str = "Q8_0") -> Path:
    """Write `src` requantized to `mix` (llama.cpp's quantizer through llama-cpp-python)."""
    out = subprocess.run([sys.executable, "-c", _QUANTIZE, str(src), str(dst), mix],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"llama_model_quantize failed: {out.stderr[-2000:]}")
    return Path(dst)
