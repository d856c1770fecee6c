"""Detect the local machine: GPUs (NVML or nvidia-smi, rocm-smi, Apple), CPU, RAM, bandwidth.

Every outside command goes through an injectable runner, so tests replay recorded outputs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rigscope import cpuprobe
from rigscope.catalog import apple_accelerator, apple_chips, gpus, metal_working_set
from rigscope.hardware import cpu_isa, parse_rig
from rigscope.llamacpp.build import cpu_flags
from rigscope.llamacpp.locate import build_record, smollm2
from rigscope.paths import data_dir
from rigscope.specs import Accelerator, EngineCpu, Rig
from rigscope.units import GB, GIB, parse_size

Runner = Callable[[list[str]], str | None]  # stdout, or None when missing or failing
MEASURE_TTL_S = 7 * 24 * 3600  # reuse a RAM bandwidth measurement for a week
PROBE_VERSION = 3  # 3: stored as {key, measured_at, value}; 2: RAM read by all cores


def run_command(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def read_file(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def load_nvml() -> Any:
    """pynvml (nvidia-ml-py, optional) when installed, else None."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


@dataclass(frozen=True)
class Probes:
    """Every way this module looks at the machine. Tests replace PROBES with recorded answers
    (tests/conftest.py), so no test depends on the machine it runs on."""

    run: Runner = run_command  # outside commands: nvidia-smi, rocm-smi, sysctl, ...
    read: Callable[[str], str | None] = read_file  # /proc/meminfo, /proc/cpuinfo
    nvml: Callable[[], Any] = load_nvml
    engine: Callable[[], dict[str, Any] | None] = build_record  # the llama.cpp built here
    ram_gbs: Callable[[], float] = lambda: measure_ram_bandwidth()
    tflops: Callable[[], float] = lambda: measure_cpu_tflops()
    cores: Callable[[], int | None] = os.cpu_count


PROBES = Probes()


@dataclass(frozen=True)
class SystemInfo:
    os: str
    cpu_model: str
    cpu_cores: int
    ram_bytes: int
    ram_gbs: float | None  # measured, one core reading
    cpu_tflops: float | None  # measured F32 matmul
    gpus: tuple[Accelerator, ...]
    notes: tuple[str, ...] = field(default=())

    cpu_features: tuple[str, ...] = ()
    cpu_features_source: str = ""
    engine: EngineCpu | None = None  # llama.cpp's speed here, where measured

    def rig(self, host_ram: int | None = None) -> Rig:
        host = Accelerator.cpu(host_ram or self.ram_bytes, self.ram_gbs, self.cpu_tflops,
                               self.cpu_features, self.cpu_features_source, self.engine)
        return Rig(devices=self.gpus, host=host)


def local_ram_bytes() -> int:
    """Total system RAM, from /proc/meminfo, sysctl or sysconf."""
    for line in (PROBES.read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    out = PROBES.run(["sysctl", "-n", "hw.memsize"])
    if out and out.strip().isdigit():
        return int(out.strip())
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def cpu_model() -> str:
    for line in (PROBES.read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    out = PROBES.run(["sysctl", "-n", "machdep.cpu.brand_string"])
    return (out or platform.processor() or platform.machine()).strip()


def features_from_flags(flags: set[str]) -> tuple[str, ...]:
    """ggml's CPU features a native llama.cpp build would have on a CPU with these flags."""
    out = []
    if "avx2" in flags:
        out.append("avx2")
    if "avx512f" in flags:
        out.append("avx512")
    if {"amx_tile", "amx_int8"} <= flags:
        out.append("amx")
    if "asimd" in flags:
        out.append("neon")
        out += [f for f, flag in (("dotprod", "asimddp"), ("i8mm", "i8mm")) if flag in flags]
    return tuple(out)


def local_cpu_features() -> tuple[tuple[str, ...], str]:
    """(features, where they come from): the llama.cpp rigscope built here, else this CPU's
    flags as a native build would use them."""
    record = PROBES.engine()
    if record is not None and isinstance(record.get("features"), list):
        return tuple(record["features"]), f"the llama.cpp built here: {record.get('isa')}"
    flags = cpu_flags(PROBES.read("/proc/cpuinfo") or "")
    if platform.machine().lower() in ("arm64", "aarch64") and sys.platform == "darwin":
        flags |= {"asimd", "asimddp"}
    return features_from_flags(flags), "this CPU's flags, as a native llama.cpp build uses them"


# --- GPUs ---------------------------------------------------------------------------

_NVIDIA_ALIASES = {"h100-80gb-hbm3": "h100-sxm", "h100-sxm5-80gb": "h100-sxm",
                   "a100-sxm4-80gb": "a100-sxm-80gb", "a100-80gb-pcie": "a100-pcie-80gb",
                   "a100-pcie-40gb": "a100-pcie-40gb", "a100-sxm4-40gb": "a100-pcie-40gb",
                   "rtx-6000-ada-generation": "rtx-6000-ada", "rtx-5000-ada-generation":
                   "rtx-5000-ada", "rtx-4000-ada-generation": "rtx-4000-ada",
                   "rtx-3060": "rtx-3060-12gb", "rtx-4060-ti": "rtx-4060-ti-16gb",
                   "h200": "h200", "h100-nvl": "h100-pcie",
                   "8060s-graphics": "radeon-8060s", "8060s": "radeon-8060s",
                   "jetson-agx-orin": "jetson-agx-orin-64gb", "intel-arc-b580-graphics":
                   "arc-b580", "intel-arc-b580": "arc-b580", "intel-arc-a770-graphics":
                   "arc-a770", "rtx-5060-ti": "rtx-5060-ti-16gb"}


def catalog_gpu_id(name: str) -> str | None:
    """'NVIDIA GeForce RTX 4090' -> 'rtx-4090'; 'Radeon RX 7900 XTX' -> 'rx-7900-xtx'."""
    key = name.lower()
    for prefix in ("nvidia ", "geforce ", "amd ", "radeon ", "instinct "):
        key = key.replace(prefix, "")
    key = re.sub(r"[^a-z0-9]+", "-", key).strip("-")
    key = _NVIDIA_ALIASES.get(key, key)
    return key if key in gpus() else None


def _gpu(name: str, memory: int, index: int, backend: str, free: int = 0,
         source: str = "driver") -> Accelerator:
    """The catalog entry with the driver's memory size (and what is free of it, which is
    what llama.cpp's fit places against), or a bare entry for unknown GPUs."""
    usable = free if 0 < free <= memory else memory
    if usable != memory:
        source = f"{source}: free memory"
    gid = catalog_gpu_id(name)
    if gid is not None:
        g = gpus()[gid]
        return dataclasses.replace(g, memory_bytes=memory or g.memory_bytes,
                                   usable_bytes=usable or g.usable_bytes,
                                   memory_source=source)
    return Accelerator(id=f"{backend}{index}", name=name, backend=backend, memory_bytes=memory,
                       usable_bytes=usable, bandwidth_gbs=None, fp16_tflops=None,
                       hw_class="gddr", memory_source=source, source="detected")


def nvidia_gpus() -> list[Accelerator]:
    """NVIDIA GPUs through NVML (nvidia-ml-py) when importable, else nvidia-smi."""
    nvml = PROBES.nvml()
    if nvml is not None:
        try:
            nvml.nvmlInit()
            try:
                found = []
                for i in range(nvml.nvmlDeviceGetCount()):
                    h = nvml.nvmlDeviceGetHandleByIndex(i)
                    name = nvml.nvmlDeviceGetName(h)
                    name = name.decode() if isinstance(name, bytes) else name
                    info = nvml.nvmlDeviceGetMemoryInfo(h)
                    found.append(_gpu(name, int(info.total), i, "cuda",
                                      int(getattr(info, "free", 0) or 0)))
                return found
            finally:
                nvml.nvmlShutdown()
        except Exception:  # no driver: fall through to nvidia-smi, which will say so too
            pass
    out = PROBES.run(["nvidia-smi", "--query-gpu=name,memory.total",
                      "--format=csv,noheader,nounits"])
    found = []
    for i, line in enumerate((out or "").strip().splitlines()):
        name, _, mib = line.rpartition(",")
        if name and mib.strip().isdigit():
            found.append(_gpu(name.strip(), int(mib) * 2**20, i, "cuda"))
    return found


def amd_gpus() -> list[Accelerator]:
    """AMD GPUs through rocm-smi's JSON output."""
    out = PROBES.run(["rocm-smi", "--showproductname", "--showmeminfo", "vram", "gtt",
                      "--json"])
    if not out:
        return []
    try:
        cards = json.loads(out)
    except ValueError:
        return []
    found = []
    for i, (card, info) in enumerate(sorted(cards.items())):
        if not card.startswith("card") or not isinstance(info, dict):
            continue
        name = info.get("Card Series") or info.get("Card series") or info.get("Card model", "")
        total = int(info.get("VRAM Total Memory (B)", 0) or 0)
        used = int(info.get("VRAM Total Used Memory (B)", 0) or 0)
        gtt = int(info.get("GTT Total Memory (B)", 0) or 0)
        if gtt > total and catalog_hw_class(str(name)) == "lpddr":
            # an APU (Strix Halo): its GPU allocates from the GTT pool of system RAM that
            # Linux sets (amdgpu.gttsize / ttm pages_limit), beyond the BIOS carve-out
            found.append(_gpu(str(name), gtt, i, "rocm", source="GTT (rocm-smi)"))
            continue
        found.append(_gpu(str(name), total, i, "rocm", total - used if used else 0))
    return found


def catalog_hw_class(name: str) -> str | None:
    gid = catalog_gpu_id(name)
    return gpus()[gid].hw_class if gid is not None else None


def apple_wired_limit() -> int | None:
    """Bytes the GPU may wire when `sysctl iogpu.wired_limit_mb` is set (0: macOS default)."""
    out = PROBES.run(["sysctl", "-n", "iogpu.wired_limit_mb"])
    try:
        mb = int((out or "").strip())
    except ValueError:
        return None
    return mb * 2**20 if mb > 0 else None


def apple_chip() -> list[Accelerator]:
    """The Apple chip: name from sysctl, GPU cores from system_profiler, unified memory."""
    brand = PROBES.run(["sysctl", "-n", "machdep.cpu.brand_string"])
    if not brand or not brand.strip().startswith("Apple M"):
        return []
    family = re.sub(r"[^a-z0-9]+", "-", brand.strip().lower().replace("apple ", "")).strip("-")
    cores = 0
    prof = PROBES.run(["system_profiler", "SPDisplaysDataType", "-json"])
    if prof:
        try:
            cores = int(json.loads(prof)["SPDisplaysDataType"][0].get("sppci_cores", 0))
        except (ValueError, KeyError, IndexError, TypeError):
            cores = 0
    memory = local_ram_bytes()
    chip = f"{family}-{cores}c"
    gb = round(memory / GIB)
    limit = apple_wired_limit()
    if limit is not None:  # iogpu.wired_limit_mb raises (or lowers) Metal's working set
        return [dataclasses.replace(a, usable_bytes=min(limit, a.memory_bytes),
                                    memory_source="iogpu.wired_limit_mb")
                for a in _apple(chip, gb, memory, brand)]
    return _apple(chip, gb, memory, brand)


def _apple(chip: str, gb: int, memory: int, brand: str) -> list[Accelerator]:
    if chip in apple_chips():
        try:
            return [apple_accelerator(chip, gb)]
        except Exception:  # a size the catalog does not list: keep the chip's other specs
            base = apple_accelerator(chip)
            return [dataclasses.replace(base, id=f"{chip}:{gb}gb", memory_bytes=memory,
                                        usable_bytes=metal_working_set(memory))]
    return [Accelerator(id=f"{chip}:{gb}gb", name=brand.strip(), backend="metal",
                        memory_bytes=memory, usable_bytes=metal_working_set(memory),
                        bandwidth_gbs=None, fp16_tflops=None, hw_class="unified",
                        source="detected")]


# --- CPU probes ---------------------------------------------------------------------


def measure_ram_bandwidth(mib: int = 256, repeats: int = 7) -> float:
    """GB/s all cores read from RAM together: each sums its share of a `mib` MiB array at
    once (numpy releases the GIL); the best of `repeats` rounds, since on a shared machine
    other work only slows a round down. The speed model's CPU efficiency is a share of this
    figure, the machine's read capability."""
    data = np.ones(mib * 2**20 // 8)
    data.sum()  # fault the pages in first
    n = max(1, os.cpu_count() or 1)
    chunks = np.array_split(data, n)
    with ThreadPoolExecutor(n) as pool:
        def read_all() -> None:
            list(pool.map(np.sum, chunks))

        read_all()
        best = min(_timed(read_all) for _ in range(repeats))
    return data.nbytes / (best or math.inf) / GB


def measure_cpu_tflops(n: int = 1024, repeats: int = 5) -> float:
    """TFLOPS of an F32 matrix product on all cores (numpy's BLAS)."""
    a = np.ones((n, n), dtype=np.float32)
    b = np.ones((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e12


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cached(name: str, key: dict[str, Any], refresh: bool) -> dict[str, Any] | None:
    """A measurement stored in the data dir under this key within the last week."""
    path = data_dir() / name
    if refresh or not path.exists():
        return None
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key and time.time() - cached.get("measured_at", 0) < MEASURE_TTL_S:
            return dict(cached["value"])
    except (ValueError, KeyError, TypeError, OSError):
        pass
    return None


def _store(name: str, key: dict[str, Any], value: dict[str, Any]) -> None:
    path = data_dir() / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": key, "measured_at": time.time(), "value": value}))
    except OSError:
        pass  # a read-only home still gets the numbers, just not cached


def measured_cpu(model: str, refresh: bool = False) -> tuple[float, float]:
    """(RAM GB/s, CPU TFLOPS), measured (~0.3 s) or reused from the data dir for a week."""
    # the probe's version: a cached figure from an older probe is measured again
    key = {"host": socket.gethostname(), "cpu": model, "probe": PROBE_VERSION}
    cached = _cached("system.json", key, refresh)
    if cached is not None:
        try:
            return float(cached["ram_gbs"]), float(cached["cpu_tflops"])
        except (KeyError, TypeError, ValueError):
            pass
    gbs, tflops = PROBES.ram_gbs(), PROBES.tflops()
    _store("system.json", key, {"ram_gbs": gbs, "cpu_tflops": tflops})
    return gbs, tflops


def engine_cpu(model: str, refresh: bool = False, measure: bool = False) -> EngineCpu | None:
    """llama.cpp's own speed on this CPU (rigscope.cpuprobe): from the data dir when measured
    within a week with the same build, else measured when `measure` and the build and the
    SmolLM2 tokenizer are here (about 40 s on 2 cores), else None (the fitted constants)."""
    record = PROBES.engine()
    if record is None:
        return None
    key = {"host": socket.gethostname(), "cpu": model, "build": record.get("key")}
    cached = _cached("engine-cpu.json", key, refresh)
    if cached is not None:
        try:
            return cpuprobe.from_json(cached)
        except (KeyError, TypeError, ValueError):
            pass
    tokenizer = smollm2()
    if not measure or tokenizer is None:
        return None
    from rigscope.llamacpp.synth import tokenizer_fields

    vocab = len(tokenizer_fields(tokenizer).get("tokenizer.ggml.tokens", []))
    result = cpuprobe.measure(tokenizer, vocab)
    _store("engine-cpu.json", key, cpuprobe.to_json(result))
    return result


def detect(measure: bool = True, refresh: bool = False, engine: bool = False) -> SystemInfo:
    """What this machine has. measure=False skips the RAM bandwidth probe; engine=True
    measures llama.cpp's speed on this CPU with the build here unless it is cached."""
    model = cpu_model()
    gpus = nvidia_gpus() or amd_gpus() or apple_chip()
    gbs, tflops = measured_cpu(model, refresh) if measure else (None, None)
    kernels = engine_cpu(model, refresh and engine, engine) if measure else None
    notes = []
    if not gpus:
        notes.append("no GPU detected: planning for the CPU and its RAM")
    features, source = local_cpu_features()
    return SystemInfo(
        os=f"{platform.system()} {platform.release()}", cpu_model=model,
        cpu_cores=PROBES.cores() or 1, ram_bytes=local_ram_bytes(), ram_gbs=gbs,
        cpu_tflops=tflops, gpus=tuple(gpus), notes=tuple(notes), cpu_features=features,
        cpu_features_source=source, engine=kernels,
    )


def local_cpu(ram: int | None = None) -> Accelerator:
    """This machine's CPU and RAM, with bandwidth and matmul throughput measured, and
    llama.cpp's own speed here where `rigscope system` measured it."""
    model = cpu_model()
    gbs, tflops = measured_cpu(model)
    features, source = local_cpu_features()
    return Accelerator.cpu(ram or local_ram_bytes(), gbs, tflops, features, source,
                           engine_cpu(model))


def local_rig(host_ram: int | None = None) -> Rig:
    """The default rig: this machine's GPUs (or Apple chip), else its CPU."""
    return detect().rig(host_ram)


def resolve_rig(gpu_specs: Sequence[str] = (), cpu: str | None = None, ram: str | None = None,
                isa: str | None = None) -> Rig:
    """The rig the options name: --gpu specs or --cpu SIZE as parsed; --cpu alone is this
    machine's CPU, and neither is this machine (its GPUs, else its CPU)."""
    if gpu_specs or cpu:
        return parse_rig(gpu_specs, cpu, ram, isa)
    host_ram = parse_size(ram) if ram else None
    if cpu is None:
        rig = local_rig(host_ram)
        if rig.devices:
            return rig
    host = local_cpu(host_ram)
    if isa is not None:
        host = dataclasses.replace(host, cpu_features=cpu_isa(isa),
                                   cpu_features_source=f"--cpu-isa {isa}")
    return Rig(devices=(), host=host)
