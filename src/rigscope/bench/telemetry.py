"""What the server and the GPU say while a benchmark runs, on the run's own clock.

Sources, each optional and detected when the run starts: Prometheus `/metrics` of vLLM,
SGLang and llama.cpp's server (requests running and waiting, KV-cache use, prefix-cache
hits); llama.cpp's `/slots`; Ollama's `/api/ps` (how much of the model is in VRAM, how much
in RAM); for a GPU on this machine, NVML (nvidia-ml-py) at 10 Hz: utilization, memory
used, power, SM clock; for a server on this machine, the CPU packages' power from Linux's
RAPL energy counters at 10 Hz. Parsers are pure; the sampler polls and stores each sample."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rigscope.bench.http import HTTPFailure, Pool

SERVER_PERIOD_S = 0.5
NVML_PERIOD_S = 0.1

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")

# Prometheus series -> common names (first match wins; vLLM renamed some in 0.7-0.10)
PROMETHEUS = {
    "requests_running": ("vllm:num_requests_running", "sglang:num_running_reqs",
                         "llamacpp:requests_processing"),
    "requests_waiting": ("vllm:num_requests_waiting", "sglang:num_queue_reqs",
                         "llamacpp:requests_deferred"),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc",
                       "sglang:token_usage", "llamacpp:kv_cache_usage_ratio"),
    "kv_cache_tokens": ("llamacpp:kv_cache_tokens", "sglang:num_used_tokens"),
    "prefix_cache_hit_rate": ("sglang:cache_hit_rate",),
    "prefix_cache_hits": ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_hits",
                          "vllm:gpu_prefix_cache_hits_total"),
    "prefix_cache_queries": ("vllm:prefix_cache_queries_total", "vllm:prefix_cache_queries",
                             "vllm:gpu_prefix_cache_queries_total"),
    "prompt_tokens_cached": ("llamacpp:prompt_tokens_cached_total",),
    # speculative decoding: counters (vLLM, llama.cpp) or SGLang's mean acceptance length
    "spec_draft_tokens": ("vllm:spec_decode_num_draft_tokens_total",
                          "llamacpp:spec_decode_num_draft_tokens_total"),
    "spec_accepted_tokens": ("vllm:spec_decode_num_accepted_tokens_total",
                             "llamacpp:spec_decode_num_accepted_tokens_total"),
    "spec_drafts": ("vllm:spec_decode_num_drafts_total",),
    "spec_accept_length": ("sglang:spec_accept_length",),
    # board power in watts where the page carries it (NVIDIA's DCGM exporter series)
    "power_w": ("DCGM_FI_DEV_POWER_USAGE",),
}


def parse_prometheus(text: str) -> dict[str, float]:
    """Prometheus text exposition: each series' value, summed over its label sets."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        if math.isfinite(value):
            out[m.group(1)] = out.get(m.group(1), 0.0) + value
    return out


def server_metrics(series: dict[str, float]) -> dict[str, float]:
    """The common figures a /metrics page carries (vLLM, SGLang or llama.cpp)."""
    out = {}
    for name, candidates in PROMETHEUS.items():
        for c in candidates:
            if c in series:
                out[name] = series[c]
                break
    hits, queries = out.get("prefix_cache_hits"), out.get("prefix_cache_queries")
    if hits is not None and queries:  # the counters stay: a level's rate is their change
        out["prefix_cache_hit_rate"] = hits / queries
    return out


def parse_slots(doc: Any) -> dict[str, float]:
    """llama.cpp's /slots: how many slots are busy, and the context each holds."""
    if not isinstance(doc, list):
        return {}
    slots = [s for s in doc if isinstance(s, dict)]
    busy = sum(1 for s in slots if s.get("is_processing") or s.get("state") == 1)
    out = {"slots_busy": float(busy), "slots_total": float(len(slots))}
    ctx = [float(s["n_ctx"]) for s in slots if isinstance(s.get("n_ctx"), int)]
    if ctx:
        out["slot_context"] = ctx[0]
    return out


def parse_ollama_ps(doc: Any) -> dict[str, float]:
    """Ollama's /api/ps: the loaded models' size, the part in VRAM and the part in RAM
    (the split Ollama chose: any RAM share runs on the CPU)."""
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, list) or not models:
        return {}
    size = sum(float(m.get("size") or 0) for m in models if isinstance(m, dict))
    vram = sum(float(m.get("size_vram") or 0) for m in models if isinstance(m, dict))
    return {"model_bytes": size, "vram_bytes": vram, "ram_bytes": max(size - vram, 0.0),
            "gpu_share": vram / size if size else 0.0}


RAPL_ROOT = Path("/sys/class/powercap")


def rapl_packages(root: Path = RAPL_ROOT) -> list[Path]:
    """The CPU packages' energy counters (Linux powercap: intel-rapl, which AMD's Zen
    drivers fill too), where this process may read them."""
    out = []
    for zone in sorted(root.glob("intel-rapl:*")):
        counter = zone / "energy_uj"
        if ":" in zone.name.split("intel-rapl:", 1)[1]:
            continue  # a subzone (core, uncore, dram) of a package counted already
        try:
            int(counter.read_text())
        except (OSError, ValueError):
            continue
        out.append(zone)
    return out


class Rapl:
    """CPU package power from the energy counters: the watts between two readings."""

    def __init__(self, zones: list[Path], clock: Callable[[], float]) -> None:
        self.zones, self.clock = zones, clock
        self.last: tuple[float, list[int]] | None = None

    def _read(self) -> list[int]:
        return [int((z / "energy_uj").read_text()) for z in self.zones]

    def _range(self, zone: Path) -> int:
        try:
            return int((zone / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            return 2**32

    async def read(self) -> dict[str, float]:
        now, values = self.clock(), self._read()
        last, self.last = self.last, (now, values)
        if last is None or now <= last[0]:
            return {}
        joules = 0.0
        for zone, a, b in zip(self.zones, last[1], values, strict=True):
            joules += ((b - a) % self._range(zone)) / 1e6  # the counter wraps
        return {"cpu_power_w": joules / (now - last[0])}


def nvml_sample(nvml: Any, handles: list[Any]) -> dict[str, float]:
    """One NVML reading summed (memory, power) or averaged (utilization, clock) over GPUs."""
    used = power = util = clock = 0.0
    for h in handles:
        used += float(nvml.nvmlDeviceGetMemoryInfo(h).used)
        power += nvml.nvmlDeviceGetPowerUsage(h) / 1000.0  # mW
        util += float(nvml.nvmlDeviceGetUtilizationRates(h).gpu)
        clock += float(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM))
    n = len(handles) or 1
    return {"gpu_memory_used_bytes": used, "gpu_power_w": power, "gpu_util_pct": util / n,
            "sm_clock_mhz": clock / n, "gpus": float(len(handles))}


def load_nvml() -> tuple[Any, list[Any]] | None:
    """NVML and this machine's GPUs, or None (no driver, no package, no GPU)."""
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i)
                   for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - NVMLError and friends: no usable GPU here
        return None
    return (pynvml, handles) if handles else None


@dataclass
class Source:
    name: str  # "metrics" | "slots" | "ollama_ps" | "nvml"
    period_s: float
    read: Callable[[], Awaitable[dict[str, float]]]


async def _get(pool: Pool, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    resp = await pool.request("GET", path, headers=headers, header_timeout=5.0)
    body = await resp.read()
    return resp.status, body


async def detect(pool: Pool, api: str, headers: dict[str, str], local: bool,
                 nvml: tuple[Any, list[Any]] | None = None,
                 rapl: list[Path] | None = None) -> list[Source]:
    """The sources that answer now (a server without /metrics simply has none)."""
    sources: list[Source] = []

    async def probe(path: str, parse: Callable[[bytes], dict[str, float]]
                    ) -> Callable[[], Awaitable[dict[str, float]]] | None:
        try:
            status, body = await _get(pool, path, headers)
            if status != 200 or not parse(body):
                return None
        except (HTTPFailure, ValueError, UnicodeDecodeError):
            return None

        async def read() -> dict[str, float]:
            status, body = await _get(pool, path, headers)
            return parse(body) if status == 200 else {}
        return read

    def prom(body: bytes) -> dict[str, float]:
        return server_metrics(parse_prometheus(body.decode("utf-8", "replace")))

    candidates: list[tuple[str, str, Callable[[bytes], dict[str, float]]]] = [
        ("metrics", "/metrics", prom)]
    if api.startswith("ollama"):
        candidates.append(("ollama_ps", "/api/ps", lambda b: parse_ollama_ps(json.loads(b))))
    else:
        candidates.append(("slots", "/slots", lambda b: parse_slots(json.loads(b))))
    for name, path, parse in candidates:
        read = await probe(path, parse)
        if read is not None:
            sources.append(Source(name, SERVER_PERIOD_S, read))
    if local and nvml is not None:
        module, handles = nvml

        async def read_nvml() -> dict[str, float]:
            return nvml_sample(module, handles)
        sources.append(Source("nvml", NVML_PERIOD_S, read_nvml))
    if local and rapl:
        meter = Rapl(rapl, pool.clock)
        await meter.read()  # the first reading only starts the count
        sources.append(Source("rapl", NVML_PERIOD_S, meter.read))
    return sources


async def sample(sources: list[Source], clock: Callable[[], float],
                 store: Callable[[float, str, dict[str, float]], None],
                 stop: asyncio.Event) -> None:
    """Poll every source at its period until `stop` is set (see stop_sampling); a failed read
    is skipped. Each sample carries the time its answer arrived, so a counter read at or
    before a moment holds nothing that happened after it."""
    async def loop(src: Source) -> None:
        while not stop.is_set():
            t = clock()
            try:
                data = await src.read()
            except (HTTPFailure, ValueError, UnicodeDecodeError, OSError):
                data = {}
            if stop.is_set():
                return
            if data:
                store(clock(), src.name, data)
            await asyncio.sleep(max(0.0, src.period_s - (clock() - t)))

    await asyncio.gather(*(loop(s) for s in sources))


async def stop_sampling(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    """Stop a `sample` task. The flag is what ends it: on Python 3.11 a cancellation can be
    lost inside asyncio.wait_for when the read it wraps completes at that moment (as one does
    when the server dies), and a sampler relying on the cancel alone then polls forever."""
    stop.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
