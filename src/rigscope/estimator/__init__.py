"""The estimator's core, pure and without I/O: place a model on a rig by its engine's rules.

`estimate` resolves the options once (the quantization to a Quant, the engine to an Engine)
into a Request and hands it to the engine's placer; `place` is that dispatch, for callers
(plan) that build Requests themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from rigscope.catalog import lookup_quant
from rigscope.errors import RigscopeError, unknown
from rigscope.estimator import llamacpp, mlx, paged, transformers
from rigscope.estimator.engines import get_engine
from rigscope.specs import Engine, MemoryEstimate, ModelSpec, Offload, Quant, Request, Rig

__all__ = ["DEFAULT_CONTEXT", "OUTPUTS", "Request", "estimate", "max_context", "place",
           "resolve_quant"]

DEFAULT_CONTEXT = 4096
OUTPUTS = ("sequences", "ubatch")
Placer = Callable[[Request, Rig], MemoryEstimate]
PLACERS: dict[str, Placer] = {"llama.cpp": llamacpp.place, "vllm": paged.paged,
                              "transformers": transformers.transformers, "mlx": mlx.mlx}


def place(req: Request, rig: Rig) -> MemoryEstimate:
    """Memory per device by the rules of the request's engine family."""
    if rig.nodes > 1 and req.engine.family != "vllm":
        raise RigscopeError(f"{req.engine.name} runs on one machine; across {rig.nodes} nodes "
                            "use vllm, sglang or tensorrt-llm (llama.cpp's RPC backend is "
                            "not modeled)")
    return PLACERS[req.engine.family](req, rig)


def resolve_quant(name: str | Quant | None, eng: Engine, model: ModelSpec
                  ) -> tuple[Quant, ModelSpec]:
    """The quantization to estimate: as given, else the GGUF's own, else the engine's usual."""
    if isinstance(name, Quant):
        return name, model
    if name is None:
        if model.exact_sizes and eng.family == "llama.cpp":
            if model.file_type is None:  # unknown mix: keep the file's exact sizes
                model = dataclasses.replace(model, file_type="GGUF")
                return Quant("GGUF", "gguf", "types as stored in the file", base="F16"), model
            name = model.file_type
        elif model.checkpoint_format and eng.family != "llama.cpp":
            name = model.checkpoint_format  # as quantization_config ships it
        else:
            name = eng.default_quant
    return lookup_quant(name, eng.family), model


def estimate(
    model: ModelSpec,
    rig: Rig,
    *,
    quant: str | Quant | None = None,
    engine: str | Engine = "llama.cpp",
    context: int | None = None,
    batch: int = 1,
    kv_type: str = "f16",
    flash_attn: bool | None = None,
    repack: bool = True,
    outputs: str | None = None,
    mem_fraction: float | None = None,
    engine_version: str | None = None,
    offload: Offload | None = None,
) -> MemoryEstimate:
    """Memory per device for `model` on `rig`: weights, KV cache, compute, overhead, fit.

    quant: a Quant or its name (default: the GGUF's own mix, else the engine's usual);
    context: KV tokens reserved per sequence; batch: sequences decoding together;
    flash_attn: llama.cpp's flash attention (default on, as its '-fa auto' decides);
    repack: llama.cpp's CPU weight repacking where the build does it; outputs: logits rows
    llama.cpp reserves ("sequences" as llama-server does, "ubatch" as llama-bench does);
    offload: llama.cpp's placement knobs (default: llama-server's --fit). With no context
    llama.cpp takes the model's trained one (and --fit may reduce it), Ollama its own
    default by GPU memory, other engines DEFAULT_CONTEXT.
    """
    eng = get_engine(engine)
    q, model = resolve_quant(quant, eng, model)
    ctx = default_context(model, eng, rig) if context is None else context
    if ctx <= 0:
        raise RigscopeError(f"invalid context {ctx}; must be positive")
    if batch <= 0:
        raise RigscopeError(f"invalid batch {batch}; must be positive")
    if outputs is None:  # llama-cpp-python's Llama reserves logits for a whole ubatch
        outputs = "ubatch" if eng.name == "llama-cpp-python" else "sequences"
    if outputs not in OUTPUTS:
        raise unknown("outputs", outputs, OUTPUTS)
    if offload is None and eng.name == "llama-cpp-python":
        offload = Offload(fit=False)  # it calls no fit (common/ is llama.cpp's tools')
    req = Request(model=model, quant=q, engine=eng, context=ctx, batch=batch,
                  kv_type=kv_type.lower(), flash_attn=True if flash_attn is None else flash_attn,
                  repack=repack, outputs=outputs, mem_fraction=mem_fraction,
                  engine_version=engine_version, offload=offload or Offload(),
                  context_auto=context is None and eng.name == "llama.cpp")
    est = place(req, rig)
    notes = []
    if quant is None and model.checkpoint_format == q.name and eng.family != "llama.cpp":
        notes.append(f"{q.name}: the checkpoint's own format (its quantization_config)")
    notes.extend((*model.warnings, *model.notes))
    if eng.name in ("ollama", "llama-cpp-python"):
        notes.append(f"{eng.name} runs llama.cpp: llama.cpp's memory rules apply")
    if eng.name == "llama-cpp-python":
        notes.append("llama-cpp-python: no --fit; every layer on the GPUs as with "
                     "n_gpu_layers=-1 (its default 0 keeps them all on the CPU); logits "
                     "reserved for a whole ubatch" + (f"; n_ctx {LLAMA_CPP_PYTHON_CONTEXT}, "
                                                      "its server's default"
                                                      if context is None else ""))
    if eng.family == "llama.cpp" and flash_attn is None:
        notes.append("flash attention on, as llama-server's default '-fa auto' turns it on "
                     "(--flash-attn off for builds before mid-2025)")
    if model.max_context and ctx > model.max_context:
        notes.append(f"context {ctx} exceeds the model's trained {model.max_context}")
    return dataclasses.replace(est, basis=est.basis + tuple(notes))


# Ollama's default context by total GPU memory (docs/context-length.mdx, ollama@948f693:
# under 24 GiB 4k, 24-48 GiB 32k, 48 GiB and more 256k), capped at the trained context
OLLAMA_CONTEXTS = ((48 * 2**30, 262144), (24 * 2**30, 32768), (0, 4096))
LLAMA_CPP_PYTHON_CONTEXT = 2048  # llama_cpp.server's n_ctx default (settings.py)


def default_context(model: ModelSpec, eng: Engine, rig: Rig) -> int:
    """The context an engine reserves when none is asked for."""
    if eng.name == "llama-cpp-python":
        return LLAMA_CPP_PYTHON_CONTEXT
    if eng.name == "ollama":
        vram = sum(d.memory_bytes for d in rig.devices)
        ctx = next(c for floor, c in OLLAMA_CONTEXTS if vram >= floor)
        return min(ctx, model.max_context or ctx)
    if eng.family == "llama.cpp":
        return model.max_context or DEFAULT_CONTEXT
    return DEFAULT_CONTEXT


def max_context(
    model: ModelSpec, rig: Rig, *, batch: int = 1, limit: int | None = None,
    **options: object,
) -> int:
    """The largest context (a multiple of 256) at which `batch` sequences fit; 0 if none.
    `options` are estimate's (quant, engine, kv_type, ...)."""
    top = limit or model.max_context or 131072
    step = 256

    def fits(ctx: int) -> bool:
        return estimate(model, rig, context=ctx, batch=batch, **options).fits  # type: ignore[arg-type]

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
