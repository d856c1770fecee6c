"""Bytes of each weight tensor under a quantization.

GGUF mixes assign a ggml type per tensor the way llama.cpp's quantizer does
(llama_tensor_get_type in src/llama-quant.cpp): the LM head goes to Q6_K, the K-quant "M"
mixes give more bits to some attn_v and ffn_down layers, MoE models keep attention at Q8_0,
and a tensor whose rows do not divide into the type's blocks falls back to a type whose do.
"""

from __future__ import annotations

from rigscope.catalog import ggml_types
from rigscope.specs import ModelSpec, Quant, Tensor

_IQ_LOW = {"IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"}
_UNQUANTIZED_MIXES = {"F32", "F16", "BF16"}
_FALLBACK = {
    "IQ2_XXS": "IQ4_NL", "IQ2_XS": "IQ4_NL", "IQ2_S": "IQ4_NL", "IQ3_XXS": "IQ4_NL",
    "IQ3_S": "IQ4_NL", "IQ1_S": "IQ4_NL", "IQ1_M": "IQ4_NL", "Q2_K": "IQ4_NL",
    "Q3_K": "IQ4_NL", "IQ4_XS": "IQ4_NL", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0",
    "TQ1_0": "Q4_0", "TQ2_0": "Q4_0",
}


def _more_bits(i: int, n: int) -> bool:
    """llama.cpp's use_more_bits: first and last eighth, and every third layer between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _is_quantizable(t: Tensor) -> bool:
    return len(t.shape) >= 2 and t.name.endswith(".weight") and "ffn_gate_inp" not in t.name


def gguf_tensor_type(model: ModelSpec, mix: str, base: str, t: Tensor) -> str:
    """The ggml type llama.cpp's quantizer gives tensor t in a file of this mix."""
    if not _is_quantizable(t):
        return "F32"
    if mix in _UNQUANTIZED_MIXES:
        return base
    name, i, n = t.name, t.layer or 0, model.layers
    gqa = model.heads // max(model.kv_heads, 1)
    new = base
    if mix == "MXFP4_MOE" and "_exps." in name:
        return "MXFP4"
    is_output = name == "output.weight" or (
        model.tie_embeddings and name == "token_embd.weight"
    )
    if is_output:
        if t.shape[0] % 256:
            new = "Q8_0"
        elif mix in _IQ_LOW:
            new = "Q5_K"
        elif new != "Q8_0":
            new = "Q6_K"
    elif name == "token_embd.weight":
        if mix in {"IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"}:
            new = "Q2_K"
        elif mix in {"IQ2_S", "IQ2_M"}:
            new = "IQ3_S"
        elif mix in {"TQ1_0", "TQ2_0"}:
            new = "Q4_K"
    elif ".attn_v." in name:
        if mix == "Q2_K":
            new = "Q4_K" if gqa >= 4 else "Q3_K"
        elif mix == "Q2_K_S" and gqa >= 4:
            new = "Q4_K"
        elif mix == "IQ3_XXS":
            new = "Q4_K" if gqa >= 4 else "IQ3_S"
        elif mix in {"IQ3_S", "IQ3_M"}:
            new = "Q4_K"
        elif mix == "Q3_K_M":
            new = "Q5_K" if i < 2 else "Q4_K"
        elif mix == "Q3_K_L" or mix in {"IQ4_NL", "IQ4_XS"} and gqa >= 4:
            new = "Q5_K"
        elif mix in {"Q4_K_M", "Q5_K_M"} and _more_bits(i, n):
            new = "Q6_K"
        elif mix == "Q4_K_S" and i < 4:
            new = "Q5_K"
        if model.arch in {"llama", "qwen2"} and n == 80 and new in {"Q3_K", "Q4_K"}:
            new = "Q5_K"  # llama.cpp's 70B rule: attn_v is small, give it more bits
        if model.experts == 8:
            new = "Q8_0"
    elif ".attn_k." in name:
        if model.experts == 8:
            new = "Q8_0"
        elif mix == "IQ3_XS":
            new = "IQ3_XXS"
    elif ".attn_q." in name:
        if mix == "IQ3_XS":
            new = "IQ3_XXS"
    elif ".ffn_down" in name:
        if mix == "Q2_K":
            new = "Q3_K"
        elif mix == "Q2_K_S" and i < n // 8:
            new = "Q4_K"
        elif mix == "IQ3_XXS":
            new = "Q4_K" if i < n // 8 else "Q3_K"
        elif mix == "Q3_K_M":
            new = "Q5_K" if i < n // 16 else "Q4_K"
        elif mix == "Q3_K_L":
            new = "Q5_K"
        elif mix in {"Q4_K_M", "Q5_K_M"} and _more_bits(i, n):
            new = "Q6_K"
        elif mix == "Q4_K_S" and i < n // 8:
            new = "Q5_K"
    elif ".attn_output." in name:
        if model.experts == 8:
            if mix in {"Q2_K", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M",
                       "IQ3_S", "IQ3_M", "IQ4_XS"}:
                new = "Q5_K"
        elif mix == "Q2_K":
            new = "Q3_K"
        elif mix in {"Q3_K_M", "IQ3_M"}:
            new = "Q4_K"
        elif mix == "Q3_K_L":
            new = "Q5_K"
    elif ".attn_qkv." in name:
        if mix in {"Q3_K_M", "Q3_K_L", "IQ3_M"}:
            new = "Q4_K"
        elif mix == "Q4_K_M":
            new = "Q5_K"
        elif mix == "Q5_K_M":
            new = "Q6_K"
    types = ggml_types()
    if t.shape[0] % types[new].block:
        new = _FALLBACK.get(new, "F16")
        if t.shape[0] % types[new].block:
            new = "F16"
    return new


def tensor_bytes(model: ModelSpec, quant: Quant, t: Tensor) -> tuple[int, str]:
    """(bytes, type) of tensor t stored in this quantization."""
    if quant.kind == "gguf":
        if t.nbytes is not None and t.ggml_type is not None and model.file_type == quant.name:
            return t.nbytes, t.ggml_type  # read from the file itself
        ty = gguf_tensor_type(model, quant.name, quant.base, t)
        gt = ggml_types()[ty]
        return gt.row_bytes(t.shape[0]) * (t.n_elements // t.shape[0]), ty
    n = t.n_elements
    if len(t.shape) < 2 or not t.name.endswith(".weight") or "ffn_gate_inp" in t.name:
        return n * 2, "BF16" if quant.bits < 32 else "F32"  # norms, biases, routers
    is_embedding = t.name in {"token_embd.weight", "output.weight"}
    if is_embedding and quant.embeddings != "quant":
        return n * 2, quant.embeddings
    size = n * quant.bits / 8
    if quant.group:
        size += n / quant.group * quant.scale_bytes
    return int(size), quant.name
