"""Predicted vs measured llama.cpp speed on this machine's CPU (SmolLM2-135M, llama-bench)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigscope.estimator import estimate
from rigscope.estimator.speed import estimate_speed
from rigscope.sources import resolve_model
from rigscope.system import cpu_model, resolve_rig

pytestmark = pytest.mark.slow


def test_cpu_decode_and_prefill_within_their_bands(smollm2: Path) -> None:
    """Predicted decode and prefill within the error band each estimate states (its 90th
    percentile cross-validated error; at least 35%) of what llama-bench measures. The RAM
    probe and llama-bench run back to back, each its best of several runs: this VM's memory
    bandwidth drifts with its neighbours (22-44 GB/s seen), so a pair measured minutes apart
    can disagree. A pair that disagrees is measured once more. The prediction uses what
    `rigscope system` measures of the engine on this CPU (rigscope.cpuprobe), as it must hold
    on AMD and Intel CPUs alike: their kernels reach different shares of the RAM probe."""
    from rigscope.llamacpp.probe import probe_speed
    from rigscope.system import engine_cpu, measured_cpu

    model = resolve_model(str(smollm2))
    for attempt in (1, 2):
        measured_cpu(cpu_model(), refresh=True)
        # what rigscope system measures of llama.cpp here: its kernels on random-weight
        # models of other shapes (not SmolLM2), and the fixed cost per layer
        assert engine_cpu(cpu_model(), refresh=True, measure=True) is not None
        rig = resolve_rig(cpu="")  # --cpu: this machine, RAM bandwidth and matmul measured
        assert rig.host.memory_source == "measured"
        measured = probe_speed(smollm2, pp=512, tg=128, reps=5, best=True)
        est = estimate(model, rig, context=1024, outputs="ubatch")
        decode = estimate_speed(est, prompt_tokens=0, output_tokens=128)
        prefill = estimate_speed(est, prompt_tokens=512)
        tg, pp = decode.decode_tokens_per_s, prefill.prefill_tokens_per_s
        tg_band, pp_band = max(0.35, decode.decode_band), max(0.35, prefill.prefill_band)
        print(f"attempt {attempt}: RAM {rig.host.bandwidth_gbs:.1f} GB/s; decode predicted "
              f"{tg:.1f} (+-{tg_band:.0%}) measured {measured['tg']:.1f}; prefill predicted "
              f"{pp:.1f} (+-{pp_band:.0%}) measured {measured['pp']:.1f}")
        within = (tg == pytest.approx(measured["tg"], rel=tg_band)
                  and pp == pytest.approx(measured["pp"], rel=pp_band))
        if within:
            break
    assert tg == pytest.approx(measured["tg"], rel=tg_band)
    assert pp == pytest.approx(measured["pp"], rel=pp_band)
