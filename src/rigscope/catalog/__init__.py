"""Embedded catalogs (accelerators, models, quantizations), validated when first loaded."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rigscope.errors import RigscopeError, unknown
from rigscope.specs import Accelerator, GgmlType, Quant
from rigscope.units import GIB, MIB


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuEntry(_Strict):
    name: str
    arch: Literal["ampere", "ada", "hopper", "blackwell", "rdna3", "cdna3"]
    backend: Literal["cuda", "rocm"]
    memory_mib: int = Field(gt=0)
    memory_source: Literal["driver", "spec"]
    bandwidth_gbs: float = Field(gt=0)
    fp16_tflops: float = Field(gt=0)
    fp16_accumulate: Literal["fp16", "fp32"]
    tdp_w: float = Field(gt=0)
    price_usd: float | None = Field(default=None, gt=0)
    price_kind: str = ""
    price_date: str = ""
    pcie: str
    nvlink_gbs: float = Field(ge=0)
    hw_class: Literal["gddr", "hbm"]
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _price_has_kind(self) -> GpuEntry:
        if self.price_usd is not None and not (self.price_kind and self.price_date):
            raise ValueError("price_usd needs price_kind and price_date")
        return self


class AppleEntry(_Strict):
    name: str
    cores: list[int] = Field(min_length=1)
    memory_gb: list[int] | dict[str, list[int]]
    bandwidth_gbs: float | dict[str, float]
    fp16_tflops_per_core: float = Field(gt=0)
    tdp_w: float = Field(gt=0)
    source: str = Field(min_length=3)

    def for_cores(self, cores: int) -> tuple[list[int], float]:
        mem = self.memory_gb if isinstance(self.memory_gb, list) else self.memory_gb[str(cores)]
        bw = (
            self.bandwidth_gbs
            if isinstance(self.bandwidth_gbs, float | int)
            else self.bandwidth_gbs[str(cores)]
        )
        return sorted(mem), float(bw)


class ModelEntry(_Strict):
    arch: Literal["llama", "qwen2", "gemma2", "phi3"]
    layers: int = Field(gt=0)
    hidden: int = Field(gt=0)
    intermediate: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int | None = Field(default=None, gt=0)
    vocab: int = Field(gt=0)
    max_context: int = Field(gt=0)
    tie_embeddings: bool = False
    experts: int = Field(default=0, ge=0)
    experts_used: int = Field(default=0, ge=0)
    sliding_window: int = Field(default=0, ge=0)
    swa_every: int = Field(default=0, ge=0)
    attn_bias: bool = False
    rope_freqs: bool = False
    params: int = Field(gt=0)
    aliases: list[str] = []
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelEntry:
        if self.heads % self.kv_heads:
            raise ValueError("heads must be a multiple of kv_heads")
        if bool(self.experts) != bool(self.experts_used):
            raise ValueError("experts and experts_used go together")
        return self


class GgmlTypeEntry(_Strict):
    id: int = Field(ge=0)
    block: int = Field(gt=0)
    bytes: int = Field(gt=0)


class MixEntry(_Strict):
    ftype: int = Field(ge=0)
    base: str
    about: str
    rank: int = Field(ge=0, le=100)


class FormatEntry(_Strict):
    bits: float = Field(gt=0)
    group: int = Field(ge=0)
    scale_bytes: float = Field(ge=0)
    embeddings: str
    engines: list[Literal["vllm", "transformers", "mlx"]]
    about: str
    rank: int = Field(ge=0, le=100)


class QuantFile(_Strict):
    ggml_types: dict[str, GgmlTypeEntry]
    gguf_mixes: dict[str, MixEntry]
    formats: dict[str, FormatEntry]

    @model_validator(mode="after")
    def _bases_known(self) -> QuantFile:
        for name, mix in self.gguf_mixes.items():
            if mix.base not in self.ggml_types:
                raise ValueError(f"mix {name}: unknown base type {mix.base}")
        return self


class AcceleratorFile(_Strict):
    gpus: dict[str, GpuEntry]
    apple: dict[str, AppleEntry]


class ModelFile(_Strict):
    models: dict[str, ModelEntry]


def _load(name: str, schema: type[BaseModel]) -> Any:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    try:
        return schema.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as e:  # a packaging bug, not user input
        raise RigscopeError(f"catalog {name} is invalid: {e}", exit_code=1) from e


@cache
def quant_file() -> QuantFile:
    result: QuantFile = _load("quants.toml", QuantFile)
    return result


@cache
def ggml_types() -> dict[str, GgmlType]:
    return {n: GgmlType(n, e.id, e.block, e.bytes) for n, e in quant_file().ggml_types.items()}


@cache
def gguf_mixes() -> dict[str, Quant]:
    """llama.cpp file types (Q4_K_M, Q8_0, F16, ...) by name."""
    return {
        name: Quant(name=name, kind="gguf", about=mix.about, base=mix.base, rank=mix.rank)
        for name, mix in quant_file().gguf_mixes.items()
    }


@cache
def formats() -> dict[str, Quant]:
    """Non-GGUF weight formats (BF16, FP8, AWQ, NF4, MLX-4BIT, ...) by name."""
    return {
        name: Quant(name=name, kind="format", about=f.about, bits=f.bits, group=f.group,
                    scale_bytes=f.scale_bytes, embeddings=f.embeddings, engines=tuple(f.engines),
                    rank=f.rank)
        for name, f in quant_file().formats.items()
    }


_GGUF_ALIASES = {"FP16": "F16", "FP32": "F32"}
_FORMAT_ALIASES = {"F16": "FP16", "F32": "FP32", "4BIT": "MLX-4BIT", "8BIT": "MLX-8BIT"}


def lookup_quant(name: str, engine: str) -> Quant:
    """A quantization by name for an engine family: GGUF mixes for llama.cpp, else formats."""
    key = name.upper()
    if engine == "llama.cpp":
        table, key = gguf_mixes(), _GGUF_ALIASES.get(key, key)
        if key not in table and key in formats():
            raise RigscopeError(
                f"quant {name} is not a GGUF type; llama.cpp takes: {', '.join(table)}"
            )
    else:
        key = _FORMAT_ALIASES.get(key, key)
        table = {n: q for n, q in formats().items() if engine in q.engines}
        if key not in table and (key in formats() or key in gguf_mixes()):
            raise RigscopeError(
                f"quant {name} does not run on {engine}; valid: {', '.join(table)}"
            )
    if key not in table:
        raise unknown("quant", name, table)
    return table[key]


@cache
def models() -> dict[str, ModelEntry]:
    result: ModelFile = _load("models.toml", ModelFile)
    return result.models


@cache
def model_aliases() -> dict[str, str]:
    """Lower-cased id or alias -> catalog id."""
    out: dict[str, str] = {}
    for mid, m in models().items():
        out[mid.lower()] = mid
        for a in m.aliases:
            out[a.lower()] = mid
    return out


def metal_working_set(memory_bytes: int) -> int:
    """Metal's recommendedMaxWorkingSetSize: 2/3 of memory up to 36 GB, 3/4 above."""
    return memory_bytes * 2 // 3 if memory_bytes <= 36 * GIB else memory_bytes * 3 // 4


@cache
def accelerator_file() -> AcceleratorFile:
    result: AcceleratorFile = _load("accelerators.toml", AcceleratorFile)
    return result


@cache
def gpus() -> dict[str, Accelerator]:
    out = {}
    for gid, g in accelerator_file().gpus.items():
        mem = g.memory_mib * MIB
        out[gid] = Accelerator(
            id=gid, name=g.name, backend=g.backend, memory_bytes=mem, usable_bytes=mem,
            bandwidth_gbs=g.bandwidth_gbs, fp16_tflops=g.fp16_tflops, hw_class=g.hw_class,
            memory_source=g.memory_source, fp16_accumulate=g.fp16_accumulate, tdp_w=g.tdp_w,
            price_usd=g.price_usd, price_kind=g.price_kind, price_date=g.price_date,
            pcie=g.pcie, nvlink_gbs=g.nvlink_gbs, source=g.source, arch=g.arch,
        )
    return out


@cache
def apple_chips() -> dict[str, tuple[AppleEntry, int]]:
    """Apple chip id (e.g. 'm3-max-40c') -> (family entry, GPU cores)."""
    return {
        f"{fam}-{c}c": (e, c) for fam, e in accelerator_file().apple.items() for c in e.cores
    }


def apple_memory_options(chip_id: str) -> list[int]:
    entry, cores = apple_chips()[chip_id]
    return entry.for_cores(cores)[0]


def apple_accelerator(chip_id: str, memory_gb: int | None = None) -> Accelerator:
    """An Apple chip at one unified-memory size (default: its largest configuration)."""
    entry, cores = apple_chips()[chip_id]
    sizes, bw = entry.for_cores(cores)
    gb = sizes[-1] if memory_gb is None else memory_gb
    if gb not in sizes:
        raise RigscopeError(
            f"{chip_id} does not come with {gb} GB; valid: "
            + ", ".join(f"{chip_id}:{s}gb" for s in sizes)
        )
    mem = gb * GIB  # Apple's marketed GB of unified memory are GiB
    return Accelerator(
        id=f"{chip_id}:{gb}gb", name=f"{entry.name} {cores}-core GPU, {gb} GB", backend="metal",
        memory_bytes=mem, usable_bytes=metal_working_set(mem), bandwidth_gbs=bw,
        fp16_tflops=round(entry.fp16_tflops_per_core * cores, 2),
        # Ultra chips are two dies joined by UltraFusion: one GPU reaches a smaller share of
        # the combined bandwidth (see estimate/speed.py)
        hw_class="unified-2die" if "-ultra-" in chip_id else "unified",
        memory_source="spec", fp16_accumulate="fp32", tdp_w=entry.tdp_w, source=entry.source,
        arch="apple-" + chip_id.split("-")[0], cores=cores,
    )
