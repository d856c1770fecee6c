"""Memory parts of a model at a quantization and context: weights, KV cache, compute buffers.

Pure arithmetic, no placement: placement.py decides which device holds which part.
Constants describe llama.cpp builds of 2025-2026 unless a comment says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import NamedTuple, TypedDict

import numpy as np

from rigscope.catalog import ggml_types
from rigscope.errors import RigscopeError
from rigscope.estimator.memo import by_model
from rigscope.estimator.quantize import tensor_bytes, tensor_shapes, tensor_sizes
from rigscope.estimator.repack import repacked
from rigscope.specs import ModelSpec, Quant

MIB = 1024**2

# llama.cpp defaults (common/common.h): logical and physical batch sizes.
N_BATCH = 2048
N_UBATCH = 512
# The KV cache is padded to 256 cells (llama-context.cpp pads n_ctx to 256 since 2025).
KV_PAD = 256
# Pipeline parallelism keeps this many copies of each split's inputs (GGML_SCHED_MAX_COPIES).
PP_COPIES = 4

# KV cache element types by engine. llama.cpp: ggml types; vLLM: fp8 stores one byte.
KV_TYPES = {
    "f16": "F16", "bf16": "BF16", "f32": "F32", "q8_0": "Q8_0", "q4_0": "Q4_0",
    "q4_1": "Q4_1", "q5_0": "Q5_0", "q5_1": "Q5_1", "iq4_nl": "IQ4_NL", "fp8": "fp8",
}


@dataclass(frozen=True)
class LayerWeights:
    """Weight bytes per repeating layer, plus the parts outside the layers."""

    per_layer: tuple[int, ...]
    token_embd: int  # input embeddings (llama.cpp keeps them in host memory)
    output: int  # output norm + LM head (the "output layer"); with tied embeddings, a copy
    output_unique: int  # the output layer's own tensors (0 for a tied LM head)
    other: int  # anything else outside the layers (rope_freqs, ...)
    types: dict[str, int]  # bytes by tensor type, for the basis
    active_per_layer: tuple[int, ...]  # bytes one token reads (MoE: the experts it uses)
    active_params_per_layer: tuple[int, ...]  # weights one token multiplies, per layer
    routed_per_layer: tuple[int, ...]  # bytes of the routed experts, all of them, per layer
    routed_params_per_layer: tuple[int, ...]  # their weights
    output_params: int  # weights of the LM head

    @property
    def total(self) -> int:
        """Bytes of all weights, each tensor once (a tied LM head is not counted twice)."""
        return sum(self.per_layer) + self.token_embd + self.other + self.output_unique

    @cached_property
    def prefix(self) -> list[int]:
        """prefix[i] = bytes of layers 0..i-1."""
        return [0, *accumulate(self.per_layer)]


@by_model
def layer_weights(model: ModelSpec, quant: Quant) -> LayerWeights:
    """Weight bytes of `model` at `quant` by layer (memoized: plans ask for it many times)."""
    return _layer_weights(model, quant)


def routed_share(model: ModelSpec) -> float:
    """The share of a routed expert tensor one token reads: used / experts (1 without)."""
    return model.experts_used / model.experts if model.experts else 1.0


class _Slots(NamedTuple):
    """Each tensor's block as part_layers numbers them (a tied head's second part left out),
    whether it is a routed expert tensor of a repeating layer, and what of the layers'
    weights does not depend on the quantization."""

    block: np.ndarray
    in_block: np.ndarray  # a repeating layer's (0 <= block < layers)
    routed: np.ndarray
    active_params_per_layer: tuple[int, ...]
    routed_params_per_layer: tuple[int, ...]
    output_params: int


def _by_layer(block: np.ndarray, mask: np.ndarray, values: np.ndarray, n: int
              ) -> tuple[int, ...]:
    """values summed per repeating layer over the tensors in mask (a subset of in_block)."""
    return tuple(np.bincount(block[mask], weights=values[mask], minlength=n)
                 .astype(np.int64).tolist())


@by_model
def _slots(model: ModelSpec) -> _Slots:
    n, tensors = model.layers, model.tensors
    block = np.array([layer for j, layer, name in part_layers(model)
                      if name == tensors[j].name], dtype=np.int64)
    in_block = (block >= 0) & (block < n)
    routed = in_block & np.array(["_exps" in t.name for t in tensors], dtype=bool)
    _, count = tensor_shapes(model)
    params = count.astype(np.float64)  # sums of integers below 2**53: exact
    active = np.where(routed, np.trunc(params * routed_share(model)), params)
    output = params[block == n].sum() + (params[block == -1].sum() if model.tie_embeddings
                                         else 0)
    return _Slots(block, in_block, routed, _by_layer(block, in_block, active, n),
                  _by_layer(block, routed, params, n), int(output))


def _layer_weights(model: ModelSpec, quant: Quant) -> LayerWeights:
    n = model.layers
    st = _slots(model)
    sizes = tensor_sizes(model, quant)
    b = sizes.nbytes.astype(np.float64)  # sums of integers below 2**53: exact
    active = np.where(st.routed, np.trunc(b * routed_share(model)), b)
    embd = b[st.block == -1]
    output = int(b[st.block == n].sum())
    kinds = dict.fromkeys(sizes.types)  # in order of first appearance
    code = {ty: i for i, ty in enumerate(kinds)}
    per_type = np.bincount(np.array([code[ty] for ty in sizes.types], dtype=np.int64),
                           weights=b, minlength=len(kinds))
    token_embd = int(embd[-1]) if len(embd) else 0
    return LayerWeights(
        per_layer=_by_layer(st.block, st.in_block, b, n), token_embd=token_embd,
        output=output + (token_embd if model.tie_embeddings else 0),
        output_unique=output, other=int(b[st.block == -2].sum()),
        types={ty: int(v) for ty, v in zip(kinds, per_type, strict=True)},
        active_per_layer=_by_layer(st.block, st.in_block, active, n),
        active_params_per_layer=st.active_params_per_layer,
        routed_per_layer=_by_layer(st.block, st.routed, b, n),
        routed_params_per_layer=st.routed_params_per_layer, output_params=st.output_params,
    )


class PartGroups(NamedTuple):
    """Tensor parts placed together (llamacpp's buckets), whatever the quantization: per
    group its block (as part_layers numbers them), key, params and routed params; per part
    its tensor, group, whether it is a routed expert tensor and a matrix."""

    layer: np.ndarray
    keys: tuple[tuple[frozenset[str], int | None], ...]  # llamacpp's fractions, user buffer
    params: np.ndarray  # weights one token multiplies (2 FLOPs each)
    routed_params: np.ndarray  # all of the routed experts' weights
    routed: np.ndarray  # the group holds routed expert tensors
    part_tensor: np.ndarray
    part_group: np.ndarray
    part_routed: np.ndarray
    part_matmul: np.ndarray


@by_model
def part_layers(model: ModelSpec) -> tuple[tuple[int, int, str], ...]:
    """Every weight tensor as placement sees it, (tensor index, block, name), with a tied LM
    head as a second part of the output layer (llama.cpp loads the embedding matrix again
    there). Blocks: the layer; `layers` for the output layer; -1 token_embd; -2 others
    (memoized)."""
    n = model.layers
    out: list[tuple[int, int, str]] = []
    for j, t in enumerate(model.tensors):
        if t.layer is not None and t.layer < n:
            layer = t.layer
        elif t.name == "token_embd.weight":
            layer = -1
        elif t.name.startswith("output"):
            layer = n
        else:
            layer = -2
        out.append((j, layer, t.name))
        if layer == -1 and model.tie_embeddings:
            out.append((j, n, "output.weight"))
    return tuple(out)


def group_parts(model: ModelSpec, keys: Sequence[tuple[frozenset[str], int | None]],
                matmul: Sequence[bool]) -> PartGroups:
    """The parts of part_layers grouped by (block, key), in order of first appearance."""
    used = routed_share(model)
    index: dict[tuple[int, tuple[frozenset[str], int | None]], int] = {}
    totals: list[list[int]] = []  # per group: params, routed params
    part_group, part_routed = [], []
    tensors = model.tensors
    parts = part_layers(model)
    for (j, layer, name), key in zip(parts, keys, strict=True):
        t = tensors[j]
        routed = name == t.name and t.layer is not None and "_exps" in name  # not a tied head
        g = index.setdefault((layer, key), len(index))
        if g == len(totals):
            totals.append([0, 0])
        part_group.append(g)
        part_routed.append(routed)
        if layer >= 0:
            totals[g][0] += int(t.n_elements * used) if routed else t.n_elements
        if routed:
            totals[g][1] += t.n_elements
    group = np.array(part_group, dtype=np.int64)
    is_routed = np.array(part_routed, dtype=bool)
    sums = np.array(totals, dtype=np.float64).reshape(len(totals), 2)
    return PartGroups(
        layer=np.array([layer for layer, _ in index], dtype=np.int64),
        keys=tuple(key for _, key in index), params=sums[:, 0], routed_params=sums[:, 1],
        routed=np.bincount(group[is_routed], minlength=len(index)) > 0,
        part_tensor=np.array([j for j, _, _ in parts], dtype=np.int64), part_group=group,
        part_routed=is_routed, part_matmul=np.array(matmul, dtype=bool))


def part_names(model: ModelSpec) -> list[str]:
    """The names of part_layers' parts, in order, whatever the quantization."""
    return [name for _, _, name in part_layers(model)]


_NOT_MATMUL = ("norm", "conv1d", "gate_inp", "ssm_a", "ssm_d", "ssm_dt", "exp_probs", "sinks")


def is_matmul_weight(name: str) -> bool:
    """A weight llama.cpp multiplies with (MUL_MAT / MUL_MAT_ID), not looked up or scaled."""
    return (name.endswith(".weight") and name != "token_embd.weight"
            and not any(k in name for k in _NOT_MATMUL))


@dataclass(frozen=True)
class Repack:
    """llama.cpp's CPU repacking of a model's matrix weights (CPU-only runs)."""

    copies: int  # resident repacked bytes (a tied LM head: the embedding matrix, again)
    moved: int  # their bytes in the file: mapped pages no longer read
    buffers: tuple[str, ...]  # AMX, CPU_REPACK: the extra buffers llama.cpp reports


@by_model
def repack(model: ModelSpec, quant: Quant, features: frozenset[str]) -> Repack:
    """Which weights llama.cpp repacks on a CPU with `features` (memoized)."""
    copies = moved = 0
    buffers: set[str] = set()
    for t in model.tensors if features else ():
        tied_head = model.tie_embeddings and t.name == "token_embd.weight"
        if not (is_matmul_weight(t.name) or tied_head):
            continue
        nbytes, ty = tensor_bytes(model, quant, t)
        target = repacked(ty, t.shape, features, nbytes)
        if target is not None:
            buffers.add(target[0])
            copies += target[1]
            moved += 0 if tied_head else nbytes  # the embedding lookup still reads the file
    return Repack(copies=copies, moved=moved, buffers=tuple(sorted(buffers)))


def mapped_file_range(model: ModelSpec, quant: Quant, features: frozenset[str]) -> int | None:
    """The bytes llama.cpp maps for CPU tensors that stay in the file (CPU only): the range
    from the first to the last such tensor. None without the file's offsets."""
    if model.file_type != quant.name or not all(t.offset is not None for t in model.tensors):
        return None
    spans = []
    for t in model.tensors:
        if t.offset is None:
            continue
        nbytes, ty = tensor_bytes(model, quant, t)
        if not (is_matmul_weight(t.name) and repacked(ty, t.shape, features, nbytes)):
            spans.append((t.offset, t.offset + nbytes))
    return max(e for _, e in spans) - min(b for b, _ in spans) if spans else None


def vision_bytes(model: ModelSpec) -> int:
    """A multimodal checkpoint's vision tower, BF16, as transformers and vLLM load it
    (llama.cpp keeps it in a separate mmproj file, loaded only with --mmproj)."""
    return model.architecture.vision_params * 2


def vision_basis(model: ModelSpec) -> list[str]:
    n = model.architecture.vision_params
    return [f"vision tower: {n / 1e9:.2f} B params in BF16 = {vision_bytes(model) / 2**30:.2f} "
            "GiB (llama.cpp: a separate mmproj file)"] if n else []


def kv_element_bytes(kv_type: str, n: int) -> float:
    """Bytes of n cached values of one kind (K or V) in kv_type."""
    ty = KV_TYPES[kv_type]
    if ty == "fp8":
        return float(n)
    gt = ggml_types()[ty]
    if n % gt.block:
        raise RigscopeError(
            f"kv type {kv_type} needs rows that are a multiple of {gt.block}; this model's "
            f"are {n} wide; valid here: f16, bf16, f32"
        )
    return float(gt.row_bytes(n))


def pad(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def llamacpp_kv_cells(model: ModelSpec, context: int, batch: int, swa: bool,
                      ub: int = N_UBATCH) -> int:
    """KV cells a layer reserves: `batch` sequences of `context` tokens (the cache is padded to
    256 cells); sliding-window and chunked layers keep the window of each sequence plus one
    ubatch, padded to 256 (llama-kv-cache-iswa.cpp)."""
    full = pad(context, KV_PAD) * batch
    if swa:
        return pad(min(full, model.sliding_window * batch + ubatch(context, batch, ub)),
                   KV_PAD)
    return full


def kv_cell_bytes(model: ModelSpec, kv_type: str, il: int | None = None) -> int:
    """Bytes one token occupies in one layer's cache (0 for a layer without attention).

    llama.cpp caches K and V per KV head; with MLA one latent per token (kv_lora_rank plus the
    positional part of K), and no V; MiniMax's block-sparse layers also an indexer K and V of
    one head (llama-kv-cache-msa.cpp).
    """
    a = model.architecture
    if il is not None and not a.has_kv(il):
        return 0
    if a.mla is not None:  # the latent, and the sparse-attention indexer's key beside it
        return int(kv_element_bytes(kv_type, a.mla.kv_lora_rank + a.mla.rope_dim)
                   + kv_element_bytes(kv_type, a.mla.indexer_dim))
    if a.csa is not None:  # DeepSeek-V4's window: one K head, read as V too
        return int(kv_element_bytes(kv_type, a.head_dim))
    if il is not None and a.head_dim_swa and a.is_swa(il):  # V as wide as K there
        return 2 * int(kv_element_bytes(kv_type, a.head_dim_swa * a.layer_kv_heads(il)))
    kv = a.kv_heads if il is None else a.layer_kv_heads(il)
    # MiniMax's block-sparse indexer: a cache of its own, one head's K and V per token
    index = 2 * kv_element_bytes(kv_type, a.msa.dim) if a.msa is not None and (
        il is None or a.is_block_sparse(il)) else 0
    return int(kv_element_bytes(kv_type, a.head_dim * kv)
               + kv_element_bytes(kv_type, a.head_dim_v * kv) + index)


def recurrent_state_bytes(model: ModelSpec, batch: int, il: int | None = None,
                          ssm_dtype_bytes: int = 4) -> int:
    """A Mamba-2 layer's state for `batch` sequences, whatever the context: the convolution
    window ((conv kernel - 1) x (d_inner + 2 x groups x d_state)) and the SSM state (d_state x
    d_inner). llama.cpp keeps both F32 (llama-memory-recurrent.cpp); vLLM keeps the SSM state
    in the config's mamba_ssm_cache_dtype."""
    a = model.architecture
    s = a.ssm
    if s is None or (il is not None and not a.is_recurrent(il)):
        return 0
    conv = (s.conv_kernel - 1) * (s.d_inner + 2 * s.n_groups * s.d_state) * 4
    return (conv + s.d_state * s.d_inner * ssm_dtype_bytes) * max(1, batch)


class SpeedFields(TypedDict):
    read_bytes: int
    routed_bytes: int
    routed_params: int
    moe_layers: int
    params: int
    output_params: int
    kv_token_bytes: int
    swa_token_bytes: int
    state_read_bytes: int


def speed_fields(
    model: ModelSpec, lw: LayerWeights, layers: Sequence[int], has_output: bool, kv_type: str,
    share: float = 1.0, kv_share: float = 1.0,
) -> SpeedFields:
    """DeviceUse fields for a device holding `layers` (and the LM head when has_output).

    share < 1 splits every weight tensor (tensor parallelism), kv_share the KV heads.
    """
    a = model.architecture
    read = sum(lw.active_per_layer[il] for il in layers) + (lw.output if has_output else 0)
    params = sum(lw.active_params_per_layer[il] for il in layers) + (
        lw.output_params if has_output else 0)
    full = sum(kv_cell_bytes(model, kv_type, il) for il in layers if not a.is_swa(il))
    swa = sum(kv_cell_bytes(model, kv_type, il) for il in layers if a.is_swa(il))
    state = sum(recurrent_state_bytes(model, 1, il) for il in layers)
    return SpeedFields(
        read_bytes=int(read * share),
        routed_bytes=int(sum(lw.routed_per_layer[il] for il in layers) * share),
        routed_params=int(sum(lw.routed_params_per_layer[il] for il in layers) * share),
        moe_layers=sum(1 for il in layers if a.ffn_kinds[il] == "moe"),
        params=int(params * share),
        output_params=int((lw.output_params if has_output else 0) * share),
        kv_token_bytes=int(full * kv_share), swa_token_bytes=int(swa * kv_share),
        state_read_bytes=int(state * kv_share),
    )


def transformers_kv_bytes_by_layer(model: ModelSpec, context: int, batch: int,
                                   elem: int) -> list[int]:
    """transformers' DynamicCache per layer: full K and V per head (MLA decompressed: every
    head's K and V), a sliding layer only its window, a Mamba layer its state."""
    a = model.architecture
    out = []
    for il in range(a.layers):
        size = recurrent_state_bytes(model, batch, il)
        if a.has_kv(il):
            if a.mla is not None:
                per_token = a.heads * (a.mla.nope_dim + a.mla.rope_dim + a.mla.v_dim)
            else:
                per_token = a.kv_heads * (a.head_dim + a.head_dim_v)
            tokens = min(context, a.window) if a.is_swa(il) else context
            size += batch * tokens * per_token * elem
        out.append(size)
    return out


def llamacpp_kv_bytes_by_layer(
    model: ModelSpec, context: int, batch: int, kv_type: str, ub: int = N_UBATCH,
    flash_attn: bool = True,
) -> list[int]:
    """The cache each layer holds, like llama_kv_cache (row_size of the type x cells), plus a
    recurrent layer's state. Without flash attention V is stored transposed, and where V's
    width varies between the cache's layers every one of them holds the widest V
    (llama-kv-cache.cpp, TAG_V_CACHE_VARIABLE): for a model without recurrent layers that is
    every layer, also those without KV heads (DeciLM), else only the attention layers."""
    a = model.architecture
    if a.csa is not None:
        return [compressed_layer_bytes(model, context, batch, kv_type, il, ub)
                for il in range(a.layers)]
    full = llamacpp_kv_cells(model, context, batch, swa=False)
    swa = llamacpp_kv_cells(model, context, batch, swa=True, ub=ub) if a.window else full
    cells = [kv_cell_bytes(model, kv_type, il) for il in range(a.layers)]
    if not flash_attn and a.mla is None:
        cached = [il for il in range(a.layers) if a.has_kv(il) or not a.mamba]
        v = {il: v_row_bytes(model, kv_type, il) for il in cached}
        if len(set(v.values())) > 1:
            widest = max(v.values())
            for il in cached:
                cells[il] += widest - v[il]
    return [cells[il] * (swa if a.is_swa(il) else full)
            + recurrent_state_bytes(model, batch, il) for il in range(a.layers)]


def compressed_layer_bytes(model: ModelSpec, context: int, batch: int, kv_type: str, il: int,
                           ub: int = N_UBATCH) -> int:
    """A DeepSeek-V4 layer's caches (llama-kv-cache-dsv4.cpp), each kept per sequence: the
    window's K (= V) head, the compressed cache of every `ratio`-th position of the whole
    context (padded to 256 cells) and, at ratio 4, the indexer's keys beside it, and the
    compressors' F32 states (K and score rows: 2 x width x ratio at 4, width x 128 at 128)."""
    a = model.architecture
    c = a.csa
    assert c is not None
    d, ratio = a.head_dim, c.ratios[il]
    window = llamacpp_kv_cells(model, context, batch, swa=True, ub=ub)
    size = int(kv_element_bytes(kv_type, d)) * window
    if ratio:
        cells = pad(max(1, -(-context * batch // ratio)), KV_PAD)
        size += int(kv_element_bytes(kv_type, d)) * cells
        state = 2 * (2 * d * 2 * ratio if ratio == 4 else d * ratio) * 4
        if ratio == 4:
            size += int(kv_element_bytes(kv_type, c.index_dim)) * cells
            state += 2 * 2 * c.index_dim * 2 * ratio * 4
        size += state
    return size * max(1, batch)


def v_row_bytes(model: ModelSpec, kv_type: str, il: int) -> int:
    """One token's V in one layer (0 without attention)."""
    a = model.architecture
    if not a.has_kv(il):
        return 0
    width = a.head_dim_swa if a.head_dim_swa and a.is_swa(il) else a.head_dim_v
    return int(kv_element_bytes(kv_type, width * a.layer_kv_heads(il)))


def ubatch(context: int, batch: int, ub: int = N_UBATCH) -> int:
    """Tokens in llama.cpp's physical batch: n_ubatch (`ub`, already capped by n_batch),
    capped by the requested n_ctx."""
    return min(ub, context * batch)


def logits_rows(context: int, batch: int, outputs: str, ub: int = N_UBATCH) -> int:
    """Rows of logits the compute buffer reserves: one per sequence (llama-server of 2026
    builds, n_outputs_max = n_parallel) or the whole ubatch (llama-bench, llama-cli,
    llama-cpp-python and builds before 2026)."""
    T = ubatch(context, batch, ub)
    return min(T, batch) if outputs == "sequences" else T


def llamacpp_compute_bytes(
    model: ModelSpec, context: int, batch: int, flash_attn: bool, *, has_output: bool,
    has_layers: bool = True, pipeline: bool = False, outputs: str = "sequences",
    ub: int = N_UBATCH,
) -> int:
    """A device's compute buffer: the graph allocator's peak over one ubatch of T tokens.

    Per token of the ubatch (F32 values; H hidden, I the widest FFN activation (MoE: top-k x
    expert width), q = heads x head_dim, kv = KV heads x head_dim): without flash attention
    a layer peaks at the attention scores and mask (kv cells x (heads + 1)) beside 12H + 8q
    + 8kv bytes of activations, or at the FFN (12I + 12H, + 4q while q < I) beside an F32
    mask, whichever is larger; with flash attention at the FFN or the attention (4q + 4
    heads x head_dim_v + 12H) beside an F16 mask (kv cells x 2 bytes). MLA attends in the
    latent space: q and kv are kv_lora_rank + rope dims wide per head, and q is held twice
    more (6q). Sliding-window models
    hold a second mask over the window's cells; Mamba layers peak at their own activations
    (mamba_compute_bytes).
    The device with the LM head may peak at the logits (vocab x rows, see logits_rows)
    beside two activations instead. Pipeline parallelism (several GPUs, every layer
    offloaded) keeps PP_COPIES copies of each split's inputs.
    Fitted to llama-server's own reports on this CPU for SmolLM2 and random-weight models
    (benchmarks/memory_accuracy.py; tests/test_architectures_real.py covers every
    architecture); Llama-3-8B GPU logs of 2024 (reference-facts.md):
    560.00 MiB at n_ctx 8192 (here 572), 258.50 at 512 (266.5), 640.01 per GPU in a split
    (652).
    """
    T = ubatch(context, batch, ub)
    a = model.architecture
    H, F = a.hidden, a.active_ffn()  # F: the FFN width ("I" in the docstring)
    if a.mla is not None:  # queries absorbed into the latent: one K head of the latent width
        latent = a.mla.kv_lora_rank + a.mla.rope_dim
        q, kv, out = a.heads * latent, latent, a.heads * a.mla.kv_lora_rank
    else:
        q, kv, out = a.max_heads * a.head_dim, a.kv_heads * a.head_dim, \
            a.max_heads * a.head_dim_v
    n_kv = pad(context, KV_PAD) * batch
    n_swa = llamacpp_kv_cells(model, context, batch, swa=True, ub=ub) if a.window else 0
    peak = 0
    if has_layers:
        # the attention output (T x q) is still held during the FFN, unless its slot is
        # large enough for the allocator to reuse for the FFN's T x I tensors
        ffn = T * (12 * F + 12 * H + (4 * q if q < F else 0))
        if ungated_ffn(model):  # up, activation, down: the allocator reuses more in place
            ffn = T * (4 * F + 16 * H)
        elif a.arch in FFN_TOKEN_BYTES:
            per_channel, per_hidden = FFN_TOKEN_BYTES[a.arch]
            ffn = T * (per_channel * F + per_hidden * H)
        if a.moe_dense and a.moe is not None:
            ffn = max(ffn, T * moe_dense_token_bytes(model))
        if a.ssm is not None:
            ffn = max(ffn, mamba_compute_bytes(model, T, batch))
        if not any(a.attention):
            peak = ffn
        elif flash_attn:
            q_copies = 6 if a.mla is not None else 4  # MLA's absorbed query is also cast
            peak = max(ffn, T * (q_copies * q + 4 * out + 12 * H)) + (n_kv + n_swa) * T * 2
        else:  # the attention scores, or the FFN beside the F32 mask, whichever is larger
            # full layers' heads over every cell; sliding ones with heads of their own
            # (Step 3.5) over the window's
            scores = max(n_kv * (a.heads + 1), n_swa * (a.heads_swa + 1) if a.heads_swa else 0)
            peak = max(scores * T * 4 + T * (12 * H + 8 * q + 8 * kv),
                       ffn + n_kv * T * 4) + n_swa * T * 4
        if a.mla is not None and a.mla.indexer_heads:
            # the sparse-attention indexer's scores over every cell and its top-k selection
            # (fitted to llama-server's reports for a random-weight DeepSeek-V3.2 shape at
            # 1k-8k cells, flash attention on and off: within 10%)
            peak += T * ((6 if flash_attn else 9) * n_kv + 8 * a.mla.indexer_top_k)
    if has_output:
        act = T * H * 4
        peak = max(peak, model.vocab * logits_rows(context, batch, outputs, ub) * 4 + 2 * act)
    if pipeline:
        peak += PP_COPIES * n_kv * T * 4 + 2 * T * H * 4
    return peak


def mamba_compute_bytes(model: ModelSpec, T: int, batch: int) -> int:
    """A Mamba-2 layer's peak over a ubatch of T tokens: F32 activations of its input
    projection, convolution and scan (20 bytes per d_inner channel, 24 per group state
    value, 12 per hidden value, 4 per head, per token) and the updated SSM state of each
    sequence; where attention runs beside the mixer in the same layer (Falcon-H1), that
    branch's 8 bytes per hidden value too. Fitted to llama-server's reports for six
    random-weight Mamba-2 shapes (d_inner 1024-2048, d_state 64-128, groups 2-8: within 1%)
    and three hybrids (within 5%)."""
    a = model.architecture
    s = a.ssm
    assert s is not None
    if s.kind == "gdn":
        return T * gated_deltanet_token_bytes(model)
    if s.kind == "kda":  # Kimi Delta Attention: 28 bytes per value channel, 13 per hidden
        # value and the heads' states (fitted to llama-server's reports for six random-weight
        # shapes, d_inner 512-1024, heads 4-16, head size 64-128, hidden 512-1024: within 4%)
        return T * (28 * s.d_inner + 13 * a.hidden) + \
            s.heads * s.d_state * s.d_state * 4 * max(1, batch)
    per_token = 20 * s.d_inner + 24 * s.n_groups * s.d_state + 12 * a.hidden + 4 * s.heads
    if any(a.attention[il] and a.is_recurrent(il) for il in range(a.layers)):
        per_token += 8 * a.hidden
    return T * per_token + s.d_state * s.d_inner * 4 * max(1, batch)


# an FFN's peak per ubatch token where its activation is not SwiGLU's: bytes per FFN channel
# and per hidden value (Kimi K3's situ, fitted to llama-server's reports for three
# random-weight shapes, FFN 2048-4096, hidden 256-512: within 2%)
FFN_TOKEN_BYTES = {"kimi-k3": (8, 18)}


@by_model
def ungated_ffn(model: ModelSpec) -> bool:
    """Dense FFNs without a gate projection (ReLU^2 or GELU MLPs: Arcee, Nemotron): their
    peak is 4 bytes per FFN channel and 16 per hidden value per ubatch token (fitted to
    llama-server's reports for three Arcee shapes, within 1%) instead of a gated FFN's
    12 + 12."""
    names = {t.name.rsplit(".", 2)[-2] for t in model.tensors if t.layer is not None}
    return "ffn_up" in names and "ffn_gate" not in names and all(
        t.shape[-1] == model.architecture.ffn_width(t.layer) for t in model.tensors
        if t.layer is not None and t.name.endswith(".ffn_up.weight"))


def moe_dense_token_bytes(model: ModelSpec) -> int:
    """A layer running a dense FFN beside its experts (Gemma 4), per ubatch token: 16 bytes
    per dense FFN channel and 6 per hidden value for each routed expert's output, less 2 per
    hidden value; the expert width does not enter. Fitted to llama-server's reports for four
    random-weight shapes (dense 512-1024, expert width 128-256, top-2/4): within 1%."""
    a = model.architecture
    assert a.moe is not None
    return 16 * a.ffn + (6 * a.moe.used - 2) * a.hidden


def gated_deltanet_token_bytes(model: ModelSpec) -> int:
    """A Gated DeltaNet layer's peak per ubatch token: F32 activations of its convolution
    channels (Q, K and V: 12 bytes each) and of the hidden state (12 per value); Qwen3-Next's
    graph (fused beta/alpha, heads repeated per key group) 20 bytes more per value channel of
    a key head. Fitted to llama-server's reports for five random-weight shapes of each
    (d_inner 512-1024, key heads 4-8, head size 64-128, hidden 512-1024): qwen35/qwen35moe
    within 2%, hidden 1024 8% under; qwen3next within 4%."""
    a = model.architecture
    s = a.ssm
    assert s is not None
    conv = 2 * s.n_groups * s.d_state + s.d_inner
    extra = 20 * s.d_inner // s.n_groups if a.arch == "qwen3next" else 0
    return 12 * conv + 12 * a.hidden + extra


def llamacpp_host_compute_bytes(model: ModelSpec, context: int, batch: int, pipeline: bool,
                                ub: int = N_UBATCH) -> int:
    """Host compute buffer when every layer is on accelerators: the embedding lookup.

    24.01 MiB for Llama-3-8B (3 x ubatch x hidden x F32); 72.02 MiB with pipeline parallelism
    on 4 GPUs (reference-facts.md).
    """
    size = 3 * ubatch(context, batch, ub) * model.hidden * 4
    return size * 3 if pipeline else size


def output_buffer_bytes(model: ModelSpec, batch: int) -> int:
    """Host buffer for logits of one output per sequence (F32)."""
    return model.vocab * batch * 4


def kv_bytes_per_token(model: ModelSpec, kv_type: str) -> int:
    """Cache bytes one token occupies across all layers (no padding, no sliding window)."""
    return sum(kv_cell_bytes(model, kv_type, il) for il in range(model.layers))


def vllm_activation_bytes(model: ModelSpec, tp: int, max_batched_tokens: int) -> int:
    """vLLM's profiled activation peak: one forward pass over max_num_batched_tokens.

    The MLP's gate/up output (2 x intermediate / tp, BF16) and its activation, plus four
    hidden-size BF16 buffers per token, and the sampler's F32 logits for 256 sequences.
    """
    per_token = 2 * (3 * model.architecture.active_ffn() // tp + 4 * model.hidden)
    return max_batched_tokens * per_token + 256 * model.vocab * 4


def transformers_activation_bytes(model: ModelSpec, context: int, batch: int) -> int:
    """Peak activations of a transformers forward pass over the whole prompt (BF16).

    SDPA attention (no score matrix kept), the MLP intermediate, and F32 logits for the last
    position of each sequence.
    """
    tokens = context * batch
    ffn = model.architecture.active_ffn()
    return 2 * tokens * (3 * ffn + 4 * model.hidden) + batch * model.vocab * 4


def mlx_activation_bytes(model: ModelSpec, context: int, batch: int) -> int:
    """mlx-lm prefills in chunks of 2048 tokens; FP16 activations of one chunk plus logits."""
    tokens = min(context, 2048) * batch
    ffn = model.architecture.active_ffn()
    return 2 * tokens * (3 * ffn + 4 * model.hidden) + batch * model.vocab * 4
