"""Turn --gpu/--cpu/--ram specs into a Rig. Parses only what it is given: the local machine
comes from rigscope.system (which detects it)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from rigscope.catalog import apple_accelerator, apple_chips, gpus
from rigscope.errors import RigscopeError, unknown
from rigscope.specs import INTERCONNECTS, Accelerator, Rig
from rigscope.units import GIB, parse_size

DEFAULT_HOST_RAM = 64 * GIB  # assumed for catalog GPU rigs unless --ram says otherwise
DEFAULT_INTERCONNECT = "ib-400g"
MAX_NODES = 16
MAX_GPUS = 64
_COUNT = re.compile(r"^\s*(\d+)\s*[x*]\s*(.+)$", re.IGNORECASE)
CPU_ISAS = {  # --cpu-isa: ggml's compile-time features of the llama.cpp build on that CPU
    "none": (), "avx2": ("avx2",), "avx512": ("avx2", "avx512"),
    "amx": ("avx2", "avx512", "amx"), "neon": ("neon",), "neon-dotprod": ("neon", "dotprod"),
    "neon-i8mm": ("neon", "dotprod", "i8mm"),
}
APPLE_CPU_FEATURES = ("neon", "dotprod")


def apple_host(memory_bytes: int) -> Accelerator:
    """The CPU side of an Apple chip: the same unified memory; NEON with dot product."""
    return Accelerator.cpu(memory_bytes, features=APPLE_CPU_FEATURES,
                           features_source="Apple silicon (NEON with dot product)")


def cpu_isa(name: str) -> tuple[str, ...]:
    """The CPU features a --cpu-isa value names."""
    if name not in CPU_ISAS:
        raise unknown("CPU ISA", name, CPU_ISAS)
    return CPU_ISAS[name]


def parse_gpu(spec: str) -> list[Accelerator]:
    """'rtx-3090', '2xrtx-3090', '2*rtx-3090', 'm3-max-40c:64gb' -> accelerators."""
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
    gpu_specs: Sequence[str] = (), cpu: str | None = None, ram: str | None = None,
    isa: str | None = None, nodes: int = 1, interconnect: str | None = None,
) -> Rig:
    """A rig from --gpu specs (one node's GPUs; `nodes` such machines joined by
    `interconnect`), or CPU only with a RAM size (--cpu 64gb)."""
    if nodes > 1 or interconnect is not None:
        return multi_node(parse_rig(gpu_specs, cpu, ram, isa), nodes, interconnect)
    host_ram = parse_size(ram) if ram else None
    features = cpu_isa(isa) if isa is not None else None
    if cpu:
        if gpu_specs:
            raise RigscopeError("--cpu means CPU only; drop it or the --gpu options")
        return Rig(devices=(), host=Accelerator.cpu(
            parse_size(cpu), features=features,
            features_source=f"--cpu-isa {isa}" if isa else ""))
    devices: list[Accelerator] = []
    for spec in gpu_specs:
        for part in spec.split(","):
            if part.strip():
                devices.extend(parse_gpu(part))
    if not devices:
        raise RigscopeError("no GPUs given; use --gpu ID (repeatable) or --cpu SIZE")
    apple = [d for d in devices if d.backend == "metal"]
    if apple and len(devices) > 1:
        raise RigscopeError("an Apple chip cannot be combined with other GPUs in one rig")
    if apple:
        return Rig(devices=tuple(devices), host=apple_host(apple[0].memory_bytes))
    if any(d.hw_class == "lpddr" for d in devices) and host_ram is None:
        # an APU, DGX Spark, Jetson: one memory, of which the GPU's share is stated
        host_ram = max(d.memory_bytes for d in devices)
    return Rig(devices=tuple(devices), host=Accelerator.cpu(host_ram or DEFAULT_HOST_RAM),
               host_default=host_ram is None)


# The llama.cpp backends each vendor's devices run: its own, or Vulkan
BACKENDS = {"cuda": ("cuda", "vulkan"), "rocm": ("rocm", "vulkan"),
            "metal": ("metal", "vulkan"), "sycl": ("sycl", "vulkan"), "cpu": ("cpu",)}


def with_backend(rig: Rig, backend: str | None) -> Rig:
    """The rig's GPUs run by `backend` (--backend), which their vendor's devices must run."""
    if backend is None:
        return rig
    if not rig.devices:
        if backend != "cpu":
            raise RigscopeError(f"--backend {backend} needs GPUs; this rig is CPU only")
        return rig
    out = []
    for d in rig.devices:
        valid = BACKENDS.get(d.native, (d.native,))
        if backend not in valid:
            raise RigscopeError(f"--backend {backend} does not run {d.name}; valid: "
                                + ", ".join(valid))
        out.append(dataclasses.replace(d, backend=backend, native_backend=d.native))
    return dataclasses.replace(rig, devices=tuple(out))


def with_ram_bandwidth(rig: Rig, gbs: float | None) -> Rig:
    """The rig with its system RAM's bandwidth as given (--ram-bandwidth)."""
    if gbs is None:
        return rig
    return dataclasses.replace(rig, host=dataclasses.replace(
        rig.host, bandwidth_gbs=gbs, memory_source="given (--ram-bandwidth)"))


def multi_node(node: Rig, nodes: int, interconnect: str | None = None) -> Rig:
    """`nodes` copies of a one-machine GPU rig, joined by `interconnect`."""
    if not 1 <= nodes <= MAX_NODES:
        raise RigscopeError(f"invalid --nodes {nodes}; use 1 to {MAX_NODES}")
    link = interconnect or DEFAULT_INTERCONNECT
    if link not in INTERCONNECTS:
        raise unknown("interconnect", link, INTERCONNECTS)
    if nodes == 1:
        return node
    if not node.devices or node.unified:
        raise RigscopeError("several nodes need GPU machines (--gpu); Apple chips and CPU-only "
                            "boxes are planned one machine at a time")
    return Rig(devices=node.devices * nodes, host=node.host, host_default=node.host_default,
               links=node.links, nodes=nodes, interconnect=link)
