"""No prediction beats physics: a decoded token cannot arrive faster than the devices' memory
can deliver the bytes it reads (weights and KV cache, at spec bandwidth), over the whole
catalog: every GPU and Apple chip, every kernel family, 1 to 8 GPUs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rigscope.catalog import apple_accelerator, apple_chips, gpus
from rigscope.estimator import estimate
from rigscope.estimator.speed import estimate_speed, kv_read_bytes
from rigscope.estimator.speed_params import DEFAULT
from rigscope.hardware import parse_rig
from rigscope.sources import catalog_model

QUANTS = ["F16", "Q8_0", "Q6_K", "Q4_K_M", "Q4_0", "IQ4_XS"]
PROMPT, OUTPUT = 512, 128


def roofline_tps(est) -> float:  # noqa: ANN001
    """Tokens/s if every device read its bytes per token at its full spec bandwidth, one
    device after another (layer split) or all at once (tensor parallel)."""
    context = PROMPT + OUTPUT / 2
    times = []
    devices = [(est.host, est.rig.host)] if est.host.layers or est.host.read_bytes else []
    devices += list(zip(est.devices, est.rig.devices or (est.rig.host,), strict=False))
    for use, dev in devices:
        if use.layers or use.read_bytes:
            nbytes = use.read_bytes + kv_read_bytes(use, context, est.model.sliding_window)
            times.append(nbytes / (dev.bandwidth_gbs * 1e9))
    total = max(times) if est.engine.family == "vllm" else sum(times)
    return 1 / total


def check(model: str, rig: list[str], quant: str, engine: str = "llama.cpp") -> None:
    est = estimate(catalog_model(model), parse_rig(rig, ram="64gb"), quant=quant, engine=engine,
                   context=2048)
    if not est.runs:
        return
    speed = estimate_speed(est, prompt_tokens=PROMPT, output_tokens=OUTPUT)
    assert speed.decode_tokens_per_s <= roofline_tps(est) * (1 + 1e-9), (model, rig, quant)
    assert 0 < speed.decode_roofline_fraction <= 1


@pytest.mark.parametrize("gpu", sorted(gpus()))
def test_every_gpu_every_family_one_to_eight(gpu: str) -> None:
    for count in (1, 2, 4, 8):
        for quant in QUANTS:
            check("llama-3-8b", [f"{count}x{gpu}"], quant)
        check("llama-3-70b", [f"{count}x{gpu}"], "F16")


@pytest.mark.parametrize("chip", sorted(apple_chips()))
def test_every_apple_chip(chip: str) -> None:
    rig = apple_accelerator(chip).id
    for quant in QUANTS:
        check("llama-3-8b", [rig], quant)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(["qwen3-30b-a3b", "gpt-oss-20b", "gemma-3-27b", "mistral-7b-v0.3",
                              "nemotron-3-nano-30b-a3b", "qwen2.5-72b"]),
       gpu=st.sampled_from(sorted(gpus())), count=st.sampled_from([1, 2, 3, 4, 8]),
       quant=st.sampled_from(QUANTS))
def test_any_model_on_any_rig(model: str, gpu: str, count: int, quant: str) -> None:
    check(model, [f"{count}x{gpu}"], quant)


def test_efficiencies_are_shares_of_spec() -> None:
    for field in ("bw_eff", "kv_eff", "pp_eff", "attn_eff"):
        assert all(0 < v <= 1 for v in getattr(DEFAULT, field).values()), field
    assert 0 < DEFAULT.apple_2die <= 1 and 0 < DEFAULT.hopper_peak <= 1


def test_vllm_tensor_parallel_obeys_the_roofline_too() -> None:
    for count in (1, 2, 4, 8):
        check("llama-3-70b", [f"{count}xh100-sxm"], "BF16", engine="vllm")
