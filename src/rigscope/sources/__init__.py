"""Turn what the user names (catalog id or alias, config.json, model directory, .gguf file,
Hugging Face Hub repo) into a ModelSpec; write catalog entries from configs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rigscope.catalog import model_aliases, model_record, models
from rigscope.errors import RigscopeError, unknown
from rigscope.sources.gguf_file import CSA_COMPUTE_WARNING, read_gguf
from rigscope.sources.hf import read_config
from rigscope.sources.layout import build_model, build_tensors
from rigscope.specs import Architecture, ModelSpec


def catalog_model(model_id: str) -> ModelSpec:
    key = model_aliases().get(model_id.lower())
    if key is None:
        raise unknown("model", model_id, models())
    m = models()[key]
    a = m.architecture()
    return replace(build_model(key, a, published_params=m.params, source=m.source),
                   checkpoint_format=m.checkpoint_format or None,
                   warnings=(CSA_COMPUTE_WARNING,) if a.csa is not None else ())


@dataclass(frozen=True)
class CatalogRow:
    """One catalog model as `rigscope models` lists it."""

    id: str
    model_type: str
    params: int  # published
    active_params: int  # weights one token reads (MoE: its experts), llama.cpp's layout
    layers: int
    max_context: int
    features: tuple[str, ...]  # moe, mla, sliding, chunked, mamba, vision, mxfp4
    aliases: tuple[str, ...]
    source: str


def features(a: Architecture) -> tuple[str, ...]:
    """What a user filters a catalog by: the capabilities an architecture uses."""
    out = []
    for name, present in (("moe", a.moe is not None), ("mla", a.mla is not None),
                          ("sliding", "sliding" in a.attention),
                          ("chunked", "chunked" in a.attention), ("mamba", any(a.mamba)),
                          ("vision", a.vision_params > 0),
                          ("mxfp4", a.native_experts == "MXFP4")):
        if present:
            out.append(name)
    return tuple(out)


def list_models(search: str | None = None) -> list[CatalogRow]:
    """Catalog models, those whose id, aliases, model type or features contain every word of
    `search` (case-insensitive) when given."""
    words = (search or "").lower().split()
    rows = []
    for key, m in models().items():
        a = m.architecture()
        row = CatalogRow(id=key, model_type=a.model_type, params=m.params,
                         active_params=build_model(key, a).active_params, layers=a.layers,
                         max_context=a.max_context, features=features(a),
                         aliases=tuple(m.aliases), source=m.source)
        text = " ".join((key, a.model_type, a.arch, *row.aliases, *row.features)).lower()
        if all(w in text for w in words):
            rows.append(row)
    return rows


def _local(p: Path) -> ModelSpec:
    if p.is_file() and p.suffix.lower() == ".gguf":
        return read_gguf(p)
    if p.is_dir() or p.suffix.lower() == ".json":
        return read_config(p)
    raise RigscopeError(f"{p}: expected a .gguf file, a config.json or a model directory")


def resolve_model(text: str, quant: str | None = None) -> ModelSpec:
    """A .gguf file, a config.json or model directory, a catalog id or alias, or a Hugging
    Face Hub repo (owner/repo, owner/repo:file.gguf; quant picks a GGUF repo's file)."""
    p = Path(text).expanduser()
    if p.exists():
        return _local(p)
    if text.lower().endswith((".gguf", ".json")) and ":" not in text or text.startswith(
            (".", "/", "~")):
        raise RigscopeError(f"model file not found: {text}")
    if text.lower() in model_aliases():
        return catalog_model(text)
    from rigscope.sources.hub import hub_model, is_hub_ref

    if is_hub_ref(text):
        return hub_model(text, quant=quant)
    raise unknown("model", text, models())


def catalog_entry(text: str, *, model_id: str | None = None, aliases: Sequence[str] = (),
                  params: int | None = None, source: str | None = None) -> tuple[str, str]:
    """(id, TOML entry) for the model a config.json, model directory or Hub repo describes:
    its architecture by capability, the parameter count to check it against (given, else
    the checkpoint's safetensors count, else the generated tensors'), and where it came
    from."""
    p = Path(text).expanduser()
    hub = not p.exists()
    if hub:
        from rigscope.sources.hub import hub_model, is_hub_ref

        if not is_hub_ref(text) or ":" in text:
            raise RigscopeError(f"{text}: name a config.json, a model directory or a Hub repo "
                                "(owner/repo)")
        spec = hub_model(text)
    else:
        spec = _local(p)
    if spec.exact_sizes:
        raise RigscopeError(f"{text}: catalog entries come from a config.json, not a GGUF file")
    if build_tensors(spec.architecture) != spec.tensors:  # priced from its checkpoint's own
        raise RigscopeError(f"{text}: model_type {spec.architecture.model_type!r} has no "
                            "layout a catalog entry can regenerate; estimate it from its "
                            "directory or Hub repo instead")
    name = text.rstrip("/").split("/")[-1] if hub else (p.parent.name if p.is_file() else p.name)
    alias = [text] if hub else ([spec.id] if "/" in spec.id else [])
    counted = params or spec.published_params or spec.params
    how = ("given" if params else "safetensors count" if spec.published_params
           else "generated tensors")
    src = source or f"config.json of {text if hub else spec.id or name}; params: {how}"
    key = (model_id or name).lower()
    return key, model_record(key, spec.architecture, params=counted, source=src,
                             aliases=list(aliases) or alias,
                             checkpoint_format=spec.checkpoint_format)
