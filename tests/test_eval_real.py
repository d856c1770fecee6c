"""End to end: eval on two real llama-servers (SmolLM2 Q4_1 and a Q8_0 requantized here)."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import ExitStack
from pathlib import Path

import pytest

from rigscope.cli import main
from rigscope.llamacpp.probe import quantize
from rigscope.llamacpp.server import LlamaServer, ServerSettings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # starts llama-server


def test_eval_two_quantizations(smollm2: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    q8 = quantize(smollm2, tmp_path / "smollm2-q8_0.gguf", "Q8_0")
    # Two servers share the machine: each gets half the cores, so llama.cpp's spinning
    # threads never outnumber them (oversubscribed, a 512-token answer can take minutes).
    threads = max(1, (os.cpu_count() or 2) // 2)
    with ExitStack() as stack:
        servers = [stack.enter_context(LlamaServer(
            ServerSettings(model=gguf, alias=alias, context=4096, parallel=2, threads=threads),
            tmp_path / f"{alias}.log")) for gguf, alias in ((smollm2, "q4"), (q8, "q8"))]
        db = str(tmp_path / "r.db")
        eps = ["--endpoint", f"q4_1={servers[0].url}", "--endpoint", f"q8_0={servers[1].url}"]
        for suite, n in (("qa", 4), ("code", 2)):
            assert main(["eval", *eps, "--suite", suite, "--limit", str(n), "--db", db,
                         "--json"]) == 0
            doc = json.loads(capsys.readouterr().out)
            assert [e["label"] for e in doc["endpoints"]] == ["q4_1", "q8_0"]
            for e in doc["endpoints"]:
                assert e["total"] == n and e["request_errors"] == 0, _why(db, tmp_path)
                assert 0 <= e["passed"] <= n and e["decode_tokens_per_s"] > 0
            assert doc["agreement"][0]["tasks"] == n
        assert all(s.death() is None for s in servers)


def _why(db: str, logs: Path) -> str:
    """What the failed requests said, and the end of each server's log."""
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT endpoint, task_id, reason FROM eval_results").fetchall()
    tails = {p.name: p.read_text(errors="replace")[-1500:] for p in logs.glob("*.log")}
    return f"answers: {rows}\nlogs: {tails}"
