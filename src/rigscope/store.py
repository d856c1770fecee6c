"""SQLite store of benchmark runs: numbered migrations, one commit per finished request."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rigscope.errors import NotFound, RigscopeError
from rigscope.paths import data_dir
from rigscope.records import Level, LevelSummary, Run, Sample, StoredRequest

MIGRATIONS = [
    # 1: runs, their levels, and every request with all its timestamps
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
        status TEXT NOT NULL, label TEXT, url TEXT NOT NULL, model TEXT NOT NULL,
        api TEXT NOT NULL, config TEXT NOT NULL
    );
    CREATE TABLE levels (
        level_id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(run_id),
        position INTEGER NOT NULL, concurrency INTEGER, rate REAL,
        started_at TEXT NOT NULL, summary TEXT
    );
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(run_id),
        level_id INTEGER NOT NULL REFERENCES levels(level_id), idx INTEGER NOT NULL,
        warmup INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT, detail TEXT,
        intended REAL NOT NULL, start REAL NOT NULL, dns_s REAL, connect_s REAL, tls_s REAL,
        headers_s REAL, ttft_s REAL, e2e_s REAL, itl_s REAL, prompt_tokens INTEGER,
        output_tokens INTEGER, client_tokens INTEGER, reused INTEGER NOT NULL,
        chunk_times TEXT NOT NULL, server TEXT NOT NULL
    );
    CREATE INDEX requests_by_level ON requests(level_id);
    """,
    # 2: quality evaluations, one row per scored answer
    """
    CREATE TABLE evals (
        eval_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
        status TEXT NOT NULL, suite TEXT NOT NULL, config TEXT NOT NULL, summary TEXT
    );
    CREATE TABLE eval_results (
        id INTEGER PRIMARY KEY, eval_id TEXT NOT NULL REFERENCES evals(eval_id),
        endpoint TEXT NOT NULL, task_id TEXT NOT NULL, sample INTEGER NOT NULL,
        category TEXT NOT NULL, passed INTEGER NOT NULL, reason TEXT, answer TEXT NOT NULL,
        ttft_s REAL, itl_s REAL, output_tokens INTEGER, isolation TEXT
    );
    CREATE INDEX eval_results_by_eval ON eval_results(eval_id);
    """,
    # 3: what the server and the GPU said during a run, on the run's clock
    """
    CREATE TABLE telemetry (
        id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(run_id),
        t REAL NOT NULL, source TEXT NOT NULL, data TEXT NOT NULL
    );
    CREATE INDEX telemetry_by_run ON telemetry(run_id);
    """,
    # 4: a level's shape (context depth, its own prompt/output sizes in a sweep); per
    # request the prompt tokens the server took from its cache, and a retry on a new
    # connection after a kept-alive one was closed
    """
    ALTER TABLE levels ADD COLUMN depth INTEGER;
    ALTER TABLE levels ADD COLUMN prompt_tokens INTEGER;
    ALTER TABLE levels ADD COLUMN output_tokens INTEGER;
    ALTER TABLE requests ADD COLUMN cached_tokens INTEGER;
    ALTER TABLE requests ADD COLUMN retried INTEGER NOT NULL DEFAULT 0;
    """,
]
REQUEST_COLUMNS = ("idx", "warmup", "status", "reason", "detail", "intended", "start", "dns_s",
                   "connect_s", "tls_s", "headers_s", "ttft_s", "e2e_s", "itl_s",
                   "prompt_tokens", "output_tokens", "client_tokens", "reused", "chunk_times",
                   "server", "cached_tokens", "retried")


def default_db() -> Path:
    return data_dir() / "runs.db"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_db()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)  # autocommit
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as e:
            raise RigscopeError(f"{self.path}: not a rigscope database ({e})") from None
        self.db.row_factory = sqlite3.Row
        self.migrate()

    def migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RigscopeError(f"{self.path} was written by a newer rigscope "
                                f"(schema {version}); upgrade rigscope", exit_code=1)
        for n, sql in enumerate(MIGRATIONS[version:], version + 1):
            self.db.executescript(f"BEGIN; {sql}; PRAGMA user_version = {n}; COMMIT;")

    def close(self) -> None:
        self.db.close()

    def new_run(self, url: str, model: str, api: str, config: dict[str, Any],
                label: str | None) -> str:
        run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.db.execute("INSERT INTO runs VALUES (?, ?, NULL, 'running', ?, ?, ?, ?, ?)",
                        (run_id, now(), label, url, model, api, json.dumps(config)))
        return run_id

    def update_config(self, run_id: str, changes: dict[str, Any]) -> None:
        row = self.db.execute("SELECT config FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        config = json.loads(row["config"]) | changes
        self.db.execute("UPDATE runs SET config = ? WHERE run_id = ?",
                        (json.dumps(config), run_id))

    def finish_run(self, run_id: str, status: str) -> None:
        self.db.execute("UPDATE runs SET finished_at = ?, status = ? WHERE run_id = ?",
                        (now(), status, run_id))

    def new_level(self, run_id: str, position: int, concurrency: int | None,
                  rate: float | None, depth: int | None = None,
                  prompt_tokens: int | None = None, output_tokens: int | None = None) -> int:
        cur = self.db.execute(
            "INSERT INTO levels (run_id, position, concurrency, rate, started_at, depth, "
            "prompt_tokens, output_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, position, concurrency, rate, now(), depth, prompt_tokens, output_tokens))
        return int(cur.lastrowid or 0)

    def set_summary(self, level_id: int, summary: LevelSummary) -> None:
        self.db.execute("UPDATE levels SET summary = ? WHERE level_id = ?",
                        (json.dumps(dataclasses.asdict(summary)), level_id))

    def add_finished_run(self, url: str, model: str, api: str, config: dict[str, Any],
                         label: str | None,
                         levels: Sequence[tuple[int | None, float | None, LevelSummary]]
                         ) -> str:
        """A run measured elsewhere (an imported file): the run and its level summaries in
        one transaction, so a failure leaves nothing behind."""
        self.db.execute("BEGIN")
        try:
            run_id = self.new_run(url, model, api, config, label)
            for position, (concurrency, rate, summary) in enumerate(levels):
                self.set_summary(self.new_level(run_id, position, concurrency, rate), summary)
            self.finish_run(run_id, "done")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return run_id

    def add_telemetry(self, run_id: str,
                      samples: Sequence[tuple[float, str, dict[str, float]]]) -> None:
        """Telemetry samples (t, source, data) of a run, in one transaction."""
        if not samples:
            return
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO telemetry (run_id, t, source, data) VALUES (?, ?, ?, ?)",
            [(run_id, t, source, json.dumps(data)) for t, source, data in samples])
        self.db.execute("COMMIT")

    def add_request(self, run_id: str, level_id: int, r: Any) -> None:
        """Insert and commit one finished request (a crash loses nothing that completed)."""
        values = (r.index, int(r.warmup), r.status, r.reason, r.detail, r.intended, r.start,
                  r.dns_s, r.connect_s, r.tls_s, r.headers_s, r.ttft_s, r.e2e_s, r.itl_s,
                  r.prompt_tokens, r.output_tokens, r.client_tokens, int(r.reused),
                  json.dumps([round(t, 6) for t in r.chunk_times]), json.dumps(r.server),
                  r.cached_tokens, int(r.retried))
        self.db.execute(
            f"INSERT INTO requests (run_id, level_id, {', '.join(REQUEST_COLUMNS)}) "
            f"VALUES (?, ?, {', '.join('?' * len(REQUEST_COLUMNS))})", (run_id, level_id, *values))

    def new_eval(self, suite: str, config: dict[str, Any]) -> str:
        eval_id = "eval-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.db.execute("INSERT INTO evals VALUES (?, ?, NULL, 'running', ?, ?, NULL)",
                        (eval_id, now(), suite, json.dumps(config)))
        return eval_id

    def add_eval_result(self, eval_id: str, endpoint: str, r: dict[str, Any]) -> None:
        """Insert and commit one scored answer."""
        self.db.execute(
            "INSERT INTO eval_results (eval_id, endpoint, task_id, sample, category, passed, "
            "reason, answer, ttft_s, itl_s, output_tokens, isolation) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (eval_id, endpoint, r["task_id"], r["sample"], r["category"], int(r["passed"]),
             r["reason"], r["answer"], r["ttft_s"], r["itl_s"], r["output_tokens"],
             r["isolation"]))

    def finish_eval(self, eval_id: str, status: str, summary: dict[str, Any]) -> None:
        self.db.execute("UPDATE evals SET finished_at = ?, status = ?, summary = ? "
                        "WHERE eval_id = ?", (now(), status, json.dumps(summary), eval_id))

    def eval(self, eval_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM evals WHERE eval_id = ?", (eval_id,)).fetchone()
        if row is None:
            raise NotFound(f"no eval {eval_id!r} in {self.path}")
        results = [dict(r) for r in self.db.execute(
            "SELECT * FROM eval_results WHERE eval_id = ? ORDER BY id", (eval_id,))]
        return {"eval_id": eval_id, "started_at": row["started_at"], "status": row["status"],
                "suite": row["suite"], "config": json.loads(row["config"]),
                "summary": json.loads(row["summary"] or "{}"), "results": results}

    def runs(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT r.*, (SELECT COUNT(*) FROM requests q WHERE q.run_id = r.run_id) AS n "
            "FROM runs r ORDER BY started_at, rowid").fetchall()
        return [{"run_id": r["run_id"], "started_at": r["started_at"], "label": r["label"],
                 "status": r["status"], "url": r["url"], "model": r["model"], "api": r["api"],
                 "requests": r["n"]} for r in rows]

    def run(self, run_id: str) -> Run:
        row = self.db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            ids = [r["run_id"] for r in self.runs()][-5:]
            raise NotFound(f"no run {run_id!r} in {self.path}; latest: "
                                + (", ".join(ids) or "none"))
        levels = self.db.execute("SELECT * FROM levels WHERE run_id = ? ORDER BY position",
                                 (run_id,)).fetchall()
        reqs = self.db.execute("SELECT * FROM requests WHERE run_id = ? ORDER BY id",
                               (run_id,)).fetchall()
        return Run(
            run_id=row["run_id"], started_at=row["started_at"],
            finished_at=row["finished_at"], status=row["status"], label=row["label"],
            url=row["url"], model=row["model"], api=row["api"],
            config=json.loads(row["config"]),
            levels=tuple(Level(level_id=lv["level_id"], position=lv["position"],
                               concurrency=lv["concurrency"], rate=lv["rate"],
                               depth=lv["depth"], prompt_tokens=lv["prompt_tokens"],
                               output_tokens=lv["output_tokens"],
                               summary=LevelSummary.from_dict(json.loads(lv["summary"]))
                               if lv["summary"] else None) for lv in levels),
            requests=tuple(self._request(q) for q in reqs),
            telemetry=tuple(Sample(q["t"], q["source"], json.loads(q["data"])) for q in
                            self.db.execute("SELECT t, source, data FROM telemetry WHERE "
                                            "run_id = ? ORDER BY id", (run_id,))),
        )

    @staticmethod
    def _request(q: sqlite3.Row) -> StoredRequest:
        d = {k: q[k] for k in q.keys()}  # noqa: SIM118 - sqlite3.Row is not a mapping
        d["warmup"], d["reused"] = bool(d["warmup"]), bool(d["reused"])
        d["retried"] = bool(d["retried"])
        d["chunk_times"] = json.loads(d["chunk_times"])
        d["server"] = json.loads(d["server"])
        return StoredRequest(**d)
