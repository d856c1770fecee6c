"""Pieces every engine's placer shares: the request, the result, the weights' basis line."""

from __future__ import annotations

from rigscope.estimator import memory as mem
from rigscope.specs import DeviceUse, MemoryEstimate, Request, Rig
from rigscope.units import MIB, format_bytes

# Runtime memory outside the engine's own buffers, per device (not in llama.cpp's logs).
# CUDA: context, module images and cuBLAS handles: 300-500 MiB in today's tools'
# reservations (field notes); ROCm's HIP runtime is larger. Metal and the CPU: none counted.
# Vulkan and SYCL: not measured; counted as CUDA's.
RUNTIME_OVERHEAD = {"cuda": 400 * MIB, "rocm": 512 * MIB, "metal": 0, "cpu": 0,
                    "vulkan": 400 * MIB, "sycl": 400 * MIB}


def result(
    req: Request, rig: Rig, devices: list[DeviceUse], host: DeviceUse, *, fits: bool, runs: bool,
    offloaded_layers: int, offloaded_bytes: int, weights: int, kv: int, basis: list[str],
    max_sequences: int | None = None, kv_capacity_tokens: int | None = None,
) -> MemoryEstimate:
    return MemoryEstimate(
        request=req, rig=rig, devices=tuple(devices), host=host, fits=fits, runs=runs,
        offloaded_layers=offloaded_layers, offloaded_bytes=offloaded_bytes,
        weights_bytes=weights, kv_cache_bytes=kv, max_sequences=max_sequences,
        kv_capacity_tokens=kv_capacity_tokens,
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
        + (f"; {req.quant.asked}" if req.quant.asked else "")
    )
