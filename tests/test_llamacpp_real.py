"""The estimate against the real llama.cpp (llama-server built here, CPU) loading SmolLM2-135M
and random-weight models of other shapes.

llama.cpp prints the size of every buffer it allocates while loading; the estimate must match
them: weights (both copies where llama.cpp repacks) and KV within 1%, compute within 10%.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import require_engine
from rigscope.estimator import estimate
from rigscope.llamacpp.probe import parse_buffers, probe_buffers, quantize
from rigscope.sources import resolve_model
from rigscope.sources.hf import model_from_config
from rigscope.specs import Accelerator, Rig
from rigscope.system import local_cpu_features

pytestmark = pytest.mark.slow
MIB = 2**20
CONFIGS = [  # (n_ctx, flash attention, KV type)
    (512, False, "f16"), (2048, False, "f16"), (8192, False, "f16"), (1000, False, "f16"),
    (2048, True, "f16"), (8192, True, "f16"), (2048, True, "q8_0"), (4096, True, "q4_0"),
]


def this_cpu() -> Rig:
    features, source = local_cpu_features()
    return Rig(devices=(), host=Accelerator.cpu(8 * 2**30, features=features,
                                                features_source=source))


@pytest.fixture(scope="module")
def reported() -> dict[tuple, dict[str, dict[str, float]]]:
    path = require_engine()
    return dict(zip(CONFIGS, probe_buffers(path, CONFIGS), strict=True))


def total(buffers: dict[str, dict[str, float]], kind: str) -> float:
    return sum(buffers.get(kind, {}).values())


@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"ctx{c}-fa{int(f)}-{k}" for c, f, k in CONFIGS])
def test_estimate_matches_llamacpp_buffers(
    reported: dict[tuple, dict[str, dict[str, float]]], smollm2: Path, cfg: tuple
) -> None:
    ctx, fa, kv = cfg
    est = estimate(resolve_model(str(smollm2)), this_cpu(), context=ctx, flash_attn=fa,
                   kv_type=kv)
    (cpu,) = est.devices
    got = reported[cfg]
    assert cpu.weights_bytes / MIB == pytest.approx(total(got, "model"), rel=0.01)
    assert cpu.kv_bytes / MIB == pytest.approx(total(got, "KV"), rel=0.01)
    assert cpu.compute_bytes / MIB == pytest.approx(total(got, "compute"), rel=0.10)
    assert cpu.overhead_bytes / MIB == pytest.approx(total(got, "output"), abs=0.01)


def test_slots_share_the_kv_cache_and_each_gets_logits(smollm2: Path) -> None:
    (got,) = probe_buffers(smollm2, [(4 * 1024, True, "f16")], parallel=4)
    (cpu,) = estimate(resolve_model(str(smollm2)), this_cpu(), context=1024, batch=4).devices
    assert cpu.kv_bytes / MIB == pytest.approx(total(got, "KV"), rel=0.01)
    assert cpu.overhead_bytes / MIB == pytest.approx(total(got, "output"), abs=0.01)
    assert cpu.compute_bytes / MIB == pytest.approx(total(got, "compute"), rel=0.10)


def test_repacked_weights_count_twice(smollm2: Path, tmp_path: Path) -> None:
    """Q4_0 is repacked on AVX2 and NEON builds: llama.cpp reports the mapped file and the
    resident copy; the estimate shows both, and neither with repacking off."""
    q4_0 = quantize(smollm2, tmp_path / "smollm2-q4_0.gguf", "Q4_0")
    spec = resolve_model(str(q4_0))
    for repack in (True, False):
        (got,) = probe_buffers(q4_0, [(2048, True, "f16")], repack=repack)
        (cpu,) = estimate(spec, this_cpu(), context=2048, repack=repack).devices
        model = got["model"]
        copies = sum(v for k, v in model.items() if k != "CPU_Mapped")
        assert cpu.weights_bytes / MIB == pytest.approx(sum(model.values()), rel=0.01)
        assert cpu.repacked_bytes / MIB == pytest.approx(copies, abs=0.01)
        if repack and "avx2" in this_cpu().host.cpu_features:
            assert copies > 50  # the 30 layers' Q4_0 matrices, 56.95 MiB
        if not repack:
            assert cpu.repacked_bytes == 0 and set(model) == {"CPU_Mapped"}


SHAPES = [  # hidden, FFN, heads, KV heads, head dim: random-weight llama models, 2 layers
    (1024, 2816, 8, 2, 128), (768, 4096, 12, 4, 64), (512, 8192, 8, 2, 64),
]


@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_compute_buffer_on_other_shapes(smollm2: Path, tmp_path: Path, shape: tuple) -> None:
    from rigscope.llamacpp.synth import write_gguf

    hidden, ffn, heads, kv, hd = shape
    spec = model_from_config({
        "model_type": "llama", "num_hidden_layers": 2, "hidden_size": hidden,
        "intermediate_size": ffn, "num_attention_heads": heads, "num_key_value_heads": kv,
        "head_dim": hd, "vocab_size": 49152, "max_position_embeddings": 8192})
    gguf = quantize(write_gguf(spec, tmp_path / "f16.gguf", smollm2), tmp_path / "q.gguf",
                    "Q8_0")
    configs = [(1024, True, "f16"), (4096, True, "f16"), (1024, False, "f16"),
               (4096, False, "f16")]
    for (ctx, fa, kvt), got in zip(configs, probe_buffers(gguf, configs), strict=True):
        (cpu,) = estimate(resolve_model(str(gguf)), this_cpu(), context=ctx, flash_attn=fa,
                          kv_type=kvt).devices
        assert cpu.kv_bytes / MIB == pytest.approx(total(got, "KV"), rel=0.01)
        assert cpu.compute_bytes / MIB == pytest.approx(total(got, "compute"), rel=0.10), (
            ctx, fa)


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
