"""Local machine detection, replaying recorded outputs of nvidia-smi, NVML, rocm-smi, sysctl."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from conftest import RECORDED_RAM_GBS, recorded_machine
from rigscope import system
from rigscope.cli import main

NVIDIA_SMI = "NVIDIA GeForce RTX 4090, 24564\nNVIDIA GeForce RTX 3090, 24576\n"
ROCM_SMI = json.dumps({"card0": {"Card series": "Radeon RX 7900 XTX", "Card model": "0x744c",
                                 "VRAM Total Memory (B)": "25753026560",
                                 "VRAM Total Used Memory (B)": "1023410176"}})
PROFILER = json.dumps({"SPDisplaysDataType": [{"_name": "Apple M3 Max", "sppci_cores": "40",
                                               "sppci_model": "Apple M3 Max"}]})


def replay(outputs: dict[str, str]) -> Callable[[list[str]], str | None]:
    """A runner answering each command by its first word (None: not installed)."""
    def run(cmd: list[str]) -> str | None:
        key = " ".join(cmd)
        for prefix, out in outputs.items():
            if key.startswith(prefix):
                return out
        return None
    return run


def on(monkeypatch: pytest.MonkeyPatch, **answers: object) -> None:
    monkeypatch.setattr(system, "PROBES", recorded_machine(**answers))


def test_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    on(monkeypatch, run=replay({"nvidia-smi": NVIDIA_SMI}))
    info = system.detect(measure=False)
    assert [g.id for g in info.gpus] == ["rtx-4090", "rtx-3090"]
    assert info.gpus[0].memory_bytes == 24564 * 2**20
    assert info.rig().id == "rtx-4090+rtx-3090"


class FakeNVML:
    """The slice of pynvml rigscope calls, answering like a host with one H100."""

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int: return 1
    def nvmlDeviceGetHandleByIndex(self, i: int) -> int: return i
    def nvmlDeviceGetName(self, h: int) -> bytes: return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetMemoryInfo(self, h: int) -> object:
        return type("Mem", (), {"total": 85520809984, "free": 84000000000})()


def test_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    on(monkeypatch, nvml=FakeNVML)
    info = system.detect(measure=False)
    (gpu,) = info.gpus
    assert gpu.id == "h100-sxm" and gpu.memory_bytes == 85520809984
    assert gpu.bandwidth_gbs == 3350  # the catalog's specs, the driver's memory size


def test_rocm_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    on(monkeypatch, run=replay({"rocm-smi": ROCM_SMI}))
    info = system.detect(measure=False)
    (gpu,) = info.gpus
    assert gpu.id == "rx-7900-xtx" and gpu.backend == "rocm"
    assert gpu.memory_bytes == 25753026560


def test_apple(monkeypatch: pytest.MonkeyPatch) -> None:
    on(monkeypatch, read=lambda path: None,  # macOS: no /proc; sysctl says 64 GiB
       run=replay({"sysctl -n machdep.cpu.brand_string": "Apple M3 Max\n",
                   "sysctl -n hw.memsize": f"{64 * 2**30}\n", "system_profiler": PROFILER}))
    info = system.detect(measure=False)
    (chip,) = info.gpus
    assert chip.id == "m3-max-40c:64gb" and chip.usable_bytes == 48 * 2**30


def test_unknown_gpu_keeps_the_driver_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    on(monkeypatch, run=replay({"nvidia-smi": "NVIDIA Tesla K80, 11441\n"}))
    info = system.detect(measure=False)
    (gpu,) = info.gpus
    assert gpu.id == "cuda0" and gpu.memory_bytes == 11441 * 2**20


def test_no_gpu_plans_for_the_cpu() -> None:
    info = system.detect(measure=False)
    assert info.gpus == () and "no GPU detected" in info.notes[0]
    assert info.rig().devices == ()


def test_bandwidth_is_measured_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    on(monkeypatch, ram_gbs=lambda: calls.append(1) or 20.0, tflops=lambda: 0.5)
    assert system.measured_cpu("cpu X") == (20.0, 0.5)
    assert system.measured_cpu("cpu X") == (20.0, 0.5)
    assert len(calls) == 1
    system.measured_cpu("cpu X", refresh=True)
    assert len(calls) == 2


def test_system_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["system", "--json"]) == 0  # on the recorded 2-core VM (no GPU)
    doc = json.loads(capsys.readouterr().out)
    meminfo_kib = 24684092  # tests/data/proc/meminfo
    assert doc["ram_bytes"] == meminfo_kib * 1024
    assert doc["ram_bandwidth_gbs"] == RECORDED_RAM_GBS
    assert doc["cpu"].startswith("AMD EPYC") and doc["cpu_cores"] == 2
    assert doc["gpus"] == [] and doc["rig"] == "cpu:24gb"
    assert doc["cpu_features"] == ["avx2", "avx512"]  # a native build on its flags


def test_measurement_probes_return_sane_figures() -> None:
    """The real probes, briefly: figures of the right kind on any machine."""
    assert 0.1 < system.measure_ram_bandwidth(mib=16, repeats=3) < 10_000
    assert 0.0001 < system.measure_cpu_tflops(n=256, repeats=2) < 10_000


def test_free_memory_and_shared_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    # NVML's free memory is what llama.cpp's fit places against
    on(monkeypatch, nvml=lambda: FakeNVML())
    (g,) = system.detect(measure=False).gpus
    assert g.memory_bytes == 85520809984 and g.usable_bytes == 84000000000
    assert "free memory" in g.memory_source
    # rocm-smi: a discrete card's free VRAM; an APU's GTT pool beyond its carve-out
    on(monkeypatch, run=replay({"rocm-smi": ROCM_SMI}))
    (g,) = system.detect(measure=False).gpus
    assert g.usable_bytes == 25753026560 - 1023410176
    apu = json.dumps({"card0": {"Card series": "AMD Radeon 8060S Graphics",
                                "VRAM Total Memory (B)": str(512 * 2**20),
                                "GTT Total Memory (B)": str(120 * 2**30)}})
    on(monkeypatch, run=replay({"rocm-smi": apu}))
    (g,) = system.detect(measure=False).gpus
    assert g.id == "radeon-8060s" and g.usable_bytes == 120 * 2**30
    assert g.memory_source == "GTT (rocm-smi)"
    # Apple: iogpu.wired_limit_mb, when set, is the GPU's limit
    outputs = {"sysctl -n machdep.cpu.brand_string": "Apple M3 Max",
               "sysctl -n hw.memsize": str(64 * 2**30),
               "sysctl -n iogpu.wired_limit_mb": "57344", "system_profiler": PROFILER}
    on(monkeypatch, run=replay(outputs), read=lambda path: None)
    (g,) = system.detect(measure=False).gpus
    assert g.usable_bytes == 57344 * 2**20 and g.memory_source == "iogpu.wired_limit_mb"
    outputs["sysctl -n iogpu.wired_limit_mb"] = "0"  # unset: macOS's default share
    on(monkeypatch, run=replay(outputs), read=lambda path: None)
    (g,) = system.detect(measure=False).gpus
    assert g.usable_bytes < g.memory_bytes and g.memory_source != "iogpu.wired_limit_mb"
