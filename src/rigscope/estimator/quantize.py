"""Bytes of each weight tensor under a quantization.

GGUF mixes assign a ggml type per tensor the way llama-quantize does (llama_tensor_get_type
in src/llama-quant.cpp of the llama.cpp the project builds): tensors are sorted into
categories by name, some categories get more bits in some layers (counters run in file order,
as llama-quantize's do), a tensor whose rows do not divide into the type's blocks falls back
to a type whose do, and tensors llama-quantize never quantizes (norms, biases, routers, Mamba's
convolution) stay F32. Experts a checkpoint ships quantized (gpt-oss: MXFP4) keep that format.
Tests compare these types with what the built llama-quantize writes for random-weight models.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

import numpy as np

from rigscope.catalog import ggml_types
from rigscope.estimator.memo import by_model
from rigscope.specs import ModelSpec, Quant, Tensor

_UNQUANTIZED = {"F32", "F16", "BF16"}
_FALLBACK = {
    "IQ1_S": "IQ4_NL", "IQ1_M": "IQ4_NL", "IQ2_XXS": "IQ4_NL", "IQ2_XS": "IQ4_NL",
    "IQ2_S": "IQ4_NL", "IQ3_XXS": "IQ4_NL", "IQ3_S": "IQ4_NL", "IQ4_XS": "IQ4_NL",
    "Q2_K": "Q4_0", "Q3_K": "Q4_0", "TQ1_0": "Q4_0", "TQ2_0": "Q4_0", "Q4_K": "Q5_0",
    "Q5_K": "Q5_1", "Q6_K": "Q8_0",
}
_IQ_TINY = {"IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"}
_DEFAULT_TYPE = {"MXFP4_MOE": "MXFP4", "IQ2_S": "IQ2_XS", "IQ2_M": "IQ2_S", "IQ3_XS": "IQ3_S",
                 "IQ3_M": "IQ3_S", "Q2_K_S": "Q2_K"}  # where the mix's default type differs


@functools.cache  # names repeat across models (blk.3.attn_q.weight): cached whole
def category(name: str) -> str:
    """llama-quantize's broad category of a tensor, by name (tensor_get_category)."""
    return _category(_BLOCK.sub("blk.N.", name))


_BLOCK = re.compile(r"^blk\.\d+\.")


@functools.cache
def _category(name: str) -> str:
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for needle, cat in (("attn_qkv.weight", "attn_qkv"), ("attn_kv_b.weight", "attn_kv_b"),
                        ("attn_v.weight", "attn_v"), ("attn_k.weight", "attn_k"),
                        ("attn_q.weight", "attn_q"), ("attn_output.weight", "attn_output"),
                        ("ffn_up", "ffn_up"), ("ffn_gate", "ffn_gate"), ("ffn_down", "ffn_down")):
        if needle in name:
            return cat
    return "other"


def _more_bits(i: int, n: int) -> bool:
    """use_more_bits: the first and last eighth of the layers, and every third between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _is_70b(model: ModelSpec) -> bool:
    """llama.cpp's LLM_TYPE_70B, the one model type its quantizer looks at."""
    a = model.architecture
    if a.layers == 80 and a.arch in ("qwen2", "olmo", "deci"):
        return True
    return a.arch == "llama" and a.layers == 80 and a.heads != a.kv_heads


@by_model
def gguf_types(model: ModelSpec, mix: Quant) -> dict[str, str]:
    """The ggml type of every tensor of `model` in a GGUF of this mix (memoized)."""
    return dict(zip((t.name for t in model.tensors), _types(model, mix), strict=True))


@by_model
def categories(model: ModelSpec) -> tuple[str, ...]:
    """category() of every tensor of `model`, in order (memoized: every mix asks)."""
    return tuple(category(t.name) for t in model.tensors)


@by_model
def _types(model: ModelSpec, mix: Quant) -> tuple[str, ...]:
    """The ggml type of every tensor, in order (memoized)."""
    return _assign(model, mix)


def _assign(model: ModelSpec, mix: Quant) -> tuple[str, ...]:
    a = model.architecture
    name = mix.name
    default = _DEFAULT_TYPE.get(name, mix.base)
    tensors, cats = model.tensors, categories(model)
    tied = not any(t.name == "output.weight" for t in tensors)
    # the file's counts include its multi-token-prediction layers (not loaded, so not among
    # the model's tensors): one attention V each
    n_wv = sum(1 for c in cats if c in ("attn_v", "attn_qkv", "attn_kv_b")) + a.nextn_layers
    n_layer = a.layers + a.nextn_layers
    experts = a.moe.experts if a.moe else 0
    gqa = a.heads // max(a.kv_heads, 1) if a.kv_heads else 1
    is_70b = _is_70b(model)
    counters = {"wv": 0, "ffn_down": 0, "ffn_gate": 0, "ffn_up": 0}
    out: list[str] = []
    for t, cat in zip(tensors, cats, strict=True):
        if a.native_experts and "_exps.weight" in t.name:
            out.append(a.native_experts)
        elif not t.quantizable:  # as converters write them (DeepSeek-V4's routing table: I32)
            out.append("I32" if t.name.endswith("tid2eid.weight") else "F32")
        elif name in _UNQUANTIZED:
            out.append(default)
        else:
            new = _impl(name, default, t, cat, tied, n_wv, n_layer, experts, gqa, is_70b,
                        counters)
            out.append(_fallback(t, new))
    return tuple(out)


def _layer_of(t: Tensor) -> int:
    return t.layer or 0


def _impl(mix: str, new: str, t: Tensor, cat: str, tied: bool, n_wv: int, n_layer: int,
          experts: int, gqa: int, is_70b: bool, c: dict[str, int]) -> str:
    """llama_tensor_get_type_impl, for one tensor (c: the counters, advanced here)."""
    moe = experts > 1

    def layer_info(counter: str) -> tuple[int, int]:
        return (_layer_of(t) if moe else c[counter]), n_layer

    if cat == "output" or (tied and cat == "token_embd"):
        if mix == "MXFP4_MOE" or t.shape[0] % ggml_types()[new].block:
            return "Q8_0"
        if mix in ("IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"):
            return "Q5_K"
        return new if new == "Q8_0" else "Q6_K"
    if mix == "MXFP4_MOE":
        return "MXFP4" if len(t.shape) > 2 and t.shape[2] > 1 else "Q8_0"
    if cat == "token_embd":
        if mix in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
            return "Q2_K"
        if mix in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
            return "IQ3_S"
        if mix in ("TQ1_0", "TQ2_0", "Q2_0"):
            return "Q4_K"
        return new
    is_wv = cat in ("attn_v", "attn_qkv", "attn_kv_b")
    if mix in _IQ_TINY:
        if is_wv:
            if gqa >= 4 or experts >= 4:
                new = "Q4_K"
            else:
                new = "IQ3_S" if mix in ("IQ2_S", "IQ2_M") else "Q2_K"
            c["wv"] += 1
        elif experts == 8 and cat == "attn_k":
            new = "Q4_K"
        elif cat == "ffn_down":
            if c["ffn_down"] < n_layer // 8:
                new = "IQ3_S" if mix in ("IQ2_S", "IQ2_M") else "Q2_K"
            c["ffn_down"] += 1
        elif cat == "attn_output":
            if experts == 8:
                new = "Q5_K"
            elif mix in ("IQ1_S", "IQ1_M"):
                new = "IQ2_XXS"
            elif mix in ("IQ2_S", "IQ2_M"):
                new = "IQ3_S"
        return new
    if is_wv:
        i = c["wv"]
        if mix == "Q2_K":
            new = "Q4_K" if gqa >= 4 else "Q3_K"
        elif mix == "Q2_K_S" and gqa >= 4:
            new = "Q4_K"
        elif mix == "IQ3_XXS":
            new = "Q4_K" if gqa >= 4 else "IQ3_S"  # no importance matrix
        elif mix in ("IQ3_XS", "IQ3_S") and gqa >= 4:
            new = "Q4_K"
        elif mix == "IQ3_M":
            new = "Q4_K"
        elif mix == "Q3_K_M":
            new = "Q5_K" if i < 2 else "Q4_K"
        elif mix == "Q3_K_L":
            new = "Q5_K"
        elif mix in ("IQ4_NL", "IQ4_XS") and gqa >= 4:
            new = "Q5_K"
        elif mix in ("Q4_K_M", "Q5_K_M") and _more_bits(i, n_wv):
            new = "Q6_K"
        elif mix == "Q4_K_S" and i < 4:
            new = "Q5_K"
        if is_70b and new in ("Q3_K", "Q4_K"):
            new = "Q5_K"
        if experts == 8:
            new = "Q8_0"
        c["wv"] += 1
        return new
    if cat == "attn_k":
        if experts == 8:
            return "Q8_0"
        if mix == "IQ3_XS":
            return "IQ3_XXS"
        if mix == "IQ3_XXS":
            return "IQ2_S"
        return new
    if cat == "attn_q":
        if mix == "IQ3_XS":
            return "IQ3_XXS"
        if mix == "IQ3_XXS":
            return "IQ2_S"
        return new
    if cat == "ffn_down":
        i, n = layer_info("ffn_down")
        if mix == "Q2_K":
            new = "Q3_K"
        elif mix == "Q2_K_S":
            if i < n // 8:
                new = "Q4_K"
        elif mix == "IQ3_XXS":
            new = "Q4_K" if i < n // 8 else "Q3_K"
        elif mix == "Q3_K_M":
            new = "Q5_K" if i < n // 16 else "Q4_K"
        elif mix == "IQ3_M" and (i < n // 8 or (experts == 8 and _more_bits(i, n))):
            new = "Q4_K"
        elif mix == "Q3_K_L":
            new = "Q5_K"
        elif mix == "Q4_K_M":
            if _more_bits(i, n):
                new = "Q6_K"
        elif i < n // 8 and mix in ("IQ4_NL", "IQ4_XS"):
            new = "Q5_K"
        elif mix == "Q5_K_M" and _more_bits(i, n):
            new = "Q6_K"
        elif mix == "Q4_K_S" and i < n // 8:
            new = "Q5_K"
        c["ffn_down"] += 1
        return new
    if cat == "attn_output":
        if experts == 8:
            if mix in ("Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S",
                       "Q4_K_M", "IQ3_S", "IQ3_M", "IQ4_XS"):
                return "Q5_K"
            return new
        return {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K",
                "IQ3_M": "Q4_K"}.get(mix, new)
    if cat == "attn_qkv":  # pragma: no cover - attn_qkv is attn_v-like above
        return new
    if cat in ("ffn_gate", "ffn_up"):
        i, n = layer_info(cat)
        if mix == "IQ3_XS" and n // 8 <= i < 7 * n // 8:
            new = "IQ3_XXS"
        c[cat] += 1
        return new
    return new


def _fallback(t: Tensor, new: str) -> str:
    """A type whose blocks divide the rows (tensor_type_fallback), else F16."""
    types = ggml_types()
    if t.shape[0] % types[new].block == 0:
        return new
    fb = _FALLBACK.get(new, new)
    if t.shape[0] % types[fb].block:
        return "F16"
    return fb


class TensorSizes(NamedTuple):
    """Every tensor's bytes (an int64 array) and type, in the model's order."""

    nbytes: np.ndarray
    types: tuple[str, ...]


@by_model
def tensor_sizes(model: ModelSpec, quant: Quant) -> TensorSizes:
    """tensor_bytes of every tensor of `model` (memoized; the rows' arithmetic as arrays)."""
    if quant.kind != "gguf":
        pairs = [tensor_bytes(model, quant, t) for t in model.tensors]
        return TensorSizes(np.array([b for b, _ in pairs], dtype=np.int64),
                           tuple(ty for _, ty in pairs))
    table, types = ggml_types(), _types(model, quant)
    kinds = sorted(set(types))
    code = {ty: i for i, ty in enumerate(kinds)}
    c = np.array([code[ty] for ty in types], dtype=np.int64)
    block = np.array([table[ty].block for ty in kinds], dtype=np.int64)[c]
    per_block = np.array([table[ty].bytes for ty in kinds], dtype=np.int64)[c]
    rows, n = tensor_shapes(model)
    nbytes = rows // block * per_block * (n // rows)
    if model.file_type == quant.name:  # read from the file itself
        exact = [(i, t.nbytes, t.ggml_type) for i, t in enumerate(model.tensors)
                 if t.nbytes is not None and t.ggml_type is not None]
        if exact:
            listed = list(types)
            for i, b, ty in exact:
                nbytes[i] = b
                listed[i] = ty
            types = tuple(listed)
    return TensorSizes(nbytes, types)


@by_model
def tensor_shapes(model: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Each tensor's row length (1 for an empty one, which has no bytes either way) and
    number of values."""
    return (np.array([max(t.shape[0], 1) for t in model.tensors], dtype=np.int64),
            np.array([t.n_elements for t in model.tensors], dtype=np.int64))


@by_model
def tensors_bytes(model: ModelSpec, quant: Quant) -> tuple[tuple[int, str], ...]:
    """tensor_bytes of every tensor of `model`, in order (memoized)."""
    sizes = tensor_sizes(model, quant)
    return tuple(zip(sizes.nbytes.tolist(), sizes.types, strict=True))


def tensor_bytes(model: ModelSpec, quant: Quant, t: Tensor) -> tuple[int, str]:
    """(bytes, type) of tensor t stored in this quantization."""
    if quant.kind == "gguf":
        if t.nbytes is not None and t.ggml_type is not None and model.file_type == quant.name:
            return t.nbytes, t.ggml_type  # read from the file itself
        ty = gguf_types(model, quant).get(t.name) or "F32"
        gt = ggml_types()[ty]
        return gt.row_bytes(t.shape[0]) * (t.n_elements // t.shape[0]), ty
    n = t.n_elements
    if len(t.shape) < 2 or not t.name.endswith(".weight") or "ffn_gate_inp" in t.name:
        return n * 2, "BF16" if quant.bits < 32 else "F32"  # norms, biases, routers
    is_embedding = t.name in {"token_embd.weight", "output.weight"}
    if is_embedding and quant.embeddings != "quant":
        return n * 2, quant.embeddings
    if quant.scope == "experts" and "_exps." not in t.name:
        return n * 2, "BF16"  # only the experts are quantized (gpt-oss MXFP4)
    size = n * quant.bits / 8
    if quant.group:
        size += n / quant.group * quant.scale_bytes
    return int(size), quant.name
