"""vLLM, SGLang and TensorRT-LLM size their KV pools as their startup logs say."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

from rigscope.cli import main
from rigscope.estimator import estimate
from rigscope.hardware import parse_rig
from rigscope.sources import catalog_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import engine_kv  # noqa: E402


def test_kv_capacity_against_published_startup_logs() -> None:
    compared, skipped = engine_kv.errors()
    errs = [abs(e) for *_, e in compared]
    assert {row.engine for row, *_ in compared} == {"vllm", "sglang", "tensorrt-llm"}
    assert len(compared) >= 12
    assert statistics.median(errs) <= 0.10
    assert sum(e <= 0.25 for e in errs) >= 0.8 * len(errs)
    # a log whose pool cannot fit the GPU it names is set aside, with the reason
    assert any("larger than the a10" in s for s in skipped)


def test_sglang_pool_is_what_the_weights_leave_beyond_the_reserved_share() -> None:
    model, rig = catalog_model("llama-3.1-8b"), parse_rig(["h100-sxm"])
    est = {f: estimate(model, rig, engine="sglang", context=131072, mem_fraction=f)
           for f in (0.80, 0.88)}
    per_token = 32 * 8 * 128 * 2 * 2  # layers x KV heads x dims x K+V x BF16
    gained = (est[0.88].kv_capacity_tokens or 0) - (est[0.80].kv_capacity_tokens or 0)
    assert gained == pytest.approx(0.08 * rig.devices[0].memory_bytes / per_token, rel=1e-3)
    assert est[0.88].fits and est[0.88].max_sequences == est[0.88].kv_capacity_tokens // 131072


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tensorrt-llm"])
def test_engines_in_estimate_and_plan(engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "qwen2.5-32b", "--engine", engine, "--gpu", "2xl40s",
                 "--mem-fraction", "0.9", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["engine"] == engine and doc["memory"]["kv_capacity_tokens"] > 10_000
    assert doc["memory"]["max_sequences"] >= 1
    assert main(["plan", "qwen2.5-32b", "--engine", engine, "--gpu", "2xl40s",
                 "--gpu", "4xrtx-3090 ", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["options"] and all(o["engine"] == engine for o in plan["options"])


def test_tensor_parallel_engines_refuse_x1_risers() -> None:
    from rigscope.estimator.engines import get_engine, why_not
    from rigscope.plan import candidate_rigs

    risers = next(r for r in candidate_rigs(4, ["rtx-3090"]) if r.links == "x1")
    for name in ("vllm", "sglang", "tensorrt-llm"):
        assert "x1 risers" in (why_not(get_engine(name), risers) or "")
