"""The library entry points the CLI (and anything else) calls."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from rigscope.errors import RigscopeError, unknown
from rigscope.estimate.placement import Request, estimate_memory
from rigscope.estimate.timing import estimate_speed
from rigscope.specs import MemoryEstimate, ModelSpec, Quant, Rig, SpeedEstimate

__all__ = ["estimate", "estimate_json", "estimate_speed", "max_context"]

ENGINES = ("llama.cpp", "ollama", "vllm", "transformers", "mlx")
DEFAULT_QUANT = {"llama.cpp": "Q4_K_M", "vllm": "BF16", "transformers": "BF16", "mlx": "MLX-4BIT"}
DEFAULT_CONTEXT = 4096


def engine_family(engine: str) -> str:
    """The engine whose memory rules apply: Ollama runs llama.cpp."""
    e = engine.lower()
    if e not in ENGINES:
        raise unknown("engine", engine, ENGINES)
    return "llama.cpp" if e == "ollama" else e


def resolve_quant(name: str | None, engine: str, model: ModelSpec) -> tuple[Quant, ModelSpec]:
    """The quantization to estimate (default: the GGUF's own, else the engine's usual one)."""
    from rigscope.catalog import lookup_quant

    family = engine_family(engine)
    if name is None:
        if model.exact_sizes and family == "llama.cpp":
            if model.file_type is None:  # unknown mix: keep the file's exact sizes
                model = dataclasses.replace(model, file_type="GGUF")
                return Quant("GGUF", "gguf", "types as stored in the file", base="F16"), model
            name = model.file_type
        else:
            name = DEFAULT_QUANT[family]
    return lookup_quant(name, family), model


def estimate(
    model: ModelSpec,
    rig: Rig,
    *,
    quant: str | None = None,
    engine: str = "llama.cpp",
    context: int | None = None,
    batch: int = 1,
    kv_type: str = "f16",
    flash_attn: bool | None = None,
    repack: bool = True,
    outputs: str = "sequences",
) -> MemoryEstimate:
    """Memory per device for `model` on `rig`: weights, KV cache, compute, overhead, fit."""
    family = engine_family(engine)
    q, model = resolve_quant(quant, engine, model)
    ctx = DEFAULT_CONTEXT if context is None else context
    if ctx <= 0:
        raise RigscopeError(f"invalid context {ctx}; must be positive")
    if batch <= 0:
        raise RigscopeError(f"invalid batch {batch}; must be positive")
    if outputs not in ("sequences", "ubatch"):
        raise unknown("outputs", outputs, ("sequences", "ubatch"))
    fa = True if flash_attn is None else flash_attn
    req = Request(model=model, quant=q, engine=family, context=ctx, batch=batch,
                  kv_type=kv_type.lower(), flash_attn=fa, repack=repack,
                  outputs=outputs)
    est = estimate_memory(req, rig)
    notes = []
    if engine.lower() == "ollama":
        notes.append("Ollama runs llama.cpp: llama.cpp's memory rules apply")
    if family == "llama.cpp" and flash_attn is None:
        notes.append("flash attention on, as llama-server's default '-fa auto' turns it on "
                     "(--flash-attn off for builds before mid-2025)")
    if model.max_context and ctx > model.max_context:
        notes.append(f"context {ctx} exceeds the model's trained {model.max_context}")
    return dataclasses.replace(est, engine=engine.lower(), basis=est.basis + tuple(notes))


def max_context(
    model: ModelSpec, rig: Rig, *, batch: int = 1, limit: int | None = None, **kw: Any
) -> int:
    """The largest context (a multiple of 256) at which `batch` sequences fit; 0 if none."""
    top = limit or model.max_context or 131072
    step = 256

    def fits(ctx: int) -> bool:
        return estimate(model, rig, context=ctx, batch=batch, **kw).fits

    if not fits(step):
        return 0
    lo, hi = 1, top // step  # in steps
    if fits(hi * step):
        return hi * step
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid * step):
            lo = mid
        else:
            hi = mid
    return lo * step


def speed_json(speed: SpeedEstimate | None) -> dict[str, float | None]:
    keys = ("decode_tokens_per_s", "aggregate_tokens_per_s", "prefill_tokens_per_s", "ttft_s",
            "e2e_s", "load_time_s", "network_s", "decode_band", "prefill_band")
    if speed is None:
        return dict.fromkeys(keys)
    values = {k: getattr(speed, k) for k in keys}
    return {k: (round(v, 6) if math.isfinite(v) else None) for k, v in values.items()}


def estimate_json(est: MemoryEstimate, speed: SpeedEstimate | None = None) -> dict[str, Any]:
    """The contract's JSON document for `rigscope estimate --json` (speed null if it cannot
    run)."""
    m = est.model
    return {
        "model": {"id": m.id, "params": m.params, "layers": m.layers,
                  "active_params": m.active_params, "source": m.source},
        "quant": est.quant,
        "engine": est.engine,
        "rig": est.rig.id,
        "context": est.context,
        "batch": est.batch,
        "kv_type": est.kv_type,
        "flash_attn": est.flash_attn,
        "memory": {
            "weights_bytes": est.weights_bytes,
            "repacked_bytes": est.repacked_bytes,
            "reclaimable_bytes": est.reclaimable_bytes,
            "kv_cache_bytes": est.kv_cache_bytes,
            "compute_bytes": est.compute_bytes,
            "overhead_bytes": est.overhead_bytes,
            "total_bytes": est.total_bytes,
            "fits": est.fits,
            "runs": est.runs,
            "devices": [
                {"id": d.id, "capacity_bytes": d.capacity_bytes, "used_bytes": d.used_bytes,
                 "layers": d.layers, "weights_bytes": d.weights_bytes, "kv_bytes": d.kv_bytes,
                 "compute_bytes": d.compute_bytes, "overhead_bytes": d.overhead_bytes}
                for d in est.devices
            ],
            "host": {"used_bytes": est.host.used_bytes, "capacity_bytes": est.host.capacity_bytes,
                     "layers": est.host.layers, "weights_bytes": est.host.weights_bytes,
                     "kv_bytes": est.host.kv_bytes, "compute_bytes": est.host.compute_bytes,
                     "overhead_bytes": est.host.overhead_bytes},
            "offloaded_layers": est.offloaded_layers,
            "offloaded_bytes": est.offloaded_bytes,
            "max_sequences": est.max_sequences,
        },
        "speed": speed_json(speed),
        "basis": list(est.basis) + list(speed.basis if speed else ()),
    }
