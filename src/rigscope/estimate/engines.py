"""Placement for vLLM (tensor parallel, paged KV), transformers + accelerate and MLX."""

from __future__ import annotations

from rigscope.errors import RigscopeError
from rigscope.estimate import memory as mem
from rigscope.estimate.placement import (
    RUNTIME_OVERHEAD,
    Request,
    require_gpus,
    result,
    weights_basis,
)
from rigscope.specs import DeviceUse, MemoryEstimate, Rig
from rigscope.units import format_bytes

MIB = 1024**2
VLLM_GPU_UTIL = 0.90  # --gpu-memory-utilization default
VLLM_MAX_BATCHED_TOKENS = 8192  # default profiling batch of vLLM's V1 engine
VLLM_BLOCK = 16  # tokens per KV block
VLLM_GRAPHS = 512 * MIB  # CUDA graph pool, captured after profiling
ACCELERATE_MAX_MEMORY = 0.90  # share of each GPU device_map="auto" fills


# --- vLLM ---------------------------------------------------------------------------


def vllm(req: Request, rig: Rig) -> MemoryEstimate:
    m, gpus = req.model, list(rig.devices)
    require_gpus(req.engine, rig, ("cuda", "rocm"))
    if req.kv_type not in ("f16", "bf16", "fp8"):
        raise RigscopeError(f"kv type {req.kv_type!r} is not one vLLM has; valid: f16, bf16, fp8")
    tp = len(gpus)
    lw = mem.layer_weights(m, req.quant)
    per_token = mem.kv_bytes_per_token(m, "fp8" if req.kv_type == "fp8" else "f16")
    kv_heads_per_gpu = max(m.kv_heads // tp, 1)
    per_token_gpu = per_token * kv_heads_per_gpu // m.kv_heads
    seq_tokens = mem.pad(req.context, VLLM_BLOCK)
    need_gpu = req.batch * seq_tokens * per_token_gpu
    act = mem.vllm_activation_bytes(m, tp, VLLM_MAX_BATCHED_TOKENS)
    cap = min(g.usable_bytes for g in gpus)
    usable = int(cap * VLLM_GPU_UTIL)
    w_gpu = lw.total // tp
    overhead = RUNTIME_OVERHEAD[gpus[0].backend] + VLLM_GRAPHS
    pool = usable - w_gpu - act - overhead
    shardable = m.heads % tp == 0
    fits = shardable and pool >= need_gpu
    max_seqs = max(pool, 0) // (seq_tokens * per_token_gpu) if per_token_gpu else 0
    speed = mem.speed_fields(m, lw, range(m.layers), True, per_token_gpu // m.layers, 1 / tp)
    devices = [
        DeviceUse(id=g.id, capacity_bytes=g.usable_bytes, weights_bytes=w_gpu,
                  kv_bytes=max(pool, need_gpu), compute_bytes=act, overhead_bytes=overhead,
                  layers=m.layers, **speed)
        for g in gpus
    ]
    basis = [
        weights_basis(req, lw),
        f"tensor parallel over {tp} GPU(s): {format_bytes(w_gpu)} of weights per GPU",
        f"vLLM takes {VLLM_GPU_UTIL:.0%} of each GPU ({format_bytes(usable)}); after weights, "
        f"activations ({format_bytes(act)}, profiled at {VLLM_MAX_BATCHED_TOKENS} tokens) and "
        f"runtime + CUDA graphs ({format_bytes(overhead)}) the paged KV pool is "
        f"{format_bytes(max(pool, 0))} per GPU",
        f"KV needed: {req.batch} x {seq_tokens} tokens x {format_bytes(per_token)}/token "
        f"= {format_bytes(need_gpu * tp)}; the pool holds {max_seqs} sequences of "
        f"{req.context} tokens",
    ]
    if not shardable:
        basis.append(f"cannot run: {m.heads} attention heads do not split over {tp} GPUs")
    return result(
        req, rig, devices, DeviceUse(id="host", capacity_bytes=rig.host.memory_bytes),
        fits=fits, runs=fits, offloaded_layers=0, offloaded_bytes=0, weights=lw.total,
        kv=req.batch * seq_tokens * per_token, basis=basis, max_sequences=max_seqs,
    )


# --- transformers + accelerate ------------------------------------------------------


def transformers(req: Request, rig: Rig) -> MemoryEstimate:
    m, gpus = req.model, list(rig.devices)
    if req.kv_type not in ("f16", "bf16", "f32"):
        raise RigscopeError(
            f"kv type {req.kv_type!r} is not one transformers uses; valid: f16, bf16, f32"
        )
    if any(g.backend == "metal" for g in gpus):
        raise RigscopeError("use --engine mlx or llama.cpp on Apple chips")
    lw = mem.layer_weights(m, req.quant)
    kv_elem = 4 if req.kv_type == "f32" else 2
    cell = 2 * m.kv_heads * m.head_dim * kv_elem
    kv_layer = req.batch * req.context * cell
    act = mem.transformers_activation_bytes(m, req.context, req.batch)
    basis = [
        weights_basis(req, lw),
        f"KV cache (DynamicCache, {req.kv_type}): {req.batch} x {req.context} tokens x "
        f"{m.layers} layers = {format_bytes(kv_layer * m.layers)}",
        f"activations of a {req.context}-token forward pass: {format_bytes(act)}",
    ]
    if not gpus:
        cpu = DeviceUse(id=rig.id, capacity_bytes=rig.host.memory_bytes,
                        weights_bytes=lw.total, kv_bytes=kv_layer * m.layers, compute_bytes=act,
                        layers=m.layers, **mem.speed_fields(m, lw, range(m.layers), True, cell))
        return result(req, rig, [cpu], DeviceUse(id="host", capacity_bytes=0), fits=cpu.fits,
                       runs=cpu.fits, offloaded_layers=0, offloaded_bytes=0, weights=lw.total,
                       kv=kv_layer * m.layers, basis=basis)
    # device_map="auto": fill GPUs in order up to their max_memory, the rest to the CPU
    budgets = [int(g.usable_bytes * ACCELERATE_MAX_MEMORY) - RUNTIME_OVERHEAD[g.backend]
               for g in gpus]
    budgets[0] -= lw.token_embd + act
    budgets[-1] -= lw.output_unique
    assign, gi = [], 0
    for il in range(m.layers):
        need = lw.per_layer[il] + kv_layer
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
        w += (lw.token_embd + lw.other if i == 0 else 0) + (
            lw.output_unique if i == len(gpus) - 1 else 0
        )
        devices.append(DeviceUse(
            id=g.id, capacity_bytes=g.usable_bytes, weights_bytes=w,
            kv_bytes=kv_layer * len(layers), compute_bytes=act if i == 0 else 0,
            overhead_bytes=RUNTIME_OVERHEAD[g.backend], layers=len(layers),
            **mem.speed_fields(m, lw, layers, i == len(gpus) - 1, cell),
        ))
    cpu_layers = [il for il in range(m.layers) if assign[il] == -1]
    off = sum(lw.per_layer[il] + kv_layer for il in cpu_layers)
    host = DeviceUse(id="host", capacity_bytes=rig.host.memory_bytes,
                     weights_bytes=sum(lw.per_layer[il] for il in cpu_layers),
                     kv_bytes=kv_layer * len(cpu_layers), layers=len(cpu_layers),
                     **mem.speed_fields(m, lw, cpu_layers, False, cell))
    fits = not cpu_layers and all(d.fits for d in devices)
    runs = host.fits and all(d.fits for d in devices)
    if cpu_layers:
        basis.append(f"device_map='auto' offloads {len(cpu_layers)} layers to the CPU")
    return result(req, rig, devices, host, fits=fits, runs=runs,
                   offloaded_layers=len(cpu_layers), offloaded_bytes=off, weights=lw.total,
                   kv=kv_layer * m.layers, basis=basis)


# --- MLX ----------------------------------------------------------------------------


def mlx(req: Request, rig: Rig) -> MemoryEstimate:
    m = req.model
    require_gpus(req.engine, rig, ("metal",))
    if req.kv_type not in ("f16", "bf16"):
        raise RigscopeError(f"kv type {req.kv_type!r} is not one mlx-lm uses; valid: f16, bf16")
    chip = rig.devices[0]
    lw = mem.layer_weights(m, req.quant)
    cells = req.batch * mem.pad(req.context, 256)  # KVCache grows in steps of 256 tokens
    kv = cells * mem.kv_bytes_per_token(m, "f16")
    act = mem.mlx_activation_bytes(m, req.context, req.batch)
    dev = DeviceUse(id=chip.id, capacity_bytes=chip.usable_bytes, weights_bytes=lw.total,
                    kv_bytes=kv, compute_bytes=act, layers=m.layers,
                    **mem.speed_fields(m, lw, range(m.layers), True, kv // cells // m.layers))
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
