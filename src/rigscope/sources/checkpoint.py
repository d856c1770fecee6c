"""A model's weight tensors from its checkpoint's own tensor list (safetensors headers: names
and shapes), for a model_type nobody has described yet. No I/O: the caller reads the headers.

Names are mapped to llama.cpp's with the `gguf` package's tables (gguf.TensorNameMap, the ones
llama.cpp's converter uses): Llama's first, then those of MoE, MLA and recurrent families for
what Llama lacks. Per-expert tensors are stacked into one 3-D tensor per layer, as the converter
does. A tensor no table knows keeps its checkpoint name under its layer and is priced at the
mix's default type. Vision, audio and multi-token-prediction tensors are left out (llama.cpp
keeps them in separate files or skips them)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rigscope.specs import Tensor

# families whose tables are tried after Llama's, for names Llama's lacks
_ARCHS = ("LLAMA", "QWEN3MOE", "QWEN2MOE", "DEEPSEEK2", "QWEN3NEXT", "NEMOTRON_H", "GEMMA3",
          "GPT_OSS")
# a quantized checkpoint's scales and zero points: not weights of their own
QUANT_AUX = re.compile(r"(scale_inv|_scale|\.scales|\.zeros|\.qzeros|g_idx)$")
_SKIP = re.compile(r"(^|\.)(vision|visual|vit|audio|mtp|multi_modal_projector|mm_projector|"
                   r"vision_tower|image_newline)[._]|(weight_packed|weight_shape)$|"
                   + QUANT_AUX.pattern)
_EXPERT = re.compile(r"\.experts\.(\d+)\.")
_LAYER = re.compile(r"\.(?:layers|h|blocks|layer|decoder_layer)\.(\d+)\.")


@dataclass(frozen=True)
class CheckpointTensors:
    tensors: tuple[Tensor, ...]
    unmapped: tuple[str, ...]  # a checkpoint name of each kind no table knows


@functools.cache
def _tables(n_layers: int) -> tuple[Any, ...]:
    import gguf

    return tuple(gguf.TensorNameMap(gguf.MODEL_ARCH[a], n_layers) for a in _ARCHS)


def _gguf_name(tables: tuple[Any, ...], name: str) -> str | None:
    for table in tables:
        mapped = table.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is not None:
            return str(mapped)
    return None


def map_checkpoint(shapes: Mapping[str, Sequence[int]], n_layers: int) -> CheckpointTensors:
    """llama.cpp's tensors for a checkpoint whose tensors are `shapes` (name -> PyTorch
    shape, outermost first) and which has `n_layers` decoder layers (later ones, MTP, are
    left out)."""
    tables = _tables(n_layers)
    experts: dict[str, list[Sequence[int]]] = {}
    out: dict[str, Tensor] = {}
    unmapped: dict[str, str] = {}
    for name, shape in shapes.items():
        m = _LAYER.search("." + name)
        layer = int(m.group(1)) if m else None
        if _SKIP.search(name) or (layer is not None and layer >= n_layers):
            continue
        if _EXPERT.search(name):  # one expert of many: stacked by the converter
            experts.setdefault(_EXPERT.sub(".experts.", name), []).append(shape)
            continue
        _add(out, unmapped, tables, name, tuple(reversed(shape)), layer)
    for name, parts in experts.items():
        m = _LAYER.search("." + name)
        shape = (*reversed(parts[0]), len(parts))
        _add(out, unmapped, tables, name, shape, int(m.group(1)) if m else None)
    # in file order, as the converter writes them: the embedding, layer by layer, the head
    ordered = sorted(out.values(), key=lambda t: (
        -1 if t.name == "token_embd.weight" else n_layers if t.layer is None else t.layer))
    return CheckpointTensors(tuple(ordered), tuple(unmapped.values()))


def _add(out: dict[str, Tensor], unmapped: dict[str, str], tables: tuple[Any, ...],
         name: str, shape: tuple[int, ...], layer: int | None) -> None:
    mapped = _gguf_name(tables, name)
    if mapped is None:
        suffix = "bias" if name.endswith(".bias") else "weight"
        base = name.removesuffix(".weight").removesuffix(".bias")
        base = _LAYER.sub(".", "." + base).strip(".").replace(".", "_")
        unmapped.setdefault(f"{base}.{suffix}", name)  # one checkpoint name per kind
        mapped = (f"blk.{layer}." if layer is not None else "") + f"{base}.{suffix}"
    if math.prod(shape) > 0:
        out[mapped] = Tensor(mapped, shape, layer)
