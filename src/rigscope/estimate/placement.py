"""Place a model's memory on a rig, engine by engine: which device holds what, what spills."""

from __future__ import annotations

import dataclasses
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from rigscope.errors import RigscopeError
from rigscope.estimate import memory as mem
from rigscope.specs import DeviceUse, MemoryEstimate, ModelSpec, Quant, Rig
from rigscope.units import format_bytes

MIB = 1024**2

# Runtime memory outside the engine's own buffers, per device (not in llama.cpp's logs).
# CUDA: context, module images and cuBLAS handles: 300-500 MiB in today's tools'
# reservations (field notes); ROCm's HIP runtime is larger. Metal and the CPU: none counted.
RUNTIME_OVERHEAD = {"cuda": 400 * MIB, "rocm": 512 * MIB, "metal": 0, "cpu": 0}
VLLM_GPU_UTIL = 0.90  # --gpu-memory-utilization default
VLLM_MAX_BATCHED_TOKENS = 8192  # default profiling batch of vLLM's V1 engine
VLLM_BLOCK = 16  # tokens per KV block
VLLM_GRAPHS = 512 * MIB  # CUDA graph pool, captured after profiling
ACCELERATE_MAX_MEMORY = 0.90  # share of each GPU device_map="auto" fills


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
    place = {"llama.cpp": _llamacpp, "vllm": _vllm, "transformers": _transformers, "mlx": _mlx}
    return place[req.engine](req, rig)


def _result(
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


def _weights_basis(req: Request, lw: mem.LayerWeights) -> str:
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


# --- llama.cpp (and Ollama, which runs it) ------------------------------------------


def _llamacpp(req: Request, rig: Rig) -> MemoryEstimate:
    m, L = req.model, req.model.layers
    if req.kv_type not in mem.KV_TYPES or req.kv_type == "fp8":
        valid = ", ".join(k for k in mem.KV_TYPES if k != "fp8")
        raise RigscopeError(f"kv type {req.kv_type!r} is not one llama.cpp has; valid: {valid}")
    if req.kv_type not in ("f16", "bf16", "f32") and not req.flash_attn:
        raise RigscopeError(
            f"a quantized KV cache ({req.kv_type}) needs flash attention in llama.cpp; "
            "use --flash-attn on or --kv-type f16"
        )
    lw = mem.layer_weights(m, req.quant)
    kv_layer = mem.llamacpp_kv_bytes_by_layer(m, req.context, req.batch, req.kv_type)
    kv_total = sum(kv_layer)
    basis = [
        _weights_basis(req, lw),
        f"KV cache: {req.batch} x {mem.pad(req.context, mem.KV_PAD)} cells (context padded to "
        f"{mem.KV_PAD}) x {L} layers x {m.kv_heads} KV heads x {m.head_dim} dims x K+V at "
        f"{req.kv_type} = {format_bytes(kv_total)}"
        + (f"; sliding-window layers keep {m.sliding_window}+{mem.N_UBATCH} cells"
           if m.sliding_window and m.swa_every else ""),
    ]
    gpus = list(rig.devices)
    if not gpus:
        return _llamacpp_cpu_only(req, rig, lw, kv_total, basis)

    caps = [g.usable_bytes for g in gpus]
    kv_prefix = [0, *accumulate(kv_layer)]
    full = _llamacpp_layout(req, rig, lw, kv_prefix, caps, L + 1)
    chosen: _Layout | None = full
    last = full
    if not full.ok:
        # The most layers the GPUs hold (as llama.cpp's --fit): GPU use grows with -ngl and
        # host use shrinks, so bisect on the GPUs, then the host decides whether it runs.
        lo, hi = 0, L + 1  # GPUs fit at lo (none there at 0), not at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if all(d.fits for d in _llamacpp_layout(req, rig, lw, kv_prefix, caps, mid).devices):
                lo = mid
            else:
                hi = mid
        last = _llamacpp_layout(req, rig, lw, kv_prefix, caps, lo)
        chosen = last if last.ok else None
    fits = full.ok
    lay = full if fits or chosen is None else chosen
    offloaded = sum(1 for d in lay.assign[:L] if d == -1)
    off_bytes = sum(lw.per_layer[il] + kv_layer[il] for il in range(L) if lay.assign[il] == -1)
    if lay.assign[L] == -1:
        off_bytes += lw.output
    T = mem.ubatch(req.context, req.batch)
    basis.append(
        f"compute buffer: peak of {'FFN (flash attention)' if req.flash_attn else 'KQ scores'} "
        f"or logits ({m.vocab} x {T} x F32) per device over a {T}-token ubatch"
        + ("; pipeline parallelism keeps 4 copies of split inputs" if lay.pipeline else "")
    )
    basis.append(
        "token embeddings stay in host memory (llama.cpp); "
        f"runtime overhead {format_bytes(RUNTIME_OVERHEAD[gpus[0].backend])} per "
        f"{gpus[0].backend} device"
    )
    if len(gpus) > 1:
        basis.append("layer split across GPUs in proportion to their memory (llama.cpp default)")
    if rig.unified:
        basis.append(
            f"Metal may use {format_bytes(gpus[0].usable_bytes)} of "
            f"{format_bytes(gpus[0].memory_bytes)} unified memory (recommendedMaxWorkingSetSize)"
        )
    if not fits and chosen is not None:
        basis.append(
            f"spills: -ngl {chosen.ngl} puts {offloaded} of {L} layers in system RAM "
            f"({format_bytes(off_bytes)}); they run at RAM speed"
        )
    elif chosen is None:
        basis.append(f"cannot run: even with every layer in system RAM it needs "
                     f"{format_bytes(last.host.used_bytes)} of host memory")
    if rig.host_default:
        basis.append(f"host RAM assumed {format_bytes(rig.host.memory_bytes)} (set --ram)")
    devices, host = _llamacpp_speed_fields(req, lw, lay)
    return _result(
        req, rig, devices, host, fits=fits, runs=chosen is not None,
        offloaded_layers=offloaded if not fits else 0, offloaded_bytes=off_bytes if not fits else 0,
        weights=lw.total, kv=kv_total, basis=basis,
    )


@dataclass(frozen=True)
class _Layout:
    ngl: int
    assign: list[int]
    devices: list[DeviceUse]
    host: DeviceUse
    pipeline: bool
    ok: bool


def _llamacpp_layout(
    req: Request, rig: Rig, lw: mem.LayerWeights, kv_prefix: list[int], caps: list[int],
    ngl: int,
) -> _Layout:
    m, L = req.model, req.model.layers
    assign = layer_devices(L, caps, ngl)  # non-decreasing: each device holds one run
    w_prefix = lw.prefix
    pipeline = len(caps) > 1 and assign[0] >= 0
    devices = []
    for i, g in enumerate(rig.devices):
        a, b = bisect_left(assign, i, 0, L), bisect_right(assign, i, 0, L)
        has_output = assign[L] == i
        w = w_prefix[b] - w_prefix[a] + (lw.output if has_output else 0)
        if i == 0 and assign[0] == 0:
            w += lw.other
        compute = 0
        if b > a or has_output:
            compute = mem.llamacpp_compute_bytes(
                m, req.context, req.batch, req.flash_attn, has_output=has_output,
                has_layers=b > a, pipeline=pipeline,
            )
        devices.append(DeviceUse(
            id=g.id, capacity_bytes=caps[i], weights_bytes=w, kv_bytes=kv_prefix[b] - kv_prefix[a],
            compute_bytes=compute, overhead_bytes=RUNTIME_OVERHEAD[g.backend], layers=b - a,
        ))
    n_cpu = bisect_right(assign, -1, 0, L)  # the first layers stay on the CPU
    host_w = lw.token_embd + w_prefix[n_cpu]
    if assign[L] == -1:
        host_w += lw.output
    if assign[0] != 0:
        host_w += lw.other
    if n_cpu or assign[L] == -1:
        host_compute = mem.llamacpp_compute_bytes(
            m, req.context, req.batch, req.flash_attn, has_output=assign[L] == -1,
            has_layers=n_cpu > 0,
        )
    else:
        host_compute = mem.llamacpp_host_compute_bytes(m, req.context, req.batch, pipeline)
    host_cap = rig.host.memory_bytes
    if rig.unified:  # one pool: the host part gets what the GPU part leaves
        host_cap = max(rig.host.memory_bytes - sum(d.used_bytes for d in devices), 0)
    host = DeviceUse(
        id="host", capacity_bytes=host_cap, weights_bytes=host_w, kv_bytes=kv_prefix[n_cpu],
        compute_bytes=host_compute, overhead_bytes=mem.output_buffer_bytes(m, req.batch),
        layers=n_cpu,
    )
    ok = all(d.fits for d in devices) and host.fits
    return _Layout(ngl, assign, devices, host, pipeline, ok)


def _llamacpp_speed_fields(
    req: Request, lw: mem.LayerWeights, lay: _Layout
) -> tuple[list[DeviceUse], DeviceUse]:
    L, cell = req.model.layers, mem.kv_cell_bytes(req.model, req.kv_type)

    def on(d: int) -> mem.SpeedFields:
        layers = [il for il in range(L) if lay.assign[il] == d]
        return mem.speed_fields(req.model, lw, layers, lay.assign[L] == d, cell)

    devices = [dataclasses.replace(dev, **on(i)) for i, dev in enumerate(lay.devices)]
    return devices, dataclasses.replace(lay.host, **on(-1))


def _llamacpp_cpu_only(
    req: Request, rig: Rig, lw: mem.LayerWeights, kv_total: int, basis: list[str]
) -> MemoryEstimate:
    m = req.model
    cpu = DeviceUse(  # memory-mapped: a tied LM head shares the embedding's pages
        id=rig.id, capacity_bytes=rig.host.memory_bytes, weights_bytes=lw.total, kv_bytes=kv_total,
        compute_bytes=mem.llamacpp_compute_bytes(
            m, req.context, req.batch, req.flash_attn, has_output=True
        ),
        overhead_bytes=mem.output_buffer_bytes(m, req.batch), layers=m.layers,
        **mem.speed_fields(m, lw, range(m.layers), True, mem.kv_cell_bytes(m, req.kv_type)),
    )
    host = DeviceUse(id="host", capacity_bytes=0)
    basis.append("CPU only: weights, KV cache and compute buffer in system RAM")
    return _result(
        req, rig, [cpu], host, fits=cpu.fits, runs=cpu.fits, offloaded_layers=0,
        offloaded_bytes=0, weights=lw.total, kv=kv_total, basis=basis,
    )


# --- vLLM ---------------------------------------------------------------------------


def _vllm(req: Request, rig: Rig) -> MemoryEstimate:
    m, gpus = req.model, list(rig.devices)
    _require_gpus(req.engine, rig, ("cuda", "rocm"))
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
        _weights_basis(req, lw),
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
    return _result(
        req, rig, devices, DeviceUse(id="host", capacity_bytes=rig.host.memory_bytes),
        fits=fits, runs=fits, offloaded_layers=0, offloaded_bytes=0, weights=lw.total,
        kv=req.batch * seq_tokens * per_token, basis=basis, max_sequences=max_seqs,
    )


# --- transformers + accelerate ------------------------------------------------------


def _transformers(req: Request, rig: Rig) -> MemoryEstimate:
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
        _weights_basis(req, lw),
        f"KV cache (DynamicCache, {req.kv_type}): {req.batch} x {req.context} tokens x "
        f"{m.layers} layers = {format_bytes(kv_layer * m.layers)}",
        f"activations of a {req.context}-token forward pass: {format_bytes(act)}",
    ]
    if not gpus:
        cpu = DeviceUse(id=rig.id, capacity_bytes=rig.host.memory_bytes,
                        weights_bytes=lw.total, kv_bytes=kv_layer * m.layers, compute_bytes=act,
                        layers=m.layers, **mem.speed_fields(m, lw, range(m.layers), True, cell))
        return _result(req, rig, [cpu], DeviceUse(id="host", capacity_bytes=0), fits=cpu.fits,
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
    return _result(req, rig, devices, host, fits=fits, runs=runs,
                   offloaded_layers=len(cpu_layers), offloaded_bytes=off, weights=lw.total,
                   kv=kv_layer * m.layers, basis=basis)


# --- MLX ----------------------------------------------------------------------------


def _mlx(req: Request, rig: Rig) -> MemoryEstimate:
    m = req.model
    _require_gpus(req.engine, rig, ("metal",))
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
        _weights_basis(req, lw),
        f"KV cache: {cells} cells at f16 = {format_bytes(kv)} (grown in steps of 256)",
        f"prefill in 2048-token chunks: activations {format_bytes(act)}",
        f"Metal may use {format_bytes(chip.usable_bytes)} of {format_bytes(chip.memory_bytes)}",
    ]
    runs = dev.used_bytes <= chip.memory_bytes
    return _result(req, rig, [dev], DeviceUse(id="host", capacity_bytes=0), fits=dev.fits,
                   runs=runs, offloaded_layers=0, offloaded_bytes=0, weights=lw.total, kv=kv,
                   basis=basis)


def _require_gpus(engine: str, rig: Rig, backends: tuple[str, ...]) -> None:
    if not rig.devices or any(g.backend not in backends for g in rig.devices):
        have = ", ".join(sorted({g.backend for g in rig.devices})) or "cpu"
        raise RigscopeError(f"--engine {engine} needs {' or '.join(backends)} devices; "
                            f"this rig has {have}")

