"""Predicted vs measured llama.cpp speed on this machine's CPU (SmolLM2-135M, llama-bench)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigscope.estimator import estimate
from rigscope.estimator.speed import estimate_speed
from rigscope.sources import resolve_model
from rigscope.system import resolve_rig

pytestmark = pytest.mark.slow


def test_cpu_decode_and_prefill_within_35_percent(smollm2: Path) -> None:
    from rigscope.llamacpp.probe import probe_speed

    rig = resolve_rig(cpu="")  # --cpu: this machine, RAM bandwidth and matmul rate measured
    assert rig.host.memory_source == "measured"
    est = estimate(resolve_model(str(smollm2)), rig, context=1024, outputs="ubatch")
    tg = estimate_speed(est, prompt_tokens=0, output_tokens=128).decode_tokens_per_s
    pp = estimate_speed(est, prompt_tokens=512).prefill_tokens_per_s
    measured = probe_speed(smollm2, pp=512, tg=128)
    print(f"RAM {rig.host.bandwidth_gbs:.1f} GB/s; decode predicted {tg:.1f} measured "
          f"{measured['tg']:.1f}; prefill predicted {pp:.1f} measured {measured['pp']:.1f}")
    assert tg == pytest.approx(measured["tg"], rel=0.35)
    assert pp == pytest.approx(measured["pp"], rel=0.35)
