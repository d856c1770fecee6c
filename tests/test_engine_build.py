"""The llama.cpp build: flags chosen from the CPU (recorded /proc/cpuinfo excerpts), and the
built programs inspected for instructions those flags exclude."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import require_engine
from rigscope.llamacpp.build import cpu_flags, plan_build, probe_amx
from rigscope.llamacpp.locate import build_record, find

DATA = Path(__file__).parent / "data" / "cpuinfo"
REFUSED = (False, "the kernel refused tile state (arch_prctl)")


def flags(name: str) -> set[str]:
    return cpu_flags((DATA / name).read_text())


def test_avx512_machine_gets_the_portable_v3_build() -> None:
    plan = plan_build("x86_64", flags("amd_zen4_vm.txt"), (False, "no AMX"))
    assert "-DGGML_NATIVE=OFF" in plan.cmake_args
    assert {"-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON"} <= set(plan.cmake_args)
    assert "-DGGML_AVX512=OFF" in plan.cmake_args and "-DGGML_AMX_INT8=OFF" in plan.cmake_args
    assert plan.features == ("avx2",)


def test_advertised_amx_that_fails_its_probe_stays_off() -> None:
    plan = plan_build("x86_64", flags("xeon_amx_vm.txt"), REFUSED)
    assert not plan.amx and "-DGGML_AMX_TILE=OFF" in plan.cmake_args
    assert any("AMX advertised but off" in n for n in plan.notes)
    # the same flags build the same programs as on a CPU without AMX
    other = plan_build("x86_64", flags("haswell.txt"), (False, "no AMX"))
    assert plan.cmake_args == other.cmake_args and plan.key == other.key


def test_amx_proven_by_the_probe_turns_on_with_avx512() -> None:
    plan = plan_build("x86_64", flags("xeon_amx_vm.txt"), (True, "tile instructions ran"))
    assert plan.amx and {"-DGGML_AMX_INT8=ON", "-DGGML_AVX512=ON"} <= set(plan.cmake_args)
    assert "amx" in plan.features


def test_older_cpus_and_arm() -> None:
    assert plan_build("x86_64", flags("old_x86.txt"), REFUSED).features == ()
    assert "-DGGML_AVX2=OFF" in plan_build("x86_64", flags("old_x86.txt"), REFUSED).cmake_args
    neo = plan_build("aarch64", flags("arm_neoverse.txt"), REFUSED)
    assert "-DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod" in neo.cmake_args
    assert neo.features == ("neon", "dotprod")
    assert plan_build("aarch64", flags("arm_a72.txt"), REFUSED).features == ("neon",)


def test_amx_probe_here_agrees_with_the_cpu() -> None:
    here = cpu_flags(Path("/proc/cpuinfo").read_text()) if Path("/proc/cpuinfo").exists() \
        else set()
    works, why = probe_amx(here)
    if "amx_tile" not in here:
        assert not works and "does not advertise" in why
    else:  # the probe either ran the tiles or says why not
        assert works or why


# Instructions a build without them must not contain: AVX-512 (zmm registers, mask
# registers) and AMX tiles.
EXCLUDED = {
    "avx512": re.compile(r"%zmm\d|\{%k[1-7]\}|\bkmov[bwdq]\b"),
    "amx": re.compile(r"\b(tilezero|tileloadd|tileloaddt1|tilestored|ldtilecfg|sttilecfg|"
                      r"tilerelease|tdpb[su][su]d|tdpbf16ps)\b"),
}


@pytest.mark.slow
def test_built_programs_hold_no_excluded_instructions() -> None:
    require_engine()
    if shutil.which("objdump") is None:
        pytest.fail("objdump (binutils) is needed to inspect the build")
    record = build_record()
    assert record is not None, "build.json missing beside the programs"
    features = set(record["features"])
    exe = find("llama-server")
    assert exe is not None
    asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(exe)], capture_output=True,
                         text=True, check=True).stdout
    assert len(asm) > 1_000_000  # really disassembled
    for feature, pattern in EXCLUDED.items():
        found = pattern.findall(asm)
        if feature in features:
            assert found, f"{feature} is on but no {feature} instruction was emitted"
        else:
            assert not found, f"{feature} is off but the build holds {sorted(set(found))[:5]}"
    assert json.loads(json.dumps(record))["cmake_args"]
