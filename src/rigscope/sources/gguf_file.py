"""Read a model spec from a GGUF file header: exact per-tensor types and sizes."""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Any

from gguf import GGMLQuantizationType, GGUFReader

from rigscope.catalog import quant_file
from rigscope.errors import RigscopeError
from rigscope.specs import ModelSpec, Tensor

_MIN_TENSOR_INFO = 8 + 4 + 8 + 4 + 8  # name length, n_dims, one dim, type, offset
_MIN_KV = 8 + 4 + 1  # key length, value type, one byte of value
_SWA_EVERY = {"gemma2": 2, "gemma3": 6, "cohere2": 4}
_LAYER = re.compile(r"^blk\.(\d+)\.")


def _check_header(path: Path) -> None:
    """Reject headers whose counts cannot fit in the file, before any parser allocates."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:4] != b"GGUF":
        raise RigscopeError(f"{path} is not a GGUF file (bad magic or truncated header)")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:24])
    if version not in (2, 3):
        raise RigscopeError(f"{path}: unsupported GGUF version {version}; valid: 2, 3")
    if n_tensors * _MIN_TENSOR_INFO + n_kv * _MIN_KV > size:
        raise RigscopeError(
            f"{path}: header claims {n_tensors} tensors and {n_kv} metadata keys, "
            f"more than a {size}-byte file can hold (corrupt or truncated)"
        )


def _value(fields: dict[str, Any], key: str, default: Any = None) -> Any:
    field = fields.get(key)
    if field is None:
        return default
    value = field.contents()
    if isinstance(value, list) and value and isinstance(value[0], int | float):
        return max(value)  # per-layer arrays (e.g. head counts): the largest governs memory
    return value


def read_gguf(path: str | os.PathLike[str]) -> ModelSpec:
    """A ModelSpec whose tensors carry the file's exact types and byte sizes."""
    p = Path(path)
    if not p.is_file():
        raise RigscopeError(f"GGUF file not found: {p}")
    _check_header(p)
    try:
        reader = GGUFReader(p, "r")
        fields = reader.fields
        arch = str(_value(fields, "general.architecture", ""))
        tensors = []
        for t in reader.tensors:
            m = _LAYER.match(t.name)
            tensors.append(
                Tensor(
                    name=t.name,
                    shape=tuple(int(x) for x in t.shape),
                    layer=int(m.group(1)) if m else None,
                    ggml_type=GGMLQuantizationType(t.tensor_type).name,
                    nbytes=int(t.n_bytes),
                    offset=int(t.data_offset),
                )
            )
        a = f"{arch}."
        layers = _value(fields, a + "block_count")
        hidden = _value(fields, a + "embedding_length")
        heads = _value(fields, a + "attention.head_count")
        ftype = _value(fields, "general.file_type")
        vocab_tokens = fields.get("tokenizer.ggml.tokens")
        values = {
            "layers": layers, "hidden": hidden, "heads": heads,
            "intermediate": _value(fields, a + "feed_forward_length", 0),
            "kv_heads": _value(fields, a + "attention.head_count_kv", heads),
            "head_dim": _value(fields, a + "attention.key_length"),
            "head_dim_v": _value(fields, a + "attention.value_length"),
            "max_context": _value(fields, a + "context_length", 0),
            "experts": _value(fields, a + "expert_count", 0),
            "experts_used": _value(fields, a + "expert_used_count", 0),
            "sliding_window": _value(fields, a + "attention.sliding_window", 0),
            "name": _value(fields, "general.name", p.stem),
        }
    except RigscopeError:
        raise
    except Exception as e:  # the gguf package raises many kinds on corrupt input
        raise RigscopeError(f"{p}: cannot read GGUF ({type(e).__name__}: {e})") from e
    for key in ("layers", "hidden", "heads"):
        if not isinstance(values[key], int) or values[key] <= 0:
            raise RigscopeError(f"{p}: GGUF metadata lacks a valid {arch}.{key} value")
    names = {t.name for t in tensors}
    embd = next((t for t in tensors if t.name == "token_embd.weight"), None)
    vocab = len(vocab_tokens.data) if vocab_tokens is not None else 0
    if embd is not None and len(embd.shape) == 2:
        vocab = embd.shape[1]
    head_dim = values["head_dim"] or hidden // heads
    return ModelSpec(
        id=p.name,
        arch=arch,
        layers=layers,
        hidden=hidden,
        intermediate=int(values["intermediate"] or 0),
        heads=heads,
        kv_heads=int(values["kv_heads"] or heads),
        head_dim=int(head_dim),
        head_dim_v=int(values["head_dim_v"] or head_dim),
        vocab=int(vocab),
        max_context=int(values["max_context"] or 0),
        tensors=tuple(tensors),
        tie_embeddings="output.weight" not in names,
        experts=int(values["experts"] or 0),
        experts_used=int(values["experts_used"] or 0),
        sliding_window=int(values["sliding_window"] or 0),
        swa_every=_SWA_EVERY.get(arch, 0),
        file_type=_ftype_name(ftype),
        source=f"GGUF file {p} ({values['name']})",
    )


def _ftype_name(ftype: Any) -> str | None:
    if not isinstance(ftype, int):
        return None
    ftype &= ~1024  # LLAMA_FTYPE_GUESSED
    for name, mix in quant_file().gguf_mixes.items():
        if mix.ftype == ftype:
            return name
    return None
