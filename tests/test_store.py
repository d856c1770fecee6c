"""The SQLite store: schema and migrations, and nothing lost when a run is killed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rigscope.store import MIGRATIONS, REQUEST_COLUMNS, Store


def test_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    db = store.db
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"runs", "levels", "requests", "evals", "eval_results", "telemetry"}
    cols = [r[1] for r in db.execute("PRAGMA table_info(requests)")]
    assert cols == ["id", "run_id", "level_id", *REQUEST_COLUMNS]
    runs = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
    assert runs == ["run_id", "started_at", "finished_at", "status", "label", "url", "model",
                    "api", "config"]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    results = [r[1] for r in db.execute("PRAGMA table_info(eval_results)")]
    assert results == ["id", "eval_id", "endpoint", "task_id", "sample", "category", "passed",
                       "reason", "answer", "ttft_s", "itl_s", "output_tokens", "isolation"]
    store.close()
    Store(tmp_path / "r.db").close()  # reopening migrates nothing twice


def test_version_1_databases_are_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
    db.execute("INSERT INTO runs VALUES ('r1', 't', NULL, 'done', NULL, 'u', 'm', 'openai', '{}')")
    db.commit()
    db.close()
    store = Store(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert [r["run_id"] for r in store.runs()] == ["r1"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    from rigscope.errors import RigscopeError

    path = tmp_path / "r.db"
    sqlite3.connect(path).execute("PRAGMA user_version = 99")
    with pytest.raises(RigscopeError, match="newer rigscope"):
        Store(path)


def _bench_process(url: str, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from rigscope.cli import run; run()", "bench", "--url", url,
         "--model", "fake-model", "--requests", "1000", "--warmup", "0", "--output-tokens", "4",
         "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_rows(db: Path, n: int) -> int:
    for _ in range(200):
        time.sleep(0.05)
        if db.exists():
            try:
                count = sqlite3.connect(db).execute("SELECT COUNT(*) FROM requests").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if count >= n:
                return int(count)
    raise AssertionError("no requests stored")


def test_kill_9_loses_no_finished_request(fake_server, tmp_path: Path) -> None:  # noqa: ANN001
    srv = fake_server(ttft=0.02)
    db = tmp_path / "r.db"
    proc = _bench_process(srv.url, db)
    _wait_for_rows(db, 5)
    proc.kill()
    proc.wait()
    stored = sqlite3.connect(db).execute(
        "SELECT COUNT(*) FROM requests WHERE status = 'ok'").fetchone()[0]
    answered = sum(1 for s in srv.served() if s.tokens)
    assert stored >= 5 and answered - stored <= 1  # at most the one in flight


def test_ctrl_c_keeps_the_data_and_prints_what_it_has(fake_server, tmp_path: Path) -> None:  # noqa: ANN001
    srv = fake_server(ttft=0.02)
    db = tmp_path / "r.db"
    proc = _bench_process(srv.url, db)
    _wait_for_rows(db, 5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in err and "TTFT" in out and "p50" in out  # the table was printed
    run = Store(db).runs()[-1]
    assert run["status"] == "cancelled" and run["requests"] >= 5
