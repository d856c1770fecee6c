"""End to end: rigscope bench against the real llama-server (built here) with SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigscope.cli import main
from rigscope.llamacpp.server import LlamaServer

pytestmark = pytest.mark.slow


def test_bench_real_server(llama_server: LlamaServer, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "r.db")
    assert main(["bench", "--url", llama_server.url, "--model", "smollm2", "--concurrency",
                 "1,2", "--requests", "3", "--prompt-tokens", "64", "--output-tokens", "16",
                 "--db", db, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["api"] == "openai"
    for level in doc["levels"]:
        assert level["requests_ok"] == 3 and level["requests_failed"] == 0
        assert level["ttft_s"]["p50"] > 0 and level["output_tokens_per_s"] > 0
    assert main(["runs", "show", doc["run_id"], "--db", db, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    stored = shown["requests"]
    assert len(stored) == 8 and all(r["status"] == "ok" for r in stored)
    # llama-server's /metrics and /slots were sampled on the run's timeline
    assert shown["config"]["telemetry"] == ["metrics", "slots"]
    assert {x["source"] for x in shown["telemetry"]} == {"metrics", "slots"}
    assert any(x["data"].get("slots_busy", 0) >= 1 for x in shown["telemetry"])
    # llama-server streams usage: its count, with ignore_eos, is what was asked for
    assert all(r["output_tokens"] == 16 for r in stored)
    assert all(r["prompt_tokens"] and r["prompt_tokens"] >= 64 for r in stored)
    assert llama_server.death() is None


def test_a_512_token_prompt_is_processed(llama_server: LlamaServer, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Short prompts can pass where a real one crashes the engine (issue 10: AMX SIGILL)."""
    assert main(["bench", "--url", llama_server.url, "--model", "smollm2", "--requests", "1",
                 "--warmup", "0", "--prompt-tokens", "512", "--output-tokens", "8",
                 "--db", str(tmp_path / "r.db"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["levels"][0]["requests_ok"] == 1
    assert main(["runs", "show", doc["run_id"], "--db", str(tmp_path / "r.db"), "--json"]) == 0
    (req,) = json.loads(capsys.readouterr().out)["requests"]
    assert req["prompt_tokens"] >= 500 and req["output_tokens"] == 8
    assert llama_server.death() is None
