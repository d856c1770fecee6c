"""Placement shared by every engine: the request, llama.cpp-style layer split, results."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from rigscope.errors import RigscopeError
from rigscope.estimate import memory as mem
from rigscope.specs import DeviceUse, MemoryEstimate, ModelSpec, Quant, Rig
from rigscope.units import format_bytes

MIB = 1024**2

# Runtime memory outside the engine's own buffers, per device (not in llama.cpp's logs).
# CUDA: context, module images and cuBLAS handles: 300-500 MiB in today's tools'
# reservations (field notes); ROCm's HIP runtime is larger. Metal and the CPU: none counted.
RUNTIME_OVERHEAD = {"cuda": 400 * MIB, "rocm": 512 * MIB, "metal": 0, "cpu": 0}


@dataclass(frozen=True)
class Request:
    """What to place: the model, its format, the engine and the workload shape."""

    model: ModelSpec
    quant: Quant
    engine: str
    context: int
    batch: int
    kv_type: str
    flash_attn: bool
    repack: bool = True  # llama.cpp on the CPU: repack weights where the build does
    outputs: str = "sequences"  # llama.cpp: logits rows reserved (see memory.logits_rows)


def layer_devices(n_layers: int, capacities: Sequence[int], n_gpu_layers: int) -> list[int]:
    """Device index for layers 0..n_layers (the last is the output layer); -1 is the CPU.

    llama.cpp's rule: the last n_gpu_layers layers (output layer included) go to the GPUs,
    split in proportion to the GPUs' memory (tensor_split defaults to free memory).
    """
    start = max(n_layers + 1 - n_gpu_layers, 0)
    active = n_layers + 1 - start
    total = sum(capacities)
    splits, acc = [], 0
    for c in capacities:
        acc += c
        splits.append(acc / total)
    out = []
    for il in range(n_layers + 1):
        if il < start or not capacities:
            out.append(-1)
        else:
            out.append(min(bisect_right(splits, (il - start) / active), len(capacities) - 1))
    return out


def estimate_memory(req: Request, rig: Rig) -> MemoryEstimate:
    """Place req on rig by its engine's rules (llamacpp.py, engines.py)."""
    from rigscope.estimate import engines, llamacpp

    place = {"llama.cpp": llamacpp.place, "vllm": engines.vllm,
             "transformers": engines.transformers, "mlx": engines.mlx}
    return place[req.engine](req, rig)


def result(
    req: Request, rig: Rig, devices: list[DeviceUse], host: DeviceUse, *, fits: bool, runs: bool,
    offloaded_layers: int, offloaded_bytes: int, weights: int, kv: int, basis: list[str],
    max_sequences: int | None = None,
) -> MemoryEstimate:
    return MemoryEstimate(
        model=req.model, quant=req.quant.name, engine=req.engine, context=req.context,
        batch=req.batch, kv_type=req.kv_type, flash_attn=req.flash_attn, rig=rig,
        devices=tuple(devices), host=host, fits=fits, runs=runs,
        offloaded_layers=offloaded_layers, offloaded_bytes=offloaded_bytes,
        weights_bytes=weights, kv_cache_bytes=kv, max_sequences=max_sequences,
        basis=tuple(basis),
    )


def weights_basis(req: Request, lw: mem.LayerWeights) -> str:
    by_type = ", ".join(
        f"{t} {format_bytes(b)}" for t, b in sorted(lw.types.items(), key=lambda x: -x[1])
    )
    n = req.model.params
    bpw = lw.total * 8 / n if n else 0
    exact = req.model.exact_sizes and req.model.file_type == req.quant.name
    how = "exact sizes from the GGUF file" if exact else "per-tensor types as the quantizer picks"
    return (
        f"weights: {n / 1e9:.2f} B params at {req.quant.name} = {format_bytes(lw.total)} "
        f"({bpw:.2f} bits/weight; {how}: {by_type})"
    )


def require_gpus(engine: str, rig: Rig, backends: tuple[str, ...]) -> None:
    if not rig.devices or any(g.backend not in backends for g in rig.devices):
        have = ", ".join(sorted({g.backend for g in rig.devices})) or "cpu"
        raise RigscopeError(f"--engine {engine} needs {' or '.join(backends)} devices; "
                            f"this rig has {have}")
