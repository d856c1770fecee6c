"""Hostile model-written code is stopped, scored as a failure, and leaves the host unharmed."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from conftest import ON_CI
from rigscope.errors import RigscopeError
from rigscope.evaluation import sandbox

LIMITS = sandbox.Limits(wall_s=5)
MODE = "strong"  # set per test by the `mode` fixture


@pytest.fixture(params=["strong", "weak"], autouse=True)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs under bubblewrap and under the weak sandbox a user can allow."""
    global MODE
    MODE = request.param
    if MODE == "strong" and not sandbox.bubblewrap_works():
        (pytest.fail if ON_CI else pytest.skip)("bubblewrap is not installed here")
    if MODE == "weak":
        monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    return MODE


def run(code: str, limits: sandbox.Limits = LIMITS) -> sandbox.Outcome:
    return sandbox.run(code, limits, allow_weak=MODE == "weak")


def test_good_code_passes_and_names_its_isolation() -> None:
    out = run("def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\n")
    assert out.passed and out.reason == "passed"
    if MODE == "strong":
        assert out.isolation == "bubblewrap"
    else:
        assert out.isolation.endswith("+rlimits+audit")


def test_without_bubblewrap_it_refuses_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    with pytest.raises(RigscopeError, match="only under bubblewrap.*--allow-weak-sandbox"):
        sandbox.run("assert True\n")
    assert sandbox.run("assert True\n", allow_weak=True).passed


def test_failing_tests_fail() -> None:
    out = run("def add(a, b):\n    return a - b\n\nassert add(2, 3) == 5\n")
    assert not out.passed and out.reason == "failed" and "AssertionError" in out.output


def test_environment_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-" + uuid.uuid4().hex
    monkeypatch.setenv("RIGSCOPE_TEST_SECRET", secret)
    out = run("import os\nprint(dict(os.environ))\nassert 'RIGSCOPE_TEST_SECRET' in os.environ\n")
    assert not out.passed and secret not in out.output


def test_no_network() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(3)
    port = server.getsockname()[1]
    connected: list[object] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # the timeout: nobody connected
            connected.append(server.accept())

    t = threading.Thread(target=accept)
    t.start()
    code = (f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "s.sendall(b'leak')\n")
    out = run(code)
    t.join()
    server.close()
    assert not out.passed and connected == []


def test_no_writes_outside_its_directory() -> None:
    target = Path("/tmp") / f"rigscope-escape-{uuid.uuid4().hex}"
    out = run(f"open({str(target)!r}, 'w').write('x')\n")
    assert not out.passed and not target.exists()
    out = run(f"import os\nos.rename('task.py', {str(target)!r})\n")
    assert not out.passed and not target.exists()


def _processes() -> int:
    return len([p for p in os.listdir("/proc") if p.isdigit()])


def test_fork_bomb_is_stopped() -> None:
    before = _processes()
    out = run("import os\nwhile True:\n    os.fork()\n")
    assert not out.passed
    assert _processes() <= before + 2  # nothing left running


def test_subprocesses_are_refused() -> None:
    target = Path("/tmp") / f"rigscope-pwned-{uuid.uuid4().hex}"
    out = run(f"import subprocess\nsubprocess.run(['sh', '-c', 'echo pwned > {target}'])\n")
    assert not out.passed and "not allowed" in out.output and not target.exists()


def test_filling_the_disk_is_stopped() -> None:
    out = run("f = open('big', 'wb')\nwhile True:\n    f.write(b'x' * 2**20)\n",
              sandbox.Limits(wall_s=10, file_mb=8))
    assert not out.passed and ("File too large" in out.output or out.reason == "killed")


def test_memory_and_time_are_bounded() -> None:
    assert run("x = bytearray(4 * 2**30)\n").reason == "failed"
    out = run("while True:\n    pass\n", sandbox.Limits(wall_s=1, cpu_s=5))
    assert out.reason == "timeout" and out.seconds < 3


def test_a_process_left_behind_is_killed() -> None:
    # even if the audit hook were gone, the session is killed when the task ends
    before = _processes()
    run("import time\ntime.sleep(0.1)\n")
    assert _processes() <= before + 1


@pytest.mark.skipif(subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip()
                    != "0", reason="runs as root only")
def test_as_root_the_code_runs_as_nobody() -> None:
    if MODE == "strong" or "+nobody" not in sandbox.isolation(allow_weak=True):
        pytest.skip("no interpreter the unprivileged user can run")
    out = run("import os\nassert os.getuid() == 65534, os.getuid()\n")
    assert out.passed


def test_runs_from_an_interpreter_under_tmp(tmp_path: Path) -> None:
    """A checkout under /tmp (CI clones there) has its venv there too; /tmp is emptied inside
    bubblewrap, so the interpreter's tree must come back in."""
    if MODE == "weak":
        pytest.skip("the weak sandbox does not empty /tmp")
    venv = Path("/tmp") / f"rigscope-venv-{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], check=True)
        src = Path(__file__).resolve().parents[1] / "src"
        probe = ("import sys; sys.path.insert(0, sys.argv[1]);"
                 "from rigscope.evaluation import sandbox;"
                 "out = sandbox.run('assert 1 + 1 == 2', allow_weak=sys.argv[2] == 'weak');"
                 "print(out.passed, out.output)")
        env = {**os.environ, "PYTHONPATH": ""}
        res = subprocess.run([str(venv / "bin" / "python"), "-c", probe, str(src), MODE],
                             capture_output=True, text=True, env=env, timeout=60)
        assert res.stdout.startswith("True"), res.stdout + res.stderr
    finally:
        subprocess.run(["rm", "-rf", str(venv)], check=False)
