"""A ModelSpec from a GGUF header: the file's exact tensor types and sizes, and its
architecture read from the metadata as llama.cpp reads it (per-layer head counts and FFN
widths, sliding-window patterns, MLA, experts, Mamba-2 state sizes)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from rigscope.catalog import quant_file
from rigscope.errors import RigscopeError
from rigscope.sources.gguf_header import GGUFHeader, NeedMore, parse_header
from rigscope.specs import (
    MLA,
    SSM,
    Architecture,
    BlockSparse,
    CompressedAttention,
    ModelSpec,
    MoE,
    Tensor,
)

_LAYER = re.compile(r"^blk\.(\d+)\.")
# llama.cpp's default sliding-window pattern per architecture (load_swa_pattern(ml, n)): of
# every n layers the first n - 1 use the window; llama4's are chunked
SWA_PATTERN = {"gemma2": 2, "gemma3": 6, "cohere2": 4, "olmo2": 4, "gpt-oss": 2, "llama4": 4,
               "exaone4": 4}
NO_SWA = {"phi3"}  # llama.cpp reads their window but attends to every token
# llama.cpp applies these architectures' window only at this layer count (EXAONE 4.0 32B;
# src/models/exaone4.cpp), every other shape attends to every token
SWA_AT_LAYERS = {"exaone4": 64}
CSA_COMPUTE_WARNING = (
    "DeepSeek-V4's compute buffer is not fitted to llama.cpp's graph (hyper-connections, "
    "compressors): it may be off by half; weights and caches are as llama.cpp allocates them")
FIRST_READ = 1 << 20


def read_gguf(path: str | os.PathLike[str]) -> ModelSpec:
    """A ModelSpec whose tensors carry the file's exact types and byte sizes."""
    p = Path(path)
    if not p.is_file():
        raise RigscopeError(f"GGUF file not found: {p}")
    size = p.stat().st_size
    want = FIRST_READ
    with p.open("rb") as f:
        while True:
            f.seek(0)
            buf = f.read(want)
            try:
                header = parse_header(buf, str(p), size)
                break
            except NeedMore as more:
                if len(buf) >= size:
                    raise RigscopeError(f"{p}: GGUF header is truncated") from None
                want = min(max(more.needed, 2 * want), size)
    return spec_from_header(header, p.name, f"GGUF file {p}")


def _per_layer(value: Any, n: int, default: int = 0) -> list[int]:
    if isinstance(value, list):
        return [int(v) for v in value[:n]] + [int(value[-1]) if value else default] * (
            n - len(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * n
    return [default] * n


def spec_from_header(h: GGUFHeader, id: str, source: str) -> ModelSpec:
    """Architecture and tensors from a parsed header (no I/O)."""
    f = h.fields
    arch = str(f.get("general.architecture") or "")
    if not arch:
        raise RigscopeError(f"{id}: GGUF metadata lacks general.architecture")
    a = arch + "."

    def num(key: str, default: int | None = None) -> int:
        v = f.get(a + key, default)
        if isinstance(v, list):
            v = max(v) if v else default
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise RigscopeError(f"{id}: GGUF metadata lacks a valid {a}{key} value")
        return v

    n_all = num("block_count")
    nextn = num("nextn_predict_layers", 0)
    n = n_all - nextn
    hidden = num("embedding_length")
    if n <= 0 or hidden <= 0 or n_all > len(h.tensors):  # every layer has a tensor
        raise RigscopeError(f"{id}: GGUF metadata lacks a valid {a}block_count value")
    heads_l = _per_layer(f.get(a + "attention.head_count"), n)
    kv_l = _per_layer(f.get(a + "attention.head_count_kv", f.get(a + "attention.head_count")),
                      n)
    ffn_l = _per_layer(f.get(a + "feed_forward_length", 0), n)
    heads = max(heads_l) if heads_l else 0
    kv_heads = max(kv_l) if kv_l else 0
    head_dim = num("attention.key_length", hidden // heads if heads else 0)
    head_dim_v = num("attention.value_length", head_dim)
    tensors = []
    for t in h.tensors:
        m = _LAYER.match(t.name)
        layer = int(m.group(1)) if m else None
        if layer is not None and layer >= n:
            continue  # multi-token-prediction layers: llama.cpp does not load them
        tensors.append(Tensor(name=t.name, shape=t.shape, layer=layer, ggml_type=t.ggml_type,
                              nbytes=t.nbytes, offset=t.offset))
    names = {t.name for t in tensors}

    def has(il: int, part: str) -> bool:
        return f"blk.{il}.{part}" in names

    mla = None
    kv_lora = num("attention.kv_lora_rank", 0)
    if kv_lora:  # the file's K is the cached latent; the model's heads are MLA's
        rope = num("rope.dimension_count", 64)
        k_mla = num("attention.key_length_mla", 0) or head_dim
        mla = MLA(kv_lora_rank=kv_lora, rope_dim=rope, nope_dim=k_mla - rope,
                  indexer_heads=num("attention.indexer.head_count", 0),
                  indexer_dim=num("attention.indexer.key_length", 0),
                  indexer_top_k=num("attention.indexer.top_k", 0),
                  v_dim=num("attention.value_length_mla", 0) or head_dim_v,
                  q_lora_rank=num("attention.q_lora_rank", 0))
        kv_heads, head_dim, head_dim_v = heads, k_mla, mla.v_dim
    def mixes(il: int) -> bool:  # a recurrent mixer: Mamba, Gated DeltaNet, short conv, KDA
        return has(il, "ssm_conv1d.weight") or has(il, "shortconv.conv.weight") or \
            has(il, "ssm_conv1d_q.weight")

    recurrent_arch = arch in ("mamba", "mamba2", "falcon-h1") or any(map(mixes, range(n)))
    mamba = tuple(map(mixes, range(n))) if recurrent_arch else ()
    short_conv = any(has(il, "shortconv.conv.weight") for il in range(n))
    kda = any(has(il, "ssm_f_a.weight") for il in range(n))
    gdn = not kda and any(has(il, "ssm_beta.weight") or has(il, "ssm_ba.weight")
                          for il in range(n))
    q_width = next((t.shape[1] for t in tensors if t.name.endswith("attn_q.weight")
                    and len(t.shape) == 2), 0)
    attention = []
    for il in range(n):
        attends = any(has(il, x) for x in ("attn_q.weight", "attn_qkv.weight",
                                           "attn_q_a.weight", "attn_kv_a_mqa.weight")) and not (
            gdn and mamba[il])  # Gated DeltaNet's attn_qkv feeds its recurrence
        attention.append("full" if attends and kv_l[il] > 0 else "")
    window = num("attention.sliding_window", 0)
    pattern = f.get(a + "attention.sliding_window_pattern")
    if arch == "llama4" and a + "attention.sliding_window" not in f:
        window = 8192  # llama.cpp's chunk size for Llama 4 when the file names none
    if window and arch not in NO_SWA and SWA_AT_LAYERS.get(arch, n) == n:
        if isinstance(pattern, list):
            swa = [bool(x) for x in pattern[:n]]
        else:
            every = pattern if isinstance(pattern, int) else SWA_PATTERN.get(arch, 0)
            swa = [every == 0 or il % every < every - 1 for il in range(n)] if every else \
                [False] * n
        kind = "chunked" if arch == "llama4" else "sliding"
        attention = [kind if (k and swa[il]) else k for il, k in enumerate(attention)]
    else:
        window = 0
    csa = None
    ratios = f.get(a + "attention.compress_ratios")
    if isinstance(ratios, list) and len(ratios) >= n:  # DeepSeek-V4: every layer windowed
        csa = CompressedAttention(
            ratios=tuple(int(r) for r in ratios[:n]), q_lora_rank=num("attention.q_lora_rank"),
            o_lora_rank=num("attention.output_lora_rank"),
            o_groups=num("attention.output_group_count"),
            hc_mult=num("hyper_connection.count"), hash_layers=num("hash_layer_count", 0),
            index_heads=num("attention.indexer.head_count"),
            index_dim=num("attention.indexer.key_length"),
            index_top_k=num("attention.indexer.top_k"))
        attention = ["sliding" if k else k for k in attention]
    head_dim_swa = num("attention.key_length_swa", 0)
    kv_heads_swa = 0
    if head_dim_swa:  # sliding and full layers sized apart (Gemma 4): head_count_kv per layer
        full = [kv_l[il] for il, k in enumerate(attention) if k == "full"]
        swa_kv = [kv_l[il] for il, k in enumerate(attention) if k == "sliding"]
        kv_heads = max(full, default=kv_heads)
        kv_heads_swa = max(swa_kv, default=0)
    full_heads = {heads_l[il] for il, k in enumerate(attention) if k == "full"}
    swa_heads = {heads_l[il] for il, k in enumerate(attention) if k == "sliding"}
    heads_swa = 0
    if len(full_heads) == 1 and len(swa_heads) == 1 and full_heads != swa_heads and not mla:
        (heads,), (heads_swa,) = full_heads, swa_heads  # Step 3.5: sliding layers' own heads
    per_layer_kv = len({kv_l[il] for il, k in enumerate(attention) if k}) > 1 and \
        not head_dim_swa
    attn_linear = [has(il, "attn_output.weight") and not attention[il] for il in range(n)]
    v_from_k = any(k == "full" and not has(il, "attn_v.weight") and has(il, "attn_k.weight")
                   for il, k in enumerate(attention))
    ffn_kinds = []
    for il in range(n):
        if has(il, "ffn_gate_inp.weight"):
            ffn_kinds.append("moe")
        elif has(il, "ffn_down.weight"):
            ffn_kinds.append("dense")
        else:
            ffn_kinds.append("")
    moe = None
    experts = num("expert_count", 0)
    if experts:
        used = num("expert_used_count", 0)
        shared_ffn = num("expert_shared_feed_forward_length", 0)
        expert_ffn = num("expert_feed_forward_length", 0)
        sample = next((t for t in tensors if "ffn_down_exps" in t.name), None)
        if sample is not None:
            expert_ffn = sample.shape[0]
        shexp = next((t for t in tensors if "ffn_down_shexp" in t.name), None)
        if shexp is not None:
            shared_ffn = shexp.shape[0]
        moe = MoE(experts=experts, used=used, ffn=expert_ffn,
                  shared=num("expert_shared_count", 1 if shexp is not None else 0),
                  shared_ffn=shared_ffn, latent=num("moe_latent_size", 0),
                  probs_bias=any(t.name.endswith("exp_probs_b.bias") for t in tensors))
    msa = None
    if mla is None and num("attention.indexer.block_size", 0):  # MiniMax's block-sparse
        msa = BlockSparse(heads=num("attention.indexer.head_count"),
                          dim=num("attention.indexer.key_length"),
                          block=num("attention.indexer.block_size"),
                          top_blocks=num("attention.indexer.top_k"),
                          local_blocks=num("attention.indexer.local_blocks", 1))
    ssm = None
    if short_conv:
        ssm = SSM(d_inner=hidden, d_state=0, n_groups=0, conv_kernel=num("shortconv.l_cache"),
                  heads=0, norm=False, conv_bias=False, kind="shortconv")
    elif kda:
        hd = num("kda.head_dim")
        ssm = SSM(d_inner=hd * heads, d_state=hd, n_groups=heads, heads=heads,
                  conv_kernel=num("ssm.conv_kernel"), conv_bias=False, kind="kda")
    elif recurrent_arch:
        ssm = SSM(d_inner=num("ssm.inner_size"), d_state=num("ssm.state_size"),
                  n_groups=num("ssm.group_count", 1), conv_kernel=num("ssm.conv_kernel"),
                  heads=num("ssm.time_step_rank", 0),
                  norm=any(t.name.endswith("ssm_norm.weight") for t in tensors),
                  conv_bias=any(t.name.endswith("ssm_conv1d.bias") for t in tensors),
                  kind="gdn" if gdn else "mamba2")
    embd = next((t for t in tensors if t.name == "token_embd.weight"), None)
    vocab = embd.shape[1] if embd is not None and len(embd.shape) == 2 else int(
        f.get("tokenizer.ggml.tokens") or 0)
    dense_widths = [w for il, (w, k) in enumerate(zip(ffn_l, ffn_kinds, strict=True))
                    if k == "dense" or has(il, "ffn_down.weight")]
    architecture = Architecture(
        model_type=arch, arch=arch, layers=n, hidden=hidden, vocab=vocab,
        max_context=num("context_length", 0), heads=heads, kv_heads=kv_heads,
        head_dim=head_dim, head_dim_v=head_dim_v,
        ffn=max(dense_widths) if dense_widths else max(ffn_l, default=0),
        attention=tuple(attention), ffn_kinds=tuple(ffn_kinds), mamba=mamba,
        window=window, moe=moe, mla=mla, ssm=ssm, msa=msa, csa=csa,
        tie_embeddings="output.weight" not in names,
        rope_factors="llama3" if "rope_freqs.weight" in names else
        "longrope" if "rope_factors_long.weight" in names else "",
        dense_ffn=tuple(ffn_l) if len(set(dense_widths)) > 1 else (),
        attn_gate=bool(heads and mla is None and q_width == 2 * heads * head_dim),
        head_dim_swa=head_dim_swa, kv_heads_swa=kv_heads_swa, heads_swa=heads_swa,
        v_from_k=v_from_k,
        kv_heads_per_layer=tuple(kv_l) if per_layer_kv else (),
        attn_linear=tuple(attn_linear) if any(attn_linear) else (),
        moe_dense=any(k == "moe" and has(il, "ffn_down.weight")
                      for il, k in enumerate(ffn_kinds)),
        nextn_layers=nextn)
    name = f.get("general.name") or id
    return ModelSpec(id=id, architecture=architecture, tensors=tuple(tensors),
                     file_type=_ftype_name(f.get("general.file_type")),
                     source=f"{source} ({name})",
                     warnings=(CSA_COMPUTE_WARNING,) if csa is not None else ())


def _ftype_name(ftype: Any) -> str | None:
    if not isinstance(ftype, int):
        return None
    ftype &= ~1024  # LLAMA_FTYPE_GUESSED
    for name, mix in quant_file().gguf_mixes.items():
        if mix.ftype == ftype:
            return name
    return None
