"""Weight bytes per quantization against llama.cpp's own accounting and published files."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from conftest import GIB, MIB, model
from rigscope.catalog import formats, gguf_mixes
from rigscope.estimator.memory import layer_weights
from rigscope.estimator.quantize import gguf_types, tensor_bytes
from rigscope.sources.hf import model_from_config


def test_llama3_8b_q4_k_m_tensor_types_match_the_real_file() -> None:
    # llama_model_loader in XiongjieDai's H100_PCIe_4_v3 notebook: f32 65, q4_K 193, q6_K 33
    m = model("llama-3-8b")
    mix = gguf_mixes()["Q4_K_M"]
    counts = Counter(gguf_types(m, mix).values())
    assert counts == {"F32": 65, "Q4_K": 193, "Q6_K": 33}


def test_llama3_8b_q4_k_m_weights_match_llamacpp_buffers() -> None:
    # CUDA0 model buffer 4403.49 MiB (all 33 layers) + 281.81 MiB token embeddings on the CPU
    lw = layer_weights(model("llama-3-8b"), gguf_mixes()["Q4_K_M"])
    assert lw.token_embd / MIB == pytest.approx(281.81, abs=0.01)
    assert (sum(lw.per_layer) + lw.output) / MIB == pytest.approx(4403.49, abs=0.05)


@pytest.mark.parametrize(("quant", "gib"), [("F16", 12.55), ("Q4_0", 3.56)])
def test_llama2_7b_sizes_as_llama_bench_prints(quant: str, gib: float) -> None:
    lw = layer_weights(model("llama-2-7b"), gguf_mixes()[quant])
    assert lw.total / GIB == pytest.approx(gib, abs=0.005)


# File sizes in GB (1e9 bytes) as listed on the Hugging Face repos named in the CSV. Left out:
# TheBloke's Llama-2-7B Q2_K (2023 rules gave attn_v/ffn_down Q4_K) and Mixtral Q4_K_M (it
# predates llama.cpp's merged-expert tensors, whose ffn_down now gets Q6_K in some layers).
with (Path(__file__).parent / "data" / "published_gguf_sizes.csv").open() as _f:
    PUBLISHED_GB = [(r["model"], r["quant"], float(r["file_gb"])) for r in csv.DictReader(_f)]


@pytest.mark.parametrize(("mid", "quant", "gb"), PUBLISHED_GB)
def test_weight_bytes_within_one_percent_of_published(mid: str, quant: str, gb: float) -> None:
    lw = layer_weights(model(mid), gguf_mixes()[quant])
    assert lw.total / 1e9 == pytest.approx(gb, rel=0.01)


def test_rows_that_do_not_divide_into_blocks_fall_back() -> None:
    # SmolLM2-135M: rows of 576 values do not divide into 256-value K-quant blocks
    m = model_from_config({
        "model_type": "llama", "num_hidden_layers": 30, "hidden_size": 576,
        "intermediate_size": 1536, "num_attention_heads": 9, "num_key_value_heads": 3,
        "vocab_size": 49152, "max_position_embeddings": 8192, "tie_word_embeddings": True})
    types = gguf_types(m, gguf_mixes()["Q4_K_M"])
    assert types["blk.5.attn_q.weight"] == "Q5_0"  # Q4_K falls back to Q5_0
    assert types["token_embd.weight"] == "Q8_0"  # the tied LM head: Q6_K falls back to Q8_0
    assert types["blk.4.ffn_down.weight"] == "Q4_K"  # rows of 1536 divide into 256


def test_moe_attention_at_q8_0() -> None:
    m = model("mixtral-8x7b")
    assert gguf_types(m, gguf_mixes()["Q4_K_M"])["blk.3.attn_v.weight"] == "Q8_0"


@pytest.mark.parametrize(("fmt", "bits"), [("BF16", 16.0), ("FP8", 8.0), ("AWQ", 4.16),
                                           ("NF4", 4.13), ("MLX-4BIT", 4.5)])
def test_format_bits_per_weight_of_linear_layers(fmt: str, bits: float) -> None:
    m = model("llama-3-8b")
    t = next(t for t in m.tensors if t.name == "blk.0.ffn_up.weight")
    nbytes, _ = tensor_bytes(m, formats()[fmt], t)
    assert nbytes * 8 / t.n_elements == pytest.approx(bits, abs=0.01)


def test_awq_keeps_embeddings_at_bf16() -> None:
    m = model("llama-3-8b")
    t = next(t for t in m.tensors if t.name == "token_embd.weight")
    assert tensor_bytes(m, formats()["AWQ"], t) == (t.n_elements * 2, "BF16")
