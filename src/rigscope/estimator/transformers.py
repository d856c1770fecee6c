"""transformers + accelerate (device_map='auto'): fill GPUs in order, the rest on the CPU."""

from __future__ import annotations

from rigscope.errors import RigscopeError
from rigscope.estimator import memory as mem
from rigscope.estimator.common import RUNTIME_OVERHEAD, result, weights_basis
from rigscope.estimator.engines import require
from rigscope.specs import DeviceUse, MemoryEstimate, Request, Rig
from rigscope.units import format_bytes

ACCELERATE_MAX_MEMORY = 0.90  # share of each GPU device_map="auto" fills


def transformers(req: Request, rig: Rig) -> MemoryEstimate:
    m, gpus = req.model, list(rig.devices)
    if req.kv_type not in ("f16", "bf16", "f32"):
        raise RigscopeError(
            f"kv type {req.kv_type!r} is not one transformers uses; valid: f16, bf16, f32"
        )
    require(req.engine, rig)
    lw = mem.layer_weights(m, req.quant)
    vision = mem.vision_bytes(m)
    kv_by_layer = mem.transformers_kv_bytes_by_layer(m, req.context, req.batch,
                                                     4 if req.kv_type == "f32" else 2)
    kv_total = sum(kv_by_layer)
    act = mem.transformers_activation_bytes(m, req.context, req.batch)
    basis = [
        weights_basis(req, lw),
        *mem.vision_basis(m),
        f"KV cache (DynamicCache, {req.kv_type}): {req.batch} x {req.context} tokens over "
        f"{m.layers} layers = {format_bytes(kv_total)}",
        f"activations of a {req.context}-token forward pass: {format_bytes(act)}",
    ]
    if not gpus:
        cpu = DeviceUse(id=rig.id, capacity_bytes=rig.host.memory_bytes,
                        weights_bytes=lw.total + vision, kv_bytes=kv_total, compute_bytes=act,
                        layers=m.layers,
                        **mem.speed_fields(m, lw, range(m.layers), True, req.kv_type))
        return result(req, rig, [cpu], DeviceUse(id="host", capacity_bytes=0), fits=cpu.fits,
                       runs=cpu.fits, offloaded_layers=0, offloaded_bytes=0,
                       weights=lw.total + vision, kv=kv_total, basis=basis)
    # device_map="auto": fill GPUs in order up to their max_memory, the rest to the CPU
    budgets = [int(g.usable_bytes * ACCELERATE_MAX_MEMORY) - RUNTIME_OVERHEAD[g.backend]
               for g in gpus]
    budgets[0] -= lw.token_embd + vision + act
    budgets[-1] -= lw.output_unique
    assign, gi = [], 0
    for il in range(m.layers):
        need = lw.per_layer[il] + kv_by_layer[il]
        while gi < len(gpus) and budgets[gi] < need:
            gi += 1
        if gi < len(gpus):
            budgets[gi] -= need
            assign.append(gi)
        else:
            assign.append(-1)
    devices = []
    for i, g in enumerate(gpus):
        layers = [il for il in range(m.layers) if assign[il] == i]
        w = sum(lw.per_layer[il] for il in layers)
        w += (lw.token_embd + lw.other + vision if i == 0 else 0) + (
            lw.output_unique if i == len(gpus) - 1 else 0
        )
        devices.append(DeviceUse(
            id=g.id, capacity_bytes=g.usable_bytes, weights_bytes=w,
            kv_bytes=sum(kv_by_layer[il] for il in layers), compute_bytes=act if i == 0 else 0,
            overhead_bytes=RUNTIME_OVERHEAD[g.backend], layers=len(layers),
            **mem.speed_fields(m, lw, layers, i == len(gpus) - 1, req.kv_type),
        ))
    cpu_layers = [il for il in range(m.layers) if assign[il] == -1]
    off = sum(lw.per_layer[il] + kv_by_layer[il] for il in cpu_layers)
    host = DeviceUse(id="host", capacity_bytes=rig.host.memory_bytes,
                     weights_bytes=sum(lw.per_layer[il] for il in cpu_layers),
                     kv_bytes=sum(kv_by_layer[il] for il in cpu_layers), layers=len(cpu_layers),
                     **mem.speed_fields(m, lw, cpu_layers, False, req.kv_type))
    fits = not cpu_layers and all(d.fits for d in devices)
    runs = host.fits and all(d.fits for d in devices)
    if cpu_layers:
        basis.append(f"device_map='auto' offloads {len(cpu_layers)} layers to the CPU")
    return result(req, rig, devices, host, fits=fits, runs=runs,
                   offloaded_layers=len(cpu_layers), offloaded_bytes=off,
                   weights=lw.total + vision, kv=kv_total, basis=basis)
