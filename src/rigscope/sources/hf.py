"""Read a model spec from a Hugging Face config.json (and safetensors headers when present)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

from rigscope.errors import RigscopeError
from rigscope.sources.layout import build_model
from rigscope.specs import ModelSpec

# model_type -> (llama.cpp arch, defaults that config.json may omit)
_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("llama", {}),
    "mistral": ("llama", {}),
    "mixtral": ("llama", {}),
    "qwen2": ("qwen2", {"attention_bias": True}),
    "gemma2": ("gemma2", {"tie_word_embeddings": True, "swa_every": 2}),
    "phi3": ("phi3", {}),
}
_MAX_HEADER = 100 * 1024 * 1024


def read_config(path: str | Path) -> ModelSpec:
    """path: a config.json file or a model directory that holds one."""
    p = Path(path)
    cfg_path = p / "config.json" if p.is_dir() else p
    if not cfg_path.is_file():
        raise RigscopeError(f"no config.json in {p}")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RigscopeError(f"{cfg_path}: malformed JSON ({e})") from e
    if not isinstance(cfg, dict):
        raise RigscopeError(f"{cfg_path}: expected a JSON object")
    cfg = cfg.get("text_config", cfg) if "num_hidden_layers" not in cfg else cfg
    mtype = cfg.get("model_type", "")
    if mtype not in _TYPES:
        raise RigscopeError(
            f"{cfg_path}: unsupported model_type {mtype!r}; valid: {', '.join(sorted(_TYPES))}"
        )
    arch, defaults = _TYPES[mtype]

    def need(key: str) -> int:
        v = cfg.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise RigscopeError(f"{cfg_path}: {key} must be a positive integer, got {v!r}")
        return v

    heads = need("num_attention_heads")
    rope = cfg.get("rope_scaling") or {}
    sliding = cfg.get("sliding_window") if arch == "gemma2" else 0
    shards = sorted(cfg_path.parent.glob("*.safetensors"))
    exact = count_safetensors_params(shards) if shards else None
    return build_model(
        id=str(cfg.get("_name_or_path") or cfg_path.parent.name),
        arch=arch,
        layers=need("num_hidden_layers"),
        hidden=need("hidden_size"),
        intermediate=need("intermediate_size"),
        heads=heads,
        kv_heads=cfg.get("num_key_value_heads") or heads,
        vocab=need("vocab_size"),
        max_context=cfg.get("max_position_embeddings") or 0,
        head_dim=cfg.get("head_dim"),
        tie_embeddings=bool(cfg.get("tie_word_embeddings", defaults.get("tie_word_embeddings"))),
        experts=cfg.get("num_local_experts") or 0,
        experts_used=cfg.get("num_experts_per_tok") or 0,
        sliding_window=sliding or 0,
        swa_every=defaults.get("swa_every", 0),
        attn_bias=bool(cfg.get("attention_bias", defaults.get("attention_bias", False))),
        rope_freqs=isinstance(rope, dict) and rope.get("rope_type") == "llama3",
        published_params=exact,
        source=f"config.json {cfg_path}" + (f" + {len(shards)} safetensors" if shards else ""),
    )


def count_safetensors_params(files: list[Path]) -> int:
    """Exact parameter count from safetensors headers (no tensor data is read)."""
    total = 0
    for f in files:
        size = f.stat().st_size
        with f.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise RigscopeError(f"{f}: truncated safetensors header")
            (n,) = struct.unpack("<Q", raw)
            if n > min(size - 8, _MAX_HEADER):
                raise RigscopeError(f"{f}: safetensors header length {n} exceeds the file")
            try:
                header = json.loads(fh.read(n))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise RigscopeError(f"{f}: malformed safetensors header ({e})") from e
        for name, info in header.items():
            if name != "__metadata__":
                total += math.prod(info["shape"])
    return total
