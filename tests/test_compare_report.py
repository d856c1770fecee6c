"""compare (bootstrap significance) and report (self-contained HTML, PNGs, Chromium)."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rigscope.comparison import compare
from rigscope.records import Level, LevelSummary, Run, Stats, StoredRequest
from rigscope.report import render, write_report


def fake_run(run_id: str, ttft: float, n: int = 40, seed: int = 0) -> Run:
    rng = random.Random(seed)
    reqs, levels = [], []
    for lid, c in ((1, 1), (2, 4)):
        t = 0.0
        for i in range(n):
            tt = ttft * c * (1 + rng.gauss(0, 0.05))
            reqs.append(StoredRequest(
                id=len(reqs) + 1, run_id=run_id, level_id=lid, idx=i, warmup=False,
                status="ok", reason=None, detail=None, intended=t, start=t, dns_s=0.0001,
                connect_s=0.0003, tls_s=None, headers_s=0.001, ttft_s=tt, e2e_s=tt + 0.3,
                itl_s=0.01, prompt_tokens=64, output_tokens=32, client_tokens=32,
                reused=False, chunk_times=[], server={}))
            t += 0.1
        stat = Stats(mean=ttft * c, p50=ttft * c, p90=ttft * c * 1.1, p99=ttft * c * 1.2)
        levels.append(Level(lid, lid - 1, c, None, LevelSummary(
            requests_ok=n, ttft_s=stat, itl_s=Stats(mean=0.01, p50=0.01, p90=0.011, p99=0.012),
            output_tokens_per_s=100.0 * c, requests_per_s=3.0)))
    config = {"prediction": {"rows": [{"what": "decode tok/s", "predicted": 90.0,
                                       "measured": 100.0}],
                             "memory": [{"id": "cpu:16gb", "weights_bytes": 2**27,
                                         "kv_bytes": 2**25, "compute_bytes": 2**26,
                                         "overhead_bytes": 2**20}]}}
    return Run(run_id=run_id, started_at="2026-11-27T10:00:00", finished_at=None,
               status="done", label=run_id, url="http://127.0.0.1:1", model="m", api="openai",
               config=config, levels=tuple(levels), requests=tuple(reqs))


def test_compare_flags_real_differences_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import rigscope.comparison

    monkeypatch.setattr(rigscope.comparison, "BOOTSTRAP", 300)
    false_alarms = covered = 0
    for seed in range(20):
        a, same = fake_run("a", 0.1, seed=2 * seed), fake_run("b", 0.1, seed=2 * seed + 1)
        slower = fake_run("c", 0.12, seed=100 + seed)
        rows = compare([a, same, slower]).rows
        ttft = {(r.run_b, r.level): r for r in rows if r.metric == "ttft_s"}
        false_alarms += bool(ttft[("b", "c=1")].significant)
        assert ttft[("c", "c=1")].significant  # a 20% shift is always caught
        ci = ttft[("c", "c=1")].ci95
        assert ci is not None
        lo, hi = ci
        covered += lo < 0.02 < hi  # the true shift is 0.02 s
    assert false_alarms <= 3  # a 95% interval: about 1 in 20 by chance
    assert covered >= 16


def test_report_is_self_contained(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    runs = [fake_run("a", 0.1), fake_run("b", 0.15, seed=4)]
    page = render(runs, png_dir=tmp_path / "png")
    assert page.count("<svg") == 6  # throughput, latency, distributions, network, predicted,
    assert "<script" not in page and "<link" not in page  # memory: six plots
    assert not re.search(r"""(src|href)=["']https?:|url\(https?:|@import""", page)
    for title in ("Throughput vs concurrency", "TTFT percentiles", "Network breakdown",
                  "Predicted vs measured", "Predicted memory per device"):
        assert title in page
    pngs = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert pngs == ["distributions.png", "latency.png", "memory.png", "network.png",
                    "predicted.png", "throughput.png"]
    assert all((tmp_path / "png" / p).stat().st_size > 5000 for p in pngs)


def test_a_report_without_matplotlib_is_one_line_with_the_install_hint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from rigscope.errors import RigscopeError

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with pytest.raises(RigscopeError, match=r"pip install 'rigscope\[report\]'") as e:
        write_report([fake_run("a", 0.1)], tmp_path / "r.html")
    assert e.value.exit_code == 1 and not (tmp_path / "r.html").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
def test_report_opens_in_chromium_without_console_errors(tmp_path: Path) -> None:
    path = write_report([fake_run("a", 0.1)], tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    out = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1100,3200", f"--screenshot={shot}", path.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20000, out.stderr[-2000:]
    console = [line for line in out.stderr.splitlines() if "CONSOLE" in line]
    assert not [c for c in console if re.search(r"error|uncaught", c, re.IGNORECASE)], console


def test_levels_sort_by_number_not_by_label() -> None:
    from rigscope.records import level_label, level_order

    levels = [(16, None), (1, None), (4, None), (None, 2.5), (None, 10.0), (None, 0.5)]
    ordered = [level_label(c, r) for c, r in sorted(levels, key=lambda x: level_order(*x))]
    assert ordered == ["c=1", "c=4", "c=16", "0.5/s", "2.5/s", "10/s"]
