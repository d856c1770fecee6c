"""Turn --gpu/--cpu/--ram specs into a Rig."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from rigscope.errors import RigscopeError, unknown
from rigscope.specs import Accelerator, Rig
from rigscope.units import GIB, parse_size

DEFAULT_HOST_RAM = 64 * GIB  # assumed for catalog GPU rigs unless --ram says otherwise
_COUNT = re.compile(r"^\s*(\d+)\s*[x*]\s*(.+)$", re.IGNORECASE)
MAX_GPUS = 64


DEFAULT_RAM_GBS = 64.0  # host RAM bandwidth assumed when not measured: dual-channel DDR5
DEFAULT_CPU_TFLOPS = 1.0  # CPU matmul throughput assumed when not measured (8-16 AVX2 cores)


DEFAULT_CPU_FEATURES = ("avx2",)  # a typical x86-64 desktop or server CPU, llama.cpp's build
CPU_ISAS = {  # --cpu-isa: ggml's compile-time features of the llama.cpp build on that CPU
    "none": (), "avx2": ("avx2",), "avx512": ("avx2", "avx512"),
    "amx": ("avx2", "avx512", "amx"), "neon": ("neon",), "neon-dotprod": ("neon", "dotprod"),
    "neon-i8mm": ("neon", "dotprod", "i8mm"),
}


def cpu_accelerator(
    memory_bytes: int, bandwidth_gbs: float | None = None, tflops: float | None = None,
    features: tuple[str, ...] | None = None, features_source: str = "",
) -> Accelerator:
    """The CPU with its RAM. Unmeasured bandwidth, FLOPS and features take typical values."""
    return Accelerator(
        id="cpu", name="CPU (system RAM)", backend="cpu", memory_bytes=memory_bytes,
        usable_bytes=memory_bytes, bandwidth_gbs=bandwidth_gbs or DEFAULT_RAM_GBS,
        fp16_tflops=tflops or DEFAULT_CPU_TFLOPS, hw_class="ram",
        memory_source="measured" if bandwidth_gbs else "assumed",
        cpu_features=DEFAULT_CPU_FEATURES if features is None else features,
        cpu_features_source=features_source or (
            "assumed: an x86-64 CPU with AVX2; --cpu-isa sets it" if features is None
            else "given"),
    )


def apple_host(memory_bytes: int) -> Accelerator:
    """The CPU side of an Apple chip: the same unified memory; NEON with dot product."""
    return cpu_accelerator(memory_bytes, features=("neon", "dotprod"),
                           features_source="Apple silicon (NEON with dot product)")


def parse_gpu(spec: str) -> list[Accelerator]:
    """'rtx-3090', '2xrtx-3090', '2*rtx-3090', 'm3-max-40c:64gb' -> accelerators."""
    from rigscope.catalog import apple_accelerator, apple_chips, gpus

    count, name = 1, spec.strip()
    m = _COUNT.match(name)
    if m:
        count, name = int(m.group(1)), m.group(2).strip()
    if count < 1 or count > MAX_GPUS:
        raise RigscopeError(f"invalid GPU count in {spec!r}; use 1 to {MAX_GPUS}")
    key = name.lower()
    chip, _, size = key.partition(":")
    if chip in apple_chips():
        if count != 1:
            raise RigscopeError(f"{spec!r}: Apple chips come one per machine")
        gb = None
        if size:
            sm = re.fullmatch(r"(\d+)\s*gb?", size)
            if not sm:
                raise RigscopeError(f"invalid Apple memory size in {spec!r}; use e.g. {chip}:64gb")
            gb = int(sm.group(1))
        return [apple_accelerator(chip, gb)]
    if key not in gpus():
        raise unknown("GPU", name, [*gpus(), *apple_chips()])
    return [gpus()[key]] * count


def parse_rig(
    gpu_specs: Sequence[str] = (), cpu: str | bool | None = None, ram: str | None = None,
    cpu_isa: str | None = None,
) -> Rig:
    """A rig from --gpu specs, or CPU only (--cpu [SIZE]), or the local machine."""
    host_ram = parse_size(ram) if ram else None
    if cpu_isa is not None and cpu_isa not in CPU_ISAS:
        raise unknown("CPU ISA", cpu_isa, CPU_ISAS)
    if cpu is not None and cpu is not False:
        if gpu_specs:
            raise RigscopeError("--cpu means CPU only; drop it or the --gpu options")
        size = parse_size(cpu) if isinstance(cpu, str) and cpu else None
        if size is None:  # this machine: measure its RAM bandwidth and matmul rate
            from rigscope.system import local_cpu

            host = local_cpu(host_ram)
            if cpu_isa is not None:
                host = dataclasses.replace(host, cpu_features=CPU_ISAS[cpu_isa],
                                           cpu_features_source=f"--cpu-isa {cpu_isa}")
            return Rig(devices=(), host=host)
        features = CPU_ISAS[cpu_isa] if cpu_isa is not None else None
        return Rig(devices=(), host=cpu_accelerator(
            size, features=features,
            features_source=f"--cpu-isa {cpu_isa}" if cpu_isa else ""))
    if not gpu_specs:
        from rigscope.system import local_rig

        return local_rig(host_ram)
    devices: list[Accelerator] = []
    for spec in gpu_specs:
        for part in spec.split(","):
            if part.strip():
                devices.extend(parse_gpu(part))
    if not devices:
        raise RigscopeError("no GPUs given; use --gpu ID (repeatable) or --cpu")
    apple = [d for d in devices if d.backend == "metal"]
    if apple and len(devices) > 1:
        raise RigscopeError("an Apple chip cannot be combined with other GPUs in one rig")
    if apple:
        return Rig(devices=tuple(devices), host=apple_host(apple[0].memory_bytes))
    return Rig(
        devices=tuple(devices), host=cpu_accelerator(host_ram or DEFAULT_HOST_RAM),
        host_default=host_ram is None,
    )
