"""Build llama.cpp's programs for this machine with deliberately chosen, portable flags.

What is built: llama-server (the demo's and the end-to-end tests' engine), llama-bench (speed
probes) and llama-quantize, from the llama.cpp tree that the pinned llama-cpp-python sdist
vendors (PyPI is the only registry CI reaches). Static libraries, no GPU backend, no web UI
download, no OpenSSL.

Why these flags: `GGML_NATIVE=ON` (llama.cpp's default) compiles for whatever the build machine
reports, including AMX tile instructions that a virtual machine may advertise in /proc/cpuinfo
and then refuse (SIGILL on `tilezero`). So the instruction set is one of two fixed x86-64
levels -- v3 (AVX2, FMA, F16C, BMI2) where the CPU has them, else v2 (SSE4.2) -- never
AVX-512; AMX (which ggml compiles only beside AVX-512) is turned on only when a tiny program
proves in a process of its own that the kernel grants tile state and the tile instructions
execute. On 64-bit ARM the baseline is armv8.2-a with dot product where the CPU has it, else
armv8-a. `python -m rigscope.llamacpp.build` writes what it chose, and why, to build.json
beside the binaries; a change of plan rebuilds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SOURCE_PACKAGE = "llama-cpp-python"
SOURCE_VERSION = "0.3.36"  # its sdist vendors llama.cpp (tools/server included)
TARGETS = ("llama-server", "llama-bench", "llama-quantize")
COMMON_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF", "-DGGML_CCACHE=OFF", "-DGGML_NATIVE=OFF",
)
X86_V3 = ("avx", "avx2", "fma", "f16c", "bmi2")
X86_V2 = ("sse4_2",)
AMX_NEEDS = ("amx_tile", "amx_int8", "amx_bf16", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16")
_X86_ALL = ("SSE42", "AVX", "AVX2", "FMA", "F16C", "BMI2", "AVX_VNNI", "AVX512", "AVX512_VBMI",
            "AVX512_VNNI", "AVX512_BF16", "AMX_TILE", "AMX_INT8", "AMX_BF16")


@dataclass(frozen=True)
class Plan:
    """What to build with: cmake arguments, the instruction set in words, the reasons."""

    machine: str
    cmake_args: tuple[str, ...]
    isa: str
    features: tuple[str, ...]  # ggml's compile-time CPU features (drives weight repacking)
    amx: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        text = json.dumps([SOURCE_VERSION, self.machine, self.cmake_args, TARGETS])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def cpu_flags(cpuinfo: str) -> set[str]:
    """CPU feature words from /proc/cpuinfo ('flags' on x86, 'Features' on ARM)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def plan_build(machine: str, flags: set[str], amx_probe: tuple[bool, str]) -> Plan:
    """The flags for this machine (pure: the CPU's flags and the AMX probe's verdict in)."""
    m = machine.lower()
    if m in ("x86_64", "amd64"):
        on: dict[str, bool] = dict.fromkeys(_X86_ALL, False)
        notes = []
        if all(f in flags for f in X86_V3):
            on |= dict.fromkeys(("SSE42", "AVX", "AVX2", "FMA", "F16C", "BMI2"), True)
            isa, features = "x86-64-v3 (AVX2, FMA, F16C, BMI2)", ["avx2"]
        elif all(f in flags for f in X86_V2):
            on["SSE42"] = True
            isa, features = "x86-64-v2 (SSE4.2)", []
            notes.append("no AVX2 on this CPU: the SSE4.2 baseline (slow)")
        else:
            isa, features = "x86-64 baseline (SSE2)", []
        if "avx512f" in flags:
            notes.append("AVX-512 left off: a portable build, the same on every x86-64-v3 CPU")
        works, why = amx_probe
        amx = bool(works and features and all(f in flags for f in AMX_NEEDS))
        if amx:
            on |= dict.fromkeys(("AVX512", "AVX512_VNNI", "AVX512_BF16", "AMX_TILE",
                                 "AMX_INT8", "AMX_BF16"), True)
            features += ["avx512", "amx"]
            isa += " + AVX-512 + AMX (the tile instructions ran in a probe process)"
        elif "amx_tile" in flags:
            notes.append(f"AMX advertised but off: {why}")
        args = COMMON_ARGS + tuple(f"-DGGML_{k}={'ON' if v else 'OFF'}" for k, v in on.items())
        return Plan(machine=m, cmake_args=args, isa=isa, features=tuple(features), amx=amx,
                    notes=tuple(notes))
    if m in ("aarch64", "arm64"):
        if "asimddp" in flags:
            arch, features = "armv8.2-a+dotprod", ["neon", "dotprod"]
        else:
            arch, features = "armv8-a", ["neon"]
        return Plan(machine=m, cmake_args=COMMON_ARGS + (f"-DGGML_CPU_ARM_ARCH={arch}",),
                    isa=arch, features=tuple(features), amx=False)
    return Plan(machine=m, cmake_args=COMMON_ARGS, isa=f"{m} defaults", features=(), amx=False,
                notes=(f"{m}: ggml's non-native defaults",))


AMX_PROBE_C = r"""
#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
struct tilecfg { unsigned char palette, start, reserved[14]; unsigned short colsb[16];
                 unsigned char rows[16]; };
int main(void) {
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */)) return 2;
    struct tilecfg cfg; memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 3; t++) { cfg.colsb[t] = 64; cfg.rows[t] = 16; }
    _tile_loadconfig(&cfg);
    static signed char a[16 * 64], b[16 * 64]; static int c[16 * 16];
    for (int i = 0; i < 16 * 64; i++) { a[i] = 1; b[i] = 2; }
    _tile_zero(0);
    _tile_loadd(1, a, 64);
    _tile_loadd(2, b, 64);
    _tile_dpbssd(0, 1, 2);
    _tile_stored(0, c, 64);
    _tile_release();
    for (int i = 0; i < 16 * 16; i++) if (c[i] != 128) return 3;  /* 64 x 1 x 2 */
    return 0;
}
"""


def probe_amx(flags: set[str], cc: str = "cc") -> tuple[bool, str]:
    """(works, why): compile and run a program that requests tile state and multiplies tiles."""
    if "amx_tile" not in flags:
        return False, "the CPU does not advertise AMX"
    if shutil.which(cc) is None:
        return False, f"no C compiler ({cc}) to probe it"
    with tempfile.TemporaryDirectory(prefix="rigscope-amx-") as tmp:
        src, exe = Path(tmp) / "amx.c", Path(tmp) / "amx"
        src.write_text(AMX_PROBE_C)
        built = subprocess.run([cc, "-O1", "-mamx-tile", "-mamx-int8", str(src), "-o", str(exe)],
                               capture_output=True, text=True)
        if built.returncode:
            return False, "the compiler cannot build AMX code"
        try:
            ran = subprocess.run([str(exe)], capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            return False, "the probe hung"
    if ran.returncode == 0:
        return True, "tile instructions ran"
    if ran.returncode < 0:
        return False, f"the probe died with {signal.Signals(-ran.returncode).name}"
    reasons = {2: "the kernel refused tile state (arch_prctl)", 3: "wrong tile product"}
    return False, reasons.get(ran.returncode, f"the probe exited {ran.returncode}")


def _run(cmd: list[str], log: Path, cwd: Path | None = None) -> None:
    with log.open("a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    if proc.returncode:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        sys.stderr.write("\n".join(tail) + "\n")
        raise SystemExit(f"llama.cpp build failed ({cmd[0]} {cmd[1]}); log: {log}")


def _source_tree(cache: Path, log: Path) -> Path:
    """The vendored llama.cpp tree of the pinned sdist, downloaded once."""
    name = f"{SOURCE_PACKAGE.replace('-', '_')}-{SOURCE_VERSION}"
    tree = cache / name / "vendor" / "llama.cpp"
    if (tree / "CMakeLists.txt").exists():
        return tree
    dl = cache / "download"
    dl.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
          "--disable-pip-version-check", "-d", str(dl), f"{SOURCE_PACKAGE}=={SOURCE_VERSION}"],
         log)
    (sdist,) = dl.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(cache, filter="data")
    sdist.unlink()
    if not (tree / "CMakeLists.txt").exists():
        raise SystemExit(f"{sdist.name} holds no vendor/llama.cpp tree")
    return tree


def build(prefix: Path, force: bool = False, jobs: int | None = None) -> dict[str, Any]:
    """Build (or reuse) the programs into prefix/bin; returns the build record."""
    machine = platform.machine()
    flags = cpu_flags(Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists()
                      else "")
    plan = plan_build(machine, flags, probe_amx(flags))
    cache = prefix / "llama.cpp"
    record_path = cache / "build.json"
    bins = prefix / "bin"
    if not force and record_path.exists():
        record = json.loads(record_path.read_text())
        if record.get("key") == plan.key and all((bins / t).exists() for t in TARGETS):
            return dict(record)
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / "build.log"
    log.write_text("")
    start = time.monotonic()
    tree = _source_tree(cache, log)
    build_dir = cache / "build"
    shutil.rmtree(build_dir, ignore_errors=True)
    _run(["cmake", "-S", str(tree), "-B", str(build_dir), *plan.cmake_args], log)
    _run(["cmake", "--build", str(build_dir), "--target", *TARGETS, "-j",
          str(jobs or os.cpu_count() or 1)], log)
    bins.mkdir(parents=True, exist_ok=True)
    for t in TARGETS:
        shutil.copy2(build_dir / "bin" / t, bins / t)
    record = {"key": plan.key, "source": f"{SOURCE_PACKAGE} {SOURCE_VERSION} sdist (vendored "
              "llama.cpp)", "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "build_seconds": round(time.monotonic() - start, 1), "bin": str(bins),
              "tree": str(tree),
              **asdict(plan)}
    record_path.write_text(json.dumps(record, indent=2))
    shutil.rmtree(build_dir, ignore_errors=True)  # objects are not needed once linked
    return record


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m rigscope.llamacpp.build",
                                 description="Build llama.cpp's server, bench and quantize.")
    ap.add_argument("--prefix", type=Path, default=Path(sys.prefix),
                    help="install into PREFIX/bin (default: this Python's environment)")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    ap.add_argument("--plan", action="store_true", help="print the plan and exit")
    args = ap.parse_args(argv)
    if args.plan:
        flags = cpu_flags(Path("/proc/cpuinfo").read_text()
                          if Path("/proc/cpuinfo").exists() else "")
        print(json.dumps(asdict(plan_build(platform.machine(), flags, probe_amx(flags))),
                         indent=2))
        return
    record = build(args.prefix, force=args.force)
    print(f"llama.cpp: {record['isa']}; programs in {record['bin']}", file=sys.stderr)
    for note in record.get("notes", []):
        print(f"llama.cpp: {note}", file=sys.stderr)


if __name__ == "__main__":
    main()
