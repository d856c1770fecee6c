"""Engines with a paged KV pool in what tensor parallelism leaves of each GPU: vLLM, SGLang
and TensorRT-LLM. They split weights and KV heads alike; they differ in how they size the
pool (each engine's own memory knob, --mem-fraction):

- vLLM: gpu_memory_utilization (0.9) of the GPU, less the weights, the activation peak of
  its profiling pass (max_num_batched_tokens tokens) and non-torch memory;
- SGLang: what is free after the weights, less (1 - mem_fraction_static) of the GPU (the
  default fraction grows with GPU memory);
- TensorRT-LLM: kv_cache_free_gpu_mem_fraction (0.9) of what is free after the weights,
  the engine's activation buffers (max_num_tokens tokens) and the runtime.
"""

from __future__ import annotations

import re

from rigscope.errors import RigscopeError
from rigscope.estimator import memory as mem
from rigscope.estimator.common import RUNTIME_OVERHEAD, result, weights_basis
from rigscope.estimator.engines import require
from rigscope.specs import Accelerator, DeviceUse, MemoryEstimate, Request, Rig
from rigscope.units import GIB, MIB, format_bytes

VLLM_GPU_UTIL = 0.90  # --gpu-memory-utilization default
VLLM_NON_TORCH = 350 * MIB  # CUDA context, NCCL, cuBLAS workspaces (0.35 GiB in the logs)
VLLM_BLOCK = 16  # tokens per KV block
SGLANG_BLOCK = 1  # a token pool: one slot per token
TRT_BLOCK = 32  # tokens per block (tokens_per_block; 64 in older builds)
TRT_FREE_FRACTION = 0.90  # kv_cache_free_gpu_mem_fraction default
TRT_MAX_NUM_TOKENS = 8192  # max_num_tokens default of trtllm-build / trtllm-serve
ENGINE_BLOCK = {"vllm": VLLM_BLOCK, "sglang": SGLANG_BLOCK, "tensorrt-llm": TRT_BLOCK}
KV_TYPES = ("f16", "bf16", "fp8")
# NCCL and custom all-reduce buffers per GPU under tensor parallelism (SGLang's TP4 log on
# L4s: 0.75 GiB more taken before the weights than its TP1 logs show)
TP_COMM = 640 * MIB


def token_bytes(req: Request, tp: int) -> int:
    """KV bytes one more token of context adds on each GPU (full-attention layers)."""
    a = req.model.architecture
    layers = sum(1 for il in range(a.layers) if a.has_kv(il) and not a.is_swa(il))
    return layers * _layer_token_bytes(req, tp)


def _layer_token_bytes(req: Request, tp: int) -> int:
    """KV bytes of one token in one attention layer on each GPU: KV heads split over tensor
    parallelism; MLA's latent does not (each GPU holds it all)."""
    a = req.model.architecture
    elem = 1 if req.kv_type == "fp8" else 2
    if a.mla is not None:
        return (a.mla.kv_lora_rank + a.mla.rope_dim) * elem
    return max(a.kv_heads // tp, 1) * (a.head_dim + a.head_dim_v) * elem


def sequence_bytes(req: Request, tp: int) -> int:
    """Cache one sequence of req.context tokens takes on each GPU: full-attention layers hold
    every token (blocks of 16), sliding-window and chunked layers their window plus a block
    (vLLM's hybrid KV cache manager frees blocks that slid out), Mamba layers a fixed
    state. KV heads split over tensor parallelism; MLA's latent does not (each GPU holds
    it all); Mamba heads do."""
    a = req.model.architecture
    block = ENGINE_BLOCK.get(req.engine.name, VLLM_BLOCK)
    tokens = mem.pad(req.context, block)
    window = min(tokens, mem.pad(a.window, block) + block)
    per_token = _layer_token_bytes(req, tp)
    total = 0
    for il in range(a.layers):
        if a.has_kv(il):
            total += per_token * (window if a.is_swa(il) else tokens)
        if a.is_recurrent(il) and a.ssm is not None:
            s = a.ssm
            conv = (s.conv_kernel - 1) * (s.d_inner + 2 * s.n_groups * s.d_state) * 2
            total += (conv + s.d_state * s.d_inner * s.state_dtype_bytes) // tp
    return total


def vllm_batched_tokens(req: Request, gpu: Accelerator) -> int:
    """Tokens of vLLM's profiling pass (max_num_batched_tokens): engine V0 (before 0.8)
    profiled the whole max_model_len (at least 2048) unless chunked prefill was on (above
    32k: 512-token chunks); V1 profiles 2048 tokens for `vllm serve` (8192 on H100-class)."""
    major_minor = _vllm_version(req.engine_version)
    if major_minor is not None and major_minor < (0, 8):
        return 512 if req.context > 32768 else max(req.context, 2048)
    return 8192 if gpu.memory_bytes >= 70 * GIB and gpu.hw_class == "hbm" \
        and gpu.arch in ("hopper", "blackwell") else 2048


def _vllm_version(text: str | None) -> tuple[int, int] | None:
    m = re.match(r"v?(\d+)\.(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def sglang_fraction(gpu: Accelerator, tp: int) -> float:
    """SGLang's default mem_fraction_static by GPU memory (0.4 series)."""
    gib = gpu.memory_bytes / GIB
    if gib < 20:
        return 0.80
    if gib < 35:
        return 0.85 if tp > 1 else 0.80
    if gib < 60:
        return 0.85
    return 0.88


def trt_activation_bytes(req: Request, tp: int) -> int:
    """TensorRT-LLM's activation buffers for max_num_tokens tokens: the MLP's gate and up
    outputs (per GPU), the attention's QKV and output, four hidden-size buffers (BF16)."""
    a = req.model.architecture
    per_token = 2 * (2 * a.active_ffn() // tp + (a.heads + 2 * a.kv_heads) * a.head_dim // tp
                     + 4 * a.hidden)
    return TRT_MAX_NUM_TOKENS * per_token


def paged(req: Request, rig: Rig) -> MemoryEstimate:
    m, gpus = req.model, list(rig.devices)
    require(req.engine, rig)
    engine = req.engine.name
    if req.kv_type not in KV_TYPES:
        raise RigscopeError(f"kv type {req.kv_type!r} is not one {engine} has; valid: "
                            + ", ".join(KV_TYPES))
    tp, pp = rig.per_node, rig.nodes  # tensor parallel in a node, pipeline across nodes
    lw = mem.layer_weights(m, req.quant)
    seq_gpu = -(-sequence_bytes(req, tp) // pp)  # each stage holds its layers' cache
    seq_all = sequence_bytes(req, 1)
    need_gpu = req.batch * seq_gpu
    kv_share = 1.0 if m.architecture.mla else max(m.kv_heads // tp, 1) / max(m.kv_heads, 1)
    cap = min(g.usable_bytes for g in gpus)
    vision = mem.vision_bytes(m)
    w_gpu = (lw.total + vision) // (tp * pp)
    runtime = RUNTIME_OVERHEAD[gpus[0].backend] + (TP_COMM if tp > 1 else 0)
    fraction = req.mem_fraction
    if engine == "sglang":
        fraction = fraction or sglang_fraction(gpus[0], tp)
        act = 0
        overhead = runtime
        pool = int((cap - w_gpu - runtime) - cap * (1 - fraction))
        how = (f"SGLang keeps {1 - fraction:.0%} of each GPU free (mem_fraction_static "
               f"{fraction:g}); what the weights and the runtime ({format_bytes(runtime)}) "
               "leave beyond that is the token pool")
    elif engine == "tensorrt-llm":
        fraction = fraction or TRT_FREE_FRACTION
        act = trt_activation_bytes(req, tp)
        overhead = runtime
        free = cap - w_gpu - act - runtime
        pool = int(free * fraction)
        how = (f"TensorRT-LLM gives the KV cache {fraction:.0%} of what is free after the "
               f"weights, its activation buffers ({format_bytes(act)} for "
               f"{TRT_MAX_NUM_TOKENS} tokens) and the runtime")
    else:
        fraction = fraction or VLLM_GPU_UTIL
        batched = vllm_batched_tokens(req, gpus[0])
        act = mem.vllm_activation_bytes(m, tp, batched)
        overhead = VLLM_NON_TORCH + (TP_COMM if tp > 1 else 0)
        pool = int(cap * fraction) - w_gpu - act - overhead
        how = (f"vLLM takes {fraction:.0%} of each GPU ({format_bytes(int(cap * fraction))}); "
               f"after weights, the activation peak of its profiling pass "
               f"({format_bytes(act)} at {batched} tokens) and non-torch memory "
               f"({format_bytes(overhead)})")
    per_token = -(-token_bytes(req, tp) // pp)
    capacity = max(pool, 0) // per_token if per_token else 0
    block = ENGINE_BLOCK[engine]
    capacity -= capacity % block
    shardable = m.heads % tp == 0
    fits = shardable and pool >= need_gpu
    max_seqs = max(pool, 0) // seq_gpu if seq_gpu else 0
    speed = mem.speed_fields(m, lw, range(m.layers), True, "fp8" if req.kv_type == "fp8"
                             else "f16", 1 / (tp * pp), kv_share / pp)
    devices = [
        DeviceUse(id=g.id, capacity_bytes=g.usable_bytes, weights_bytes=w_gpu,
                  kv_bytes=max(pool, need_gpu), compute_bytes=act, overhead_bytes=overhead,
                  layers=-(-m.layers // pp), **speed)
        for g in gpus
    ]
    split = (f"tensor parallel over {tp} GPU(s) in each of {pp} nodes, pipeline parallel "
             f"across them over {rig.interconnect} (Ray runs the workers)" if pp > 1 else
             f"tensor parallel over {tp} GPU(s)")
    basis = [
        weights_basis(req, lw),
        *mem.vision_basis(m),
        f"{split}: {format_bytes(w_gpu)} of weights per GPU",
        f"{how}: the KV pool is {format_bytes(max(pool, 0))} per GPU, "
        f"{capacity:,} tokens at {per_token / 1024:,.0f} KiB per token",
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
        max_sequences=max_seqs, kv_capacity_tokens=capacity,
    )


def _cache_kinds(req: Request) -> str:
    a = req.model.architecture
    parts = []
    if a.mla is not None:
        parts.append(f"MLA latent of {a.mla.kv_lora_rank + a.mla.rope_dim} values per token")
    if a.window and any(a.is_swa(il) for il in range(a.layers)):
        parts.append(f"{sum(map(a.is_swa, range(a.layers)))} layers keep {a.window} tokens")
    if any(a.mamba) and a.ssm is not None:
        parts.append(f"{sum(a.mamba)} {a.ssm.label} layers keep a fixed state")
    return "; " + "; ".join(parts) if parts else ""
