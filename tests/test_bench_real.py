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


def _run(db: str, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["bench", *args, "--db", db, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert main(["runs", "show", doc["run_id"], "--db", db, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_shared_prefix_hits_llama_servers_cache(llama_server: LlamaServer, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "r.db")
    common = ["--url", llama_server.url, "--model", "smollm2", "--requests", "3",
              "--prompt-tokens", "32", "--output-tokens", "8", "--workload", "rag"]
    shared = _run(db, capsys, *common, "--shared-prefix", "600")
    (level,) = shared["levels"]
    reqs = [r for r in shared["requests"] if not r["warmup"]]
    # llama-server's own count (usage.prompt_tokens_details / timings.cache_n): the
    # document came from its cache every time after the first
    assert all(r["cached_tokens"] >= 550 for r in reqs), [r["cached_tokens"] for r in reqs]
    assert level["cache_hit_requests"] == 3
    assert level["cached_prompt_tokens"] == sum(r["cached_tokens"] for r in reqs)
    (warmup,) = [r for r in shared["requests"] if r["warmup"]]
    assert level["ttft_cached_s"]["p50"] < warmup["ttft_s"]  # the prefix is not prefilled again
    # by default every prompt is its own: nothing worth the name comes from the cache
    plain = _run(db, capsys, *common)
    assert plain["levels"][0]["cache_hit_requests"] == 0
    assert len({r["prompt_tokens"] for r in plain["requests"]}) >= 1
    assert llama_server.death() is None


def test_depth_sweep_on_llama_server(llama_server: LlamaServer, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    doc = _run(str(tmp_path / "r.db"), capsys, "--url", llama_server.url, "--model",
               "smollm2", "--requests", "2", "--prompt-tokens", "32", "--output-tokens", "16",
               "--depth", "0,1024")
    assert [lv["label"] for lv in doc["levels"]] == ["c=1 d=0", "c=1 d=1024"]
    shallow, deep = doc["levels"]
    for level in doc["levels"]:
        assert level["requests_failed"] == 0
        assert level["prefill_tokens_per_s"]["p50"] > 0
        assert level["decode_tokens_per_s"]["p50"] > 0
        assert level["cache_hit_requests"] == 0  # each depth's context is its own text
    deep_reqs = [r for r in doc["requests"] if r["level_id"] == deep["level_id"]]
    assert all(r["prompt_tokens"] >= 1024 + 32 for r in deep_reqs)
    assert deep["ttft_s"]["p50"] > shallow["ttft_s"]["p50"]
    assert llama_server.death() is None
