"""Memory parts of a model at a quantization and context: weights, KV cache, compute buffers.

Pure arithmetic, no placement: placement.py decides which device holds which part.
Constants describe llama.cpp builds of 2025-2026 unless a comment says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import TypedDict

from rigscope.catalog import ggml_types
from rigscope.errors import RigscopeError
from rigscope.estimate.quantize import tensor_bytes
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
    output_params: int  # weights of the LM head

    @property
    def total(self) -> int:
        """Bytes of all weights, each tensor once (a tied LM head is not counted twice)."""
        return sum(self.per_layer) + self.token_embd + self.other + self.output_unique

    @cached_property
    def prefix(self) -> list[int]:
        """prefix[i] = bytes of layers 0..i-1."""
        return [0, *accumulate(self.per_layer)]


_CACHE: dict[tuple[int, Quant], tuple[ModelSpec, LayerWeights]] = {}


def layer_weights(model: ModelSpec, quant: Quant) -> LayerWeights:
    """Weight bytes of `model` at `quant` by layer (memoized: plans ask for it many times)."""
    key = (id(model), quant)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is model:
        return hit[1]
    if len(_CACHE) > 1024:
        _CACHE.clear()
    result = _layer_weights(model, quant)
    _CACHE[key] = (model, result)
    return result


def _layer_weights(model: ModelSpec, quant: Quant) -> LayerWeights:
    n = model.layers
    per_layer, active, active_params = [0] * n, [0] * n, [0] * n
    embd = output = output_unique = other = output_params = 0
    types: dict[str, int] = {}
    for t in model.tensors:
        nbytes, ty = tensor_bytes(model, quant, t)
        types[ty] = types.get(ty, 0) + nbytes
        if t.layer is not None and t.layer < n:
            per_layer[t.layer] += nbytes
            used = model.experts_used / model.experts if "_exps." in t.name else 1.0
            active[t.layer] += int(nbytes * used)
            active_params[t.layer] += int(t.n_elements * used)
        elif t.name == "token_embd.weight":
            embd = nbytes
            if model.tie_embeddings:
                output_params += t.n_elements
        elif t.name.startswith("output"):
            output += nbytes
            output_unique += nbytes
            output_params += t.n_elements
        else:
            other += nbytes
    if model.tie_embeddings:
        output += embd  # llama.cpp loads the tied matrix again for the output layer
    return LayerWeights(
        per_layer=tuple(per_layer), token_embd=embd, output=output, output_unique=output_unique,
        other=other, types=types, active_per_layer=tuple(active),
        active_params_per_layer=tuple(active_params), output_params=output_params,
    )


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


def llamacpp_kv_cells(model: ModelSpec, context: int, batch: int, swa: bool) -> int:
    """KV cells a layer reserves: `batch` sequences of `context` tokens each; sliding-window
    layers keep only the window plus one ubatch."""
    full = pad(context, KV_PAD)
    if swa:
        full = min(full, pad(model.sliding_window + N_UBATCH, KV_PAD))
    return full * batch


def kv_cell_bytes(model: ModelSpec, kv_type: str) -> int:
    """K+V bytes one token occupies in one layer's cache."""
    return int(kv_element_bytes(kv_type, model.head_dim * model.kv_heads)
               + kv_element_bytes(kv_type, model.head_dim_v * model.kv_heads))


class SpeedFields(TypedDict):
    read_bytes: int
    params: int
    kv_token_bytes: int
    swa_token_bytes: int


def speed_fields(
    model: ModelSpec, lw: LayerWeights, layers: Sequence[int], has_output: bool, kv_cell: int,
    share: float = 1.0,
) -> SpeedFields:
    """DeviceUse fields for a device holding `layers` (and the LM head when has_output).

    share < 1 splits every weight tensor (tensor parallelism); kv_cell is already what one
    token occupies in one layer on this device.
    """
    swa = sum(1 for il in layers if model.is_swa_layer(il))
    read = sum(lw.active_per_layer[il] for il in layers) + (lw.output if has_output else 0)
    params = sum(lw.active_params_per_layer[il] for il in layers) + (
        lw.output_params if has_output else 0)
    return SpeedFields(
        read_bytes=int(read * share), params=int(params * share),
        kv_token_bytes=(len(layers) - swa) * kv_cell,
        swa_token_bytes=swa * kv_cell,
    )


def llamacpp_kv_bytes_by_layer(
    model: ModelSpec, context: int, batch: int, kv_type: str
) -> list[int]:
    """K+V bytes each layer's cache holds, like llama_kv_cache (row_size of the type x cells)."""
    per_cell = kv_cell_bytes(model, kv_type)
    full = int(per_cell * llamacpp_kv_cells(model, context, batch, swa=False))
    swa = int(per_cell * llamacpp_kv_cells(model, context, batch, swa=True))
    return [swa if model.is_swa_layer(il) else full for il in range(model.layers)]


def ubatch(context: int, batch: int) -> int:
    """Tokens in llama.cpp's physical batch: n_ubatch, capped by n_batch and the requested n_ctx."""
    return min(N_UBATCH, N_BATCH, context * batch)


def llamacpp_compute_bytes(
    model: ModelSpec, context: int, batch: int, flash_attn: bool, *, has_output: bool,
    has_layers: bool = True, pipeline: bool = False,
) -> int:
    """A device's compute buffer: the graph allocator's peak over one ubatch of T tokens.

    Without flash attention a layer peaks at the attention scores KQ (F32, kv cells x T x
    heads) beside the F32 mask (kv cells x T) and about five T x hidden F32 activations.
    Flash attention never materialises KQ, leaving the FFN (gate and up outputs) as the
    layer peak. The device holding the LM head may peak at the logits (F32, vocab x T)
    beside two activations instead. Pipeline parallelism (several GPUs, every layer
    offloaded) keeps PP_COPIES copies of each split's inputs.
    Checked against llama.cpp's own logs: Llama-3-8B 560.00 MiB at n_ctx 8192 (here 568),
    258.50 MiB at 512 (here 266.5), 640.01 MiB per GPU in a split (here 648), all from
    reference-facts.md; SmolLM2-135M on this CPU within 5% (tests/test_llamacpp_real.py).
    """
    T = ubatch(context, batch)
    act = T * model.hidden * 4
    n_kv = pad(context, KV_PAD) * batch
    peak = 0
    if has_layers:
        if flash_attn:
            peak = 2 * T * model.intermediate * 4 + 3 * act
        else:
            peak = n_kv * T * (model.heads + 1) * 4 + 5 * act
    if has_output:
        peak = max(peak, model.vocab * T * 4 + 2 * act)
    if pipeline:
        peak += PP_COPIES * n_kv * T * 4 + 2 * act
    return peak


def llamacpp_host_compute_bytes(model: ModelSpec, context: int, batch: int, pipeline: bool) -> int:
    """Host compute buffer when every layer is on accelerators: the embedding lookup.

    24.01 MiB for Llama-3-8B (3 x ubatch x hidden x F32); 72.02 MiB with pipeline parallelism
    on 4 GPUs (reference-facts.md).
    """
    size = 3 * ubatch(context, batch) * model.hidden * 4
    return size * 3 if pipeline else size


def output_buffer_bytes(model: ModelSpec, batch: int) -> int:
    """Host buffer for logits of one output per sequence (F32)."""
    return model.vocab * batch * 4


def kv_bytes_per_token(model: ModelSpec, kv_type: str) -> int:
    """K+V bytes one token occupies across all layers (no padding, no sliding window)."""
    return kv_cell_bytes(model, kv_type) * model.layers


def vllm_activation_bytes(model: ModelSpec, tp: int, max_batched_tokens: int) -> int:
    """vLLM's profiled activation peak: one forward pass over max_num_batched_tokens.

    The MLP's gate/up output (2 x intermediate / tp, BF16) and its activation, plus four
    hidden-size BF16 buffers per token, and the sampler's F32 logits for 256 sequences.
    """
    per_token = 2 * (3 * model.intermediate // tp + 4 * model.hidden)
    return max_batched_tokens * per_token + 256 * model.vocab * 4


def transformers_activation_bytes(model: ModelSpec, context: int, batch: int) -> int:
    """Peak activations of a transformers forward pass over the whole prompt (BF16).

    SDPA attention (no score matrix kept), the MLP intermediate, and F32 logits for the last
    position of each sequence.
    """
    tokens = context * batch
    return 2 * tokens * (3 * model.intermediate + 4 * model.hidden) + batch * model.vocab * 4


def mlx_activation_bytes(model: ModelSpec, context: int, batch: int) -> int:
    """mlx-lm prefills in chunks of 2048 tokens; FP16 activations of one chunk plus logits."""
    tokens = min(context, 2048) * batch
    return 2 * tokens * (3 * model.intermediate + 4 * model.hidden) + batch * model.vocab * 4
