"""bench --workers: the load from several processes, one store, a global schedule, and a
worker that dies losing only what it had in flight."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rigscope.bench.config import BenchConfig
from rigscope.bench.load import LevelSpec
from rigscope.bench.workers import run_level_workers, shards
from rigscope.cli import main


def test_shards_split_streams_and_keep_the_schedule_global() -> None:
    parts = shards(LevelSpec(concurrency=10), 4, 5.0)
    assert [p.concurrency for p in parts] == [3, 3, 2, 2] and {p.start for p in parts} == {5.0}
    assert len(shards(LevelSpec(concurrency=2), 4, 0.0)) == 2  # no idle workers
    open_loop = shards(LevelSpec(rate=10.0), 3, 0.0)
    assert [p.part for p in open_loop] == [0, 1, 2] and all(p.concurrency is None
                                                            for p in open_loop)


def test_bench_with_workers_stores_every_request(fake_server, tmp_path: Path,  # noqa: ANN001
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    srv = fake_server(ttft=0.02, itl=0.002)
    db = str(tmp_path / "r.db")
    assert main(["bench", "--url", srv.url, "--model", "fake-model", "--concurrency", "4",
                 "--requests", "20", "--output-tokens", "8", "--workers", "2", "--db", db,
                 "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["levels"][0]["requests_ok"] == 20
    assert main(["runs", "show", run["run_id"], "--db", db, "--json"]) == 0
    reqs = json.loads(capsys.readouterr().out)["requests"]
    assert sorted(r["idx"] for r in reqs) == list(range(21))  # 20 + 1 warm-up, each once
    assert len(srv.served()) == 21
    # open loop: the intended times follow one schedule across the workers
    assert main(["bench", "--url", srv.url, "--model", "fake-model", "--rate", "40",
                 "--requests", "12", "--warmup", "0", "--output-tokens", "4", "--workers",
                 "3", "--db", db, "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert main(["runs", "show", run["run_id"], "--db", db, "--json"]) == 0
    reqs = sorted(json.loads(capsys.readouterr().out)["requests"], key=lambda r: r["idx"])
    gaps = [b["intended"] - a["intended"] for a, b in zip(reqs, reqs[1:], strict=False)]
    assert all(g == pytest.approx(1 / 40, abs=1e-6) for g in gaps)


def test_a_dying_worker_loses_only_its_in_flight_requests(fake_server) -> None:  # noqa: ANN001
    import workerhelp

    srv = fake_server(ttft=0.3, itl=0.01)
    config = BenchConfig(url=srv.url, model="fake-model", output_tokens=8, telemetry=False)
    seen = []
    results = asyncio.run(run_level_workers(
        config, LevelSpec(concurrency=4, requests=12, warmup=0), 0, 2, seen.append,
        worker=workerhelp.dying_worker))
    lost = [r for r in results if r.reason == "worker_lost"]
    assert len(lost) == 2 and all(r.index % 2 == 1 for r in lost)  # worker 2's two streams
    assert "worker 2 of 2 died" in (lost[0].detail or "")
    ok = [r for r in results if r.status == "ok"]
    assert len(ok) == 6 and all(r.index % 2 == 0 for r in ok)  # worker 1 finished its part
    assert seen == results  # each one reached the store's callback


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A local Ray cluster of its own (a head node with 2 CPUs), stopped afterwards."""
    import os
    import shutil
    import subprocess
    import sys

    from rigscope.llamacpp.server import free_port

    exe = Path(sys.executable).with_name("ray")
    assert exe.exists() or shutil.which("ray"), "ray is a dev dependency"
    port = free_port()
    tmp = tmp_path_factory.mktemp("ray")
    # no token authentication: the cluster and this process are the test's own
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = os.environ | {"RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([str(exe), "start", "--head", f"--port={port}", "--num-cpus=2",
                    "--include-dashboard=false", f"--temp-dir={tmp}", "--disable-usage-stats"],
                   check=True, env=env, capture_output=True, timeout=120)
    yield f"127.0.0.1:{port}"
    import ray

    ray.shutdown()
    subprocess.run([str(exe), "stop", "--force"], env=env, capture_output=True, timeout=120)
    if saved is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = saved


@pytest.mark.slow
def test_bench_on_a_ray_cluster(ray_cluster: str, fake_server, tmp_path: Path,  # noqa: ANN001
                                capsys: pytest.CaptureFixture[str]) -> None:
    srv = fake_server(ttft=0.02, itl=0.002)
    db = str(tmp_path / "r.db")
    assert main(["bench", "--url", srv.url, "--model", "fake-model", "--concurrency", "4",
                 "--requests", "16", "--output-tokens", "8", "--workers", "2", "--ray",
                 ray_cluster, "--db", db, "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["levels"][0]["requests_ok"] == 16 and run["levels"][0]["requests_failed"] == 0
    assert main(["runs", "show", run["run_id"], "--db", db, "--json"]) == 0
    reqs = json.loads(capsys.readouterr().out)["requests"]
    assert sorted(r["idx"] for r in reqs) == list(range(17))
    assert len(srv.served()) == 17
