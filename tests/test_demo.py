"""End to end: the demo against the real llama-server, on a small budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigscope.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # starts llama-server


def test_demo_quick(smollm2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    report = tmp_path / "demo.html"
    assert main(["demo", "--quick", "-o", str(report), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert Path(doc["report"]) == report and report.stat().st_size > 50_000
    page = report.read_text()
    assert 'id="depth"' in page and 'id="pareto"' in page
    kinds = [row["what"].split()[0] for row in doc["comparison"]]
    assert kinds[:3] == ["decode", "prefill", "TTFT"]
    for row in doc["comparison"][:3]:
        assert row["predicted"] > 0 and row["measured"] > 0
        assert abs(row["error_pct"]) < 300  # same order of magnitude; the closing note has it
    # the depth sweep: prefill and decode at each depth, predicted and measured
    depth = [row for row in doc["comparison"] if " at depth " in row["what"]]
    assert [row["what"] for row in depth] == [
        "prefill tok/s at depth 0", "decode tok/s at depth 0", "prefill tok/s at depth 512",
        "decode tok/s at depth 512"]
    for row in depth:
        assert row["predicted"] > 0 and row["measured"] > 0
        assert abs(row["error_pct"]) < 300
    # deeper context: slower decode, measured and predicted alike
    assert depth[3]["measured"] < depth[1]["measured"]
    assert depth[3]["predicted"] < depth[1]["predicted"]
    # the buffers llama-server reported while loading, beside the prediction
    memory = {row["what"].split()[0]: row for row in doc["comparison"]
              if row["what"].endswith("MiB") or "MiB (" in row["what"]}
    assert set(memory) == {"model", "KV", "compute", "output"}
    for kind in ("model", "KV"):
        assert abs(memory[kind]["error_pct"]) < 1, memory[kind]
    assert abs(memory["compute"]["error_pct"]) < 10, memory["compute"]
    assert main(["runs", "list", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["label"] for r in runs] == ["demo-chat", "demo-rag", "demo-depth"]
    assert all(r["status"] == "done" for r in runs)
    assert main(["calibrate", *doc["runs"], "--rig", "here", "--json"]) == 0
    cal = json.loads(capsys.readouterr().out)
    assert cal["error_after"]["decode"] <= cal["error_before"]["decode"]
