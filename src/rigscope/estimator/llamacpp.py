"""llama.cpp's placement (and Ollama's, which runs it): layers over GPUs, spills to RAM."""

from __future__ import annotations

import dataclasses
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from rigscope.errors import RigscopeError
from rigscope.estimator import memory as mem
from rigscope.estimator.common import RUNTIME_OVERHEAD, result, weights_basis
from rigscope.estimator.repack import describe
from rigscope.specs import DeviceUse, MemoryEstimate, Request, Rig
from rigscope.units import format_bytes


def place(req: Request, rig: Rig) -> MemoryEstimate:
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
        weights_basis(req, lw),
        f"KV cache: {req.batch} x {mem.pad(req.context, mem.KV_PAD)} cells (context padded to "
        f"{mem.KV_PAD}) x {L} layers x {m.kv_heads} KV heads x {m.head_dim} dims x K+V at "
        f"{req.kv_type} = {format_bytes(kv_total)}"
        + (f"; sliding-window layers keep {m.sliding_window}+{mem.N_UBATCH} cells"
           if m.sliding_window else ""),
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
    return result(
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


def host_features(req: Request, rig: Rig) -> frozenset[str]:
    """The CPU features that decide repacking, or none when repacking is off."""
    return frozenset(rig.host.cpu_features) if req.repack else frozenset()


def repack_basis(rp: mem.Repack, features: frozenset[str], mapped: int, copies: int,
                 reclaimable: int, rig: Rig) -> str:
    source = rig.host.cpu_features_source or "assumed"
    return (f"weights twice on this CPU ({source}): llama.cpp maps the file "
            f"({format_bytes(mapped)}, of which {format_bytes(reclaimable)} are pages of "
            f"repacked tensors, reclaimable page cache) and keeps a resident repacked copy "
            f"({format_bytes(copies)}, {'+'.join(rp.buffers)}): {describe(features)}; "
            "--repack off for builds or runs without it (--no-repack)")


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
                has_layers=b > a, pipeline=pipeline, outputs=req.outputs,
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
            has_layers=n_cpu > 0, outputs=req.outputs,
        )
    else:
        host_compute = mem.llamacpp_host_compute_bytes(m, req.context, req.batch, pipeline)
    host_cap = rig.host.memory_bytes
    if rig.unified:  # one pool: the host part gets what the GPU part leaves
        host_cap = max(rig.host.memory_bytes - sum(d.used_bytes for d in devices), 0)
    # CPU-held weights of a GPU rig go to the GPU backend's host buffer, which comes before
    # the CPU's repacking buffers in llama.cpp's list (--no-host would change that): no copy
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
    L = req.model.layers

    def on(d: int) -> mem.SpeedFields:
        layers = [il for il in range(L) if lay.assign[il] == d]
        return mem.speed_fields(req.model, lw, layers, lay.assign[L] == d, req.kv_type)

    devices = [dataclasses.replace(dev, **on(i)) for i, dev in enumerate(lay.devices)]
    return devices, dataclasses.replace(lay.host, **on(-1))


def _llamacpp_cpu_only(
    req: Request, rig: Rig, lw: mem.LayerWeights, kv_total: int, basis: list[str]
) -> MemoryEstimate:
    m = req.model
    features = host_features(req, rig)
    rp = mem.repack(m, req.quant, features)
    copies, moved = rp.copies, rp.moved
    mapped = (mem.mapped_file_range(m, req.quant, features) if copies else None) or lw.total
    # memory-mapped: a tied LM head shares the embedding's pages; the pages of repacked
    # tensors are page cache once their copies are made
    reclaimable = max(mapped - (lw.total - moved), 0)
    cpu = DeviceUse(
        id=rig.id, capacity_bytes=rig.host.memory_bytes, weights_bytes=mapped + copies,
        repacked_bytes=copies, reclaimable_bytes=reclaimable, kv_bytes=kv_total,
        compute_bytes=mem.llamacpp_compute_bytes(
            m, req.context, req.batch, req.flash_attn, has_output=True, outputs=req.outputs
        ),
        overhead_bytes=mem.output_buffer_bytes(m, req.batch), layers=m.layers,
        **mem.speed_fields(m, lw, range(m.layers), True, req.kv_type),
    )
    host = DeviceUse(id="host", capacity_bytes=0)
    basis.append("CPU only: weights, KV cache and compute buffer in system RAM")
    if copies:
        basis.append(repack_basis(rp, features, mapped, copies, reclaimable, rig))
    return result(
        req, rig, [cpu], host, fits=cpu.fits, runs=cpu.fits, offloaded_layers=0,
        offloaded_bytes=0, weights=cpu.weights_bytes, kv=kv_total, basis=basis,
    )
