"""--backend: the llama.cpp backend a rig's GPUs run (Vulkan on any vendor, SYCL on Intel),
with speed constants per backend and vendor; the 2026 devices of the catalog."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import model, rig
from rigscope.cli import cli
from rigscope.errors import RigscopeError
from rigscope.estimator import estimate
from rigscope.estimator.speed import estimate_speed
from rigscope.estimator.speed_params import DEFAULT
from rigscope.hardware import with_backend


def test_vulkan_runs_every_vendor_and_keeps_the_vendor() -> None:
    for gpu, native in (("rtx-3090", "cuda"), ("rx-7900-xtx", "rocm"), ("arc-b580", "sycl"),
                        ("m3-max-40c:64gb", "metal")):
        r = with_backend(rig(gpu), "vulkan")
        d = r.devices[0]
        assert (d.backend, d.native, d.speed_key) == ("vulkan", native, f"vulkan-{native}")
        assert r.id.endswith("(vulkan)")
    with pytest.raises(RigscopeError, match="valid: cuda, vulkan"):
        with_backend(rig("rtx-3090"), "rocm")
    from rigscope.hardware import parse_rig

    with pytest.raises(RigscopeError, match="needs GPUs"):
        with_backend(parse_rig([], "16gb", None), "vulkan")


def test_speed_constants_are_looked_up_per_vendor() -> None:
    m = model("llama-3.1-8b")
    nv = with_backend(rig("rtx-4090"), "vulkan").devices[0]
    intel = with_backend(rig("arc-b580"), "vulkan").devices[0]
    assert DEFAULT.lookup(DEFAULT.pp_eff, nv, "", 0) == DEFAULT.pp_eff["vulkan-cuda"]
    assert DEFAULT.lookup(DEFAULT.pp_eff, intel, "", 0) == DEFAULT.pp_eff["vulkan-sycl"]
    # a native device still finds its own keys
    native = rig("rtx-4090").devices[0]
    assert DEFAULT.lookup(DEFAULT.layer_s, native, "", 0) == DEFAULT.layer_s["cuda"]
    cuda = estimate_speed(estimate(m, rig("rtx-4090"), quant="Q4_K_M", context=4096))
    vk = estimate_speed(estimate(m, with_backend(rig("rtx-4090"), "vulkan"), quant="Q4_K_M",
                                 context=4096))
    assert vk.decode_tokens_per_s != cuda.decode_tokens_per_s
    assert vk.decode_band > cuda.decode_band  # fewer rows behind Vulkan's constants
    assert any("fit_backends.py" in b for b in vk.basis)


def test_cli_json_and_plan_take_the_backend() -> None:
    r = CliRunner().invoke(cli, ["estimate", "llama-3.1-8b", "--gpu", "rtx-3090",
                                 "--backend", "vulkan", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["rig"] == "rtx-3090 (vulkan)"
    r = CliRunner().invoke(cli, ["plan", "llama-3.1-8b", "--gpu", "rtx-3090", "--gpu",
                                 "arc-b580", "--backend", "sycl", "--no-local", "--json"])
    assert r.exit_code == 0, r.output
    rigs = {o["rig"] for o in json.loads(r.output)["options"]}
    assert rigs == {"arc-b580"}  # the NVIDIA card does not run SYCL


@pytest.mark.parametrize("gpu", ["arc-b580", "arc-b570", "arc-a770", "arc-a750",
                                 "arc-pro-b60", "arc-pro-b50", "radeon-8060s",
                                 "jetson-agx-orin-64gb", "rtx-5060-ti-16gb"])
def test_2026_devices_estimate(gpu: str) -> None:
    e = estimate(model("llama-3.1-8b"), rig(gpu), quant="Q4_K_M", context=4096)
    assert e.fits
    s = estimate_speed(e)
    assert 0 < s.decode_roofline_fraction <= 1
    d = rig(gpu).devices[0]
    assert d.source and d.bandwidth_gbs and d.fp16_tflops


def test_strix_halo_holds_a_70b() -> None:
    e = estimate(model("llama-3.3-70b"), rig("radeon-8060s"), quant="Q4_K_M", context=32768)
    assert e.fits and e.devices[0].capacity_bytes == 115200 * 2**20
