"""mlx-lm on Apple silicon: everything in unified memory, KV grown in steps."""

from __future__ import annotations

from rigscope.errors import RigscopeError
from rigscope.estimator import memory as mem
from rigscope.estimator.common import result, weights_basis
from rigscope.estimator.engines import require
from rigscope.specs import DeviceUse, MemoryEstimate, Request, Rig
from rigscope.units import format_bytes


def mlx(req: Request, rig: Rig) -> MemoryEstimate:
    m = req.model
    require(req.engine, rig)
    if req.kv_type not in ("f16", "bf16"):
        raise RigscopeError(f"kv type {req.kv_type!r} is not one mlx-lm uses; valid: f16, bf16")
    chip = rig.devices[0]
    lw = mem.layer_weights(m, req.quant)
    cells = req.batch * mem.pad(req.context, 256)  # KVCache grows in steps of 256 tokens
    kv = cells * mem.kv_bytes_per_token(m, "f16")
    act = mem.mlx_activation_bytes(m, req.context, req.batch)
    dev = DeviceUse(id=chip.id, capacity_bytes=chip.usable_bytes, weights_bytes=lw.total,
                    kv_bytes=kv, compute_bytes=act, layers=m.layers,
                    **mem.speed_fields(m, lw, range(m.layers), True, "f16"))
    basis = [
        weights_basis(req, lw),
        f"KV cache: {cells} cells at f16 = {format_bytes(kv)} (grown in steps of 256)",
        f"prefill in 2048-token chunks: activations {format_bytes(act)}",
        f"Metal may use {format_bytes(chip.usable_bytes)} of {format_bytes(chip.memory_bytes)}",
    ]
    runs = dev.used_bytes <= chip.memory_bytes
    return result(req, rig, [dev], DeviceUse(id="host", capacity_bytes=0), fits=dev.fits,
                   runs=runs, offloaded_layers=0, offloaded_bytes=0, weights=lw.total, kv=kv,
                   basis=basis)
