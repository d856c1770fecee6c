"""rigscope plan: seed scenarios, constraints, prices, tiers and the JSON contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import GIB, model
from rigscope.cli import main
from rigscope.plan import candidate_rigs, make_plan, tiers, workload_from
from rigscope.prices import price_table


def plan(*models: str, rig_ids: list[str] | None = None, **kw):  # noqa: ANN201
    w = workload_from([model(m) for m in models], kw.pop("profile", None), **kw)
    rigs = candidate_rigs(w.gpu_count_max, rig_ids) if rig_ids else None
    return make_plan(w, price_table(), rigs)


def ids(p) -> set[str]:  # noqa: ANN001
    return {o.rig.id for o in p.options}


def test_70b_q4_k_m_needs_two_24gb_cards() -> None:
    p = plan("llama-3-70b", quant="Q4_K_M", engines=("llama.cpp",),
             rig_ids=["rtx-3090", "rtx-4090"], gpu_count_max=2)
    assert ids(p) == {"2xrtx-3090", "2xrtx-4090"}
    one = next(r for r in p.rejected if r.rig == "rtx-3090")
    assert "need" in one.reason or "spill" in one.reason
    two = next(o for o in p.options if o.rig.id == "2xrtx-3090")
    assert 39 * GIB < two.memory.weights_bytes < 41 * GIB


def test_mistral_q8_for_several_users_is_tight_on_16gb_and_comfortable_on_24gb() -> None:
    p = plan("mistral-7b-v0.3", quant="Q8_0", users=8, context=4096, engines=("llama.cpp",),
             rig_ids=["rtx-4080", "rtx-4090"], gpu_count_max=1)
    use = {o.rig.id: o.memory.devices[0].used_bytes / o.memory.devices[0].capacity_bytes
           for o in p.options}
    assert use["rtx-4080"] > 0.70  # tight
    assert use["rtx-4090"] < 0.55  # comfortable


def test_long_contexts_push_toward_48gb_or_more() -> None:
    w = workload_from([model("llama-3.1-70b")], engines=("llama.cpp", "mlx"))
    result = tiers(w, price_table(), rigs=candidate_rigs(2)).by_context
    for o in result[131072]:
        assert sum(d.memory_bytes for d in o.rig.devices) >= 48 * GIB
    assert result[4096] and result[131072]


def test_constraints_reject_with_reasons() -> None:
    p = plan("llama-3-8b", min_tps=100, max_ttft=0.5, budget=2500, engines=("llama.cpp",),
             rig_ids=["rtx-3060-12gb", "rtx-4090", "rtx-5090", "a40"], gpu_count_max=1)
    assert ids(p) == {"rtx-4090"}  # the 3060 is too slow; the 5090 is over budget
    reasons = {r.rig: r.reason for r in p.rejected}
    assert "tok/s per user < 100" in reasons["rtx-3060-12gb"]
    # a street 5090 ($3,000) on a desktop platform ($500-880, middle $690)
    assert reasons["rtx-5090"] == "price $3,690 over budget"
    assert reasons["a40"] == "no price"


def test_quality_floor_and_code_profile() -> None:
    p = plan("llama-3-8b", profile="code", engines=("llama.cpp",), rig_ids=["rtx-3060-12gb"],
             gpu_count_max=1)
    assert p.workload.min_quant == "Q8_0"
    assert {o.memory.quant.name for o in p.options} <= {"Q8_0", "F16"}
    w = workload_from([model("llama-3-8b")], engines=("llama.cpp",))
    rigs = candidate_rigs(1, ["rtx-3070"])
    default = make_plan(w, price_table(), rigs, all_configs=True)
    low = make_plan(workload_from([model("llama-3-8b")], engines=("llama.cpp",),
                                  min_quant="Q2_K"), price_table(), rigs, all_configs=True)
    assert {o.memory.quant.name for o in default.options} == {"Q4_K_M", "Q5_K_M", "Q6_K"}
    assert {"Q3_K_M", "Q2_K", "IQ4_XS"} <= {o.memory.quant.name for o in low.options}


def test_price_overrides(tmp_path: Path) -> None:
    f = tmp_path / "prices.toml"
    f.write_text('rtx-3090 = 700\n"m3-max-40c:128gb" = 4999\n')
    table = price_table(["rtx-4090=1800"], f)
    assert table["rtx-3090"].usd == 700 and table["rtx-3090"].label.startswith("price file")
    assert table["rtx-3090"].kind == "user"
    assert table["rtx-4090"].label == "--price"
    assert table["m3-max-40c:128gb"].usd == 4999
    assert table["rtx-3060-12gb"].label == "used 2026"
    assert price_table(kind="msrp")["rtx-3060-12gb"].label == "msrp 2021-02"


def test_pareto_front_is_not_dominated() -> None:
    p = plan("llama-3-8b", engines=("llama.cpp",), gpu_count_max=2)
    front = [o for o in p.options if o.pareto]
    assert front
    for o in front:
        assert not any(x.price and o.price and x.price.total_usd <= o.price.total_usd
                       and x.speed.aggregate_tokens_per_s > o.speed.aggregate_tokens_per_s
                       for x in p.options)


def test_plan_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "llama-3-8b", "--context", "8k", "--users", "2", "--min-tps", "20",
                 "--budget", "3000", "--gpu-count-max", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["options"] and doc["rejected"]
    prices = [o["price_usd"] for o in doc["options"]]
    assert prices == sorted(prices)  # cheapest first
    for o in doc["options"]:
        assert o["fits"] is True and o["decode_tokens_per_s"] >= 20
        assert isinstance(o["rig"], str) and o["quant"] and o["engine"]
        assert o["price_usd"] <= 3000
    assert any(r["reason"] == "no price" for r in doc["rejected"])
    assert all(set(r) >= {"rig", "quant", "reason"} for r in doc["rejected"])


def test_plan_table_and_tiers_render(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "qwen2.5-7b", "--profile", "rag", "--gpu-count-max", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "profile rag" in out and "rejected" in out
    assert main(["plan", "phi-3-mini", "--tiers", "--gpu-count-max", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [t["context"] for t in doc["tiers"]] == [4096, 8192, 16384, 32768, 131072]


def test_plan_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan"]) == 2
    assert "name a model" in capsys.readouterr().err
    assert main(["plan", "llama-3-8b", "--price", "rtx-3090=cheap"]) == 2
    assert "invalid --price" in capsys.readouterr().err
    assert main(["plan", "llama-3-8b", "--min-quant", "Q9"]) == 2
    assert "unknown quant" in capsys.readouterr().err


def test_min_params_selects_catalog_models(capsys: pytest.CaptureFixture[str]) -> None:
    from rigscope.catalog import models

    big = {m for m, e in models().items() if e.params >= 60e9}
    assert main(["plan", "--min-params", "60", "--quant", "Q4_K_M", "--gpu-count-max", "2",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["workload"]["models"]) == big
    assert {o["model"] for o in doc["options"]} <= big and doc["options"]


def test_gpu_option_restricts_and_this_machine_is_considered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "llama-3-8b", "--gpu", "rtx-4090", "--gpu", "2xrtx-3060-12gb",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {o["rig"] for o in doc["options"]} == {"rtx-4090", "2xrtx-3060-12gb"}
    assert main(["plan", "phi-3-mini", "--min-tps", "0",
                 "--gpu-count-max", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    local = [o for o in doc["options"] if o["rig"].startswith("local:")]
    assert local and local[0]["price_usd"] == 0.0
    assert local[0]["price"]["kind"] == "owned"


def test_rejection_reasons_keep_their_words() -> None:
    from rigscope.cli.plan_render import reason_key

    assert reason_key("llama.cpp runs on one machine; across 2 nodes use vllm, sglang") == \
        "llama.cpp runs on one machine; across N nodes use vllm, sglang"
    assert reason_key("needs 41.5 GiB, has 24.0 GiB on 2xrtx-3090") == \
        "needs N GiB, has N GiB on Nxrtx-N"
    assert reason_key("fp8 weights need Q4_K_M or 1,024 more") == \
        "fp8 weights need Q4_K_M or N more"
