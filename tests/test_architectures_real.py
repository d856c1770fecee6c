"""Every architecture against the real llama.cpp built here: a small random-weight model of
each (tests/data/small_configs.json, in config.json form), written in llama.cpp's layout as
rigscope generates it from the config. llama-server refuses a missing, extra or misshapen
tensor, so loading proves the layout; llama-quantize's output types must be the ones
rigscope assigns (Q8_0, Q4_K_M); the buffers llama.cpp reports must match the estimate
(weights and caches within 1%, compute within 12%; for the partly described architectures of
tests/data/partial_configs.json the compute buffer is not checked and the estimate says so).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import require_engine
from rigscope.catalog import architecture_scope, gguf_mixes
from rigscope.estimator import estimate, launch
from rigscope.estimator.quantize import gguf_types
from rigscope.llamacpp.locate import architecture_names, source_tree
from rigscope.llamacpp.probe import probe_buffers, quantize
from rigscope.llamacpp.synth import write_gguf
from rigscope.sources import resolve_model
from rigscope.sources.hf import model_from_config
from rigscope.sources.layout import ARCHS, PARTIAL
from rigscope.specs import Accelerator, Offload, Rig
from rigscope.system import local_cpu_features

pytestmark = pytest.mark.slow
MIB = 2**20
CONFIGS = json.loads((Path(__file__).parent / "data" / "small_configs.json").read_text())
PROBES = [(1024, True, "f16"), (4096, False, "f16")]  # n_ctx over 2 slots, flash attention


def this_cpu() -> Rig:
    features, source = local_cpu_features()
    return Rig(devices=(), host=Accelerator.cpu(8 * 2**30, features=features,
                                                features_source=source))


# architectures whose layout and caches are checked, but not yet their compute buffer
# (tests/data/partial_configs.json; DeepSeek-V4: layers and experts cut, each compression kept)
PARTIAL_CONFIGS = json.loads(
    (Path(__file__).parent / "data" / "partial_configs.json").read_text())


@pytest.mark.parametrize("name", sorted(CONFIGS) + sorted(PARTIAL_CONFIGS))
def test_llamacpp_loads_quantizes_and_allocates_as_estimated(
        name: str, smollm2: Path, tmp_path: Path) -> None:
    require_engine()
    spec = model_from_config(CONFIGS.get(name) or PARTIAL_CONFIGS[name], id=name)
    # the file written holds no multi-token-prediction layers, whose count llama-quantize's
    # layer numbering would otherwise include
    spec = replace(spec, architecture=replace(spec.architecture, nextn_layers=0))
    f16 = write_gguf(spec, tmp_path / "f16.gguf", smollm2)
    keep = ["_exps.weight=" + spec.architecture.native_experts.lower()] \
        if spec.architecture.native_experts else []
    for mix in ("Q8_0", "Q4_K_M"):
        out = quantize(f16, tmp_path / f"{mix}.gguf", mix, keep=keep)
        got = {t.name: t.ggml_type for t in resolve_model(str(out)).tensors}
        assert got == gguf_types(spec, gguf_mixes()[mix]), mix
    q8 = tmp_path / "Q8_0.gguf"
    model = resolve_model(str(q8))
    fitted = name in CONFIGS  # else the estimate must say its compute buffer is not fitted
    assert fitted or any("not fitted" in w for w in model.warnings)
    for (ctx, fa, kv), reported in zip(PROBES, probe_buffers(q8, PROBES, parallel=2),
                                       strict=True):
        (cpu,) = estimate(model, this_cpu(), context=ctx // 2, batch=2, flash_attn=fa,
                          kv_type=kv).devices
        total = {k: sum(v.values()) for k, v in reported.items()}
        assert cpu.weights_bytes / MIB == pytest.approx(total["model"], rel=0.01)
        caches = total.get("KV", 0) + total.get("RS", 0)
        assert cpu.kv_bytes / MIB == pytest.approx(caches, rel=0.01), (ctx, fa)
        if fitted:
            assert cpu.compute_bytes / MIB == pytest.approx(total["compute"], rel=0.12), (
                ctx, fa)
        assert cpu.overhead_bytes / MIB == pytest.approx(total["output"], abs=0.01)


def test_expert_overrides_on_the_cpu_report_the_predicted_buffers(
        smollm2: Path, tmp_path: Path) -> None:
    """llama-server started with rigscope's launch line (-ot experts=CPU) for a random-weight
    MoE model on the CPU reports the buffers rigscope predicts for that placement: on a CPU
    the override changes nothing, the experts are still repacked where the CPU repacks Q4_0
    (CPU_REPACK as without it)."""
    require_engine()
    spec = model_from_config(CONFIGS["qwen3_moe"], id="qwen3_moe")
    q4 = quantize(write_gguf(spec, tmp_path / "f16.gguf", smollm2), tmp_path / "q4.gguf",
                  "Q4_0")
    model = resolve_model(str(q4))
    override = Offload(overrides=((r"\.ffn_(up|down|gate|gate_up)_(ch|)exps", "CPU"),))
    moved = estimate(model, this_cpu(), context=512, batch=2, offload=override)
    assert moved.fit is not None and moved.fit.override_tensors
    args = launch.llama_server_args(moved)
    extra = ["-ot", args[args.index("-ot") + 1]]
    (reported,) = probe_buffers(q4, [(1024, True, "f16")], parallel=2, extra=extra)
    (cpu,) = moved.devices
    assert cpu.weights_bytes / MIB == pytest.approx(sum(reported["model"].values()), rel=0.01)
    assert cpu.repacked_bytes / MIB == pytest.approx(reported["model"].get("CPU_REPACK", 0),
                                                     rel=0.01, abs=0.01)


def test_every_architecture_of_the_built_llamacpp_is_laid_out_or_declared() -> None:
    """The built tree's architecture list: each is supported (a layout rigscope generates and
    the test above loads), out of scope (not a text decoder) or pending, in
    catalog/architectures.toml; a new llama.cpp architecture fails here until it is
    classified."""
    require_engine()
    tree = source_tree()
    assert tree is not None, "the built llama.cpp's source tree is not beside build.json"
    names = architecture_names((tree / "src" / "llama-arch.cpp").read_text())
    scope = architecture_scope()
    supported = set(ARCHS)
    assert len(names) > 100 and supported <= set(names), supported - set(names)
    unclassified = set(names) - supported - set(scope.out_of_scope) - set(scope.pending.names)
    assert not unclassified, f"classify in catalog/architectures.toml: {sorted(unclassified)}"
    assert not supported & set(scope.pending.names), "supported now: drop from pending"
    assert set(PARTIAL) <= set(scope.pending.names) and {
        model_from_config(c).arch for c in PARTIAL_CONFIGS.values()} == set(PARTIAL)
    stale = (set(scope.out_of_scope) | set(scope.pending.names)) - set(names)
    assert not stale, f"not in the built llama.cpp: {sorted(stale)}"
    tested = {model_from_config(c).arch for c in CONFIGS.values()}
    assert supported <= tested, f"no small config for {sorted(supported - tested)}"
