"""llama.cpp memory accounting (reference-facts.md) and fit decisions at the boundary."""

from __future__ import annotations

import pytest

from conftest import GIB, MIB, model, rig
from rigscope.estimator import estimate
from rigscope.specs import Offload

# Llama-3-8B Q4_K_M, n_ctx 8192, f16 KV, flash attention off, logits reserved for a whole
# ubatch (2024 builds), from XiongjieDai/GPU-Benchmarks-on-LLM-Inference notebooks via
# reference-facts.md.


def est8b(*gpus: str, **kw):  # noqa: ANN201
    kw.setdefault("context", 8192)
    kw.setdefault("flash_attn", False)
    kw.setdefault("outputs", "ubatch")
    return estimate(model("llama-3-8b"), rig(*gpus), quant="Q4_K_M", **kw)


def test_one_gpu_buffers() -> None:
    e = est8b("rtx-4090")
    (gpu,) = e.devices
    assert gpu.weights_bytes / MIB == pytest.approx(4403.49, rel=0.001)
    assert gpu.kv_bytes == 1024 * MIB
    assert gpu.compute_bytes / MIB == pytest.approx(560.00, rel=0.05)
    assert e.host.weights_bytes / MIB == pytest.approx(281.81, abs=0.01)
    assert e.host.compute_bytes / MIB == pytest.approx(24.01, rel=0.05)
    assert e.host.overhead_bytes / MIB == pytest.approx(0.49, abs=0.01)
    assert e.fits and e.runs and e.offloaded_layers == 0


def test_small_context_kv_and_logits_bound_compute_on_metal() -> None:
    e = est8b("m1-8c:8gb", context=512)
    assert e.kv_cache_bytes == 64 * MIB
    assert e.devices[0].compute_bytes / MIB == pytest.approx(258.50, rel=0.05)


def test_two_gpu_split() -> None:
    e = est8b("2xrtx-3090")
    assert [d.kv_bytes // MIB for d in e.devices] == [544, 480]
    for d in e.devices:
        assert d.compute_bytes / MIB == pytest.approx(640.01, rel=0.05)


def test_four_gpu_split() -> None:
    e = est8b("4xh100-pcie")
    assert [d.kv_bytes // MIB for d in e.devices] == [288, 256, 256, 224]
    for d, ref in zip(e.devices, [1130.62, 982.66, 982.66, 1307.55], strict=True):
        assert d.weights_bytes / MIB == pytest.approx(ref, rel=0.001)
    assert e.host.compute_bytes / MIB == pytest.approx(72.02, rel=0.05)


def test_six_gpu_split() -> None:
    e = est8b("6xrtx-3090")
    assert [d.kv_bytes // MIB for d in e.devices] == [192, 160, 192, 160, 192, 128]


def test_totals_within_five_percent_of_llamacpp_buffers() -> None:
    # Sum of the buffers llama.cpp printed, per setup (model + KV + compute, GPU and host)
    reference = {
        ("rtx-4090",): 4403.49 + 281.81 + 1024 + 560.00 + 24.01 + 0.49,
        ("4xh100-pcie",): 4403.49 + 281.81 + 1024 + 4 * 640.01 + 72.02 + 0.49,
    }
    for gpus, ref_mib in reference.items():
        e = est8b(*gpus)
        ours = e.total_bytes - sum(d.overhead_bytes for d in e.devices)  # runtime not logged
        assert ours / MIB == pytest.approx(ref_mib, rel=0.05), gpus


@pytest.mark.parametrize("flash_attn", [True, False])
def test_fit_boundary_8b_f16_on_16gb(flash_attn: bool) -> None:
    # by the card's memory alone (--fit off: llama-server's fit also keeps 1 GiB free)
    m, r, off = model("llama-3-8b"), rig("rtx-4080"), Offload(fit=False)
    assert estimate(m, r, quant="F16", context=4096, flash_attn=flash_attn, offload=off).fits
    assert not estimate(m, r, quant="F16", context=16384, flash_attn=flash_attn,
                        offload=off).fits


def test_70b_q4_k_m_needs_two_24gb_cards() -> None:
    m = model("llama-3-70b")
    one = estimate(m, rig("rtx-3090"), quant="Q4_K_M")
    two = estimate(m, rig("2xrtx-3090"), quant="Q4_K_M")
    assert 39 * GIB < one.weights_bytes < 41 * GIB  # "~40 GB"
    assert not one.fits and one.runs and one.offloaded_layers > 0
    assert one.offloaded_bytes > 0
    assert two.fits and [d.layers for d in two.devices] == [41, 39]


def test_cannot_run_when_host_ram_is_too_small() -> None:
    e = estimate(model("llama-3-70b"), rig("rtx-3060-12gb", ram="16gb"), quant="F16")
    assert not e.fits and not e.runs


def test_quantized_kv_needs_flash_attention() -> None:
    from rigscope.errors import RigscopeError

    with pytest.raises(RigscopeError, match="flash attention"):
        est8b("rtx-4090", kv_type="q8_0", flash_attn=False)
    q8 = est8b("rtx-4090", kv_type="q8_0", flash_attn=True)
    assert q8.kv_cache_bytes == 32 * 8192 * 2 * (1024 // 32 * 34)


def test_sliding_window_layers_keep_a_window() -> None:
    m = model("gemma-2-9b")
    e = estimate(m, rig("rtx-4090"), quant="Q4_K_M", context=32768)
    per_full_layer = 32768 * 2 * 8 * 256 * 2
    per_swa_layer = (4096 + 512) * 2 * 8 * 256 * 2
    assert e.kv_cache_bytes == 21 * per_full_layer + 21 * per_swa_layer


def test_apple_uses_the_metal_working_set() -> None:
    e = estimate(model("llama-3-70b"), rig("m3-max-40c:64gb"), quant="Q4_K_M")
    assert e.devices[0].capacity_bytes == 48 * GIB
    assert e.fits
    spill = estimate(model("llama-3-70b"), rig("m3-max-40c:48gb"), quant="Q4_K_M")
    assert not spill.fits


def test_cpu_only_holds_everything_in_ram() -> None:
    from rigscope.hardware import parse_rig

    e = estimate(model("llama-3-8b"), parse_rig([], "32gb"), quant="Q4_K_M")
    assert e.rig.id == "cpu:32gb" and e.fits
    assert e.devices[0].weights_bytes == e.weights_bytes


def test_vllm_pages_kv_into_what_is_left() -> None:
    e = estimate(model("llama-3-8b"), rig("rtx-4090"), engine="vllm", context=8192)
    assert e.quant.name == "BF16" and e.fits
    assert e.max_sequences is not None and e.max_sequences >= 1
    per_seq = 8192 * 32 * 2 * 8 * 128 * 2
    assert e.max_sequences == e.devices[0].kv_bytes // per_seq
    odd = estimate(model("llama-3-8b"), rig("3xrtx-4090"), engine="vllm")
    assert not odd.fits and any("do not split" in b for b in odd.basis)


def test_transformers_offloads_layers_that_do_not_fit() -> None:
    e = estimate(model("llama-3-8b"), rig("rtx-3060-12gb"), engine="transformers")
    assert not e.fits and e.runs and e.offloaded_layers > 0


def test_mlx_only_on_apple() -> None:
    from rigscope.errors import RigscopeError

    with pytest.raises(RigscopeError, match="metal"):
        estimate(model("llama-3-8b"), rig("rtx-4090"), engine="mlx")
    e = estimate(model("llama-3-8b"), rig("m4-max-40c"), engine="mlx")
    assert e.quant.name == "MLX-4BIT" and e.fits
