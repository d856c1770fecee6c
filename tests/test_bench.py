"""rigscope bench against the fake server: timing accuracy, faults, storage, CLI."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from rigscope.bench.fake_server import served_rate
from rigscope.bench.metrics import Slo
from rigscope.bench.run import BenchConfig, run_bench
from rigscope.cli import main
from rigscope.contract import run_json
from rigscope.store import Store


def bench(url: str, tmp_path: Path, **kw) -> tuple[Store, dict]:  # noqa: ANN003
    store = Store(tmp_path / "runs.db")
    config = BenchConfig(url=url, model="fake-model", **kw)
    run_id, completed = run_bench(config, store)
    assert completed
    return store, run_json(store.run(run_id))  # the documents `runs show --json` prints


def measured(doc: dict) -> list[dict]:
    return [r for r in doc["requests"] if not r["warmup"]]


def server_ttfts(served: list) -> dict[int, float]:
    return {s.id: s.sent[0] - s.received for s in served if s.sent}


def test_ttft_itl_and_throughput_match_what_the_server_did(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(ttft=0.03, itl=0.004)
    store, doc = bench(srv.url, tmp_path, concurrency=(1, 4), requests=12, output_tokens=24)
    served = srv.served()
    ok = [r for r in doc["requests"] if r["status"] == "ok"]
    assert len(ok) == 26 and len(served) == 26
    client = statistics.median(r["ttft_s"] for r in ok)
    server = statistics.median(server_ttfts(served).values())
    assert abs(client - server) < 0.003
    real_itl = statistics.median((s.sent[-1] - s.sent[0]) / (len(s.sent) - 1) for s in served)
    assert statistics.median(r["itl_s"] for r in ok) == pytest.approx(real_itl, abs=0.0005)
    level = doc["levels"][1]
    assert level["concurrency"] == 4 and level["requests_ok"] == 12
    # the server's own view of the same requests (same monotonic clock on one machine)
    mine = [min(served, key=lambda x: abs(x.received - r["start"])) for r in doc["requests"]
            if r["level_id"] == level["level_id"]]  # the warm-up held a slot too
    assert level["output_tokens_per_s"] == pytest.approx(served_rate(mine, 4), rel=0.05)
    # the wall figure spans the ragged last wave (12 + 1 warm-up over 4 workers: 4, 4, 4, 1)
    wall = served_rate([min(served, key=lambda x: abs(x.received - r["start"]))
                        for r in measured(doc) if r["level_id"] == level["level_id"]])
    assert level["output_tokens_per_s_wall"] == pytest.approx(wall, rel=0.05)
    # (about 0.8 of the sustained rate; the margin allows a loaded machine's overheads)
    assert level["output_tokens_per_s_wall"] < 0.95 * level["output_tokens_per_s"]
    assert all(r["output_tokens"] == 24 and r["reused"] in (True, False) for r in ok)


def test_several_tokens_per_chunk_do_not_distort_itl(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(ttft=0.01, itl=0.003, tokens_per_chunk=4)
    _, doc = bench(srv.url, tmp_path, requests=4, output_tokens=32)
    level = doc["levels"][0]
    assert level["itl_s"]["p50"] == pytest.approx(0.003 * 28 / 31, abs=0.0006)
    assert level["chunk_gap_s"]["p50"] == pytest.approx(0.012, abs=0.002)
    assert all(r["client_tokens"] == 8 and r["output_tokens"] == 32 for r in measured(doc))
    assert level["token_count_mismatches"] == 4


@pytest.mark.parametrize(("knob", "reason"), [("error_rate", "http_500"),
                                              ("rate_limit_rate", "http_429"),
                                              ("reset_rate", "connection_reset"),
                                              ("malformed_rate", "malformed_stream")])
def test_faults_are_recorded_and_the_run_completes(fake_server, tmp_path, knob, reason) -> None:  # noqa: ANN001
    srv = fake_server(**{knob: 0.5, "seed": 3})
    _, doc = bench(srv.url, tmp_path, concurrency=(4,), requests=20, output_tokens=8)
    level = doc["levels"][0]
    assert level["requests_ok"] + level["requests_failed"] == 20
    assert level["errors"].get(reason, 0) >= 3
    assert set(level["errors"]) == {reason}
    failed = [r for r in measured(doc) if r["status"] == "error"]
    assert all(r["reason"] == reason for r in failed)


def test_a_stalling_server_times_out(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(stall_rate=1.0, stall=5)
    store = Store(tmp_path / "runs.db")
    config = BenchConfig(url=srv.url, model="fake-model", requests=2, warmup=0,
                         output_tokens=8, stall_timeout=0.3)
    run_id, _ = run_bench(config, store)
    assert store.run(run_id).levels[0].summary.errors == {"stalled": 2}


def test_rate_levels_record_dispatch_delay(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(ttft=0.005, itl=0.001)
    _, doc = bench(srv.url, tmp_path, rates=(20.0,), poisson=True, requests=10, output_tokens=8)
    level = doc["levels"][0]
    assert level["rate"] == 20.0 and level["concurrency"] is None
    assert level["dispatch_delay_s"]["p99"] < 0.02
    starts = sorted(r["intended"] for r in doc["requests"])
    assert 0.2 < starts[-1] - starts[0] < 1.5  # 10 gaps at 20/s


def test_slo_search_finds_the_highest_concurrency(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(ttft=0.01, ttft_per_active=0.01, itl=0.001)
    _, doc = bench(srv.url, tmp_path, concurrency=(0,), slo=Slo(ttft_s=0.055), requests=8,
                   output_tokens=4)
    tried = [lv["concurrency"] for lv in doc["levels"]]
    assert tried[:4] == [1, 2, 4, 8]  # doubling until it breaks, then bisecting
    good = [lv["concurrency"] for lv in doc["levels"] if lv["ttft_s"]["p90"] <= 0.055]
    assert 3 <= max(good) <= 5
    assert doc["levels"][0]["goodput_requests_per_s"] > 0


def test_chat_and_agent_workloads_grow_the_context(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server()
    _, doc = bench(srv.url, tmp_path, workload="agent", requests=4, warmup=0,
                   prompt_tokens=64, output_tokens=8)
    prompts = [r["prompt_tokens"] for r in doc["requests"]]
    assert prompts == sorted(prompts) and prompts[-1] > prompts[0]


def test_unreachable_and_wrong_model_fail_fast(fake_server, tmp_path, capsys) -> None:  # noqa: ANN001
    db = str(tmp_path / "r.db")
    assert main(["bench", "--url", "http://127.0.0.1:9", "--model", "m", "--db", db]) == 1
    assert "cannot reach" in capsys.readouterr().err
    srv = fake_server()
    assert main(["bench", "--url", srv.url, "--model", "nope", "--db", db]) == 2
    assert "it serves: fake-model" in capsys.readouterr().err


def test_api_key_is_sent_but_never_stored(fake_server, tmp_path, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("RIGSCOPE_API_KEY", "sk-secret-123")
    srv = fake_server()
    db = tmp_path / "r.db"
    assert main(["bench", "--url", srv.url, "--model", "fake-model", "--requests", "2",
                 "--db", str(db), "--json"]) == 0
    out = capsys.readouterr()
    assert "sk-secret" not in out.out + out.err
    assert b"sk-secret" not in db.read_bytes()


def test_bench_json_contract_and_runs_commands(fake_server, tmp_path, capsys) -> None:  # noqa: ANN001
    srv = fake_server(ttft=0.005, itl=0.001)
    db = str(tmp_path / "r.db")
    assert main(["bench", "--url", srv.url, "--model", "fake-model", "--concurrency", "1,2",
                 "--requests", "4", "--output-tokens", "8", "--label", "t1", "--db", db,
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [lv["concurrency"] for lv in doc["levels"]] == [1, 2]
    for lv in doc["levels"]:
        assert lv["requests_ok"] == 4 and lv["requests_failed"] == 0 and lv["errors"] == {}
        for key in ("ttft_s", "itl_s", "e2e_s"):
            assert set(lv[key]) >= {"mean", "p50", "p90", "p99"}
        assert lv["output_tokens_per_s"] > 0 and lv["requests_per_s"] > 0
    assert main(["runs", "list", "--db", db, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert runs[-1]["run_id"] == doc["run_id"] and runs[-1]["label"] == "t1"
    assert main(["runs", "show", doc["run_id"], "--db", db, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert len(shown["requests"]) == 10
    r = shown["requests"][0]
    assert r["status"] == "ok" and r["reason"] is None and r["ttft_s"] > 0
    assert r["output_tokens"] == 8
    assert main(["runs", "export", doc["run_id"], "--db", db, "--format", "csv"]) == 0
    csv_out = capsys.readouterr().out.splitlines()
    assert csv_out[0].startswith("id,run_id,level_id,idx") and len(csv_out) == 11
    assert main(["runs", "show", "nope", "--db", db]) == 2


def test_demo_against_your_own_server(fake_server, tmp_path, capsys) -> None:  # noqa: ANN001
    pytest.importorskip("matplotlib")
    srv = fake_server(ttft=0.002, itl=0.001)
    report = tmp_path / "r.html"
    assert main(["demo", "--url", srv.url, "--model", "fake-model", "--quick", "-o",
                 str(report), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["runs"]) == 3 and doc["comparison"] == []  # no model spec: no prediction
    assert report.exists() and "demo-chat" in report.read_text()
