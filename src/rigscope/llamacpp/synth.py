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
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter, LlamaFileType
from gguf.quants import quantize

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


MROPE_ARCHS = ("qwen35", "qwen35moe", "qwen3vl", "qwen3vlmoe", "qwen2vl")
# keys an architecture's loader requires that the layout does not determine: with its
# prefix (GPT-NeoX's residual wiring) and without (Apertus' xIELU activation, learned per
# layer: one value serves every layer)
ARCH_KEYS: dict[str, dict[str, Any]] = {"gptneox": {"use_parallel_residual": True}}
GLOBAL_KEYS: dict[str, dict[str, float]] = {
    "apertus": {"xielu.alpha_n": 0.8, "xielu.alpha_p": 0.8, "xielu.beta": 0.5,
                "xielu.eps": -1e-6},
}


def _per_layer(values: list[int]) -> int | list[int]:
    return values[0] if len(set(values)) == 1 else values


def arch_metadata(spec: ModelSpec) -> dict[str, Any]:
    """The architecture keys llama.cpp reads for this model (the writer adds the prefix), as
    its converter writes them: per-layer arrays where layers differ (hybrids), MLA's cached
    latent as the K head, the sliding-window pattern as one flag per layer."""
    a = spec.architecture
    n = a.layers
    # a layer's dense FFN width (also beside experts, Gemma 4), else its experts' width
    down = {t.layer: t.shape[0] for t in spec.tensors if t.name.endswith(".ffn_down.weight")}
    ffn = [down.get(il) or (a.moe.ffn if k == "moe" and a.moe else 0)
           for il, k in enumerate(a.ffn_kinds)]
    meta: dict[str, Any] = {
        "context_length": a.max_context or 4096,
        "embedding_length": a.hidden,
        "block_count": n,
        "feed_forward_length": _per_layer(ffn),
        "attention.head_count": a.heads if any(a.attention) else 0,
        "attention.head_count_kv": _per_layer([a.layer_kv_heads(il) if k else 0
                                               for il, k in enumerate(a.attention)]),
        "rope.freq_base": 10000.0,
        "attention.layer_norm_rms_epsilon": 1e-5,
        "attention.layer_norm_epsilon": 1e-5,
        "logit_scale": 1.0,
        "vocab_size": a.vocab,
    }
    if a.mla is not None:
        m = a.mla
        meta |= {"attention.head_count_kv": _per_layer([1 if k else 0 for k in a.attention]),
                 "attention.key_length": m.kv_lora_rank + m.rope_dim,
                 "attention.value_length": m.kv_lora_rank,
                 "attention.key_length_mla": m.nope_dim + m.rope_dim,
                 "attention.value_length_mla": m.v_dim,
                 "attention.kv_lora_rank": m.kv_lora_rank,
                 "rope.dimension_count": m.rope_dim}
        meta["attention.q_lora_rank"] = m.q_lora_rank  # 0: queries not compressed
        if m.indexer_heads:
            meta |= {"attention.indexer.head_count": m.indexer_heads,
                     "attention.indexer.key_length": m.indexer_dim,
                     "attention.indexer.top_k": m.indexer_top_k}
    elif any(a.attention):
        meta |= {"attention.key_length": a.head_dim, "attention.value_length": a.head_dim_v,
                 "rope.dimension_count": a.rope_dim or a.head_dim}
    if a.kv_heads_per_layer or a.heads_swa:  # heads per layer, 0 where attention is dropped
        meta["attention.head_count"] = _per_layer(
            [a.layer_heads(il) if k or (a.attn_linear and a.attn_linear[il]) else 0
             for il, k in enumerate(a.attention)])
    if a.head_dim_swa:  # the sliding layers' own head size (Gemma 4), rotated whole
        meta |= {"attention.key_length_swa": a.head_dim_swa,
                 "attention.value_length_swa": a.head_dim_swa,
                 "rope.dimension_count_swa": a.head_dim_swa,
                 "embedding_length_per_layer_input": 0}
    if a.moe is not None:
        moe = a.moe
        meta |= {"expert_count": moe.experts, "expert_used_count": moe.used,
                 "expert_feed_forward_length": moe.ffn,
                 "expert_gating_func": 2 if moe.probs_bias else 1,
                 "expert_weights_scale": 1.0}
        if moe.latent:
            meta["moe_latent_size"] = moe.latent
            meta["expert_latent_length"] = moe.latent  # Kimi K3's name for it
        if moe.shared:
            meta |= {"expert_shared_count": moe.shared,
                     "expert_shared_feed_forward_length": moe.shared_ffn}
        first_moe = a.ffn_kinds.index("moe")
        meta["leading_dense_block_count"] = first_moe
        meta["interleave_moe_layer_step"] = first_moe + 1 if a.arch == "llama4" else 1
    if a.window:
        meta["attention.sliding_window"] = a.window
        meta["attention.sliding_window_pattern"] = [a.is_swa(il) for il in range(n)]
    if a.ssm is not None:
        s = a.ssm
        meta |= {"ssm.conv_kernel": s.conv_kernel, "ssm.inner_size": s.d_inner,
                 "ssm.state_size": s.d_state, "ssm.time_step_rank": s.heads,
                 "ssm.group_count": s.n_groups}
        if s.kind == "shortconv":
            meta = {k: v for k, v in meta.items() if not k.startswith("ssm.")}
            meta["shortconv.l_cache"] = s.conv_kernel
        if s.kind == "kda":
            meta["kda.head_dim"] = s.d_state
        if s.kind == "gdn":  # which layers are linear; the others' KV heads as one value
            meta["attention.recurrent_layers"] = [a.is_recurrent(il) for il in range(n)]
            meta["attention.head_count_kv"] = a.kv_heads
    if a.csa is not None:  # DeepSeek-V4 (sqrt-softplus routing, as its loader requires)
        c = a.csa
        meta |= {"attention.q_lora_rank": c.q_lora_rank,
                 "attention.output_group_count": c.o_groups,
                 "attention.output_lora_rank": c.o_lora_rank,
                 "attention.compress_ratios": list(c.ratios),
                 "attention.compress_rope_freq_base": 160000.0,
                 "attention.indexer.head_count": c.index_heads,
                 "attention.indexer.key_length": c.index_dim,
                 "attention.indexer.top_k": c.index_top_k,
                 "hyper_connection.count": c.hc_mult,
                 "hyper_connection.sinkhorn_iterations": 20,
                 "hyper_connection.epsilon": 1e-6, "hash_layer_count": c.hash_layers,
                 "expert_gating_func": 4, "expert_weights_norm": True,
                 "swiglu_clamp_exp": [10.0] * n, "rope.dimension_count": a.rope_dim}
    if a.msa is not None:
        meta |= {"attention.indexer.head_count": a.msa.heads,
                 "attention.indexer.key_length": a.msa.dim,
                 "attention.indexer.top_k": a.msa.top_blocks,
                 "attention.indexer.block_size": a.msa.block,
                 "attention.indexer.local_blocks": a.msa.local_blocks}
    if a.attn_res:  # Kimi K3: the residuals' block size and its situ activation
        meta |= {"attn_res.block_size": 12, "activation.situ_beta": 4.0,
                 "activation.situ_linear_beta": 25.0}
    if a.arch in MROPE_ARCHS:  # multimodal rope: sections of the rotated half, required
        rot = (a.rope_dim or a.head_dim) // 2
        meta["rope.dimension_sections"] = [rot - 2 * (rot // 3), rot // 3, rot // 3, 0]
    return meta | ARCH_KEYS.get(a.arch, {})


def write_gguf(spec: ModelSpec, path: Path, tokenizer: Path, seed: int = 0) -> Path:
    """A GGUF of `spec` with random F16 matrices and F32 vectors (small, normal values)."""
    tok = tokenizer_fields(tokenizer)
    if len(tok.get("tokenizer.ggml.tokens", [])) != spec.vocab:
        raise RigscopeError(f"{tokenizer} has {len(tok.get('tokenizer.ggml.tokens', []))} "
                            f"tokens; the model needs {spec.vocab}")
    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(path), spec.arch)
    w.add_name("random weights")  # llama.cpp keys tokenizer quirks on the name
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    for key, value in arch_metadata(spec).items():
        full = f"{spec.arch}.{key}"
        if isinstance(value, list):
            w.add_array(full, value)
        elif isinstance(value, bool):
            w.add_bool(full, value)
        elif isinstance(value, float):
            w.add_float32(full, value)
        else:
            w.add_uint32(full, int(value))
    for key, number in GLOBAL_KEYS.get(spec.arch, {}).items():
        w.add_float32(key, number)
    for key, value in tok.items():
        if isinstance(value, list):
            w.add_array(key, value)
        elif isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        else:
            w.add_string(key, str(value))
    native = spec.architecture.native_experts
    for t in spec.tensors:
        shape = tuple(reversed(t.shape))  # numpy order: the row length last
        if t.name.endswith("tid2eid.weight"):  # DeepSeek-V4's token-id -> expert table
            experts = spec.architecture.moe.experts if spec.architecture.moe else 1
            w.add_tensor(t.name, rng.integers(0, experts, shape, dtype=np.int32))
        elif not t.quantizable:  # as converters write them: F32
            data = (1.0 + 0.01 * rng.standard_normal(shape)).astype(np.float32)
            w.add_tensor(t.name, data)
        elif native and "_exps." in t.name:  # as the checkpoint ships them (gpt-oss: MXFP4)
            qtype = GGMLQuantizationType[native]
            values = (0.02 * rng.standard_normal(shape)).astype(np.float32)
            w.add_tensor(t.name, quantize(values, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(t.name, (0.02 * rng.standard_normal(shape)).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
