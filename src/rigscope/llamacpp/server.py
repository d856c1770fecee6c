"""llama-server as a supervised child process.

The process writes its log to a file. When it dies, `death()` says how (exit code or signal,
in words), shows the last lines of its log and where the log is, so the caller can say what
was being asked of it at the time ("... exited with SIGILL (illegal instruction) during a
1,536-token prompt").
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from rigscope.errors import RigscopeError
from rigscope.llamacpp.locate import binary

SIGNAL_WORDS = {
    "SIGILL": "illegal instruction: the build uses an instruction this CPU refuses",
    "SIGSEGV": "segmentation fault", "SIGBUS": "bus error", "SIGFPE": "arithmetic error",
    "SIGABRT": "aborted", "SIGKILL": "killed, often by the kernel's out-of-memory killer",
    "SIGTERM": "terminated",
}
LOG_TAIL_LINES = 8


@dataclass(frozen=True)
class ServerSettings:
    """llama-server's options that decide its memory and speed (None: the server's default)."""

    model: Path
    alias: str = "model"
    context: int = 4096  # -c: KV cells in all (shared by the slots: --kv-unified)
    parallel: int = 1  # -np: slots decoding together
    threads: int | None = None  # -t
    flash_attn: str = "auto"  # -fa on|off|auto
    cache_type: str = "f16"  # -ctk/-ctv
    batch: int | None = None  # -b
    ubatch: int | None = None  # -ub
    repack: bool = True  # False: --no-repack
    extra: tuple[str, ...] = field(default=())

    def args(self, port: int) -> list[str]:
        a = ["-m", str(self.model), "--alias", self.alias, "--host", "127.0.0.1",
             "--port", str(port), "-c", str(self.context), "-np", str(self.parallel),
             "--kv-unified", "-fa", self.flash_attn, "-ctk", self.cache_type, "-ctv",
             self.cache_type, "--metrics", "--slots", "--no-webui", "-lv", "4"]
        for flag, value in (("-t", self.threads), ("-b", self.batch), ("-ub", self.ubatch)):
            if value is not None:
                a += [flag, str(value)]
        if not self.repack:
            a.append("--no-repack")
        return a + list(self.extra)


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def describe_exit(returncode: int) -> str:
    """'exited with code 1' or 'exited with SIGILL (illegal instruction: ...)'."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            return f"was killed by signal {-returncode}"
        words = SIGNAL_WORDS.get(name)
        return f"exited with {name}" + (f" ({words})" if words else "")
    return f"exited with code {returncode}"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if ln.strip()][-lines:]


class LlamaServer:
    """Start llama-server, wait until it answers, watch it, stop it."""

    def __init__(self, settings: ServerSettings, log: Path, program: str = "llama-server",
                 start_timeout: float = 120.0) -> None:
        self.settings = settings
        self.log = log
        self.program = program
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        exe = binary(self.program)
        for _attempt in range(3):  # another process may take the port between probe and bind
            port = free_port()
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with self.log.open("wb") as out:
                self.proc = subprocess.Popen([str(exe), *self.settings.args(port)],
                                             stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready():
                return self.url
            if not any("bind" in ln.lower() for ln in log_tail(self.log, 20)):
                break
        raise RigscopeError(self.death("while loading the model") or
                            f"llama-server did not answer within {self.start_timeout:g} s; "
                            f"log: {self.log}", exit_code=1)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.returncode() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        return False

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def death(self, during: str | None = None) -> str | None:
        """None while it runs; else one message: how it exited, during what, its log."""
        code = self.returncode()
        if code is None:
            return None
        tail = log_tail(self.log)
        msg = f"llama.cpp server {describe_exit(code)}"
        if during:
            msg += f" {during}"
        if tail:
            msg += "; last lines of its log: " + " | ".join(tail)
        return msg + f"; log: {self.log}"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def run_program(program: str, args: Sequence[str], timeout: float = 600,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one of the built programs to completion; its death is an error naming how."""
    exe = binary(program)
    try:
        out = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout,
                             env=None if env is None else os.environ | env)
    except subprocess.TimeoutExpired:
        raise RigscopeError(f"{program} did not finish within {timeout:g} s",
                            exit_code=1) from None
    if out.returncode:
        tail = [ln for ln in (out.stderr or out.stdout).splitlines() if ln.strip()]
        raise RigscopeError(f"{program} {describe_exit(out.returncode)}: "
                            + " | ".join(tail[-LOG_TAIL_LINES:]), exit_code=1)
    return out
