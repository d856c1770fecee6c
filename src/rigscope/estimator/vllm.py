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


def sequence_bytes(req: Request, tp: int) -> int:
    """Cache one sequence of req.context tokens takes on each GPU: full-attention layers hold
    every token (blocks of 16), sliding-window and chunked layers their window plus a block
    (vLLM's hybrid KV cache manager frees blocks that slid out), Mamba layers a fixed
    state. KV heads split over tensor parallelism; MLA's latent does not (each GPU holds
    it all); Mamba heads do."""
    a = req.model.architecture
    elem = 1 if req.kv_type == "fp8" else 2
    tokens = mem.pad(req.context, VLLM_BLOCK)
    window = min(tokens, mem.pad(a.window, VLLM_BLOCK) + VLLM_BLOCK)
    total = 0
    for il in range(a.layers):
        if a.has_kv(il):
            if a.mla is not None:
                per_token = (a.mla.kv_lora_rank + a.mla.rope_dim) * elem
            else:
                per_token = max(a.kv_heads // tp, 1) * (a.head_dim + a.head_dim_v) * elem
            total += per_token * (window if a.is_swa(il) else tokens)
        if a.is_recurrent(il) and a.ssm is not None:
            s = a.ssm
            conv = (s.conv_kernel - 1) * (s.d_inner + 2 * s.n_groups * s.d_state) * 2
            total += (conv + s.d_state * s.d_inner * s.state_dtype_bytes) // tp
    return total


def vllm(req: Request, rig: Rig) -> MemoryEstimate:
    m, gpus = req.model, list(rig.devices)
    require(req.engine, rig)
    if req.kv_type not in ("f16", "bf16", "fp8"):
        raise RigscopeError(f"kv type {req.kv_type!r} is not one vLLM has; valid: f16, bf16, fp8")
    tp = len(gpus)
    lw = mem.layer_weights(m, req.quant)
    seq_gpu = sequence_bytes(req, tp)
    seq_all = sequence_bytes(req, 1)
    need_gpu = req.batch * seq_gpu
    kv_share = 1.0 if m.architecture.mla else max(m.kv_heads // tp, 1) / max(m.kv_heads, 1)
    act = mem.vllm_activation_bytes(m, tp, VLLM_MAX_BATCHED_TOKENS)
    cap = min(g.usable_bytes for g in gpus)
    usable = int(cap * VLLM_GPU_UTIL)
    vision = mem.vision_bytes(m)
    w_gpu = (lw.total + vision) // tp
    overhead = RUNTIME_OVERHEAD[gpus[0].backend] + VLLM_GRAPHS
    pool = usable - w_gpu - act - overhead
    shardable = m.heads % tp == 0
    fits = shardable and pool >= need_gpu
    max_seqs = max(pool, 0) // seq_gpu if seq_gpu else 0
    speed = mem.speed_fields(m, lw, range(m.layers), True, "fp8" if req.kv_type == "fp8"
                             else "f16", 1 / tp, kv_share)
    devices = [
        DeviceUse(id=g.id, capacity_bytes=g.usable_bytes, weights_bytes=w_gpu,
                  kv_bytes=max(pool, need_gpu), compute_bytes=act, overhead_bytes=overhead,
                  layers=m.layers, **speed)
        for g in gpus
    ]
    basis = [
        weights_basis(req, lw),
        *mem.vision_basis(m),
        f"tensor parallel over {tp} GPU(s): {format_bytes(w_gpu)} of weights per GPU",
        f"vLLM takes {VLLM_GPU_UTIL:.0%} of each GPU ({format_bytes(usable)}); after weights, "
        f"activations ({format_bytes(act)}, profiled at {VLLM_MAX_BATCHED_TOKENS} tokens) and "
        f"runtime + CUDA graphs ({format_bytes(overhead)}) the paged KV pool is "
        f"{format_bytes(max(pool, 0))} per GPU",
        f"KV needed: {req.batch} sequence(s) x {format_bytes(seq_gpu)} per GPU "
        f"({req.context} tokens{_cache_kinds(req)}); the pool holds {max_seqs} such "
        "sequences",
    ]
    if not shardable:
        basis.append(f"cannot run: {m.heads} attention heads do not split over {tp} GPUs")
    return result(
        req, rig, devices, DeviceUse(id="host", capacity_bytes=rig.host.memory_bytes),
        fits=fits, runs=fits, offloaded_layers=0, offloaded_bytes=0,
        weights=lw.total + vision, kv=req.batch * seq_all, basis=basis,
        max_sequences=max_seqs,
    )


def _cache_kinds(req: Request) -> str:
    a = req.model.architecture
    parts = []
    if a.mla is not None:
        parts.append(f"MLA latent of {a.mla.kv_lora_rank + a.mla.rope_dim} values per token")
    if a.window and any(a.is_swa(il) for il in range(a.layers)):
        parts.append(f"{sum(map(a.is_swa, range(a.layers)))} layers keep {a.window} tokens")
    if any(a.mamba):
        parts.append(f"{sum(a.mamba)} Mamba layers keep a fixed state")
    return "; " + "; ".join(parts) if parts else ""
