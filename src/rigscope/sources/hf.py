"""An Architecture from a Hugging Face config.json, by capability.

transformers' configuration classes (no torch needed) are the field library: they know every
model_type's keys and defaults, and derive per-layer attention types. A model_type they do not
know, but whose config carries the standard keys, is read as a dense decoder and says so.
Parsing never does I/O: `architecture_from_config` takes the parsed JSON; `read_config`
reads a file or a model directory (and its safetensors headers for exact parameter counts).
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rigscope.errors import RigscopeError
from rigscope.sources.checkpoint import QUANT_AUX, map_checkpoint
from rigscope.sources.gguf_file import CSA_COMPUTE_WARNING, SWA_AT_LAYERS
from rigscope.sources.layout import build_model
from rigscope.specs import (
    MLA,
    SSM,
    Architecture,
    BlockSparse,
    CompressedAttention,
    ModelSpec,
    MoE,
)

_MAX_HEADER = 100 * 1024 * 1024
STANDARD_KEYS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")

# model_type -> llama.cpp architecture (how the GGUF lays out its tensors)
LLAMA_ARCH = {
    "llama": "llama", "mistral": "llama", "mixtral": "llama", "granite": "granite",
    "granitemoe": "granitemoe", "qwen2": "qwen2", "qwen2_moe": "qwen2moe", "qwen3": "qwen3",
    "qwen3_moe": "qwen3moe", "gemma": "gemma", "gemma2": "gemma2", "gemma3": "gemma3",
    "gemma3_text": "gemma3", "phi3": "phi3", "phimoe": "phimoe", "deepseek_v2": "deepseek2",
    "deepseek_v3": "deepseek2", "gpt_oss": "gpt-oss", "llama4": "llama4",
    "llama4_text": "llama4", "glm4": "glm4", "glm4_moe": "glm4moe", "cohere": "command-r",
    "cohere2": "cohere2", "olmo2": "olmo2", "exaone": "exaone", "nemotron_h": "nemotron_h",
    "falcon_h1": "falcon-h1", "mamba2": "mamba2", "glm4_moe_lite": "deepseek2",
    "granitemoeshared": "granitemoe", "granitemoehybrid": "granitehybrid",
    "qwen3_next": "qwen3next", "qwen3_5_text": "qwen35", "qwen3_5_moe_text": "qwen35moe",
    "gemma4_text": "gemma4", "deci": "deci", "nemotron-nas": "deci",
    "qwen3_vl_text": "qwen3vl", "qwen3_vl_moe_text": "qwen3vlmoe",
    "smollm3": "smollm3", "ministral3": "mistral3", "seed_oss": "seed_oss",
    "exaone4": "exaone4", "olmoe": "olmoe", "minimax_m2": "minimax-m2", "ernie4_5": "ernie4_5",
    "arcee": "arcee", "deepseek_v32": "deepseek32", "lfm2": "lfm2",
    "mistral4": "mistral4", "hunyuan_v1_dense": "hunyuan-dense",
    "glm_moe_dsa": "glm-dsa", "mimo_v2_flash": "mimo2", "mimo_v2": "mimo2",
    "step3p5": "step35", "step3p7": "step35", "kimi_linear": "kimi-linear",
    "minimax_m3": "minimax-m3", "ernie4_5_moe": "ernie4_5-moe",
    "hunyuan_v1_moe": "hunyuan-moe", "dots1": "dots1", "exaone_moe": "exaone-moe",
    "lfm2_moe": "lfm2moe", "afmoe": "afmoe", "kimi_k2": "deepseek2", "olmo3": "olmo2",
    "deepseek_v4": "deepseek4",
    **dict.fromkeys(("qwen2_vl", "qwen2_5_vl", "qwen2_vl_text", "qwen2_5_vl_text"), "qwen2vl"),
    "internlm2": "internlm2", "xverse": "xverse", "orion": "orion", "olmo": "olmo",
    "starcoder2": "starcoder2", "bailing_moe_v2": "bailingmoe2", "apertus": "apertus",
    "nemotron": "nemotron", "phi": "phi2", "stablelm": "stablelm", "minicpm": "minicpm",
    "gpt_neox": "gptneox",
}
MODEL_TYPES = tuple(sorted(LLAMA_ARCH))
# model types whose attention normalizes Q and K per head without saying so in the config
QK_NORM = ("qwen3", "qwen3_moe", "gemma3", "gemma3_text", "gemma4_text", "olmo2", "qwen3_next",
           "qwen3_5_text", "qwen3_5_moe_text", "qwen3_vl_text", "qwen3_vl_moe_text", "olmoe",
           "lfm2", "exaone4", "dots1", "exaone_moe", "lfm2_moe", "hunyuan_v1_moe",
           "afmoe", "olmo3", "apertus")


@dataclass(frozen=True)
class ConfigRead:
    """What a config says beyond the architecture."""

    architecture: Architecture
    name: str
    checkpoint_format: str | None  # FP8, MXFP4, AWQ, GPTQ, NF4 ... (None: BF16/FP16)
    notes: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())


def _config_object(cfg: dict[str, Any], model_type: str) -> Any:
    """transformers' config class for the model_type (its defaults filled in), or None."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "PyTorch was not found"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from transformers import CONFIG_MAPPING
    except ImportError:
        return None
    if model_type not in CONFIG_MAPPING:
        return None
    cls = CONFIG_MAPPING[model_type]
    kwargs = {k: v for k, v in cfg.items() if k not in ("auto_map", "architectures")}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(**kwargs)
    except Exception:  # noqa: BLE001 - a class that rejects the values: read them as given
        return None


class _Fields:
    """Config values: the file's own, else the config class's defaults."""

    def __init__(self, raw: dict[str, Any], obj: Any, where: str) -> None:
        self.raw, self.obj, self.where = raw, obj, where

    def get(self, *keys: str, default: Any = None) -> Any:
        for k in keys:
            if k in self.raw and self.raw[k] is not None:
                return self.raw[k]
        if self.obj is not None:
            for k in keys:
                v = getattr(self.obj, k, None)
                if v is not None:
                    return v
        return default

    def int(self, *keys: str, default: int | None = None, positive: bool = True,
            own: bool = False) -> int:
        """An integer value; own: the file must carry it (a class default does not count)."""
        v = next((self.raw[k] for k in keys if self.raw.get(k) is not None), None) if own \
            else self.get(*keys)
        if v is None:
            if default is not None:
                return default
            raise RigscopeError(f"{self.where}: {keys[0]} is missing")
        if isinstance(v, bool) or not isinstance(v, int) or (positive and v <= 0) or v < 0:
            raise RigscopeError(f"{self.where}: {keys[0]} must be a "
                                f"{'positive' if positive else 'non-negative'} integer, got {v!r}")
        return v


def _text_config(cfg: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The language model's config (nested under text_config for multimodal models), and the
    vision tower's parameters when there is one."""
    text = cfg.get("text_config")
    vision = 0
    if isinstance(text, dict) and "num_hidden_layers" not in cfg:
        if isinstance(cfg.get("vision_config"), dict):
            vision = vision_params(cfg["vision_config"])
        text = dict(text)
        text.setdefault("model_type", cfg.get("model_type", ""))
        if text.get("model_type") in ("gemma3", "llama4"):
            text["model_type"] = text["model_type"] + "_text"
        for k in ("tie_word_embeddings", "quantization_config"):
            if k in cfg and k not in text:
                text[k] = cfg[k]
        return text, vision
    return cfg, vision


def vision_params(v: dict[str, Any]) -> int:
    """A ViT tower's parameters from its config: attention and MLP per layer, patch embedding,
    position table (approximate to a few percent; only non-GGUF engines load it)."""
    h = v.get("hidden_size") or 0
    i = v.get("intermediate_size") or 4 * h
    n = v.get("num_hidden_layers") or v.get("depth") or 0
    p = v.get("patch_size") or 14
    img = v.get("image_size") or 224
    ch = v.get("num_channels") or 3
    if not (isinstance(h, int) and isinstance(n, int) and h > 0 and n > 0):
        return 0
    per_layer = 4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h
    return n * per_layer + ch * p * p * h + (img // p) ** 2 * h


# transformers' layer_types -> rigscope's per-layer attention kind ("recurrent": a linear
# attention or SSM mixer keeps a fixed state instead of a KV cache)
LAYER_TYPES = {
    "full_attention": "full", "attention": "full", "global": "full",
    "sliding_attention": "sliding", "sliding": "sliding", "local": "sliding",
    "chunked_attention": "chunked", "linear_attention": "recurrent", "mamba": "recurrent",
    "mlp": "", "moe": "",  # FFN-only blocks (Nemotron-H)
    "conv": "recurrent",  # LFM2's short convolution
    "hybrid": "full",  # attention beside a Mamba mixer in one layer (Falcon-H1)
    "indexed_attention": "full",  # sparse attention over a full cache (DeepSeek-V3.2)
    # DeepSeek-V4: a sliding window beside a cache compressed 4x (with an indexer) or 128x
    "compressed_sparse_attention": "sliding", "heavily_compressed_attention": "sliding",
}
MLP_LAYER_TYPES = {"dense": "dense", "sparse": "moe", "moe": "moe",
                   "hash_moe": "moe"}  # DeepSeek-V4: experts routed by token id
MAMBA_HYBRIDS = ("nemotron_h", "granitemoehybrid", "falcon_h1", "mamba2")


def _kinds(f: _Fields, n: int, model_type: str) -> tuple[tuple[str, ...], int]:
    """Per-layer attention kinds ("recurrent" for linear-attention layers) and the window,
    from layer_types or the config's pattern."""
    types = f.get("layer_types")
    window = f.get("sliding_window", "attention_chunk_size") or 0
    if not isinstance(window, int) or isinstance(window, bool):
        window = 0
    if isinstance(types, list) and len(types) >= n:
        unknown = sorted({str(t) for t in types[:n]} - set(LAYER_TYPES))
        if unknown:
            raise RigscopeError(
                f"{f.where}: layer_types names {', '.join(map(repr, unknown))}, a layer kind "
                f"rigscope does not know; known: {', '.join(sorted(LAYER_TYPES))}")
        out = [LAYER_TYPES[str(t)] for t in types[:n]]
        if model_type.startswith("llama4"):
            window = f.get("attention_chunk_size") or 8192
        if "recurrent" in out or (any(k != "full" for k in out) and window):
            return tuple(out), int(window) if any(k in ("sliding", "chunked") for k in out) \
                else 0
    flags = _layer_flags(f, "hybrid_layer_pattern", n)  # MiMo-V2: 1 marks a sliding layer
    if flags is not None and any(flags) and window:
        return tuple("sliding" if x else "full" for x in flags), window
    if model_type == "gemma2" and window:
        return tuple("sliding" if il % 2 == 0 else "full" for il in range(n)), window
    return ("full",) * n, 0


def _layer_flags(f: _Fields, key: str, n: int) -> tuple[bool, ...] | None:
    """A per-layer list of 0/1 (or booleans) under `key`, one per layer; None when absent."""
    v = f.get(key)
    if not isinstance(v, list):
        return None
    if len(v) < n or not all(isinstance(x, int) and x in (0, 1) for x in v[:n]):
        raise RigscopeError(f"{f.where}: {key} must list 0 or 1 for each of the {n} layers")
    return tuple(bool(x) for x in v[:n])


def _block_ffn(f: _Fields, ffn: int) -> int:
    """LFM2's FFN width as its converter writes it: block_ff_dim, with auto-adjust 2/3 of it
    times block_ffn_dim_multiplier, up to a multiple of block_multiple_of."""
    width = f.int("block_ff_dim", default=ffn, positive=False)
    if f.get("block_auto_adjust_ff_dim"):
        width = int(2 * width / 3)
        mult = f.get("block_ffn_dim_multiplier")
        if isinstance(mult, int | float) and not isinstance(mult, bool):
            width = int(mult * width)
        step = f.int("block_multiple_of", default=256)
        width = step * ((width + step - 1) // step)
    return width


def _gated_deltanet(f: _Fields) -> SSM:
    """Gated DeltaNet's sizes (Qwen3-Next, Qwen3.5) as llama.cpp's converter writes them."""
    k_heads, v_heads = f.int("linear_num_key_heads"), f.int("linear_num_value_heads")
    k_dim, v_dim = f.int("linear_key_head_dim"), f.int("linear_value_head_dim")
    if k_dim != v_dim or v_heads % k_heads:
        raise RigscopeError(
            f"{f.where}: linear_key_head_dim {k_dim} / linear_value_head_dim {v_dim} and "
            f"{k_heads} key / {v_heads} value heads: llama.cpp's Gated DeltaNet needs equal "
            "head sizes and value heads a multiple of key heads")
    return SSM(d_inner=v_heads * v_dim, d_state=k_dim, n_groups=k_heads,
               conv_kernel=f.int("linear_conv_kernel_dim"), heads=v_heads, kind="gdn")


# what a config of an unknown model_type may name that a dense Llama-style layout cannot price
UNPRICED = {
    "experts": r"^(n_routed_experts|num_local_experts|num_experts|moe_.*)$",
    "linear attention or a recurrent mixer": r"linear_|^(mamba|ssm)_|_ssm_|state_size$",
    "latent attention (MLA)": r"^(kv_lora_rank|q_lora_rank)$",
    "a sparse-attention indexer": r"^(index_|indexer_)|sparse_attention",
    "per-layer block or mixer patterns": r"^(block_configs|hybrid_.*pattern|layers_block_type)$",
}


def _refuse_unpriced(text: dict[str, Any], model_type: str, where: str) -> None:
    for what, pattern in UNPRICED.items():
        keys = sorted(k for k, v in text.items() if re.search(pattern, k)
                      and v not in (None, 0, 1, False, [], {}))
        if keys:
            raise RigscopeError(
                f"{where}: model_type {model_type!r} is not one rigscope knows and its config "
                f"names {what} ({', '.join(keys[:3])}): it cannot be priced as a dense "
                "decoder (a model directory or Hub repo with its safetensors is priced from "
                f"its own tensors); known model types: {', '.join(MODEL_TYPES)}")


EXPERT_KEYS = ("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")
# model types whose GGUF converter drops the multi-token-prediction layers (MiniMax: llama.cpp's
# loader has none; the others keep them in the file, unloaded, where llama-quantize's layer
# counts see them)
MTP_DROPPED = ("deepseek_v2", "deepseek_v3", "kimi_k2", "minimax_m2", "minimax_m3",
               "ernie4_5_moe", "deepseek_v4")
# model types whose converter writes MTP layers the config does not count (MiMo-V2: 3)
MTP_LAYERS = {"mimo_v2_flash": 3, "mimo_v2": 3}


def architecture_from_config(cfg: dict[str, Any], where: str = "config.json") -> ConfigRead:
    """The Architecture a config.json describes (the parsed JSON object in)."""
    if not isinstance(cfg, dict):
        raise RigscopeError(f"{where}: expected a JSON object")
    text, vision = _text_config(cfg)
    model_type = str(text.get("model_type") or "")
    known = model_type in LLAMA_ARCH
    notes: list[str] = []
    warnings: list[str] = []
    if not known:
        _refuse_unpriced(text, model_type, where)
        missing = [k for k in (*STANDARD_KEYS, "intermediate_size") if k not in text]
        if missing:
            raise RigscopeError(
                f"{where}: unsupported model_type {model_type!r} and the config lacks "
                f"{', '.join(missing)}; known model types: {', '.join(MODEL_TYPES)}")
        warnings.append(f"model_type {model_type!r} is not one rigscope knows: estimated as "
                        "a dense Llama-style decoder from its standard keys")
    f = _Fields(text, _config_object(text, model_type) if known else None, where)
    # the model's size is never taken from a config class's defaults
    blocks_listed = text.get("layers_block_type")  # Nemotron-H lists its layers instead
    n = f.int("num_hidden_layers", "num_layers", "n_layer", own=True,
              default=len(blocks_listed) if isinstance(blocks_listed, list) and blocks_listed
              else None)
    hidden = f.int("hidden_size", "d_model", "n_embd", own=True)
    heads = f.int("num_attention_heads", "n_head", default=1)
    kv_heads = f.int("num_key_value_heads", "num_kv_heads", default=heads)
    head_dim = f.int("head_dim", "attention_head_dim", default=hidden // heads)
    if heads % kv_heads:
        raise RigscopeError(f"{where}: num_key_value_heads {kv_heads} must divide "
                            f"num_attention_heads {heads}")
    mla = _mla(f)
    if mla is not None:
        head_dim = mla.nope_dim + mla.rope_dim
    # global layers with their own head size and KV heads (Gemma 4): head_dim and
    # num_key_value_heads are then the sliding layers'
    head_dim_swa = kv_heads_swa = 0
    if f.get("global_head_dim") or f.get("num_global_key_value_heads"):
        head_dim_swa, kv_heads_swa = head_dim, kv_heads
        head_dim = f.int("global_head_dim", default=head_dim)
        kv_heads = f.int("num_global_key_value_heads", default=kv_heads)
    # sliding layers with their own query and KV heads (MiMo-V2; Step 3.5 names them in
    # attention_other_setting, which transformers reads as num_sliding_attention_heads)
    other = f.get("attention_other_setting")
    o = _Fields(other if isinstance(other, dict) else {}, None,
                f"{where}: attention_other_setting")
    heads_swa = o.int("num_attention_heads", default=f.int(
        "num_sliding_attention_heads", "swa_num_attention_heads", default=heads))
    kv_swa = o.int("num_attention_groups", default=f.int("swa_num_key_value_heads",
                                                           default=kv_heads))
    if heads_swa % kv_swa:
        raise RigscopeError(f"{where}: the sliding layers' {kv_swa} KV heads must divide "
                            f"their {heads_swa} attention heads")
    for key, full in (("swa_head_dim", head_dim), ("swa_v_head_dim", f.get(
            "v_head_dim", default=head_dim))):
        if f.get(key, default=full) != full or o.get(key.removeprefix("swa_"),
                                                     default=full) != full:
            raise RigscopeError(
                f"{where}: the sliding layers' {key.removeprefix('swa_')} differs from the "
                f"full layers' {full}: llama.cpp's converter needs them sized alike")
    if not head_dim_swa and kv_swa != kv_heads:
        kv_heads_swa = kv_swa
    for key in ("hidden_size_per_layer_input", "num_kv_shared_layers"):
        if f.get(key):
            raise RigscopeError(
                f"{where}: {key} = {f.get(key)}: per-layer input embeddings and layers that "
                "share another layer's KV cache (Gemma 3n/4 E2B, E4B) are not supported yet")
    # the dense layers' width (MiniMax-M3 names it apart from the experts')
    ffn = f.int("dense_intermediate_size", "intermediate_size", "ffn_dim", default=0,
                positive=False)
    attention, window = _kinds(f, n, model_type)
    ffn_kinds = ("dense",) * n
    blocks = _blocks(f, n, hidden, heads) if f.get("block_configs") else None
    if blocks is not None:
        attention, ffn_kinds = blocks.attention, blocks.ffn_kinds
        kv_heads, ffn = max(blocks.kv_heads), max(blocks.widths)
    # experts as the file counts them (a config class's default count is no evidence)
    moe = _moe(f, model_type, ffn) if any(k in text for k in EXPERT_KEYS) else None
    if moe is not None:
        ffn_kinds = _sparse_layers(f, n, model_type)
        if model_type.startswith("llama4"):
            ffn = f.int("intermediate_size_mlp", default=ffn)
    mamba: tuple[bool, ...] = ()
    ssm = None
    csa = _compressed(f, n) if f.get("compress_ratios") is not None else None
    if csa is not None:  # DeepSeek-V4: every layer keeps a window, some a compressed cache
        if moe is None:
            raise RigscopeError(f"{where}: compress_ratios (DeepSeek-V4's layout) without "
                                "routed experts: llama.cpp's deepseek4 loader needs them")
        attention, window = ("sliding",) * n, f.int("sliding_window")
        warnings.append(CSA_COMPUTE_WARNING)
    if model_type in MAMBA_HYBRIDS:
        attention, mamba, hybrid_ffn, ssm = _hybrid(f, n, model_type, hidden, moe is not None)
        ffn_kinds = hybrid_ffn or ffn_kinds
    elif isinstance(f.get("linear_attn_config"), dict):  # Kimi: KDA and MLA layers
        attention, mamba, ssm = _kimi_layers(f, n, heads)
    elif "recurrent" in attention and f.get("conv_L_cache"):  # LFM2
        mamba = tuple(k == "recurrent" for k in attention)
        attention = tuple("" if k == "recurrent" else k for k in attention)
        ssm = SSM(d_inner=hidden, d_state=0, n_groups=0, conv_kernel=f.int("conv_L_cache"),
                  heads=0, norm=False, conv_bias=False, kind="shortconv")
        ffn = _block_ffn(f, ffn)
    elif "recurrent" in attention:
        if not f.get("linear_num_value_heads"):
            raise RigscopeError(
                f"{where}: layer_types has linear-attention layers but the config names no "
                "linear_num_value_heads: a linear-attention kind rigscope does not know")
        mamba = tuple(k == "recurrent" for k in attention)
        attention = tuple("" if k == "recurrent" else k for k in attention)
        ssm = _gated_deltanet(f)
    arch = LLAMA_ARCH.get(model_type, "llama")
    attn_res = bool(f.get("attn_res_block_size"))
    if arch == "kimi-linear" and attn_res:  # K3's attention residuals, latent experts, situ
        arch = "kimi-k3"  # activation: a converter and loader of their own
    if window and SWA_AT_LAYERS.get(arch, n) != n:
        notes.append(f"llama.cpp runs {arch}'s sliding window only at {SWA_AT_LAYERS[arch]} "
                     f"layers: every layer of this {n}-layer model keeps the full context")
        attention = tuple("full" if k in ("sliding", "chunked") else k for k in attention)
        window = 0
    if model_type == "nemotron_h" and moe is not None:
        arch = "nemotron_h_moe"
    rope = f.get("rope_scaling", "rope_parameters") or {}
    rope_type = rope.get("rope_type", rope.get("type")) if isinstance(rope, dict) else None
    partial = f.get("partial_rotary_factor") or (
        rope.get("partial_rotary_factor") if isinstance(rope, dict) else None)
    qk_norm = model_type in QK_NORM or bool(f.get("use_qk_norm", "qk_layernorm")) and not \
        model_type.startswith("llama4")
    attention_bias = bool(f.get("attention_bias")) or (
        arch == "starcoder2" and bool(f.get("use_bias")))  # Bailing's use_bias is not it
    q = text.get("quantization_config") or {}
    fmt = _checkpoint_format(q) if isinstance(q, dict) else None
    mtp = int(f.get("num_nextn_predict_layers", "mtp_num_hidden_layers")
              or MTP_LAYERS.get(model_type, 0))
    sinks = model_type == "gpt_oss" or bool(f.get("add_full_attention_sink_bias"))
    architecture = Architecture(
        model_type=model_type, arch=arch, layers=n, hidden=hidden, vocab=f.int("vocab_size"),
        max_context=f.int("max_position_embeddings", "max_seq_len", "seq_length", default=0,
                          positive=False),
        heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        head_dim_v=(mla.v_dim if mla else head_dim if head_dim_swa
                    else f.int("head_dim_v", "v_head_dim", default=head_dim)),
        head_dim_swa=head_dim_swa, kv_heads_swa=kv_heads_swa,
        heads_swa=heads_swa if heads_swa != heads else 0,
        head_gate=bool(f.get("use_head_wise_attn_gate")), attn_res=attn_res,
        v_from_k=bool(f.get("attention_k_eq_v")),
        moe_dense=moe is not None and bool(f.get("enable_moe_block")),
        dense_ffn=blocks.widths if blocks else (),
        kv_heads_per_layer=blocks.kv_heads if blocks else (),
        attn_linear=blocks.linear if blocks else (),
        ffn=ffn, attention=attention, ffn_kinds=ffn_kinds, mamba=mamba,
        window=window if any(k in ("sliding", "chunked") for k in attention) else 0,
        moe=moe, mla=mla, ssm=ssm, msa=_block_sparse(f), csa=csa,
        tie_embeddings=bool(f.get("tie_word_embeddings",
                                  default=model_type.startswith(("gemma", "cohere")))),
        qkv_bias=arch in ("qwen2", "qwen2moe", "qwen2vl", "phi2") or attention_bias
        or bool(f.get("use_qkv_bias")),
        o_bias=model_type in ("gpt_oss", "phimoe", "phi") or (
            attention_bias and (model_type.startswith("granite")
                                or arch in ("starcoder2", "gptneox"))),
        qk_norm=qk_norm, attn_sinks=sinks,
        swa_sinks=bool(f.get("add_swa_attention_sink_bias")) and not sinks,
        attn_gate=bool(f.get("attn_output_gate", "mla_use_output_gate")),
        rope_factors=rope_type if rope_type in ("llama3", "longrope") else "",
        rope_dim=f.int("qk_rope_head_dim") if csa is not None else
        int(head_dim * partial) if isinstance(partial, float) and partial < 1 else 0,
        nextn_layers=0 if model_type in MTP_DROPPED else mtp, vision_params=vision,
        native_experts="MXFP4" if fmt == "MXFP4" or f.get("expert_dtype") == "fp4" else "")
    if mtp:
        kept = ("llama.cpp's converter drops them from the GGUF" if model_type in MTP_DROPPED
                else "GGUF files keep them, but llama.cpp skips them at load unless asked to "
                "draft with them")
        notes.append(f"{mtp} multi-token-prediction layer(s) in the checkpoint are not counted "
                     f"in memory: {kept}; vLLM loads them only for speculative decoding")
    name = str(cfg.get("_name_or_path") or text.get("_name_or_path") or "")
    return ConfigRead(architecture, name, fmt, tuple(notes), tuple(warnings))


@dataclass(frozen=True)
class _Blocks:
    attention: tuple[str, ...]
    ffn_kinds: tuple[str, ...]
    kv_heads: tuple[int, ...]
    linear: tuple[bool, ...]
    widths: tuple[int, ...]


def _blocks(f: _Fields, n: int, hidden: int, heads: int) -> _Blocks:
    """DeciLM's per-layer block_configs (Llama-Nemotron Super/Ultra, NAS-pruned): each
    layer's KV heads (heads / n_heads_in_group), attention kept, replaced by one linear
    projection or dropped, and FFN width from ffn_mult as llama.cpp's converter rounds it
    (2/3 x ffn_mult x hidden, up to a multiple of 256; none for a dummy layer)."""
    cfgs = f.get("block_configs")
    if not isinstance(cfgs, list) or len(cfgs) != n or not all(isinstance(c, dict)
                                                               for c in cfgs):
        raise RigscopeError(f"{f.where}: block_configs must list one block per layer "
                            f"({n} layers)")
    attention, ffn, kv, linear, widths = [], [], [], [], []
    for il, c in enumerate(cfgs):
        att, mlp = c.get("attention") or {}, c.get("ffn") or {}
        group = att.get("n_heads_in_group")
        if group is not None and (not isinstance(group, int) or group <= 0
                                  or heads % group):
            raise RigscopeError(f"{f.where}: block_configs[{il}].attention.n_heads_in_group "
                                f"must divide num_attention_heads {heads}, got {group!r}")
        attention.append("full" if group else "")
        kv.append(heads // group if group else 0)
        linear.append(not group and bool(att.get("replace_with_linear")))
        mult = mlp.get("ffn_mult")
        if mult is not None and (isinstance(mult, bool) or not isinstance(mult, int | float)
                                 or not 0 <= mult < 1e3):
            raise RigscopeError(f"{f.where}: block_configs[{il}].ffn.ffn_mult must be a "
                                f"number, got {mult!r}")
        width = int(2 * (mult or 0) * hidden / 3)
        width += -width % 256
        widths.append(width)
        ffn.append("dense" if width else "")
    if not any(kv):
        raise RigscopeError(f"{f.where}: block_configs keep no attention layer")
    return _Blocks(tuple(attention), tuple(ffn), tuple(kv), tuple(linear), tuple(widths))


def _compressed(f: _Fields, n: int) -> CompressedAttention:
    """DeepSeek-V4's compressed attention (compress_ratios: one of 0, 4, 128 per layer)."""
    ratios = f.get("compress_ratios")
    if not isinstance(ratios, list) or len(ratios) < n or any(r not in (0, 4, 128)
                                                              for r in ratios[:n]):
        raise RigscopeError(f"{f.where}: compress_ratios must give 0, 4 or 128 for each of "
                            f"the {n} layers")
    return CompressedAttention(
        ratios=tuple(ratios[:n]), q_lora_rank=f.int("q_lora_rank"),
        o_lora_rank=f.int("o_lora_rank"), o_groups=f.int("o_groups"), hc_mult=f.int("hc_mult"),
        hash_layers=f.int("num_hash_layers", default=0, positive=False),
        index_heads=f.int("index_n_heads"), index_dim=f.int("index_head_dim"),
        index_top_k=f.int("index_topk"))


def _block_sparse(f: _Fields) -> BlockSparse | None:
    """MiniMax-M3's block-sparse attention (sparse_attention_config)."""
    c = f.get("sparse_attention_config")
    if not isinstance(c, dict) or not c.get("use_sparse_attention", True):
        return None
    g = _Fields(c, None, f"{f.where}: sparse_attention_config")
    return BlockSparse(heads=g.int("sparse_num_index_heads"), dim=g.int("sparse_index_dim"),
                       block=g.int("sparse_block_size"), top_blocks=g.int("sparse_topk_blocks"),
                       local_blocks=g.int("sparse_local_block", default=1, positive=False))


def _mla(f: _Fields) -> MLA | None:
    """DeepSeek's latent attention: kv_lora_rank and the positional part are cached."""
    if not f.get("kv_lora_rank"):
        return None
    return MLA(kv_lora_rank=f.int("kv_lora_rank"), rope_dim=f.int("qk_rope_head_dim"),
               nope_dim=f.int("qk_nope_head_dim"), v_dim=f.int("v_head_dim"),
               q_lora_rank=f.int("q_lora_rank", default=0, positive=False),
               indexer_heads=f.int("index_n_heads", default=0, positive=False, own=True),
               indexer_dim=f.int("index_head_dim", default=0, positive=False, own=True),
               indexer_top_k=f.int("index_topk", default=0, positive=False, own=True))


def _moe(f: _Fields, model_type: str, ffn: int) -> MoE | None:
    """Routed experts, top-k, shared experts and their widths."""
    experts = f.get(*EXPERT_KEYS) or 0
    if not isinstance(experts, int) or experts <= 1:
        return None
    f = _Fields({k: _same(f.where, k, v) for k, v in f.raw.items()}, f.obj, f.where)
    used = f.int("num_experts_per_tok", "experts_per_token", "moe_topk", "top_k_experts",
                 "moe_top_k", "num_experts_per_token", "moe_k")
    expert_ffn = f.int("moe_intermediate_size", "expert_intermediate_size", default=ffn)
    shared = f.get("n_shared_experts", "num_shared_experts", "moe_num_shared_experts",
                   "num_shared_expert") or 0
    shared_ffn = f.get("shared_expert_intermediate_size", "shared_intermediate_size",
                       "moe_shared_expert_intermediate_size", "share_expert_dim") or 0
    if model_type.startswith("llama4"):
        shared, shared_ffn = 1, expert_ffn  # one shared expert as wide as a routed one
    elif model_type == "hunyuan_v1_moe" and shared:  # the converter: intermediate_size wide
        shared_ffn = ffn
    elif shared_ffn and not shared:  # Qwen2-MoE and Granite name only the width
        shared = 1
    elif shared and not shared_ffn:  # DeepSeek, GLM: n experts of the routed width
        shared_ffn = shared * expert_ffn
    return MoE(experts=experts, used=used, ffn=expert_ffn, shared=int(shared),
               shared_ffn=int(shared_ffn),
               latent=f.int("moe_latent_size", "routed_expert_hidden_size", default=0,
                            positive=False),
               probs_bias=(f.get("topk_method") == "noaux_tc" or bool(f.get(
                   "use_routing_bias", "use_moe_router_bias", "moe_use_aux_free",
                   "use_expert_bias", "moe_router_enable_expert_bias"))
                           or model_type in ("glm4_moe", "nemotron_h", "deepseek_v3",
                                             "kimi_linear", "afmoe")))


def _same(where: str, key: str, v: Any) -> Any:
    """A per-layer list of MoE sizes that llama.cpp's converters require equal (Hunyuan)
    as one value."""
    if key in ("moe_topk", "moe_intermediate_size", "num_shared_expert") and \
            isinstance(v, list) and v and all(isinstance(x, int) for x in v):
        if len(set(v)) > 1:
            raise RigscopeError(f"{where}: {key} varies by layer ({sorted(set(v))}): "
                                "llama.cpp's converter needs one value")
        return v[0]
    return v


def _sparse_layers(f: _Fields, n: int, model_type: str) -> tuple[str, ...]:
    """Which layers route to experts: all but the first_k_dense_replace, every
    decoder_sparse_step / moe_layer_freq / interleave_moe_layer_step, not mlp_only_layers."""
    kinds = f.get("mlp_layer_types")  # transformers' per-layer FFN kinds
    if isinstance(kinds, list) and len(kinds) >= n:
        unknown = sorted({str(k) for k in kinds[:n]} - set(MLP_LAYER_TYPES))
        if unknown:
            raise RigscopeError(f"{f.where}: mlp_layer_types names {', '.join(unknown)}; "
                                f"known: {', '.join(MLP_LAYER_TYPES)}")
        return tuple(MLP_LAYER_TYPES[str(k)] for k in kinds[:n])
    flags = _layer_flags(f, "moe_layer_freq", n)  # a 0/1 per layer (MiMo-V2, MiniMax-M3)
    if flags is not None:
        return tuple("moe" if x else "dense" for x in flags)
    dense_first = int(f.get("first_k_dense_replace", "moe_layer_start_index",
                            "num_dense_layers") or 0)
    every = int(f.get("decoder_sparse_step", "moe_layer_freq", "interleave_moe_layer_step",
                      "moe_layer_interval") or 1)
    mlp_only = set(f.get("mlp_only_layers") or [])
    return tuple("moe" if il >= dense_first and (il + 1) % every == 0 and il not in mlp_only
                 else "dense" for il in range(n))


def _kimi_layers(f: _Fields, n: int, heads: int
                 ) -> tuple[tuple[str, ...], tuple[bool, ...], SSM]:
    """Kimi-Linear / K3: linear_attn_config lists the full-attention (MLA) layers, counted
    from 1; the others are KDA layers of num_attention_heads heads of head_dim."""
    c = _Fields(f.get("linear_attn_config"), None, f"{f.where}: linear_attn_config")
    full = c.get("full_attn_layers")
    if not isinstance(full, list) or not all(isinstance(x, int) and 1 <= x <= n for x in full):
        raise RigscopeError(f"{c.where}: full_attn_layers must list layers 1..{n}")
    if c.int("num_heads", default=heads) != heads:
        raise RigscopeError(f"{c.where}: num_heads {c.get('num_heads')} differs from "
                            f"num_attention_heads {heads}: llama.cpp sizes KDA by the latter")
    hd = c.int("head_dim")
    ssm = SSM(d_inner=heads * hd, d_state=hd, n_groups=heads,
              conv_kernel=c.int("short_conv_kernel_size"), heads=heads, norm=True,
              conv_bias=False, kind="kda")
    attention = tuple("full" if il + 1 in full else "" for il in range(n))
    return attention, tuple(not k for k in attention), ssm


def _hybrid(f: _Fields, n: int, model_type: str, hidden: int, has_moe: bool
            ) -> tuple[tuple[str, ...], tuple[bool, ...], tuple[str, ...], SSM]:
    """Mamba-2 layers beside (or instead of) attention: per-layer attention, Mamba and FFN
    kinds (empty when every layer has a dense FFN) and the mixer's sizes."""
    if model_type == "mamba2":
        ssm = SSM(d_inner=f.int("expand", default=2) * hidden, d_state=f.int("state_size"),
                  n_groups=f.int("n_groups"), conv_kernel=f.int("conv_kernel"),
                  heads=f.int("num_heads"), conv_bias=bool(f.get("use_conv_bias", default=True)))
        return ("",) * n, (True,) * n, ("",) * n, ssm
    if model_type == "falcon_h1":  # attention and Mamba side by side in every layer
        d_ssm = f.get("mamba_d_ssm") or f.int("mamba_n_heads") * f.int("mamba_d_head")
        ssm = SSM(d_inner=int(d_ssm), d_state=f.int("mamba_d_state"),
                  n_groups=f.int("mamba_n_groups"), conv_kernel=f.int("mamba_d_conv"),
                  heads=f.int("mamba_n_heads"), norm=bool(f.get("mamba_rms_norm")),
                  conv_bias=bool(f.get("mamba_conv_bias", default=True)))
        return ("full",) * n, (True,) * n, (), ssm
    if model_type == "granitemoehybrid":  # each layer: Mamba or attention, then an FFN
        types = [str(t) for t in (f.get("layer_types") or [])]
        if len(types) != n:
            raise RigscopeError(f"{f.where}: layer_types lists {len(types)} layers; "
                                f"num_hidden_layers is {n}")
        heads = f.int("mamba_n_heads")
        d_inner = f.int("mamba_expand", default=2) * hidden
        ssm = SSM(d_inner=d_inner, d_state=f.int("mamba_d_state"),
                  n_groups=f.int("mamba_n_groups"), conv_kernel=f.int("mamba_d_conv"),
                  heads=heads, conv_bias=bool(f.get("mamba_conv_bias", default=True)))
        return (tuple("full" if t == "attention" else "" for t in types),
                tuple(t == "mamba" for t in types), (), ssm)
    # nemotron_h: one mixer or FFN per layer, from a pattern string (M Mamba, * attention,
    # - MLP, E MoE) or, in newer configs, a list of block types
    pattern = f.get("hybrid_override_pattern") or f.get("layers_block_type") or ""
    if isinstance(pattern, list):
        codes = {"mamba": "M", "attention": "*", "full_attention": "*", "mlp": "-", "moe": "E"}
        pattern = "".join(codes.get(str(t), "?") for t in pattern)
    pattern = str(pattern)
    if len(pattern) != n or set(pattern) - set("M*-E"):
        raise RigscopeError(f"{f.where}: hybrid_override_pattern {pattern!r} must give one of "
                            f"M * - E for each of the {n} layers")
    heads = f.int("mamba_num_heads")
    ssm = SSM(d_inner=heads * f.int("mamba_head_dim"), d_state=f.int("ssm_state_size"),
              n_groups=f.int("n_groups"), conv_kernel=f.int("conv_kernel"), heads=heads,
              conv_bias=bool(f.get("use_conv_bias", default=True)),
              state_dtype_bytes=_dtype_bytes(f.get("mamba_ssm_cache_dtype")))
    return (tuple("full" if c == "*" else "" for c in pattern), tuple(c == "M" for c in pattern),
            tuple("moe" if c == "E" else "dense" if c == "-" else "" for c in pattern), ssm)


def _dtype_bytes(name: Any) -> int:
    return {"float32": 4, "float16": 2, "bfloat16": 2}.get(str(name or "float32"), 4)


def _checkpoint_format(q: dict[str, Any]) -> str | None:
    """The weights' format as quantization_config names it (for the non-GGUF engines)."""
    method = str(q.get("quant_method") or "").lower()
    if method == "fp8":
        return "FP8-BLOCK" if q.get("weight_block_size") else "FP8"
    if method == "mxfp4":
        return "MXFP4"
    if method == "awq":
        return "AWQ"
    if method == "gptq":
        return "GPTQ-8" if q.get("bits") == 8 else "GPTQ"
    if method == "bitsandbytes":
        return "NF4" if q.get("load_in_4bit") else "INT8"
    if method in ("compressed-tensors",):
        text = json.dumps(q).lower()
        weights = [g.get("weights") or {} for g in (q.get("config_groups") or {}).values()
                   if isinstance(g, dict)]
        if any(isinstance(w, dict) and w.get("num_bits") == 4 and w.get("type") == "float"
               and w.get("group_size") == 16 for w in weights):
            return "NVFP4"
        return "FP8" if "fp8" in text else None
    if method == "modelopt" and "nvfp4" in json.dumps(q).lower():
        return "NVFP4"
    return None


def read_config(path: str | Path) -> ModelSpec:
    """path: a config.json file or a model directory that holds one (and safetensors)."""
    p = Path(path)
    cfg_path = p / "config.json" if p.is_dir() else p
    if not cfg_path.is_file():
        raise RigscopeError(f"no config.json in {p}")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RigscopeError(f"{cfg_path}: malformed JSON ({e})") from e
    shards = sorted(cfg_path.parent.glob("*.safetensors"))
    if shards and not knows(cfg):  # no layout for it: the checkpoint's own tensors
        return model_from_checkpoint(
            cfg, safetensors_shapes(shards), where=str(cfg_path), id=cfg_path.parent.name,
            source=f"config.json {cfg_path} + the tensors of {len(shards)} safetensors")
    return model_from_config(
        cfg, where=str(cfg_path), id=cfg_path.parent.name,
        checkpoint_params=count_safetensors_params(shards) if shards else None,
        source=f"config.json {cfg_path}" + (f" + {len(shards)} safetensors" if shards else ""))


def model_from_config(cfg: dict[str, Any], *, where: str = "config.json", id: str = "",
                      checkpoint_params: int | None = None, source: str = "") -> ModelSpec:
    """A ModelSpec from a parsed config.json (no I/O): llama.cpp's layout of its tensors."""
    read = architecture_from_config(cfg, where)
    spec = build_model(read.name or id or "model", read.architecture,
                       published_params=checkpoint_params, source=source or where)
    return with_checkpoint(spec, read)


def model_from_checkpoint(cfg: dict[str, Any], shapes: dict[str, list[int]], *,
                          where: str = "config.json", id: str = "", source: str = "",
                          ) -> ModelSpec:
    """A model of a model_type rigscope has no layout for, from its checkpoint's tensors
    (safetensors headers: name -> shape) and the config's standard keys (no I/O): the
    tensors named as llama.cpp's converter names them, the KV cache sized from the config's
    heads on the layers that have attention projections, experts from the stacked tensors."""
    if not isinstance(cfg, dict):
        raise RigscopeError(f"{where}: expected a JSON object")
    text, _ = _text_config(cfg)
    model_type = str(text.get("model_type") or "")
    f = _Fields(text, None, where)
    n = f.int("num_hidden_layers", "num_layers", "n_layer")
    hidden = f.int("hidden_size", "d_model", "n_embd")
    heads = f.int("num_attention_heads", "n_head")
    kv_heads = f.int("num_key_value_heads", "num_kv_heads", default=heads)
    head_dim = f.int("head_dim", default=hidden // heads)
    if heads % kv_heads:
        raise RigscopeError(f"{where}: num_key_value_heads {kv_heads} must divide "
                            f"num_attention_heads {heads}")
    mapped = map_checkpoint(shapes, n)
    by_name = {t.name: t for t in mapped.tensors}

    def has(il: int, *parts: str) -> bool:
        return any(f"blk.{il}.{p}.weight" in by_name for p in parts)

    attention = tuple("full" if has(il, "attn_k", "attn_qkv", "attn_kv_a_mqa") else ""
                      for il in range(n))
    if not any(attention):
        raise RigscopeError(f"{where}: model_type {model_type!r}: no layer of the checkpoint "
                            "has attention projections llama.cpp's tables name")
    ffn_kinds = tuple("moe" if has(il, "ffn_gate_inp", "ffn_down_exps", "ffn_gate_up_exps")
                      else "dense" if has(il, "ffn_down") else "" for il in range(n))
    moe = None
    stacked = next((t for t in mapped.tensors if ".ffn_down_exps." in t.name), None)
    if stacked is not None and len(stacked.shape) == 3:
        shexp = next((t for t in mapped.tensors if ".ffn_down_shexp." in t.name), None)
        moe = MoE(experts=stacked.shape[2], used=f.int(
            "num_experts_per_tok", "num_experts_per_token", "experts_per_token", "moe_topk",
            "top_k_experts", default=1), ffn=stacked.shape[0], shared=int(shexp is not None),
            shared_ffn=shexp.shape[0] if shexp is not None else 0,
            probs_bias=any(".exp_probs_b." in t.name for t in mapped.tensors))
    widths = [t.shape[0] for t in mapped.tensors if t.name.endswith(".ffn_down.weight")]
    quiet = [il for il in range(n) if not attention[il]]
    architecture = Architecture(
        model_type=model_type, arch="llama", layers=n, hidden=hidden,
        vocab=f.int("vocab_size"), max_context=f.int(
            "max_position_embeddings", "max_seq_len", "seq_length", default=0, positive=False),
        heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        head_dim_v=f.int("head_dim_v", "v_head_dim", default=head_dim),
        ffn=max(widths, default=0), attention=attention, ffn_kinds=ffn_kinds, moe=moe,
        tie_embeddings="output.weight" not in by_name)
    unnamed = (f"; {len(mapped.unmapped)} kind(s) it does not name ("
               f"{', '.join(mapped.unmapped[:3])}) are priced at the mix's default type"
               if mapped.unmapped else "")
    warnings = [
        f"model_type {model_type!r} is not one rigscope knows: its {len(mapped.tensors)} "
        "weight tensors come from the checkpoint's safetensors headers, named by llama.cpp's "
        f"converter tables{unnamed}; the KV cache is sized from the config's "
        f"{kv_heads} KV heads x {head_dim} on the {n - len(quiet)} layers with attention "
        "projections. No llama.cpp loader was checked against this layout: take weights as "
        "+-5% and the KV cache and compute buffer as unverified"]
    if quiet:
        warnings.append(f"{len(quiet)} layer(s) without attention projections (first: "
                        f"{quiet[0]}) keep no KV cache here; a recurrent state they may "
                        "hold is not counted")
    q = text.get("quantization_config") or {}
    return ModelSpec(id=str(cfg.get("_name_or_path") or id or "model"),
                     architecture=architecture, tensors=mapped.tensors,
                     published_params=sum(math.prod(s) for s in shapes.values()) or None,
                     source=source or where,
                     checkpoint_format=_checkpoint_format(q) if isinstance(q, dict) else None,
                     warnings=tuple(warnings))


def knows(cfg: Any) -> bool:
    """Whether rigscope has a layout for the config's model_type."""
    return isinstance(cfg, dict) and str(_text_config(cfg)[0].get("model_type") or "") in \
        LLAMA_ARCH


def with_checkpoint(spec: ModelSpec, read: ConfigRead) -> ModelSpec:
    import dataclasses

    return dataclasses.replace(spec, checkpoint_format=read.checkpoint_format,
                               notes=read.notes, warnings=read.warnings)


def count_safetensors_params(files: list[Path]) -> int:
    """Exact parameter count from safetensors headers (no tensor data is read)."""
    return sum(header_params(raw, str(f)) for f, raw in _headers(files))


def safetensors_shapes(files: list[Path]) -> dict[str, list[int]]:
    """Every tensor's shape the safetensors headers list (no tensor data is read)."""
    out: dict[str, list[int]] = {}
    for f, raw in _headers(files):
        out |= header_shapes(raw, str(f))
    return out


def _headers(files: list[Path]) -> Iterator[tuple[Path, bytes]]:
    for f in files:
        size = f.stat().st_size
        with f.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise RigscopeError(f"{f}: truncated safetensors header")
            (n,) = struct.unpack("<Q", raw)
            if n > min(size - 8, _MAX_HEADER):
                raise RigscopeError(f"{f}: safetensors header length {n} exceeds the file")
            yield f, fh.read(n)


def header_shapes(raw: bytes, where: str) -> dict[str, list[int]]:
    """name -> shape of every tensor a safetensors header lists."""
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RigscopeError(f"{where}: malformed safetensors header ({e})") from e
    if not isinstance(header, dict):
        raise RigscopeError(f"{where}: malformed safetensors header")
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        shape = info.get("shape")
        if isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape):
            out[name] = shape
    return out


def header_params(raw: bytes, where: str) -> int:
    """Parameters a safetensors header lists (scales of quantized checkpoints excluded)."""
    return sum(math.prod(shape) for name, shape in header_shapes(raw, where).items()
               if not QUANT_AUX.search(name))
