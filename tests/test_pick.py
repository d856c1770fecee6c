"""rigscope pick: models for a use on a rig, ranked by published evidence, then speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import rig
from rigscope.catalog import evidence, models, quality
from rigscope.cli import cli
from rigscope.errors import RigscopeError
from rigscope.pick import USES, Picks, pick, rank_key
from rigscope.sources import catalog_model


@pytest.fixture(scope="module")
def specs() -> list:  # noqa: ANN201
    return [catalog_model(m) for m in models()]


RIGS = [("rtx-3090",), ("rtx-4060-ti-16gb",), ("2xrtx-3090",), ("m3-max-40c:64gb",)]


def check_ranking(p: Picks) -> None:
    rows = p.rows
    assert rows, "something runs on every rig here"
    assert list(rows) == sorted(rows, key=rank_key)
    for r in rows:
        assert r.memory.runs  # nothing that cannot run is listed
        assert (r.fits == "GPU") == (r.memory.fits and bool(p.rig.devices))
        if r.evidence is not None:  # every score carries its source and date
            assert r.evidence.source and r.evidence.date
            assert r.evidence.benchmark in quality().uses[p.use]
        assert r.launch.command
    for a, b in zip(rows, rows[1:], strict=False):
        if a.speed_class != b.speed_class:
            assert a.speed_class < b.speed_class
            continue
        # within a speed class: evidence before none, a use's benchmarks in order ...
        assert a.rank_group <= b.rank_group
        if a.evidence and b.evidence and a.rank_group == b.rank_group \
                and (a.loss_tier == "large") == (b.loss_tier == "large"):
            # ... and a better score on the same benchmark never below a worse one
            assert a.evidence.score >= b.evidence.score


@pytest.mark.parametrize("gpus", RIGS)
@pytest.mark.parametrize("use", USES)
def test_ranking_properties(specs: list, gpus: tuple[str, ...], use: str) -> None:
    p = pick(rig(*gpus, ram="64gb"), use, specs=specs, scores=evidence())
    check_ranking(p)
    names = [r.name for r in p.rows]
    assert len(names) == len(set(names))
    assert p.context == quality().contexts[use]


def test_each_model_gets_its_best_quality_in_its_best_speed_class(specs: list) -> None:
    r3090 = rig("rtx-3090", ram="64gb")
    p = pick(r3090, "chat", specs=specs, scores=evidence())
    row = next(r for r in p.rows if r.name == "qwen3-8b")
    assert row.memory.quant.name == "Q8_0" and row.fits == "GPU"  # fast at the best quality
    big = next(r for r in p.rows if r.name == "llama-3.3-70b")
    # a 70B on one 24 GB card: fast nowhere, so the best quantization of its best class
    assert big.speed_class >= 1
    order = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "IQ3_XXS", "Q2_K"]
    better = order[:order.index(big.memory.quant.name)]
    for q in better:  # each better quantization is slower (or does not run)
        from rigscope.estimator import estimate
        from rigscope.estimator.speed import estimate_speed
        from rigscope.pick import SHAPES, speed_class

        e = estimate(big.model, r3090, quant=q, context=p.context)
        if e.runs:
            s = estimate_speed(e, prompt_tokens=SHAPES["chat"][0],
                               output_tokens=SHAPES["chat"][1])
            assert speed_class(s.decode_tokens_per_s) > big.speed_class


def test_constraints_filter_and_say_why(specs: list) -> None:
    p = pick(rig("rtx-3090", ram="64gb"), "code", specs=specs, scores=evidence(),
             min_tps=60)
    assert all(r.speed.decode_tokens_per_s >= 60 for r in p.rows)
    assert any("--min-tps" in why for _, why in p.skipped)


def test_models_without_evidence_are_marked_never_scored(specs: list) -> None:
    p = pick(rig("rtx-3090", ram="64gb"), "rag", specs=specs, scores=evidence())
    none = [r for r in p.rows if r.evidence is None]
    assert none and all(r.rank_group == len(quality().uses["rag"]) for r in none)
    doc = CliRunner().invoke(cli, ["pick", "--use", "rag", "--gpu", "rtx-3090", "--json"])
    rows = json.loads(doc.output)["rows"]
    assert any(r["evidence"] is None for r in rows)


def test_user_evidence_overrides_the_shipped(specs: list, tmp_path: Path) -> None:
    f = tmp_path / "mine.csv"
    f.write_text("model,benchmark,score,source,date\n"
                 "qwen3-8b,aa_v3_livecodebench,99.5,our own eval,2026-12-01\n")
    r = CliRunner().invoke(cli, ["pick", "--use", "code", "--gpu", "rtx-3090",
                                 "--evidence", str(f), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["rows"]
    mine = next(x for x in rows if x["model"] == "qwen3-8b")
    assert mine["evidence"]["score"] == 99.5 and mine["evidence"]["source"] == "our own eval"
    same_class = [x for x in rows if x["speed_class"] == mine["speed_class"]]
    assert same_class[0]["model"] == "qwen3-8b"
    f.write_text("model,score\nqwen3-8b,3\n")
    r = CliRunner().invoke(cli, ["pick", "--gpu", "rtx-3090", "--evidence", str(f)])
    assert r.exit_code != 0 and "benchmark" in str(r.exception)
    f.write_text("model,benchmark,score\nqwen3-8b,made_up,3\n")
    with pytest.raises(RigscopeError, match="valid"):
        from rigscope.catalog import parse_scores

        parse_scores(f.read_text(), "mine.csv")


def test_json_rows_carry_the_contract_fields() -> None:
    r = CliRunner().invoke(cli, ["pick", "--use", "code", "--gpu", "rtx-4060-ti-16gb",
                                 "--json"])
    doc = json.loads(r.output)
    assert doc["use"] == "code" and doc["evidence_dates"]["newest"]
    for row in doc["rows"]:
        assert {"model", "quant", "engine", "fits", "decode_tokens_per_s",
                "prefill_tokens_per_s", "ttft_s", "evidence", "launch"} <= set(row)
        assert row["fits"] in ("GPU", "experts in RAM", "spill", "CPU")
        if row["evidence"] is not None:
            assert {"benchmark", "score", "source", "date"} <= set(row["evidence"])
    assert any(r["fits"] == "experts in RAM" for r in doc["rows"])  # MoE models on 16 GB


def test_table_fits_a_narrow_terminal() -> None:
    r = CliRunner().invoke(cli, ["pick", "--gpu", "rtx-3090", "--top", "5"],
                           env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    header = next(ln for ln in lines if "model" in ln and "quant" in ln)
    for name in ("#", "model", "quant", "fits", "tok/s", "evidence", "score"):
        assert name in header
    assert "…" not in r.output.split("ranked by")[0]
    assert all(len(ln) <= 80 for ln in lines if not ln.startswith("launch"))


def test_models_update_adds_scored_models_from_the_hub(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fakehub import Repo, start

    # DeepSeek-R1-Distill-Qwen-1.5B's published config (Qwen2 shapes), served by a fake Hub;
    # every other scored repo the catalog lacks is missing there
    config = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
              "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
              "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936,
              "max_position_embeddings": 131072, "tie_word_embeddings": False,
              "rms_norm_eps": 1e-6, "rope_theta": 10000}
    repo = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    fake, server = start({repo: Repo({"config.json": json.dumps(config).encode()})})
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    try:
        r = CliRunner().invoke(cli, ["models", "update", "--json"])
        assert r.exit_code == 0, r.output
        doc = json.loads(r.output)
        assert [a["repo"] for a in doc["added"]] == [repo]
        assert doc["failed"] and all(f["why"] for f in doc["failed"])
        r = CliRunner().invoke(cli, ["pick", "--use", "reasoning", "--gpu", "rtx-3090",
                                     "--json"])
        row = next(x for x in json.loads(r.output)["rows"]
                   if x["model"] == "deepseek-r1-distill-qwen-1.5b")
        assert row["evidence"] is not None and row["evidence"]["scored_as"] == \
            "DeepSeek-R1-Distill-Qwen-1.5B"
    finally:
        server.shutdown()
