"""Served speed: what a client of the engine's usual server measures, beside llama.cpp's own
figures; engine eras; the speed JSON fields."""

from __future__ import annotations

import json

import pytest

from conftest import model, rig
from rigscope.cli import main
from rigscope.estimator import estimate
from rigscope.estimator.serving import SERVERS, server_for
from rigscope.estimator.speed import estimate_speed
from rigscope.estimator.speed_params import era_of, flash_attn_default
from rigscope.hardware import parse_rig


def test_each_engine_names_its_server() -> None:
    assert server_for("llama.cpp").name == "llama-server"
    assert server_for("ollama").name == "ollama"
    assert server_for("vllm").name == "vllm"
    assert server_for("transformers") is None
    assert all(len(s.source) > 20 for s in SERVERS.values())


def test_served_speed_is_slower_by_the_servers_costs() -> None:
    est = estimate(model("qwen3-8b"), rig("rtx-4090"))
    speed = estimate_speed(est, prompt_tokens=512, output_tokens=128)
    server = SERVERS["llama-server"]
    step = 1 / speed.decode_tokens_per_s
    assert 1 / speed.served_decode_tokens_per_s == pytest.approx(
        step + server.token_seconds(151936))
    assert speed.served_ttft_s > speed.ttft_s + server.request_s * 0.99


def test_llama_cpp_python_computes_on_half_the_cpu() -> None:
    cpu = parse_rig([], cpu="32gb")
    est = estimate(model("qwen3-8b"), cpu)
    server = estimate_speed(est)
    python = estimate_speed(estimate(model("qwen3-8b"), cpu, engine="llama-cpp-python"))
    assert python.served_ttft_s > 1.8 * (server.served_ttft_s - 0.05)  # half the compute
    assert python.decode_tokens_per_s == server.decode_tokens_per_s  # llama.cpp itself


def test_engine_versions_and_their_flash_attention_default() -> None:
    assert era_of(None) == era_of("b7000") == era_of(2026) == "2025+"
    assert era_of("b2800") == era_of(2024) == "2024" and era_of("1500") == "2023"
    assert not flash_attn_default("b5000") and flash_attn_default("b6500")
    with pytest.raises(ValueError, match="give a llama.cpp build"):
        era_of("last week")


def test_speed_json_has_the_roofline_and_served_fields(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "llama-3-8b", "--gpu", "rtx-3090", "--quant", "F16", "--json"]) == 0
    speed = json.loads(capsys.readouterr().out)["speed"]
    assert 0 < speed["decode_roofline_fraction"] <= 1
    assert speed["server"] == "llama-server" and speed["served_decode_tokens_per_s"] > 0
    assert speed["decode_band"] == 0.23  # the band of CUDA GDDR rows, not a global one
    assert main(["estimate", "llama-3-8b", "--gpu", "rtx-3090", "--engine-version", "b2800",
                 "--json"]) == 0
    old = json.loads(capsys.readouterr().out)
    assert old["flash_attn"] is False  # builds before b6200 ran without it by default
    assert main(["estimate", "llama-3-8b", "--gpu", "rtx-3090", "--engine-version",
                 "yesterday"]) == 2
