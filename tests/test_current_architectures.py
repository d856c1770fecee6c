"""Current architectures from their published config.json: parameters as llama.cpp counts
them, GGUF sizes as published, caches as llama.cpp allocates them (tests/data/configs, with
the published figures in its README)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import GIB
from rigscope.catalog import gguf_mixes
from rigscope.errors import RigscopeError
from rigscope.estimator.memory import (
    kv_cell_bytes,
    layer_weights,
    llamacpp_kv_bytes_by_layer,
    llamacpp_kv_cells,
    recurrent_state_bytes,
)
from rigscope.sources.hf import architecture_from_config, model_from_config
from rigscope.specs import ModelSpec

CONFIGS = Path(__file__).parent / "data" / "configs"
# folder: llama.cpp's parameter count (B), Q4_K_M and Q8_0 tensor data (GiB) as published
PUBLISHED = {
    "qwen3-8b": (8.19, 4.68, 8.11),
    "qwen3-30b-a3b": (30.53, 17.28, 30.25),
    "deepseek-v3": (671.03, 376.65, 664.29),
    "gpt-oss-20b": (20.91, None, None),  # published as a file of 11.67 GB: see below
    "gemma-3-27b-it": (27.01, 15.40, None),
    "llama-4-scout-17b-16e": (107.77, 60.86, 106.65),
    "nemotron-3-nano-30b-a3b": (31.58, 22.96, None),
    "llama-3.3-70b-instruct": (70.55, 39.59, None),
    "qwen3.5-27b": (26.90, 15.58, None),
}


def spec(name: str) -> ModelSpec:
    return model_from_config(json.loads((CONFIGS / name / "config.json").read_text()))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameters_within_2_percent_of_llamacpp(name: str) -> None:
    assert spec(name).params / 1e9 == pytest.approx(PUBLISHED[name][0], rel=0.02)


SIZES = [(n, m) for n, v in PUBLISHED.items()
         for m, x in zip(("Q4_K_M", "Q8_0"), v[1:], strict=True) if x]


@pytest.mark.parametrize(("name", "mix"), SIZES)
def test_gguf_sizes_within_3_percent_of_published(name: str, mix: str) -> None:
    want = PUBLISHED[name][1 if mix == "Q4_K_M" else 2]
    assert layer_weights(spec(name), gguf_mixes()[mix]).total / GIB == pytest.approx(
        want, rel=0.03)


def test_gpt_oss_keeps_its_mxfp4_experts_in_q4_k_m() -> None:
    m = spec("gpt-oss-20b")
    lw = layer_weights(m, gguf_mixes()["Q4_K_M"])
    assert lw.types["MXFP4"] == 19_110_297_600 * 17 // 32  # 19.1 B expert weights
    header = 6e6  # tokenizer and metadata of the published file (201,088 tokens)
    assert (lw.total + header) / 1e9 == pytest.approx(11.67, rel=0.03)


def test_deepseek_caches_the_mla_latent_only() -> None:
    """llama.cpp caches kv_lora_rank + qk_rope_head_dim values per token and layer (K only):
    61 x 576 x 2 bytes = 70,272 bytes per token at F16, not 61 x 128 heads x (192 + 128)."""
    m = spec("deepseek-v3")
    assert sum(kv_cell_bytes(m, "f16", il) for il in range(m.layers)) == 61 * 576 * 2
    assert sum(llamacpp_kv_bytes_by_layer(m, 32768, 1, "f16")) == 61 * 576 * 2 * 32768


def test_gpt_oss_sliding_layers_keep_the_window_plus_one_ubatch() -> None:
    """gpt-oss-20b at n_ctx 131072: the full layers hold 131072 cells (3 GiB at F16), the
    sliding ones 128 + 512 padded to 768 cells, as llama_kv_cache_iswa reports."""
    m = spec("gpt-oss-20b")
    assert llamacpp_kv_cells(m, 131072, 1, swa=True) == 768
    by_layer = llamacpp_kv_bytes_by_layer(m, 131072, 1, "f16")
    full = sum(b for il, b in enumerate(by_layer) if not m.is_swa_layer(il))
    swa = sum(b for il, b in enumerate(by_layer) if m.is_swa_layer(il))
    assert full == 3 * GIB and swa == 12 * 768 * 8 * 64 * 2 * 2


def test_gemma3_has_one_global_layer_in_six() -> None:
    a = architecture_from_config(json.loads(
        (CONFIGS / "gemma-3-27b-it" / "config.json").read_text())).architecture
    assert [a.is_swa(il) for il in range(6)] == [True] * 5 + [False]
    assert a.window == 1024 and a.head_dim == 128 and a.hidden // a.heads != a.head_dim
    assert a.vision_params > 0  # counted for the non-GGUF engines only


def test_llama4_chunks_three_layers_in_four() -> None:
    a = spec("llama-4-scout-17b-16e").architecture
    assert a.attention[:4] == ("chunked",) * 3 + ("full",) and a.window == 8192
    assert a.moe is not None and (a.moe.experts, a.moe.used, a.moe.shared) == (16, 1, 1)


def test_nemotron_state_does_not_grow_with_context() -> None:
    m = spec("nemotron-3-nano-30b-a3b")
    a = m.architecture
    assert sum(a.mamba) == 23 and sum(1 for k in a.attention if k) == 6
    state = sum(recurrent_state_bytes(m, 1, il) for il in range(m.layers))
    # per Mamba layer: conv (4 - 1) x (4096 + 2 x 8 x 128) and SSM 128 x 4096, F32
    assert state == 23 * ((3 * (4096 + 2 * 8 * 128) + 128 * 4096) * 4)
    short = sum(llamacpp_kv_bytes_by_layer(m, 4096, 1, "f16"))
    long = sum(llamacpp_kv_bytes_by_layer(m, 8192, 1, "f16"))
    assert long - short == 6 * 2 * 2 * 128 * 2 * 4096  # only attention layers grow


def test_qwen35_keeps_kv_in_its_full_attention_layers_only() -> None:
    """Qwen3.5-27B at 32k: 16 of 64 layers keep a KV cache (4 KV heads x 256, K and V at F16:
    2,048 MiB); the 48 Gated DeltaNet layers a fixed state each: a convolution window of
    3 x (2 x 16 x 128 + 48 x 128) and a 128 x 6144 state, F32 (149.6 MiB in all)."""
    m = spec("qwen3.5-27b")
    a = m.architecture
    assert sum(a.mamba) == 48 and sum(1 for k in a.attention if k) == 16 and a.attn_gate
    state = sum(recurrent_state_bytes(m, 1, il) for il in range(m.layers))
    assert state == 48 * (3 * (2 * 16 * 128 + 48 * 128) + 128 * 48 * 128) * 4
    total = sum(llamacpp_kv_bytes_by_layer(m, 32768, 1, "f16"))
    assert total - state == 16 * 32768 * 4 * 256 * 2 * 2 == 2048 * 2**20


@pytest.mark.parametrize(("name", "total", "experts"), [
    ("qwen3.5-122b-a10b", 122.1, 256), ("qwen3.5-397b-a17b", 396.3, 512)])
def test_qwen35_moe_counts_its_experts_and_linear_layers(
        name: str, total: float, experts: int) -> None:
    m = spec(name)
    a = m.architecture
    assert a.moe is not None and a.moe.experts == experts and a.moe.shared == 1
    assert a.arch == "qwen35moe" and sum(a.mamba) == 3 * a.layers // 4
    assert m.params / 1e9 == pytest.approx(total, rel=0.01)  # as the model cards round


def test_gemma4_sizes_global_and_sliding_layers_apart() -> None:
    """Gemma 4 31B: 50 sliding layers (16 KV heads x 256, window 1024) and 10 global ones
    (4 KV heads x 512, K reused as V: no attn_v). The published GGUF holds 833 tensors
    (gemma-4-31B-it-IQ4_XS.gguf in ggml-org/llama.cpp issue 21690), as generated here.
    At 32k: global 10 x 32768 x 4 x 512 x K+V x F16 = 2,560 MiB; sliding 50 x (1024 + 512)
    cells x 16 x 256 x K+V x F16 = 1,200 MiB."""
    m = spec("gemma-4-31b-it-nvfp4")
    a = m.architecture
    assert len(m.tensors) == 833 and m.params / 1e9 == pytest.approx(30.70, abs=0.01)
    assert sum(map(a.is_swa, range(a.layers))) == 50 and a.window == 1024
    assert (a.layer_head_dim(0), a.layer_kv_heads(0), a.layer_head_dim(5),
            a.layer_kv_heads(5)) == (256, 16, 512, 4)
    assert not any(t.name == "blk.5.attn_v.weight" for t in m.tensors)
    by_layer = llamacpp_kv_bytes_by_layer(m, 32768, 1, "f16")
    full = sum(b for il, b in enumerate(by_layer) if not a.is_swa(il))
    assert full == 2560 * 2**20 and sum(by_layer) - full == 1200 * 2**20
    assert m.checkpoint_format == "NVFP4"


def test_glm5_caches_the_latent_and_the_indexer_key() -> None:
    """GLM-5.1 (glm-dsa): 78 layers each cache kv_lora_rank 512 + rope 64 latent values and
    the sparse-attention indexer's 128-value key per token: 78 x 704 x 2 bytes at F16."""
    m = spec("glm-5.1")
    assert m.arch == "glm-dsa" and m.params / 1e9 == pytest.approx(744, rel=0.002)
    assert m.active_params / 1e9 == pytest.approx(40, rel=0.06)  # "A40B"
    assert sum(llamacpp_kv_bytes_by_layer(m, 32768, 1, "f16")) == 78 * 704 * 2 * 32768
    assert any(t.name == "blk.3.indexer.attn_q_b.weight" for t in m.tensors)


def test_nemotron_ultra_counts_its_listed_layers_and_latent_experts() -> None:
    """Nemotron 3 Ultra lists its 108 blocks instead of num_hidden_layers; its routed experts
    read and write a 2048-wide latent: each expert 2 x 2048 x 5120 (not 8192 x 5120)."""
    m = spec("nemotron-3-ultra-550b-a55b")
    a = m.architecture
    assert a.layers == 108 and a.moe is not None and a.moe.latent == 2048
    up = next(t for t in m.tensors if t.name.endswith("ffn_up_exps.weight"))
    assert up.shape == (2048, 5120, 512)
    assert m.params / 1e9 == pytest.approx(550, rel=0.02)  # the MTP block is not counted


def test_mimo_v2_sizes_its_sliding_layers_apart_and_sinks_them() -> None:
    """MiMo-V2-Flash (mimo2): 9 full layers (4 KV heads) and 39 sliding ones (window 128,
    8 KV heads, a sink logit per head), K 192 and V 128 wide; 1 dense layer, 47 with 256
    experts top-8; llama.cpp's type 310B_A15B. At 32k: full 9 x 32768 x 4 x (192 + 128) x
    F16 = 720 MiB; sliding 39 x 768 cells (the window and a ubatch, padded to 256) x 8 x 320
    x F16."""
    m = spec("mimo-v2-flash")
    a = m.architecture
    assert m.arch == "mimo2" and m.params / 1e9 == pytest.approx(309, rel=0.005)
    assert m.active_params / 1e9 == pytest.approx(15, rel=0.04)
    assert (a.layer_kv_heads(0), a.layer_kv_heads(1), a.head_dim, a.head_dim_v) == (
        4, 8, 192, 128)
    assert a.ffn_kinds.count("dense") == 1 and a.nextn_layers == 3
    sinks = {t.layer for t in m.tensors if t.name.endswith("attn_sinks.weight")}
    assert sinks == {il for il in range(a.layers) if a.is_swa(il)} and len(sinks) == 39
    by_layer = llamacpp_kv_bytes_by_layer(m, 32768, 1, "f16")
    full = sum(b for il, b in enumerate(by_layer) if not a.is_swa(il))
    cells = llamacpp_kv_cells(m, 32768, 1, swa=True)
    assert full == 720 * 2**20 and sum(by_layer) - full == 39 * cells * 8 * 320 * 2


def test_step37_counts_its_shared_expert_and_sliding_layers() -> None:
    """Step-3.7-Flash (step35; the config is a trimmed copy naming 64 heads for every layer):
    12 full and 33 sliding layers (window 512), 3 dense then 288 experts top-8 beside a
    shared one; llama.cpp's type 196B_A11B; its 3 MTP layers are not loaded."""
    m = spec("step-3.7-flash")
    a = m.architecture
    assert m.arch == "step35" and m.params / 1e9 == pytest.approx(196, rel=0.005)
    assert m.active_params / 1e9 == pytest.approx(11, rel=0.04)
    assert a.moe is not None and (a.moe.experts, a.moe.shared, a.moe.shared_ffn) == (
        288, 1, 1280)
    assert sum(map(a.is_swa, range(a.layers))) == 33 and a.window == 512
    assert a.ffn_kinds[:4] == ("dense", "dense", "dense", "moe") and a.nextn_layers == 3


def test_step35_sliding_layers_have_their_own_heads_and_a_head_gate() -> None:
    """Step 3.5's own config keys: the sliding layers' heads in attention_other_setting,
    one sigmoid gate per head (use_head_wise_attn_gate), experts in moe_layers_enum."""
    cfg = {"model_type": "step3p5", "num_hidden_layers": 4, "hidden_size": 256,
           "num_attention_heads": 4, "num_attention_groups": 2, "head_dim": 64,
           "vocab_size": 1000, "intermediate_size": 512, "sliding_window": 128,
           "layer_types": ["full_attention", "sliding_attention"] * 2,
           "attention_other_setting": {"num_attention_heads": 6, "num_attention_groups": 2},
           "moe_num_experts": 8, "moe_top_k": 2, "moe_intermediate_size": 64,
           "share_expert_dim": 64, "moe_layers_enum": "1,2,3",
           "use_head_wise_attn_gate": True}
    m = model_from_config(cfg)
    a = m.architecture
    assert (a.layer_heads(0), a.layer_heads(1), a.kv_heads) == (4, 6, 2)
    assert a.ffn_kinds == ("dense", "moe", "moe", "moe")
    shapes = {t.name: t.shape for t in m.tensors}
    assert shapes["blk.1.attn_q.weight"] == (256, 6 * 64)
    assert shapes["blk.1.attn_gate.weight"] == (256, 6)
    cfg["attention_other_setting"]["num_attention_groups"] = 4
    with pytest.raises(RigscopeError, match="sliding layers' 4 KV heads must divide"):
        model_from_config(cfg)


def test_kimi_k3_caches_mla_latents_and_keeps_kda_states() -> None:
    """Kimi K3 (kimi-k3): 24 MLA layers (listed from 1 in linear_attn_config) cache 512 + 64
    latent values per token; 69 KDA layers keep a fixed state each: Q, K and V convolution
    windows (3 x 3 x 96 x 128) and a 128 x 128 state per head, F32. Routed experts work in
    a 3584-wide latent; llama.cpp's type 2_8T_A50B."""
    m = spec("kimi-k3")
    a = m.architecture
    assert m.arch == "kimi-k3" and m.params / 1e12 == pytest.approx(2.8, rel=0.01)
    assert a.ssm is not None and a.ssm.kind == "kda" and sum(a.mamba) == 69
    assert [il for il, k in enumerate(a.attention) if k][:2] == [3, 7]
    state = sum(recurrent_state_bytes(m, 1, il) for il in range(m.layers))
    assert state == 69 * (3 * 3 * 96 * 128 + 96 * 128 * 128) * 4
    assert sum(llamacpp_kv_bytes_by_layer(m, 32768, 1, "f16")) - state == \
        24 * 576 * 2 * 32768
    up = next(t for t in m.tensors if t.name.endswith("ffn_up_exps.weight"))
    assert up.shape == (3584, 3072, 896)
    assert any(t.name == "blk.0.ssm_g.weight" for t in m.tensors)  # K3's full-rank gate


def test_minimax_m3_caches_the_block_sparse_indexer_beside_its_kv() -> None:
    """MiniMax-M3 (minimax-m3): 3 dense layers (12,288 wide), then 57 with 128 experts top-4,
    a shared expert and block-sparse attention, whose indexer keeps a cache of its own: one
    128-wide K and V per token (llama-kv-cache-msa.cpp). At 32k, F16: 60 x 32768 x 4 KV heads
    x 128 x K+V = 3,840 MiB, and 57 x 32768 x 2 x 128 x 2 bytes = 912 MiB for the indexer;
    llama.cpp's type 428B_A23B; its MTP layer is not in the GGUF."""
    m = spec("minimax-m3")
    a = m.architecture
    assert m.arch == "minimax-m3" and m.params / 1e9 == pytest.approx(428, rel=0.01)
    assert a.ffn == 12288 and a.ffn_kinds.count("dense") == 3 and a.nextn_layers == 0
    assert a.msa is not None and sum(map(a.is_block_sparse, range(a.layers))) == 57
    assert sum(llamacpp_kv_bytes_by_layer(m, 32768, 1, "f16")) == (3840 + 912) * 2**20
    q = next(t for t in m.tensors if t.name == "blk.3.indexer.q_proj.weight")
    assert q.shape == (6144, 4 * 128) and not q.quantizable  # llama-quantize keeps it F32


def test_per_layer_expert_sizes_must_agree() -> None:
    """Hunyuan lists its MoE sizes per layer; llama.cpp's converter takes one value."""
    cfg = {"model_type": "hunyuan_v1_moe", "num_hidden_layers": 2, "hidden_size": 256,
           "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000,
           "intermediate_size": 512, "num_experts": 8, "moe_topk": [2, 2],
           "moe_intermediate_size": [128, 128], "num_shared_expert": [1, 1]}
    moe = model_from_config(cfg).architecture.moe
    assert moe is not None and (moe.used, moe.ffn, moe.shared_ffn) == (2, 128, 512)
    cfg["moe_topk"] = [2, 4]
    with pytest.raises(RigscopeError, match=r"moe_topk varies by layer \(\[2, 4\]\)"):
        model_from_config(cfg)


@pytest.mark.parametrize(("name", "total", "active"), [
    ("deepseek-v4-flash", 284, 13), ("deepseek-v4-pro", 1600, 49)])
def test_deepseek_v4_counts_its_compressed_attention_and_hyper_connections(
        name: str, total: float, active: float) -> None:
    """DeepSeek-V4 (deepseek4): every layer a 128-token window of one 512-wide K (= V) head;
    layers at ratio 4 also a 4x-compressed cache with the indexer's keys, at 128 a 128x one.
    Published: Flash 284 B / 13 B active, Pro 1.6 T / 49 B; experts stay MXFP4; the compute
    buffer is flagged as not fitted."""
    m = spec(name)
    a = m.architecture
    assert m.arch == "deepseek4" and a.csa is not None and a.native_experts == "MXFP4"
    assert m.params / 1e9 == pytest.approx(total, rel=0.02)
    assert m.active_params / 1e9 == pytest.approx(active, rel=0.07)
    assert set(a.csa.ratios) <= {0, 4, 128} and a.window == 128 and a.nextn_layers == 0
    assert any("not fitted" in w for w in m.warnings)


def test_deepseek_v4_pro_keeps_a_million_tokens_in_under_10_gib() -> None:
    """DeepSeek's report: V4-Pro's cache for one 1M-token sequence is 9.62 GiB in BF16."""
    kv = sum(llamacpp_kv_bytes_by_layer(spec("deepseek-v4-pro"), 1 << 20, 1, "f16"))
    assert kv / GIB == pytest.approx(9.62, rel=0.01)


def test_an_unknown_layer_kind_is_refused_in_one_line() -> None:
    cfg = json.loads((CONFIGS / "qwen3.5-27b" / "config.json").read_text())
    cfg["text_config"]["layer_types"][0] = "lightning_attention"
    with pytest.raises(RigscopeError, match="'lightning_attention', a layer kind"):
        architecture_from_config(cfg)


def test_active_parameters_of_moe_models() -> None:
    assert spec("qwen3-30b-a3b").active_params / 1e9 == pytest.approx(3.3, rel=0.05)
    assert spec("deepseek-v3").active_params / 1e9 == pytest.approx(37.5, rel=0.03)


def test_unknown_model_type_with_standard_keys_estimates_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rigscope.cli import main

    cfg = {"model_type": "brand_new_lm", "num_hidden_layers": 4, "hidden_size": 512,
           "num_attention_heads": 8, "num_key_value_heads": 2, "intermediate_size": 1536,
           "vocab_size": 32000}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert main(["estimate", str(tmp_path), "--gpu", "rtx-4090", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "warning: model_type 'brand_new_lm' is not one rigscope knows" in err
    assert any("dense Llama-style decoder" in b for b in json.loads(out)["basis"])


def test_unknown_model_type_without_standard_keys_names_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rigscope.cli import main

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "odd", "d_model": 8}))
    assert main(["estimate", str(tmp_path), "--gpu", "rtx-4090"]) == 2
    err = capsys.readouterr().err
    assert "lacks num_hidden_layers, hidden_size, num_attention_heads, vocab_size" in err


def test_unknown_model_type_in_a_directory_prices_its_safetensors_tensors(
        tmp_path: Path) -> None:
    """A model directory of an undescribed model_type with experts: the stacked experts
    come from the per-expert tensors of its safetensors headers, the MoE from their shape."""
    from fakehub import safetensors_header
    from rigscope.sources.hf import read_config

    cfg = {"model_type": "novel_moe", "num_hidden_layers": 2, "hidden_size": 128,
           "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000,
           "num_experts": 4, "num_experts_per_tok": 2}
    tensors = {"model.embed_tokens.weight": [1000, 128], "model.norm.weight": [128],
               "lm_head.weight": [1000, 128]}
    for il in range(2):
        p = f"model.layers.{il}."
        tensors |= {p + "self_attn.q_proj.weight": [128, 128],
                    p + "self_attn.k_proj.weight": [64, 128],
                    p + "self_attn.v_proj.weight": [64, 128],
                    p + "self_attn.o_proj.weight": [128, 128],
                    p + "mlp.gate.weight": [4, 128]}
        for x in range(4):
            tensors |= {p + f"mlp.experts.{x}.{w}.weight": s for w, s in (
                ("gate_proj", [96, 128]), ("up_proj", [96, 128]), ("down_proj", [128, 96]))}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "model.safetensors").write_bytes(safetensors_header(tensors))
    m = read_config(tmp_path)
    a = m.architecture
    assert a.moe is not None and (a.moe.experts, a.moe.used, a.moe.ffn) == (4, 2, 96)
    assert a.ffn_kinds == ("moe", "moe") and a.attention == ("full", "full")
    down = next(t for t in m.tensors if t.name == "blk.0.ffn_down_exps.weight")
    assert down.shape == (96, 128, 4)
    assert m.params == m.published_params == sum(math.prod(s) for s in tensors.values())
    assert "not one rigscope knows" in m.warnings[0]
