"""Rigs of several nodes: tensor parallel in each, pipeline parallel across an interconnect;
plans reach for them when no single machine holds the model."""

from __future__ import annotations

import json

import pytest

from rigscope.cli import main
from rigscope.errors import RigscopeError
from rigscope.estimator import estimate
from rigscope.estimator.speed import estimate_speed
from rigscope.hardware import parse_rig
from rigscope.sources import catalog_model


def test_deepseek_v3_fp8_one_h200_node_or_two_h100_nodes() -> None:
    m = catalog_model("deepseek-v3")
    one_h200 = estimate(m, parse_rig(["8xh200"]), quant="FP8", engine="vllm", context=8192)
    one_h100 = estimate(m, parse_rig(["8xh100-sxm"]), quant="FP8", engine="vllm",
                        context=8192)
    two_h100 = estimate(m, parse_rig(["8xh100-sxm"], nodes=2), quant="FP8", engine="sglang",
                        context=8192)
    assert one_h200.fits and not one_h100.fits and two_h100.fits
    # each of the 16 GPUs holds 1/16 of the weights and half the layers' cache
    assert two_h100.devices[0].weights_bytes == pytest.approx(
        one_h100.devices[0].weights_bytes / 2, rel=1e-3)
    assert two_h100.rig.id == "2 nodes x 8xh100-sxm (ib-400g)"


def test_the_interconnect_costs_time_in_decode_and_prefill() -> None:
    m = catalog_model("llama-3.1-405b")
    speeds = {}
    for link in ("nvlink", "ib-400g", "eth-10g"):
        est = estimate(m, parse_rig(["8xh100-sxm"], nodes=2, interconnect=link),
                       quant="FP8", engine="vllm", context=8192, batch=8)
        speeds[link] = estimate_speed(est, prompt_tokens=4096)
    assert speeds["nvlink"].ttft_s < speeds["ib-400g"].ttft_s < speeds["eth-10g"].ttft_s
    # 4096 tokens x 16384 x 2 bytes over 1.25 GB/s: about 0.1 s more than over InfiniBand
    assert speeds["eth-10g"].ttft_s - speeds["ib-400g"].ttft_s == pytest.approx(
        4096 * 16384 * 2 * (1 / 1.25e9 - 1 / 50e9), rel=0.05)
    assert speeds["eth-10g"].decode_tokens_per_s < speeds["nvlink"].decode_tokens_per_s


def test_single_machine_engines_and_bad_rigs_are_refused() -> None:
    m = catalog_model("llama-3-70b")
    with pytest.raises(RigscopeError, match="runs on one machine"):
        estimate(m, parse_rig(["2xrtx-3090"], nodes=2), engine="llama.cpp")
    with pytest.raises(RigscopeError, match="Apple chips and CPU-only"):
        parse_rig(["m3-max-40c:128gb"], nodes=2)
    with pytest.raises(RigscopeError, match="unknown interconnect"):
        parse_rig(["8xh100-sxm"], nodes=2, interconnect="carrier-pigeon")


def test_plan_reaches_for_several_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    """DeepSeek-V3 in BF16 (1.3 TB) fits no workstation: the plan says what it needs (one
    node of 8 MI300X, 1.5 TB, or several nodes of the others)."""
    assert main(["plan", "deepseek-v3", "--quant", "BF16", "--engine", "vllm", "--json"]) == 0
    opts = json.loads(capsys.readouterr().out)["options"]
    multi = [o for o in opts if o["nodes"] > 1]
    assert {o["rig"] for o in opts if o["nodes"] == 1} == {"8xmi300x"}
    assert multi and all(o["interconnect"] == "ib-400g" for o in multi)
    assert any(o["rig"].startswith("2 nodes x 8xh200") for o in multi)
    assert all(any("pipeline parallel" in n for n in o["notes"]) for o in multi)
    assert main(["estimate", "deepseek-v3", "--quant", "FP8", "--engine", "vllm", "--gpu",
                 "8xh100-sxm", "--nodes", "2", "--interconnect", "eth-100g", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["nodes"] == 2 and doc["interconnect"] == "eth-100g"
    assert doc["memory"]["fits"] and len(doc["memory"]["devices"]) == 16
