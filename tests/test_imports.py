"""rigscope runs import: real llama-bench, GuideLLM and AIPerf exports (and the shape vLLM's
bench writes) into the store, shown by runs show, usable by compare, report and calibrate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigscope.cli import main
from rigscope.errors import RigscopeError
from rigscope.imports import match_gpus, parse_import, quant_of

DATA = Path(__file__).parent / "data" / "imports"


def imported(capsys: pytest.CaptureFixture[str], name: str, *extra: str) -> str:
    assert main(["runs", "import", str(DATA / name), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)["runs"][0]["run_id"]


def show(capsys: pytest.CaptureFixture[str], run_id: str) -> dict:  # type: ignore[type-arg]
    assert main(["runs", "show", run_id, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", ["llama-bench.json", "llama-bench.jsonl"])
def test_llama_bench_round_trips_and_calibrates(name: str, capsys: pytest.CaptureFixture[str]
                                                ) -> None:
    run_id = imported(capsys, name)
    doc = show(capsys, run_id)
    assert doc["source"] == "llama-bench"
    tests = {t["name"]: t for t in doc["tests"]}
    assert 7000 < tests["pp512"]["tokens_per_s"] < 7300  # the two files: two sessions
    assert tests["tg128"]["n_gen"] == 128 and tests["tg128"]["n_prompt"] == 0
    assert doc["hardware"]["gpu"] == "NVIDIA GeForce RTX 4080"
    assert doc["model"]["params"] == 7615616512
    assert doc["config"]["hardware"] == "rtx-4080"
    assert doc["config"]["model_spec"] == "qwen2.5-7b" and doc["config"]["quant"] == "Q4_K_M"
    assert main(["calibrate", run_id, "--rig", "r4080", "--json"]) == 0
    cal = json.loads(capsys.readouterr().out)
    assert cal["observations"] == 10  # 5 repetitions each of pp512 and tg128
    assert cal["hardware"] == "rtx-4080"
    # the fitted model reproduces the card's own figures
    assert cal["error_after"]["decode"] < 0.02 and cal["error_after"]["prefill"] < 0.02


def test_guidellm_levels(capsys: pytest.CaptureFixture[str]) -> None:
    doc = show(capsys, imported(capsys, "guidellm-benchmarks.json"))
    assert doc["source"] == "guidellm" and doc["api"] == "guidellm"
    lv = doc["levels"][0]
    assert lv["concurrency"] == 1 and lv["requests_ok"] == 46
    assert lv["ttft_s"]["p50"] == pytest.approx(0.01638, abs=1e-5)  # ms -> s
    assert lv["itl_s"]["mean"] == pytest.approx(0.004942, abs=1e-6)
    assert lv["e2e_s"]["p50"] == pytest.approx(0.6425, abs=1e-4)  # already seconds
    assert 190 < lv["output_tokens_per_s"] < 200


@pytest.mark.parametrize("name", ["aiperf-profile_export_aiperf.json",
                                  "aiperf-profile_export_aiperf.csv"])
def test_aiperf_json_and_csv_agree(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    lv = show(capsys, imported(capsys, name))["levels"][0]
    assert lv["requests_ok"] == 89 and lv["requests_failed"] == 11
    assert lv["ttft_s"]["p50"] == pytest.approx(2.3693, abs=1e-3)
    assert lv["itl_s"]["p50"] == pytest.approx(0.02762, abs=1e-4)
    assert lv["output_tokens_per_s"] == pytest.approx(2320.72, rel=1e-3)
    assert lv["requests_per_s"] == pytest.approx(9.55, rel=1e-2)


def test_vllm_bench_and_report_with_another_import(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    a = imported(capsys, "vllm-bench.json")
    lv = show(capsys, a)["levels"][0]
    assert lv["concurrency"] == 16 and lv["rate"] is None  # request_rate "inf"
    assert lv["requests_failed"] == 2 and lv["itl_s"]["p50"] == pytest.approx(0.0238)
    b = imported(capsys, "guidellm-benchmarks.json")
    assert main(["report", a, b, "-o", str(tmp_path / "r.html")]) == 0
    assert "Qwen/Qwen2.5-7B-Instruct" in (tmp_path / "r.html").read_text()
    capsys.readouterr()
    assert main(["compare", a, b, "--json"]) == 0  # different levels: nothing to pair
    capsys.readouterr()


def test_helpers_map_names() -> None:
    assert quant_of("qwen2 7B Q4_K - Medium") == "Q4_K_M"
    assert quant_of("llama 8B Q8_0") == "Q8_0"
    assert quant_of("llama 70B IQ4_XS - 4.25 bpw") == "IQ4_XS"
    assert match_gpus("NVIDIA GeForce RTX 3090, NVIDIA GeForce RTX 3090") == "2xrtx-3090"
    assert match_gpus("NVIDIA GeForce RTX 3090, NVIDIA GeForce RTX 4090") is None


def test_unknown_files_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RigscopeError, match="not a llama-bench"):
        parse_import('{"hello": 1}', "x.json")
    f = tmp_path / "x.json"
    f.write_text("[1, 2]")
    assert main(["runs", "import", str(f)]) == 2
    assert "not a llama-bench, GuideLLM, AIPerf or vLLM" in capsys.readouterr().err
