"""Measure the built llama.cpp on this machine: the buffers it allocates, its speed.

`probe_buffers` starts llama-server at several settings and reads the buffer sizes it logs
while loading; `probe_speed` runs llama-bench (ppN and tgN, as users measure); `quantize`
runs llama-quantize.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rigscope.llamacpp.server import LlamaServer, ServerSettings, run_program

_BUFFER = re.compile(r"(\w+)\s+(model|KV|RS|compute|output) buffer size\s*=\s*([\d.]+) MiB")
# DeepSeek-V4's compressor states: fixed per sequence, counted with the recurrent states
_STATE = re.compile(r"(\w+)\s+DSV4 \w+ state buffer size\s*=\s*([\d.]+) MiB")


def parse_buffer_devices(log: str) -> dict[str, dict[str, float]]:
    """MiB per buffer kind ('model', 'KV', 'RS', 'compute', 'output') and device
    (CPU_Mapped, CPU_REPACK, AMX, CUDA0, ...). Caches add up (a sliding-window model reports
    its full and its windowed KV cache); a later report of any other buffer replaces an earlier
    one (the scheduler reserves compute buffers twice)."""
    sizes: dict[str, dict[str, float]] = {}
    found = _BUFFER.findall(log) + [(d, "RS", mib) for d, mib in _STATE.findall(log)]
    for device, kind, mib in found:
        seen = sizes.setdefault(kind, {})
        seen[device] = (seen.get(device, 0.0) if kind in ("KV", "RS") else 0.0) + float(mib)
    return sizes


def parse_buffers(log: str) -> dict[str, float]:
    """MiB per buffer kind, summed over devices."""
    return {kind: sum(d.values()) for kind, d in parse_buffer_devices(log).items()}


def probe_buffers(
    gguf: str | Path, configs: Sequence[tuple[int, bool, str]], parallel: int = 1,
    repack: bool = True, extra: Sequence[str] = (),
) -> list[dict[str, dict[str, float]]]:
    """Load `gguf` once per (n_ctx, flash_attn, kv_type): the buffers llama.cpp reported
    (`extra`: more llama-server arguments, e.g. -ot)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="rigscope-probe-") as tmp:
        for ctx, fa, kv in configs:
            log = Path(tmp) / f"server-{ctx}-{int(fa)}-{kv}.log"
            settings = ServerSettings(model=Path(gguf), context=ctx, parallel=parallel,
                                      flash_attn="on" if fa else "off", cache_type=kv,
                                      repack=repack, extra=tuple(extra))
            with LlamaServer(settings, log):
                pass
            out.append(parse_buffer_devices(log.read_text(errors="replace")))
    return out


def probe_speed(gguf: str | Path, pp: int = 512, tg: int = 128, threads: int | None = None,
                reps: int = 3, timeout: float = 600, best: bool = False) -> dict[str, float]:
    """Tokens/s of ppN and tgN as llama-bench measures them: the mean of `reps` runs, or
    with `best` the fastest (as the RAM probe keeps its best of 7 on a noisy machine)."""
    args = ["-m", str(gguf), "-p", str(pp), "-n", str(tg), "-r", str(reps), "-o", "json"]
    if threads:
        args += ["-t", str(threads)]
    rows = json.loads(run_program("llama-bench", args, timeout=timeout).stdout)
    out = {}
    for row in rows:
        key = "pp" if row.get("n_gen") == 0 else "tg"
        samples = [float(x) for x in row.get("samples_ts") or []]
        out[key] = max(samples) if best and samples else float(row["avg_ts"])
    return out


def quantize(src: str | Path, dst: str | Path, mix: str = "Q8_0",
             keep: Sequence[str] = ()) -> Path:
    """Write `src` requantized to `mix` with llama-quantize; `keep` names tensor patterns
    whose type stays as stored (gpt-oss's MXFP4 experts, as its published GGUFs keep them)."""
    args = ["--allow-requantize"]
    for pattern in keep:
        args += ["--tensor-type", pattern]
    run_program("llama-quantize", [*args, str(src), str(dst), mix])
    return Path(dst)
