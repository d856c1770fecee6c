"""Write a GGUF with random weights for an architecture, so llama.cpp itself can be asked
what it allocates (and how fast it runs) for models nobody downloaded.

The tensors are the ones rigscope generates for the architecture (names and shapes in
llama.cpp's layout), in F16 (matrices) and F32 (vectors); `llama-quantize` turns the file
into any mix. The tokenizer is copied from a real GGUF (the model's vocabulary must match it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader, GGUFWriter, LlamaFileType

from rigscope.errors import RigscopeError
from rigscope.specs import ModelSpec

_TOKENIZER_KEYS = ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                   "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                   "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                   "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                   "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix")


def tokenizer_fields(path: Path) -> dict[str, Any]:
    """The tokenizer metadata of a GGUF, as plain Python values."""
    fields = GGUFReader(path).fields
    return {k: fields[k].contents() for k in _TOKENIZER_KEYS if k in fields}


def arch_metadata(spec: ModelSpec) -> dict[str, Any]:
    """The architecture keys llama.cpp reads for this model (prefix added by the writer)."""
    meta: dict[str, Any] = {
        "context_length": spec.max_context or 4096,
        "embedding_length": spec.hidden,
        "block_count": spec.layers,
        "feed_forward_length": spec.intermediate,
        "attention.head_count": spec.heads,
        "attention.head_count_kv": spec.kv_heads,
        "attention.key_length": spec.head_dim,
        "attention.value_length": spec.head_dim_v,
        "rope.dimension_count": spec.head_dim,
        "rope.freq_base": 10000.0,
        "attention.layer_norm_rms_epsilon": 1e-5,
        "vocab_size": spec.vocab,
    }
    if spec.experts:
        meta |= {"expert_count": spec.experts, "expert_used_count": spec.experts_used}
    if spec.sliding_window:
        meta["attention.sliding_window"] = spec.sliding_window
    return meta


def write_gguf(spec: ModelSpec, path: Path, tokenizer: Path, seed: int = 0) -> Path:
    """A GGUF of `spec` with random F16 matrices and F32 vectors (small, normal values)."""
    tok = tokenizer_fields(tokenizer)
    if len(tok.get("tokenizer.ggml.tokens", [])) != spec.vocab:
        raise RigscopeError(f"{tokenizer} has {len(tok.get('tokenizer.ggml.tokens', []))} "
                            f"tokens; the model needs {spec.vocab}")
    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(path), spec.arch)
    w.add_name(f"random {spec.id}")
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    for key, value in arch_metadata(spec).items():
        full = f"{spec.arch}.{key}"
        if isinstance(value, float):
            w.add_float32(full, value)
        else:
            w.add_uint32(full, int(value))
    for key, value in tok.items():
        if isinstance(value, list):
            w.add_array(key, value)
        elif isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        else:
            w.add_string(key, str(value))
    for t in spec.tensors:
        shape = tuple(reversed(t.shape))  # numpy order: the row length last
        if len(t.shape) == 1:
            data = (1.0 + 0.01 * rng.standard_normal(shape)).astype(np.float32)
        else:
            data = (0.02 * rng.standard_normal(shape)).astype(np.float16)
        w.add_tensor(t.name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
