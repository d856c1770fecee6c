"""Telemetry: parsers on recorded server answers and a recorded NVML, and a bench run that
stores what the server said on its own timeline."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from rigscope.bench.run import BenchConfig, run_bench
from rigscope.bench.telemetry import (
    Source,
    nvml_sample,
    parse_ollama_ps,
    parse_prometheus,
    parse_slots,
    sample,
    server_metrics,
    stop_sampling,
)
from rigscope.contract import run_json
from rigscope.report import render
from rigscope.store import Store

DATA = Path(__file__).parent / "data" / "telemetry"


def metrics(name: str) -> dict[str, float]:
    return server_metrics(parse_prometheus((DATA / name).read_text()))


def test_vllm_sglang_and_llamacpp_metrics() -> None:
    assert metrics("vllm-metrics.txt") == {
        "requests_running": 12, "requests_waiting": 3, "kv_cache_usage": 0.4375,
        "prefix_cache_hit_rate": 0.25, "prefix_cache_hits": 10240,
        "prefix_cache_queries": 40960}
    assert metrics("sglang-metrics.txt") == {
        "requests_running": 8, "requests_waiting": 0, "kv_cache_usage": 0.21,
        "prefix_cache_hit_rate": 0.62}
    assert metrics("llamacpp-metrics.txt") == {
        "requests_running": 2, "requests_waiting": 1, "kv_cache_usage": 0.125,
        "kv_cache_tokens": 512}
    assert parse_prometheus("garbage\nx{a=\"1\"} NaN\ny 2\n") == {"y": 2.0}


def test_llamacpp_slots_and_ollama_split() -> None:
    assert parse_slots(json.loads((DATA / "llamacpp-slots.json").read_text())) == {
        "slots_busy": 1, "slots_total": 2, "slot_context": 2048}
    ps = parse_ollama_ps(json.loads((DATA / "ollama-ps.json").read_text()))
    assert ps["vram_bytes"] == 25769803776 and ps["ram_bytes"] == 44912091136 - 25769803776
    assert ps["gpu_share"] == pytest.approx(0.5738, abs=1e-4)
    assert parse_slots({"error": 1}) == {} and parse_ollama_ps({"models": []}) == {}


def test_nvml_on_recorded_answers() -> None:
    """Two GPUs, as nvidia-ml-py answers (memory in bytes, power in milliwatts)."""
    answers = {0: (20 * 2**30, 281_000, 97, 1695), 1: (19 * 2**30, 265_500, 95, 1710)}
    nvml = SimpleNamespace(
        NVML_CLOCK_SM=1,
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=answers[h][0]),
        nvmlDeviceGetPowerUsage=lambda h: answers[h][1],
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=answers[h][2]),
        nvmlDeviceGetClockInfo=lambda h, kind: answers[h][3])
    s = nvml_sample(nvml, [0, 1])
    assert s == {"gpu_memory_used_bytes": 39 * 2**30, "gpu_power_w": 546.5,
                 "gpu_util_pct": 96.0, "sm_clock_mhz": 1702.5, "gpus": 2.0}


def test_a_bench_run_stores_the_servers_metrics(fake_server, tmp_path: Path) -> None:  # noqa: ANN001
    srv = fake_server(ttft=0.05, itl=0.01)
    store = Store(tmp_path / "r.db")
    run_id, done = run_bench(BenchConfig(url=srv.url, model="fake-model", concurrency=(4,),
                                         requests=8, output_tokens=40), store)
    assert done
    run = store.run(run_id)
    assert run.config["telemetry"] == ["metrics"]
    samples = [x for x in run.telemetry if x.source == "metrics"]
    assert len(samples) >= 3  # every 0.5 s over a run of about 1.5 s
    starts = [r.start for r in run.requests]
    ends = [r.start + (r.e2e_s or 0) for r in run.requests]
    during = [x for x in samples if min(starts) + 0.1 < x.t < max(ends) - 0.1]
    assert during and max(x.data["requests_running"] for x in during) >= 3
    assert run_json(run)["telemetry"][0]["source"] == "metrics"
    assert 'id="telemetry"' in render([run])


def test_no_metrics_no_telemetry(fake_server, tmp_path: Path) -> None:  # noqa: ANN001
    srv = fake_server(metrics=0)
    store = Store(tmp_path / "r.db")
    run_id, _ = run_bench(BenchConfig(url=srv.url, model="fake-model", requests=2,
                                      output_tokens=4), store)
    run = store.run(run_id)
    assert run.config["telemetry"] == [] and run.telemetry == ()


def test_report_sets_predicted_memory_beside_what_ollama_reported() -> None:
    from dataclasses import replace

    from rigscope.records import Run, Sample

    gib = 2**30
    run = Run(run_id="r", started_at="2026-12-01", finished_at=None, status="done", label=None,
              url="http://127.0.0.1:11434", model="llama3.1:70b", api="ollama-chat",
              config={"prediction": {"memory": [
                  {"id": "rtx-3090", "weights_bytes": 21 * gib, "kv_bytes": 2 * gib,
                   "compute_bytes": gib, "overhead_bytes": 0}]}},
              levels=(), requests=())
    ps = parse_ollama_ps(json.loads((DATA / "ollama-ps.json").read_text()))
    html = render([replace(run, telemetry=(Sample(0.0, "ollama_ps", ps),
                                           Sample(0.5, "ollama_ps", ps)))])
    assert "Memory: predicted vs reported" in html and "24,576" in html  # 24 GiB predicted
    assert "24,576</td><td>24,576" in html  # Ollama put 24 GiB in VRAM


def test_sampling_stops_even_when_a_read_swallows_its_cancellation() -> None:
    """Python 3.11's asyncio.wait_for returns the inner result when its own cancellation
    lands as the inner read completes (the cancel is lost, gh-86296): a server dying mid-read
    does just that. The sampler must stop anyway, or the bench run never ends."""
    reads, swallowed = 0, 0

    async def read() -> dict[str, float]:
        nonlocal reads, swallowed
        reads += 1
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed += 1  # as wait_for does when the inner future is already done
        return {"x": 1.0}

    async def main() -> tuple[bool, int]:
        stop = asyncio.Event()
        task = asyncio.create_task(
            sample([Source("metrics", 0.01, read)], time.perf_counter, lambda *a: None, stop))
        while not reads:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.005)  # in the middle of a read
        done, _ = await asyncio.wait({asyncio.ensure_future(stop_sampling(task, stop))},
                                     timeout=2.0)
        task.cancel()  # the second cancel, for the test's own exit
        return bool(done), reads

    stopped, count = asyncio.run(main())
    assert swallowed == 1 and stopped
    assert count == reads  # nothing was read after it stopped
