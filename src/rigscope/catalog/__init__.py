"""Embedded catalogs (accelerators, models, quantizations), validated when first loaded."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rigscope.errors import RigscopeError, unknown
from rigscope.paths import data_dir
from rigscope.specs import (
    MLA,
    SSM,
    Accelerator,
    Architecture,
    BlockSparse,
    CompressedAttention,
    GgmlType,
    MoE,
    Quant,
)
from rigscope.units import GIB, MIB


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuEntry(_Strict):
    name: str
    arch: Literal["volta", "turing", "ampere", "ada", "hopper", "blackwell", "rdna2", "rdna3",
                  "rdna3.5", "rdna4", "cdna3", "xe-hpg", "xe2"]
    backend: Literal["cuda", "rocm", "sycl"]
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
    hw_class: Literal["gddr", "hbm", "lpddr"]  # lpddr: a GPU sharing LPDDR5X with its CPU
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


ATTENTION_CODES = {"F": "full", "S": "sliding", "C": "chunked", "-": ""}
FFN_CODES = {"D": "dense", "M": "moe", "-": ""}
MAMBA_CODES = {"M": "M", "-": "-"}


class MoEEntry(_Strict):
    experts: int = Field(gt=1)
    used: int = Field(gt=0)
    ffn: int = Field(gt=0)
    shared: int = Field(default=0, ge=0)
    shared_ffn: int = Field(default=0, ge=0)
    probs_bias: bool = False
    latent: int = Field(default=0, ge=0)


class MLAEntry(_Strict):
    kv_lora_rank: int = Field(gt=0)
    rope_dim: int = Field(gt=0)
    nope_dim: int = Field(gt=0)
    v_dim: int = Field(gt=0)
    q_lora_rank: int = Field(default=0, ge=0)
    indexer_heads: int = Field(default=0, ge=0)
    indexer_dim: int = Field(default=0, ge=0)
    indexer_top_k: int = Field(default=0, ge=0)


class MSAEntry(_Strict):
    heads: int = Field(gt=0)
    dim: int = Field(gt=0)
    block: int = Field(gt=0)
    top_blocks: int = Field(gt=0)
    local_blocks: int = Field(default=1, ge=0)


class CSAEntry(_Strict):
    ratios: list[Literal[0, 4, 128]]
    q_lora_rank: int = Field(gt=0)
    o_lora_rank: int = Field(gt=0)
    o_groups: int = Field(gt=0)
    hc_mult: int = Field(gt=0)
    hash_layers: int = Field(default=0, ge=0)
    index_heads: int = Field(gt=0)
    index_dim: int = Field(gt=0)
    index_top_k: int = Field(gt=0)


class SSMEntry(_Strict):
    d_inner: int = Field(gt=0)
    d_state: int = Field(gt=0)
    n_groups: int = Field(gt=0)
    conv_kernel: int = Field(gt=0)
    heads: int = Field(gt=0)
    state_dtype_bytes: int = Field(default=4, gt=0)
    norm: bool = True
    conv_bias: bool = True
    kind: Literal["mamba2", "gdn", "shortconv", "kda"] = "mamba2"


def _expand(pattern: str, n: int) -> str:
    """A per-layer code string: given whole, or a period that tiles the layers."""
    return pattern if len(pattern) == n else pattern * (n // len(pattern))


class ModelEntry(_Strict):
    """One model: its architecture by capability (see specs.Architecture), written by
    `rigscope models add` from the model's config.json. Per-layer kinds are code strings,
    one character per layer or a period that tiles them: attention F(ull) S(liding)
    C(hunked) -(none); ffn_kinds D(ense) M(oE) -(none); mamba M or -."""

    params: int = Field(gt=0)  # published (model card, or llama.cpp's count of the GGUF)
    aliases: list[str] = []
    source: str = Field(min_length=3)
    model_type: str
    arch: str
    layers: int = Field(gt=0)
    hidden: int = Field(gt=0)
    vocab: int = Field(gt=0)
    max_context: int = Field(ge=0)
    heads: int = Field(ge=0)
    kv_heads: int = Field(ge=0)
    head_dim: int = Field(ge=0)
    head_dim_v: int = Field(ge=0)
    ffn: int = Field(ge=0)
    attention: str = Field(pattern=r"^[FSC-]+$")
    ffn_kinds: str = Field(pattern=r"^[DM-]+$")
    mamba: str = Field(default="", pattern=r"^[M-]*$")
    window: int = Field(default=0, ge=0)
    moe: MoEEntry | None = None
    mla: MLAEntry | None = None
    ssm: SSMEntry | None = None
    msa: MSAEntry | None = None
    csa: CSAEntry | None = None
    tie_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    attn_sinks: bool = False
    swa_sinks: bool = False
    attn_gate: bool = False
    head_dim_swa: int = Field(default=0, ge=0)
    kv_heads_swa: int = Field(default=0, ge=0)
    heads_swa: int = Field(default=0, ge=0)
    head_gate: bool = False
    attn_res: bool = False
    v_from_k: bool = False
    moe_dense: bool = False
    kv_heads_per_layer: list[int] = []
    attn_linear: list[bool] = []
    rope_factors: Literal["", "llama3", "longrope"] = ""
    rope_dim: int = Field(default=0, ge=0)
    dense_ffn: list[int] = []
    nextn_layers: int = Field(default=0, ge=0)
    vision_params: int = Field(default=0, ge=0)
    native_experts: str = ""
    checkpoint_format: str = ""  # the checkpoint's weight format (quantization_config)

    @model_validator(mode="after")
    def _consistent(self) -> ModelEntry:
        n = self.layers
        for name in ("attention", "ffn_kinds", "mamba"):
            code = getattr(self, name)
            if code and n % len(code):
                raise ValueError(f"{name} has {len(code)} codes, which do not tile {n} layers")
        attention, ffn = _expand(self.attention, n), _expand(self.ffn_kinds, n)
        if ("M" in ffn) != (self.moe is not None):
            raise ValueError("moe goes with MoE layers (M in ffn_kinds), and only with them")
        if ("M" in (self.mamba or "")) != (self.ssm is not None):
            raise ValueError("ssm goes with Mamba layers (M in mamba), and only with them")
        if bool(set(attention) & {"S", "C"}) != bool(self.window):
            raise ValueError("window goes with sliding or chunked layers, and only with them")
        if self.heads and self.kv_heads and self.heads % self.kv_heads:
            raise ValueError("heads must be a multiple of kv_heads")
        if self.dense_ffn and len(self.dense_ffn) != n:
            raise ValueError("dense_ffn lists one width per layer")
        return self

    def architecture(self) -> Architecture:
        n = self.layers
        return Architecture(
            model_type=self.model_type, arch=self.arch, layers=n, hidden=self.hidden,
            vocab=self.vocab, max_context=self.max_context, heads=self.heads,
            kv_heads=self.kv_heads, head_dim=self.head_dim, head_dim_v=self.head_dim_v,
            ffn=self.ffn,
            attention=tuple(ATTENTION_CODES[c] for c in _expand(self.attention, n)),
            ffn_kinds=tuple(FFN_CODES[c] for c in _expand(self.ffn_kinds, n)),
            mamba=tuple(c == "M" for c in _expand(self.mamba, n)) if self.mamba else (),
            window=self.window,
            moe=MoE(**self.moe.model_dump()) if self.moe else None,
            mla=MLA(**self.mla.model_dump()) if self.mla else None,
            ssm=SSM(**self.ssm.model_dump()) if self.ssm else None,
            msa=BlockSparse(**self.msa.model_dump()) if self.msa else None,
            csa=CompressedAttention(**(self.csa.model_dump() | {
                "ratios": tuple(self.csa.ratios)})) if self.csa else None,
            tie_embeddings=self.tie_embeddings, qkv_bias=self.qkv_bias, o_bias=self.o_bias,
            qk_norm=self.qk_norm, attn_sinks=self.attn_sinks, swa_sinks=self.swa_sinks,
            attn_gate=self.attn_gate,
            head_dim_swa=self.head_dim_swa, kv_heads_swa=self.kv_heads_swa,
            heads_swa=self.heads_swa, head_gate=self.head_gate, attn_res=self.attn_res,
            v_from_k=self.v_from_k, moe_dense=self.moe_dense,
            kv_heads_per_layer=tuple(self.kv_heads_per_layer),
            attn_linear=tuple(self.attn_linear),
            rope_factors=self.rope_factors, rope_dim=self.rope_dim,
            dense_ffn=tuple(self.dense_ffn), nextn_layers=self.nextn_layers,
            vision_params=self.vision_params, native_experts=self.native_experts)


def _codes(kinds: tuple[str, ...], table: dict[str, str]) -> str:
    """The shortest period of the per-layer kinds that tiles them, as code characters."""
    back = {v: k for k, v in table.items()}
    full = "".join(back[k] for k in kinds)
    n = len(full)
    for p in range(1, n + 1):
        if n % p == 0 and full[:p] * (n // p) == full:
            return full[:p]
    return full


def model_record(model_id: str, a: Architecture, *, params: int, source: str,
                 aliases: list[str], checkpoint_format: str | None = None) -> str:
    """The catalog entry (TOML) for an architecture; validated by ModelEntry on load."""
    fields: dict[str, Any] = {
        "params": params, "aliases": aliases, "source": source,
        "model_type": a.model_type, "arch": a.arch, "layers": a.layers, "hidden": a.hidden,
        "vocab": a.vocab, "max_context": a.max_context, "heads": a.heads,
        "kv_heads": a.kv_heads, "head_dim": a.head_dim, "head_dim_v": a.head_dim_v,
        "ffn": a.ffn, "attention": _codes(a.attention, ATTENTION_CODES),
        "ffn_kinds": _codes(a.ffn_kinds, FFN_CODES),
    }
    if a.mamba:
        fields["mamba"] = _codes(tuple("M" if m else "-" for m in a.mamba), MAMBA_CODES)
    defaults = ModelEntry.model_fields
    for name in ("window", "tie_embeddings", "qkv_bias", "o_bias", "qk_norm", "attn_sinks",
                 "swa_sinks", "attn_gate", "head_dim_swa", "kv_heads_swa", "heads_swa",
                 "head_gate", "attn_res", "v_from_k", "moe_dense",
                 "rope_factors", "rope_dim", "nextn_layers", "vision_params", "native_experts"):
        value = getattr(a, name)
        if value != defaults[name].default:
            fields[name] = value
    for name in ("dense_ffn", "kv_heads_per_layer", "attn_linear"):
        if getattr(a, name):
            fields[name] = list(getattr(a, name))
    if checkpoint_format:
        fields["checkpoint_format"] = checkpoint_format
    key = model_id if re.fullmatch(r"[A-Za-z0-9_-]+", model_id) else json.dumps(model_id)
    lines = [f"[models.{key}]"] + [f"{k} = {_toml(v)}" for k, v in fields.items()]
    for name in ("moe", "mla", "ssm", "msa", "csa"):
        sub = getattr(a, name)
        if sub is not None:
            lines.append(f"[models.{key}.{name}]")
            lines += [f"{k} = {_toml(v)}" for k, v in dataclasses.asdict(sub).items()]
    return "\n".join(lines) + "\n"


def write_entry(path: Path, model_id: str, record: str) -> None:
    """Put a model_record into a catalog file: replace the model's entry (and its
    sub-tables) where it is, or append it; the result must load."""
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as e:
        raise RigscopeError(f"cannot read catalog {path}: "
                            f"{getattr(e, 'strerror', None) or 'not UTF-8 text'}") from None
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("[models.") and not _same_model(line, current):
            blocks.append(current)
            current = []
        current.append(line)
    blocks.append(current)
    head = record.splitlines()[0]
    out, placed = [], False
    for block in blocks:
        if block and block[0].startswith("[models.") and _key(block[0]) == _key(head):
            if not placed:
                out.append(record + "\n")
                placed = True
            continue
        out.append("".join(block))
    if not placed:
        out.append(("\n" if out and not out[-1].endswith("\n\n") else "") + record + "\n")
    new = "".join(out).rstrip("\n") + "\n"
    try:  # never write a catalog that fails to load
        ModelFile.model_validate(tomllib.loads(new))
    except ValidationError as e:
        raise RigscopeError(f"cannot add this model: {why_invalid(e)}") from None
    except tomllib.TOMLDecodeError as e:
        raise RigscopeError(f"catalog {path} is not TOML: {e}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new, encoding="utf-8")
    except OSError as e:
        raise RigscopeError(f"cannot write catalog {path}: {e.strerror}") from None


def _key(header: str) -> str:
    """The model id of a `[models.ID]` or `[models.ID.moe]` header line."""
    inner = header.strip()[len("[models."):-1]
    if inner.startswith('"'):
        return json.loads(inner[: inner.index('"', 1) + 1])
    return inner.split(".")[0]


def _same_model(line: str, block: list[str]) -> bool:
    return bool(block) and block[0].startswith("[models.") and _key(line) == _key(block[0])


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:_}" if v >= 100_000 else str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


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
    scope: Literal["linear", "experts"] = "linear"


class AliasEntry(_Strict):
    mix: str
    about: str = Field(min_length=3)


class QuantFile(_Strict):
    ggml_types: dict[str, GgmlTypeEntry]
    gguf_mixes: dict[str, MixEntry]
    gguf_names: dict[str, AliasEntry] = {}
    formats: dict[str, FormatEntry]

    @model_validator(mode="after")
    def _bases_known(self) -> QuantFile:
        for name, mix in self.gguf_mixes.items():
            if mix.base not in self.ggml_types:
                raise ValueError(f"mix {name}: unknown base type {mix.base}")
        for name, alias in self.gguf_names.items():
            if alias.mix not in self.gguf_mixes:
                raise ValueError(f"gguf name {name}: unknown mix {alias.mix}")
        return self


_AS_OF = r"^(19|20)\d\d(-[01]\d)?$"


class _Priced(_Strict):
    usd: float | None = Field(default=None, gt=0)
    low: float | None = Field(default=None, gt=0)
    high: float | None = Field(default=None, gt=0)
    as_of: str = Field(pattern=_AS_OF)
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _has_amount(self) -> _Priced:
        if self.usd is None and (self.low is None or self.high is None):
            raise ValueError("give usd, or low and high")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("low is above high")
        return self

    @property
    def amount(self) -> float:
        """The typical figure: usd, else the middle of the quoted range."""
        return self.usd if self.usd is not None else ((self.low or 0) + (self.high or 0)) / 2


class GpuPriceEntry(_Priced):
    id: str
    kind: Literal["used", "street", "msrp"]
    machine: str | None = None  # the price buys a whole machine (DGX Spark)


class ApplePriceEntry(_Priced):
    chip: str
    memory_gb: int = Field(gt=0)
    machine: str
    kind: Literal["used", "street", "msrp"]


class PlatformEntry(_Priced):
    name: str
    gpus: tuple[int, int]
    links: Literal["x16", "x8/x8", "x1"]
    psu_w: float = Field(gt=0)


class RentEntry(_Strict):
    id: str
    on_demand: float = Field(gt=0)
    spot: float | None = Field(default=None, gt=0)
    as_of: str = Field(pattern=_AS_OF)
    source: str = Field(min_length=3)


class PowerEntry(_Strict):
    id: str  # a GPU id or an Apple chip family (m3-ultra)
    watts: float = Field(gt=0)
    scope: Literal["card", "package", "wall"]
    as_of: str = Field(pattern=_AS_OF)
    source: str = Field(min_length=3)


class PriceBookFile(_Strict):
    gpu: list[GpuPriceEntry]
    apple: list[ApplePriceEntry]
    platform: list[PlatformEntry]
    rent: list[RentEntry]
    power: list[PowerEntry]

    @model_validator(mode="after")
    def _ids_known(self) -> PriceBookFile:
        known = set(accelerator_file().gpus)
        families = set(accelerator_file().apple)
        for gid in [*(r.id for r in self.gpu), *(r.id for r in self.rent)]:
            if gid not in known:
                raise ValueError(f"unknown GPU id {gid!r}")
        for p in self.power:
            if p.id not in known | families:
                raise ValueError(f"unknown GPU or Apple family {p.id!r}")
        for a in self.apple:
            if a.chip not in apple_chips():
                raise ValueError(f"unknown Apple chip {a.chip!r}")
            if a.memory_gb not in apple_memory_options(a.chip):
                raise ValueError(f"{a.chip} does not come with {a.memory_gb} GB")
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
                    rank=f.rank, scope=f.scope)
        for name, f in quant_file().formats.items()
    }


_GGUF_ALIASES = {"FP16": "F16", "FP32": "F32"}
_FORMAT_ALIASES = {"F16": "FP16", "F32": "FP32", "4BIT": "MLX-4BIT", "8BIT": "MLX-8BIT"}


def lookup_quant(name: str, engine: str) -> Quant:
    """A quantization by name for an engine family: GGUF mixes for llama.cpp, else formats."""
    key = name.upper()
    if engine == "llama.cpp":
        table, key = gguf_mixes(), _GGUF_ALIASES.get(key, key)
        alias = quant_file().gguf_names.get(key)
        if alias is not None:  # a name producers use: its nearest llama.cpp mix, said so
            return dataclasses.replace(table[alias.mix], asked=f"{name}: {alias.about}")
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


class _Pending(_Strict):
    names: list[str]


class ArchitectureFile(_Strict):
    out_of_scope: dict[str, str]
    pending: _Pending

    @model_validator(mode="after")
    def _disjoint(self) -> ArchitectureFile:
        both = set(self.out_of_scope) & set(self.pending.names)
        if both:
            raise ValueError(f"both out of scope and pending: {', '.join(sorted(both))}")
        return self


@cache
def architecture_scope() -> ArchitectureFile:
    """llama.cpp architectures rigscope does not lay out: out of scope (with why) or
    pending (architectures.toml)."""
    result: ArchitectureFile = _load("architectures.toml", ArchitectureFile)
    return result


@cache
def packaged_models() -> dict[str, ModelEntry]:
    result: ModelFile = _load("models.toml", ModelFile)
    return result.models


def user_catalog() -> Path:
    """The user's own catalog entries (`rigscope models add`), beside the packaged ones."""
    return data_dir() / "models.toml"


def models() -> dict[str, ModelEntry]:
    """Every catalog model: the packaged entries, and the user's (which win on a clash)."""
    path = user_catalog()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return packaged_models()
    return {**packaged_models(), **_user_models(str(path), stamp)}


@functools.lru_cache(maxsize=4)
def _user_models(path: str, stamp: int) -> dict[str, ModelEntry]:
    try:
        result = ModelFile.model_validate(tomllib.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValidationError) as e:
        why = why_invalid(e) if isinstance(e, ValidationError) else " ".join(str(e).split())
        raise RigscopeError(f"user catalog {path} is invalid: {why}") from e
    return result.models


def why_invalid(e: ValidationError) -> str:
    """A pydantic error in one line: the first bad field, its message and input."""
    first = e.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"{where}: {first['msg']} (got {first.get('input')!r:.60}){more}"


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
def price_book() -> PriceBookFile:
    """Used, street and list prices, platforms, rent and measured power (prices.toml)."""
    result: PriceBookFile = _load("prices.toml", PriceBookFile)
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


class BenchmarkEntry(_Strict):
    label: str
    short: str  # for narrow tables
    kind: Literal["third-party", "model card"]
    date: str
    source: str


class QualityFile(_Strict):
    benchmarks: dict[str, BenchmarkEntry]
    uses: dict[str, list[str]]
    contexts: dict[str, int]
    quant_loss: dict[str, float | str]
    loss_tiers: dict[str, float]

    @model_validator(mode="after")
    def _known(self) -> QualityFile:
        for use, names in self.uses.items():
            for n in names:
                if n not in self.benchmarks:
                    raise ValueError(f"use {use} names unknown benchmark {n}")
        return self


@dataclasses.dataclass(frozen=True)
class Score:
    """One published score of one model on one benchmark."""

    model: str  # the model's name where it was scored
    hf_repo: str
    rigscope_id: str  # the catalog model with its architecture ("" if none)
    twin: bool  # scored as another model with the same decoder shapes (a fine-tune)
    benchmark: str
    score: float
    variant: str  # e.g. the reasoning mode a score was taken in
    date: str
    source: str


@cache
def quality() -> QualityFile:
    """Benchmarks per use, their sources, and llama.cpp's quality loss per quantization."""
    result: QualityFile = _load("quality.toml", QualityFile)
    return result


def parse_scores(text: str, where: str) -> list[Score]:
    """Scores from CSV text with at least model, benchmark and score columns (evidence.csv's
    columns; a user's file may name a catalog id in `model`)."""
    import csv
    import math

    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    reader = csv.DictReader(lines)
    missing = {"model", "benchmark", "score"} - set(reader.fieldnames or ())
    if missing:
        raise RigscopeError(f"{where}: missing column(s) {', '.join(sorted(missing))}; "
                            "need model, benchmark, score (and source, date)")
    out = []
    benchmarks = quality().benchmarks
    for n, row in enumerate(reader, start=2):
        name, bench = (row.get("model") or "").strip(), (row.get("benchmark") or "").strip()
        if bench not in benchmarks:
            raise unknown(f"benchmark in {where} line {n}", bench, benchmarks)
        try:
            value = float(row.get("score") or "")
        except ValueError:
            value = math.nan
        if not name or not math.isfinite(value):
            raise RigscopeError(f"{where} line {n}: needs a model and a finite score, got "
                                f"{row.get('model')!r}, {row.get('score')!r}")
        out.append(Score(
            model=name, hf_repo=(row.get("hf_repo") or "").strip(),
            rigscope_id=(row.get("rigscope_id") or "").strip(),
            twin=(row.get("twin") or "").strip() == "yes", benchmark=bench, score=value,
            variant=(row.get("variant") or "").strip(), date=(row.get("date") or "").strip(),
            source=(row.get("source") or "").strip() or where))
    return out


@cache
def evidence() -> tuple[Score, ...]:
    """The packaged scores (evidence.csv)."""
    text = resources.files(__package__).joinpath("evidence.csv").read_text(encoding="utf-8")
    return tuple(parse_scores(text, "evidence.csv"))
