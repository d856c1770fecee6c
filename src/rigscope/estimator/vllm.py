"""vLLM's placement: tensor parallel over GPUs, a paged KV pool in what is left."""

from __future__ import annotations

from rigscope.errors import RigscopeError
from rigscope.estimator import memory as mem
from rigscope.estimator.common import RUNTIME_OVERHEAD, result, weights_basis
from rigscope.estimator.engines import require
from rigscope.specs import DeviceUse, MemoryEstimate, Request, Rig
from rigscope.units import MIB, format_bytes

VLLM_GPU_UTIL = 0.90  # --gpu-memory-utilization default
VLLM_MAX_BATCHED_TOKENS = 8192  # default profiling batch of vLLM's V1 engine
VLLM_BLOCK = 16  # tokens per KV block
VLLM_GRAPHS = 512 * MIB  # CUDA graph pool, captured after profiling


def vllm(req: Request, rig: Rig) -> MemoryEstimate:
    m, gpus = req.model, list(rig.devices)
    require(req.engine, rig)
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
