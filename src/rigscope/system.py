"""Detect the local machine: NVIDIA GPUs through NVML when available, else the CPU and RAM."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable

from rigscope.specs import Accelerator, Rig


def local_ram_bytes() -> int:
    """Total system RAM, from /proc/meminfo, sysctl or sysconf."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    if platform.system() == "Darwin":
        out = subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip().isdigit():
            return int(out.stdout.strip())
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def nvidia_gpus() -> list[Accelerator]:
    """NVIDIA GPUs via NVML (nvidia-ml-py), matched to the catalog by name where possible."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver: no NVIDIA GPU here
        return []
    from rigscope.catalog import gpus

    by_name = {g.name.lower().replace("nvidia ", "").replace("geforce ", ""): g
               for g in gpus().values()}
    found = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            name = name.decode() if isinstance(name, bytes) else name
            total = int(pynvml.nvmlDeviceGetMemoryInfo(h).total)
            key = name.lower().replace("nvidia ", "").replace("geforce ", "")
            match = next((g for n, g in by_name.items() if n.startswith(key)), None)
            if match is not None:
                found.append(match)
            else:
                found.append(Accelerator(
                    id=f"cuda{i}", name=name, backend="cuda", memory_bytes=total,
                    usable_bytes=total, bandwidth_gbs=None, fp16_tflops=None, hw_class="gddr",
                    memory_source="driver", source="NVML",
                ))
    finally:
        pynvml.nvmlShutdown()
    return found


def measure_ram_bandwidth(mib: int = 128, repeats: int = 4) -> float:
    """GB/s one core reads from RAM: the best of `repeats` sums over a `mib` MiB array."""
    import numpy as np

    data = np.ones(mib * 2**20 // 8)
    data.sum()  # fault the pages in first
    best = min(_timed(data.sum) for _ in range(repeats))
    return data.nbytes / best / 1e9


def measure_cpu_tflops(n: int = 1024, repeats: int = 5) -> float:
    """TFLOPS of an F32 matrix product on all cores (numpy's BLAS)."""
    import numpy as np

    a = np.ones((n, n), dtype=np.float32)
    b = np.ones((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e12


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def local_cpu(ram: int | None = None) -> Accelerator:
    """This machine's CPU and RAM, with bandwidth and matmul throughput measured (~0.3 s)."""
    from rigscope.hardware import cpu_accelerator

    return cpu_accelerator(ram or local_ram_bytes(), measure_ram_bandwidth(), measure_cpu_tflops())


def local_rig(host_ram: int | None = None) -> Rig:
    return Rig(devices=tuple(nvidia_gpus()), host=local_cpu(host_ram))
