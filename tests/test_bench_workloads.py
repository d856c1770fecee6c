"""bench for 2026 serving against the fake server, each figure checked against its log:
distinct prompts, stale keep-alive connections, shared prefixes and prefix-cache hits,
multi-turn history, Mooncake traces, context depth, speculative decoding, energy, sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigscope.bench.fake_server import read_power_log
from rigscope.bench.metrics import Slo, integrate
from rigscope.bench.run import BenchConfig, run_bench
from rigscope.cli import main
from rigscope.contract import bench_json, run_json
from rigscope.report import pareto_front, render
from rigscope.store import Store


def bench(url: str, tmp_path: Path, **kw) -> tuple[Store, dict]:  # noqa: ANN003
    store = Store(tmp_path / "runs.db")
    config = BenchConfig(url=url, model="fake-model", **kw)
    run_id, completed = run_bench(config, store)
    assert completed
    return store, run_json(store.run(run_id))


def by_prompt_order(doc: dict, served: list) -> list[tuple[dict, object]]:
    """Client records paired with the server's, in the order the server received them
    (requests are sent one at a time in these tests)."""
    reqs = sorted(doc["requests"], key=lambda r: r["start"])
    assert len(reqs) == len(served)
    return list(zip(reqs, served, strict=True))


def test_prompts_are_distinct_across_requests_and_levels(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(prefix_cache=1)
    _, doc = bench(srv.url, tmp_path, concurrency=(1, 2), requests=4, output_tokens=4,
                   prompt_tokens=64)
    served = srv.served()
    assert len(served) == 10
    assert len({s.prompt_hash for s in served}) == 10  # no level re-sends another's prompts
    # the server found no shared prefix worth the name, and the run says what it reported
    assert all(s.cached_tokens <= 2 for s in served)
    for level in doc["levels"]:
        assert level["cached_prompt_tokens"] == sum(
            r["cached_tokens"] for r in doc["requests"]
            if r["level_id"] == level["level_id"] and not r["warmup"])


def test_runs_of_other_sizes_share_no_prompt_prefix(fake_server, tmp_path) -> None:  # noqa: ANN001
    # the demo's depth run (64-token prompts) once found the chat run's 128-token prompts
    # in llama-server's cache: the same seed drew the same words
    srv = fake_server(prefix_cache=1)
    bench(srv.url, tmp_path, requests=3, output_tokens=4, prompt_tokens=128)
    _, short = bench(srv.url, tmp_path / "b", requests=3, output_tokens=4, prompt_tokens=64)
    assert short["levels"][0]["cache_hit_requests"] == 0
    assert all(r["cached_tokens"] <= 2 for r in short["requests"])


def test_a_stale_keep_alive_connection_is_retried_not_counted_as_an_error(
        fake_server, tmp_path) -> None:  # noqa: ANN001
    # the server closes every connection after one answer without saying so: each reuse
    # meets a closed connection before any byte of its answer
    srv = fake_server(close_after=1, itl=0.001)
    _, doc = bench(srv.url, tmp_path, concurrency=(2, 4), requests=8, output_tokens=4)
    for level in doc["levels"]:
        assert level["requests_failed"] == 0, level["errors"]
    reqs = doc["requests"]
    assert all(r["status"] == "ok" for r in reqs)
    retried = [r for r in reqs if r["retried"]]
    assert retried and all(not r["reused"] for r in retried)  # sent on a new connection
    assert sum(lv["requests_retried"] for lv in doc["levels"]) == sum(
        1 for r in retried if not r["warmup"])
    assert len(srv.served()) == len(reqs)  # each answered exactly once


def test_shared_prefix_hits_the_cache_and_ttft_shows_it(fake_server, tmp_path) -> None:  # noqa: ANN001
    # cached tokens still cost something: 600 of them at 60,000/s is 10 ms
    srv = fake_server(prefix_cache=1, prefill_tps=4000, cached_prefill_tps=60000, ttft=0.002,
                      itl=0.001)
    _, doc = bench(srv.url, tmp_path, requests=5, prompt_tokens=50, output_tokens=4,
                   shared_prefix=600, workload="rag")
    pairs = by_prompt_order(doc, srv.served())
    for r, s in pairs:
        assert r["cached_tokens"] == s.cached_tokens
        assert r["prompt_tokens"] == s.prompt_tokens
        # the server scheduled its first token after the prefill of what it had not cached
        # (its event loop may wake a timer up to a millisecond early)
        assert s.ttft_s - 0.001 <= r["ttft_s"] < s.ttft_s + 0.05
    first, *rest = [s for _, s in pairs]
    assert first.cached_tokens == 0
    for s in rest:  # the server's schedule: new tokens at 4,000/s, cached ones at 60,000/s
        new = s.prompt_tokens - s.cached_tokens
        assert s.ttft_s == pytest.approx(0.002 + new / 4000 + s.cached_tokens / 60000)
    assert all(s.cached_tokens >= 600 for s in rest)  # the document, every time
    (level,) = doc["levels"]
    assert level["cache_hit_requests"] == 5
    assert level["cached_prompt_tokens"] == sum(s.cached_tokens for s in rest)
    # without reuse the same prompts cost the prefix's prefill again
    srv2 = fake_server(prefix_cache=1, prefill_tps=4000, ttft=0.002, itl=0.001)
    _, cold = bench(srv2.url, tmp_path / "cold", requests=5, prompt_tokens=650,
                    output_tokens=4, workload="rag")
    (cold_level,) = cold["levels"]
    assert cold_level["cache_hit_requests"] <= 1
    assert cold_level["ttft_uncached_s"]["p50"] > 2 * level["ttft_cached_s"]["p50"]
    # prefill per request counts the tokens the server processed, not those it had cached
    for r, s in pairs:
        if r["ttft_s"] and not r["warmup"]:
            processed = s.prompt_tokens - s.cached_tokens
            assert processed / r["ttft_s"] <= 4000 * 1.05


def test_multi_turn_sends_the_history_with_the_servers_replies(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(prefix_cache=1, itl=0.001)
    _, doc = bench(srv.url, tmp_path, requests=8, warmup=0, workload="chat",
                   prompt_tokens=120, output_tokens=6)
    served = srv.served()
    # turn k of a conversation starts with turn k-1's prompt and the reply to it
    turns = [s for s in served]
    for prev, cur in zip(turns, turns[1:], strict=False):
        if cur.prompt_tokens > prev.prompt_tokens:
            assert cur.cached_tokens >= prev.prompt_tokens  # the whole history so far
    assert any(s.cached_tokens > 0 for s in served)
    # the reply's words are in the next turn: prompts grow by more than the new user text
    assert turns[1].prompt_tokens >= turns[0].prompt_tokens + 6 + 120 // 4
    assert doc["levels"][0]["cache_hit_requests"] >= 6


def test_a_mooncake_trace_replays_at_its_timestamps(fake_server, tmp_path) -> None:  # noqa: ANN001
    trace = tmp_path / "trace.jsonl"
    entries = [{"timestamp": 0, "input_length": 700, "output_length": 5, "hash_ids": [1, 2]},
               {"timestamp": 150, "input_length": 900, "output_length": 3,
                "hash_ids": [1, 2, 3]},
               {"timestamp": 300, "input_length": 400, "output_length": 7, "hash_ids": [9]},
               {"timestamp": 450, "input_length": 520, "output_length": 4,
                "hash_ids": [1, 4]}]
    trace.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    srv = fake_server(prefix_cache=1, itl=0.001)
    db = tmp_path / "r.db"
    assert main(["bench", "--url", srv.url, "--model", "fake-model", "--workload", str(trace),
                 "--warmup", "0", "--trace-speed", "2", "--db", str(db), "--json"]) == 0
    store = Store(db)
    (run,) = store.runs()
    doc = run_json(store.run(run["run_id"]))
    (level,) = doc["levels"]
    assert level["label"] == "trace"
    reqs = sorted(doc["requests"], key=lambda r: r["idx"])
    t0 = reqs[0]["intended"]
    assert [round(r["intended"] - t0, 6) for r in reqs] == [0.0, 0.075, 0.15, 0.225]
    assert [r["output_tokens"] for r in reqs] == [5, 3, 7, 4]
    served = sorted(srv.served(), key=lambda s: s.received)
    assert [s.prompt_tokens for s in served] == [700, 900, 400, 520]
    # blocks 1 and 2 are the same text each time: the server's cache says so
    assert [s.cached_tokens for s in served] == [0, 700, 0, 512]
    assert [r["cached_tokens"] for r in reqs] == [0, 700, 0, 512]


def test_depth_levels_report_prefill_and_decode_at_each_depth(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(prefill_tps=20000, ttft=0.001, itl=0.005, itl_per_ktoken=0.01)
    _, doc = bench(srv.url, tmp_path, depths=(0, 1000, 3000), requests=3, prompt_tokens=100,
                   output_tokens=12)
    assert [lv["label"] for lv in doc["levels"]] == ["c=1 d=0", "c=1 d=1000", "c=1 d=3000"]
    served = srv.served()
    for level in doc["levels"]:
        depth = level["shape"]["depth"]
        ids = {r["idx"] for r in doc["requests"] if r["level_id"] == level["level_id"]}
        reqs = [r for r in doc["requests"] if r["level_id"] == level["level_id"]]
        assert len(ids) == 4
        mine = [s for s in served if depth + 100 <= s.prompt_tokens <= depth + 110]
        assert len(mine) == 4  # depth tokens of context, then the measured part
        itl = sorted(s.itl_s for s in mine)[2]
        # the server cannot send faster than it scheduled; late by a little at most
        assert 0.85 / itl <= level["decode_tokens_per_s"]["p50"] <= 1.01 / itl
        prefill = sorted(s.prompt_tokens / (s.sent[0] - s.received) for s in mine)
        assert level["prefill_tokens_per_s"]["p50"] == pytest.approx(
            sorted(r["prompt_tokens"] / r["ttft_s"] for r in reqs if not r["warmup"])[1])
        assert prefill[0] * 0.9 <= level["prefill_tokens_per_s"]["p50"] <= prefill[-1] * 1.1
    decode = [lv["decode_tokens_per_s"]["p50"] for lv in doc["levels"]]
    assert decode[0] > decode[1] > decode[2]  # the deeper the context, the slower


def test_draft_acceptance_is_read_from_llamacpp_timings(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(draft_n=20, draft_accept=0.6, itl=0.001)
    store, doc = bench(srv.url, tmp_path, requests=4, output_tokens=8)
    (level,) = doc["levels"]
    measured = [s for s in srv.served()][1:]  # the first is the warm-up
    assert level["draft_tokens"] == sum(s.draft_n for s in measured) == 80
    assert level["draft_accepted_tokens"] == sum(s.draft_accepted for s in measured) == 48
    assert level["acceptance_rate"] == pytest.approx(0.6)
    assert level["acceptance_source"] == "llama.cpp timings"
    # a server that reports none says so
    srv2 = fake_server(itl=0.001)
    _, plain = bench(srv2.url, tmp_path / "plain", requests=2, output_tokens=4)
    assert plain["levels"][0]["acceptance_source"] is None
    assert main(["runs", "show", plain["run_id"], "--db", str(tmp_path / "plain" / "runs.db")]
                ) == 0


def test_energy_per_token_from_the_power_the_server_reported(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(power_w=300, idle_power_w=300, itl=0.01)
    store, doc = bench(srv.url, tmp_path, concurrency=(2,), requests=6, output_tokens=50)
    (level,) = doc["levels"]
    reqs = [r for r in doc["requests"] if r["status"] == "ok"]
    t0 = min(r["start"] for r in reqs)
    t1 = max(r["start"] + r["e2e_s"] for r in reqs)
    tokens = sum(r["output_tokens"] for r in reqs)
    assert level["power_source"] == "metrics"
    assert level["energy_j"] == pytest.approx(300 * (t1 - t0), rel=1e-9)
    assert level["joules_per_output_token"] == pytest.approx(300 * (t1 - t0) / tokens)
    assert level["output_tokens_per_joule"] == pytest.approx(tokens / (300 * (t1 - t0)))
    # the readings stored are the ones the server logged, and the rate is what they make
    logged = read_power_log(srv.log)
    stored = [(x["t"], x["data"]["power_w"]) for x in doc["telemetry"]
              if "power_w" in x["data"]]
    # (the first reading answered the probe that found the source when the run began)
    assert [w for _, w in stored] == [w for _, w in logged][1:len(stored) + 1]
    inside = sum(1 for t, _ in stored if t0 <= t <= t1)
    assert level["power_samples_per_s"] == pytest.approx(inside / (t1 - t0))
    # and with power that changes: the integral of what was logged, on the client's clock
    srv2 = fake_server(power_w=400, idle_power_w=100, itl=0.01)
    _, doc2 = bench(srv2.url, tmp_path / "two", concurrency=(1,), requests=4,
                    output_tokens=60)
    points = [(x["t"], x["data"]["power_w"]) for x in doc2["telemetry"]
              if "power_w" in x["data"]]
    assert [w for _, w in points] == [w for _, w in read_power_log(srv2.log)][1:len(points) + 1]
    reqs2 = [r for r in doc2["requests"] if r["status"] == "ok"]
    a = min(r["start"] for r in reqs2)
    b = max(r["start"] + r["e2e_s"] for r in reqs2)
    assert doc2["levels"][0]["energy_j"] == pytest.approx(integrate(sorted(points), a, b))
    assert 100 * (b - a) < doc2["levels"][0]["energy_j"] <= 400 * (b - a) + 1e-9


def test_integrate_is_the_area_under_the_readings() -> None:
    pts = [(0.0, 100.0), (1.0, 300.0), (3.0, 300.0)]
    assert integrate(pts, 0.0, 1.0) == pytest.approx(200.0)
    assert integrate(pts, 0.5, 2.0) == pytest.approx(125 + 300 * 1 + 0 + 0)  # 0.5..1: 250 avg
    assert integrate(pts, -1.0, 0.0) == pytest.approx(100.0)  # held before the first
    assert integrate(pts, 3.0, 4.0) == pytest.approx(300.0)  # and after the last
    assert integrate([], 0, 1) == 0.0


def test_sweep_stops_each_direction_at_the_slo(fake_server, tmp_path) -> None:  # noqa: ANN001
    # TTFT grows 15 ms with every request in flight and 1 ms per 10 prompt tokens
    srv = fake_server(ttft=0.002, ttft_per_active=0.015, prefill_tps=10000, itl=0.001)
    _, doc = bench(srv.url, tmp_path, sweep=True, concurrency=(1, 2, 4, 8), requests=4,
                   prompt_sweep=(32, 400), output_sweep=(4,), slo=Slo(ttft_s=0.04))
    labels = [lv["label"] for lv in doc["levels"]]
    ok = {lv["label"]: lv["ttft_s"]["p90"] <= 0.04 and not lv["requests_failed"]
          for lv in doc["levels"]}
    small = [x for x in labels if "p=32 " in x]
    large = [x for x in labels if "p=400 " in x]
    assert small[0] == "c=1 p=32 o=4"
    # each direction ends at its first miss, and the larger prompt never goes past it
    assert all(ok[x] for x in small[:-1]) and not ok[small[-1]]
    assert len(large) <= len(small)
    assert all(ok[x] for x in large[:-1])
    assert len(small) < 4  # the SLO stopped it before c=8


def test_report_draws_the_pareto_front_and_depth(fake_server, tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("matplotlib")
    srv = fake_server(ttft=0.002, ttft_per_active=0.004, itl=0.002, itl_per_ktoken=0.002,
                      prefix_cache=1, draft_n=10, draft_accept=0.5)
    store, doc = bench(srv.url, tmp_path, concurrency=(1, 2, 4), requests=4,
                       output_tokens=8, prompt_tokens=32)
    store2, depth = bench(srv.url, tmp_path / "d", depths=(0, 500), requests=2,
                          output_tokens=8, prompt_tokens=32)
    page = render([store.run(doc["run_id"]), store2.run(depth["run_id"])])
    assert 'id="pareto"' in page and 'id="depth"' in page
    assert "accepted" in page and "prompt cache" in page
    js = bench_json(store.run(doc["run_id"]))
    assert {"label", "shape", "acceptance_rate", "energy_j", "cached_prompt_tokens",
            "prefill_tokens_per_s", "decode_tokens_per_s"} <= set(js["levels"][0])


def test_pareto_front_keeps_only_the_unbeaten() -> None:
    pts = [(10.0, 10.0), (8.0, 30.0), (5.0, 50.0), (4.0, 40.0), (9.0, 9.0)]
    assert pareto_front(pts) == [(5.0, 50.0), (8.0, 30.0), (10.0, 10.0)]


def test_compare_reads_energy_and_speeds_per_level(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(power_w=200, idle_power_w=200, itl=0.01)
    store, a = bench(srv.url, tmp_path, requests=4, output_tokens=40)
    run_b, _ = run_bench(BenchConfig(url=srv.url, model="fake-model", requests=4,
                                     output_tokens=40), store)
    from rigscope.comparison import compare

    rows = compare([store.run(a["run_id"]), store.run(run_b)]).rows
    metrics = {r.metric for r in rows}
    assert {"joules_per_output_token", "prefill_tokens_per_s", "decode_tokens_per_s"} <= metrics


def test_bad_trace_lines_are_refused_in_one_line(tmp_path, capsys) -> None:  # noqa: ANN001
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 0, "output_length": 3, '
                     '"hash_ids": [1]}\n')
    assert main(["bench", "--url", "http://127.0.0.1:9", "--model", "m", "--workload",
                 str(trace)]) == 2
    err = capsys.readouterr().err
    assert "input_length" in err and len(err.strip().splitlines()) == 1


def test_speculative_and_power_series_are_read_from_metrics_pages() -> None:
    from rigscope.bench.telemetry import parse_prometheus, server_metrics

    # series names as vLLM (v1 spec-decode metrics), llama-server (server-task.cpp) and
    # NVIDIA's DCGM exporter publish them
    page = ("vllm:spec_decode_num_draft_tokens_total{model_name=\"m\"} 300\n"
            "vllm:spec_decode_num_accepted_tokens_total{model_name=\"m\"} 210\n"
            "vllm:spec_decode_num_drafts_total{model_name=\"m\"} 100\n"
            'DCGM_FI_DEV_POWER_USAGE{gpu="0"} 250.5\nDCGM_FI_DEV_POWER_USAGE{gpu="1"} 249.5\n')
    assert server_metrics(parse_prometheus(page)) == {
        "spec_draft_tokens": 300, "spec_accepted_tokens": 210, "spec_drafts": 100,
        "power_w": 500.0}
    llama = ("llamacpp:spec_decode_num_draft_tokens_total 40\n"
             "llamacpp:spec_decode_num_accepted_tokens_total 30\n"
             "llamacpp:prompt_tokens_cached_total 512\n")
    assert server_metrics(parse_prometheus(llama)) == {
        "spec_draft_tokens": 40, "spec_accepted_tokens": 30, "prompt_tokens_cached": 512}
    assert server_metrics(parse_prometheus("sglang:spec_accept_length 2.5\n")) == {
        "spec_accept_length": 2.5}


def test_acceptance_and_prefix_cache_from_counters_over_a_level() -> None:
    from rigscope.bench.metrics import RequestResult, level_telemetry

    r = RequestResult(index=0, intended=10.0, start=10.0, e2e_s=2.0, ttft_s=0.1,
                      output_tokens=50)
    samples = [(9.5, "metrics", {"spec_draft_tokens": 100, "spec_accepted_tokens": 60,
                                 "spec_drafts": 40, "prefix_cache_hits": 10,
                                 "prefix_cache_queries": 100}),
               (11.0, "metrics", {"spec_draft_tokens": 150, "spec_accepted_tokens": 90,
                                  "spec_drafts": 60}),
               (12.1, "metrics", {"spec_draft_tokens": 200, "spec_accepted_tokens": 140,
                                  "spec_drafts": 80, "prefix_cache_hits": 310,
                                  "prefix_cache_queries": 500})]
    out = level_telemetry([r], samples)
    assert out["draft_tokens"] == 100 and out["draft_accepted_tokens"] == 80
    assert out["acceptance_rate"] == pytest.approx(0.8)
    assert out["acceptance_length"] == pytest.approx(1 + 80 / 40)
    assert out["acceptance_source"] == "metrics"
    assert out["prefix_cache_hit_rate"] == pytest.approx(300 / 400)
    sg = level_telemetry([r], [(11.0, "metrics", {"spec_accept_length": 2.0}),
                               (12.0, "metrics", {"spec_accept_length": 3.0})])
    assert sg["acceptance_length"] == pytest.approx(2.5) and "acceptance_rate" not in sg


def test_prefix_cache_rate_per_level_is_the_servers_count(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(prefix_cache=1, itl=0.001)
    _, doc = bench(srv.url, tmp_path, concurrency=(1, 2), requests=4, output_tokens=4,
                   prompt_tokens=80, shared_prefix=200)
    served = srv.served()
    start = 0
    for level in doc["levels"]:
        n = level["requests_ok"] + 1  # and its warm-up
        mine = served[start:start + n]
        start += n
        assert level["prefix_cache_source"] == "metrics"
        assert level["prefix_cache_hit_rate"] == pytest.approx(
            sum(s.cached_tokens for s in mine) / sum(s.prompt_tokens for s in mine))


def test_cpu_power_from_rapl_energy_counters(tmp_path) -> None:  # noqa: ANN001
    import asyncio

    from rigscope.bench.telemetry import Rapl, rapl_packages

    zone = tmp_path / "intel-rapl:0"
    (tmp_path / "intel-rapl:0:0").mkdir(parents=True)  # a subzone: not counted twice
    zone.mkdir()
    (zone / "energy_uj").write_text("999000000\n")
    (zone / "max_energy_range_uj").write_text("1000000000\n")
    ((tmp_path / "intel-rapl:0:0") / "energy_uj").write_text("5\n")
    assert rapl_packages(tmp_path) == [zone]
    now = [100.0]
    meter = Rapl([zone], lambda: now[0])
    assert asyncio.run(meter.read()) == {}
    now[0] = 102.0
    (zone / "energy_uj").write_text("199000000\n")  # wrapped: 200 J in 2 s
    assert asyncio.run(meter.read()) == {"cpu_power_w": pytest.approx(100.0)}
