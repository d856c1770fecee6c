"""The speed model's shape: what grows, what shrinks, and by how much where data says so."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import model, rig
from rigscope.cli import main
from rigscope.estimator import estimate
from rigscope.estimator.speed import (
    decode_step_seconds,
    estimate_speed,
    kernel_family,
    prefill_seconds,
)


def speed(mid: str, *gpus: str, **kw):  # noqa: ANN201
    quant = kw.pop("quant", "Q4_K_M")
    ctx = kw.pop("context", 4096)
    e = estimate(model(mid), rig(*gpus), quant=quant, context=ctx, **kw)
    return e, estimate_speed(e)


def test_kernel_families() -> None:
    assert [kernel_family(t) for t in ("F16", "Q8_0", "Q4_0", "Q4_K", "IQ2_XS")] == [
        "f16", "q8", "legacy", "kquant", "iq"]


def test_decode_slows_with_context_and_prefill_with_length() -> None:
    e, _ = speed("llama-3-8b", "rtx-4090", context=32768)
    steps = [decode_step_seconds(e, c) for c in (0, 1024, 8192, 32768)]
    assert steps == sorted(steps) and steps[-1] > steps[0] * 1.1
    rates = [n / prefill_seconds(e, n) for n in (512, 4096, 16384)]
    assert rates == sorted(rates, reverse=True)


def test_layer_split_adds_a_hop_and_no_speedup_at_batch_one() -> None:
    _, one = speed("llama-3-8b", "rtx-4090")
    _, two = speed("llama-3-8b", "2xrtx-4090")
    assert 0.85 * one.decode_tokens_per_s < two.decode_tokens_per_s < one.decode_tokens_per_s


def test_spilling_hits_the_swap_wall() -> None:
    _, spilled = speed("llama-3-70b", "rtx-3090")
    _, split = speed("llama-3-70b", "2xrtx-3090")
    assert spilled.decode_tokens_per_s < 0.25 * split.decode_tokens_per_s
    assert 12 < split.decode_tokens_per_s < 22  # two 3090s measure ~16-18 tok/s (field notes)
    assert any("swap wall" in b for b in spilled.basis)


def test_moe_reads_only_active_experts() -> None:
    e, moe = speed("mixtral-8x7b", "2xa100-sxm-80gb")
    _, dense = speed("llama-2-70b", "2xa100-sxm-80gb")
    assert e.weights_bytes > 0.6 * estimate(model("llama-2-70b"), rig("2xa100-sxm-80gb"),
                                            quant="Q4_K_M").weights_bytes
    assert moe.decode_tokens_per_s > 2.5 * dense.decode_tokens_per_s


def test_batching_trades_per_user_speed_for_throughput() -> None:
    one = estimate_speed(estimate(model("llama-3-8b"), rig("rtx-4090"), batch=1))
    many = estimate_speed(estimate(model("llama-3-8b"), rig("rtx-4090"), batch=16))
    assert many.decode_tokens_per_s < one.decode_tokens_per_s
    assert many.aggregate_tokens_per_s > 4 * one.aggregate_tokens_per_s


def test_tensor_parallel_divides_the_bytes() -> None:
    _, one = speed("llama-3-70b", "4xa100-sxm-80gb", engine="vllm", quant="BF16")
    _, two = speed("llama-3-8b", "2xa100-sxm-80gb", engine="vllm", quant="BF16")
    _, single = speed("llama-3-8b", "a100-sxm-80gb", engine="vllm", quant="BF16")
    assert two.decode_tokens_per_s > single.decode_tokens_per_s
    assert one.decode_tokens_per_s > 10


def test_time_figures() -> None:
    e = estimate(model("llama-3-8b"), rig("rtx-4090"))
    nets = {n: estimate_speed(e, prompt_tokens=512, output_tokens=128, network=n)
            for n in ("loopback", "10gbe", "1gbe", "wifi")}
    ttfts = [nets[n].ttft_s for n in ("loopback", "10gbe", "1gbe", "wifi")]
    assert ttfts == sorted(ttfts) and ttfts[-1] > ttfts[0] + 0.05  # a fresh Wi-Fi connection
    # the network moves the first token, not the decode rate
    assert len({round(s.decode_tokens_per_s, 9) for s in nets.values()}) == 1
    local = nets["loopback"]
    assert local.e2e_s == pytest.approx(
        local.ttft_s + 127 / local.decode_tokens_per_s, rel=0.01)
    long = estimate_speed(e, prompt_tokens=8192, output_tokens=128)
    assert long.ttft_s > 10 * local.ttft_s
    loads = [estimate_speed(e, disk=d).load_time_s for d in ("nvme", "sata-ssd", "hdd")]
    assert loads == sorted(loads) and loads[2] > 10 * loads[0]
    f16 = estimate(model("llama-3-8b"), rig("rtx-4090"), quant="F16")
    hdd16 = estimate_speed(f16, disk="hdd").load_time_s
    assert hdd16 / loads[2] == pytest.approx(f16.weights_bytes / e.weights_bytes, rel=0.05)


def test_estimate_json_has_the_contract_speed_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "llama-3-8b", "--gpu", "rtx-4090", "--prompt-tokens", "1024",
                 "--output-tokens", "256", "--network", "10gbe", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["speed"]
    for key in ("decode_tokens_per_s", "prefill_tokens_per_s", "ttft_s", "e2e_s", "load_time_s"):
        assert isinstance(s[key], float) and s[key] > 0, key
    assert s["e2e_s"] > s["ttft_s"]


def test_cannot_run_has_no_speed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "llama-3-70b", "--quant", "F16", "--gpu", "rtx-3060-12gb",
                 "--ram", "16gb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["speed"]["decode_tokens_per_s"] is None


def test_calibration_accuracy_holds() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from calibration import load_rows, predict

    errs: dict[str, list[float]] = {"tg": [], "pp": []}
    for row in load_rows():
        pred, fits = predict(row)
        errs[row.test].append(abs(pred / row.measured - 1))
        assert fits or row.engine == "ollama", row  # every measured configuration ran
    for test, limit in (("tg", 0.10), ("pp", 0.25)):
        a = sorted(errs[test])
        assert a[len(a) // 2] <= limit, test
    tg = sorted(errs["tg"])
    assert tg[int(0.9 * len(tg))] <= 0.30


def test_measured_llamacpp_kernels_on_this_cpu_drive_its_speed() -> None:
    """Where rigscope system measured llama.cpp's kernels here (rigscope.cpuprobe), a CPU
    estimate reads the weights at the measured rate for the mix's main type and pays the
    measured fixed cost per layer; other types keep the fitted constants."""
    import dataclasses

    from rigscope.cpuprobe import from_json, to_json
    from rigscope.estimator import estimate
    from rigscope.estimator.speed import estimate_speed
    from rigscope.hardware import parse_rig
    from rigscope.sources import resolve_model
    from rigscope.specs import EngineCpu

    engine = EngineCpu(layer_s=20e-6, pp_layer_s=60e-6,
                       kernels=(("Q4_K", 15e9, 120e9), ("Q8_0", 20e9, 130e9)),
                       source="measured with the llama.cpp built here, 2026-12-03")
    assert from_json(to_json(engine)) == engine
    plain = parse_rig([], "64gb", None)
    rig = dataclasses.replace(plain, host=dataclasses.replace(plain.host, engine=engine))
    model = resolve_model("llama-3-8b")
    est = estimate(model, rig, quant="Q4_K_M", context=1024)
    (dev,) = est.devices
    speed = estimate_speed(est, prompt_tokens=0, output_tokens=1)
    step = 1 / speed.decode_tokens_per_s
    kv = step - dev.read_bytes / 15e9 - model.layers * 20e-6
    assert 0 <= kv < 0.02 * step  # weights at the measured rate, the fixed cost per layer
    assert any("Q4_K kernels on this CPU read 15.0 GB/s" in b for b in speed.basis)
    # prefill: the mat-muls at the measured FLOP/s, the LM head for the last token only
    pp = estimate_speed(est, prompt_tokens=512).prefill_tokens_per_s
    mat = 2 * ((dev.params - dev.output_params) * 512 + dev.output_params) / 120e9
    assert 512 / pp == pytest.approx(mat + model.layers * 60e-6, rel=0.1)
    # a type it did not measure: the fitted bandwidth and FLOP/s, as on any CPU (the fixed
    # cost per layer stays the measured one)
    fixed_only = dataclasses.replace(engine, kernels=())
    bare = dataclasses.replace(plain, host=dataclasses.replace(plain.host, engine=fixed_only))
    other = estimate(model, rig, quant="Q5_K_M", context=1024)
    base = estimate(model, bare, quant="Q5_K_M", context=1024)
    assert estimate_speed(other).decode_tokens_per_s == estimate_speed(base).decode_tokens_per_s
    assert estimate_speed(other).decode_tokens_per_s > estimate_speed(
        estimate(model, plain, quant="Q5_K_M", context=1024)).decode_tokens_per_s
