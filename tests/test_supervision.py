"""A server that goes away mid-benchmark: what completed is kept, and the error says when and
how (for a supervised llama-server: the signal, its log's last lines and path)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from rigscope.bench.run import BenchConfig, Progress, run_bench
from rigscope.errors import RigscopeError
from rigscope.llamacpp.server import LlamaServer, ServerSettings, describe_exit, log_tail
from rigscope.store import Store

pytestmark = pytest.mark.timeout(300)  # starts llama-server and bench against it


def test_exits_are_described_in_words(tmp_path: Path) -> None:
    assert describe_exit(-signal.SIGILL) == (
        "exited with SIGILL (illegal instruction: the build uses an instruction this CPU "
        "refuses)")
    assert describe_exit(-signal.SIGKILL).startswith("exited with SIGKILL (killed")
    assert describe_exit(3) == "exited with code 3"
    log = tmp_path / "x.log"
    log.write_text("a\n\nb\n" + "\n".join(f"line {i}" for i in range(20)))
    assert log_tail(log, 3) == ["line 17", "line 18", "line 19"]


def test_a_users_server_that_goes_away_keeps_what_completed(fake_server, tmp_path) -> None:  # noqa: ANN001
    srv = fake_server(ttft=0.01, itl=0.002)
    store = Store(tmp_path / "runs.db")
    done = []

    def request_done(r: object) -> None:
        done.append(r)
        if len(done) == 3:
            srv.proc.kill()
            srv.proc.wait()

    config = BenchConfig(url=srv.url, model="fake-model", requests=10, warmup=0,
                         output_tokens=8)
    with pytest.raises(RigscopeError) as e:
        run_bench(config, store, Progress(request_done=request_done))
    msg = str(e.value)
    assert e.value.exit_code == 1
    assert f"{srv.url} stopped answering at c=1, during request 4" in msg
    assert "connect_error" in msg and "the 3 requests completed before are kept" in msg
    (stored,) = store.runs()
    assert stored["status"] == "failed" and stored["run_id"] in msg
    run = store.run(stored["run_id"])
    assert [r.status for r in run.requests][:3] == ["ok"] * 3
    summary = run.levels[0].summary
    assert summary is not None and summary.requests_ok == 3  # the partial level's summary


@pytest.mark.slow
def test_a_supervised_engine_that_dies_is_named(smollm2: Path, tmp_path: Path) -> None:
    log = tmp_path / "llama-server.log"
    store = Store(tmp_path / "runs.db")
    with LlamaServer(ServerSettings(model=smollm2, alias="smollm2", context=2048), log) as srv:
        assert srv.proc is not None
        pid = srv.proc.pid
        done = []

        def request_done(r: object) -> None:
            done.append(r)
            if len(done) == 2:  # as the AMX build did on a real prompt
                os.kill(pid, signal.SIGILL)

        config = BenchConfig(url=srv.url, model="smollm2", requests=5, warmup=0,
                             prompt_tokens=512, output_tokens=8)
        with pytest.raises(RigscopeError) as e:
            run_bench(config, store, Progress(request_done=request_done), watch=srv.death)
    msg = str(e.value)
    assert "llama.cpp server exited with SIGILL (illegal instruction" in msg
    assert "during request 3 (a 512-token prompt)" in msg
    assert f"log: {log}" in msg and "last lines of its log" in msg
    assert "the 2 requests completed before are kept" in msg
