"""Turn what the user names (catalog id, HF alias, config.json, dir, .gguf) into a ModelSpec."""

from __future__ import annotations

from pathlib import Path

from rigscope.catalog import model_aliases, models
from rigscope.errors import RigscopeError, unknown
from rigscope.sources.gguf_file import read_gguf
from rigscope.sources.hf import read_config
from rigscope.sources.layout import build_model
from rigscope.specs import ModelSpec


def catalog_model(model_id: str) -> ModelSpec:
    key = model_aliases().get(model_id.lower())
    if key is None:
        raise unknown("model", model_id, models())
    m = models()[key]
    return build_model(
        id=key, arch=m.arch, layers=m.layers, hidden=m.hidden, intermediate=m.intermediate,
        heads=m.heads, kv_heads=m.kv_heads, vocab=m.vocab, max_context=m.max_context,
        head_dim=m.head_dim, tie_embeddings=m.tie_embeddings, experts=m.experts,
        experts_used=m.experts_used, sliding_window=m.sliding_window, swa_every=m.swa_every,
        attn_bias=m.attn_bias, rope_freqs=m.rope_freqs, published_params=m.params,
        source=m.source,
    )


def resolve_model(text: str) -> ModelSpec:
    """A catalog id or HF repo alias, a .gguf file, a config.json, or a model directory."""
    p = Path(text).expanduser()
    if p.exists():
        if p.is_file() and p.suffix.lower() == ".gguf":
            return read_gguf(p)
        if p.is_dir() or p.suffix.lower() == ".json":
            return read_config(p)
        raise RigscopeError(f"{p}: expected a .gguf file, a config.json or a model directory")
    if text.lower().endswith((".gguf", ".json")) or text.startswith((".", "/", "~")):
        raise RigscopeError(f"model file not found: {text}")
    return catalog_model(text)
