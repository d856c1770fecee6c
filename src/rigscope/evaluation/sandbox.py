"""Run model-written code with its tests, isolated from the host. Fails closed.

The boundary is bubblewrap (`bwrap`): new namespaces (network, PID, IPC, user), the whole file
system read-only except the task's directory, an empty environment. Without it, model-written
code does not run, unless the caller allows a weaker sandbox (`--allow-weak-sandbox`): a new
network namespace (`unshare --net`) and, as root, an unprivileged user (nobody) that owns only
the task's directory.

Always, whichever of those holds: resource limits (CPU seconds, address space, file size,
processes, open files) set by the child itself before the code runs, a wall-clock timeout that
kills the whole process session, an empty environment, a private temporary directory, and a
Python audit hook that refuses sockets, process creation, ctypes and writes outside the task's
directory (a tripwire for honest mistakes, not a security boundary). `isolation()` names the
level in force; every result carries it, and reports show it.
"""

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rigscope.errors import RigscopeError

NOBODY = 65534
RUNNER = r'''
import os, resource, sys
MB = 2**20
for res, value in zip((resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_FSIZE,
                       resource.RLIMIT_NPROC, resource.RLIMIT_NOFILE, resource.RLIMIT_CORE),
                      map(int, sys.argv[1:7])):
    resource.setrlimit(res, (value, value))
ROOT = os.path.realpath(os.getcwd()) + os.sep
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
DENY = {"socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
        "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system", "os.exec",
        "os.kill", "os.killpg", "subprocess.Popen", "ctypes.dlopen", "ctypes.dlsym",
        "ctypes.cdata", "sys.addaudithook", "_posixsubprocess.fork_exec", "pty.spawn"}
PATHS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown",
         "os.link", "os.symlink", "os.truncate", "os.utime", "shutil.rmtree", "shutil.move"}
def inside(p):
    return isinstance(p, int) or os.path.realpath(os.fsdecode(p)).startswith(ROOT)
def hook(event, args):
    if event in DENY:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & WRITE)
        if writes and path is not None and not inside(path):
            raise PermissionError(f"sandbox: writing outside the task directory")
    elif event in PATHS and not all(inside(a) for a in args[:2] if isinstance(a, (str, bytes))):
        raise PermissionError(f"sandbox: {event} outside the task directory")
code = open("task.py", encoding="utf-8").read()
sys.addaudithook(hook)
namespace = {"__name__": "__sandbox__"}
exec(compile(code, "task.py", "exec"), namespace)
print("\n__SANDBOX_PASSED__")
'''


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 512
    file_mb: int = 16
    processes: int = 32
    open_files: int = 64


@dataclass(frozen=True)
class Outcome:
    passed: bool
    reason: str  # "passed", "failed", "timeout", "killed", "error"
    output: str  # the tail of stdout and stderr
    seconds: float
    isolation: str


@functools.cache
def _works(cmd: tuple[str, ...]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.cache
def _python_for_nobody() -> str | None:
    """An interpreter the unprivileged user can run (a venv under /root is out of reach)."""
    seen = []
    for p in (sys.executable, getattr(sys, "_base_executable", ""), shutil.which("python3"),
              "/usr/bin/python3", "/usr/local/bin/python3"):
        if p and p not in seen:
            seen.append(p)
            if _works(("unshare", "--net", "--setuid", str(NOBODY), "--setgid", str(NOBODY),
                       p, "-I", "-S", "-c", "pass")):
                return p
    return None


STRONG = "bubblewrap"


def bubblewrap_works() -> bool:
    return shutil.which("bwrap") is not None and _works(
        ("bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"))


def isolation(allow_weak: bool = False) -> str:
    """The isolation model-written code gets here, named; without bubblewrap an error unless
    a weaker sandbox is allowed."""
    if bubblewrap_works():
        return STRONG
    if not allow_weak:
        raise RigscopeError(
            "model-written code runs only under bubblewrap, which is not available here "
            "(Debian/Ubuntu: apt install bubblewrap; it also needs unprivileged user "
            "namespaces); --allow-weak-sandbox runs it with a network namespace, rlimits and "
            "an audit hook instead, which are not a security boundary", exit_code=1)
    netns = shutil.which("unshare") is not None and _works(("unshare", "--net", "true"))
    user = "+nobody" if netns and os.geteuid() == 0 and _python_for_nobody() else ""
    return ("netns" if netns else "no-sockets") + user + "+rlimits+audit"


def _command(level: str, workdir: Path, limits: Limits) -> list[str]:
    exe = (_python_for_nobody() if "+nobody" in level else None) or sys.executable
    mb = 2**20
    python = [exe, "-I", "-S", "-c", RUNNER, *map(str, (
        limits.cpu_s, limits.memory_mb * mb, limits.file_mb * mb, limits.processes,
        limits.open_files, 0))]
    if level == STRONG:
        # /tmp becomes empty inside; the interpreter's own tree is mounted again on top, for
        # an interpreter (or a checkout's venv) that lives under /tmp
        real = os.path.realpath(exe)
        python[0] = real
        home = os.path.realpath(sys.base_prefix)
        return ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind",
                "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                "--ro-bind", home, home, "--ro-bind", real, real, "--bind",
                str(workdir), str(workdir), "--chdir", str(workdir), "--clearenv", "--",
                *python]
    cmd = python
    if level.startswith("netns"):
        setuid = ["--setuid", str(NOBODY), "--setgid", str(NOBODY)] if "+nobody" in level \
            else []
        cmd = ["unshare", "--net", *setuid, "--", *python]
    return cmd


def run(code: str, limits: Limits = Limits(), allow_weak: bool = False) -> Outcome:
    """Run `code` (solution followed by its tests) in the sandbox; passed when it completes.
    Without bubblewrap this raises, unless allow_weak (see the module's docstring)."""
    level = isolation(allow_weak)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rigscope-sandbox-") as tmp:
        workdir = Path(tmp)
        (workdir / "task.py").write_text(code, encoding="utf-8")
        if "+nobody" in level:
            os.chown(workdir, NOBODY, NOBODY)
            os.chmod(workdir, 0o700)
            os.chmod(workdir / "task.py", 0o444)
        # a session of its own (for the kill below); the limits are set by the child itself
        proc = subprocess.Popen(_command(level, workdir, limits), cwd=workdir, env={},
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=limits.wall_s)
            reason = None
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, _ = proc.communicate()
            reason = "timeout"
        _kill_group(proc)  # anything the code left behind in its session
    text = out.decode("utf-8", "replace")[-4000:]
    passed = reason is None and proc.returncode == 0 and "__SANDBOX_PASSED__" in text
    if reason is None:
        reason = "passed" if passed else ("killed" if proc.returncode < 0 else "failed")
    return Outcome(passed=passed, reason=reason, output=text.replace("__SANDBOX_PASSED__", ""),
                   seconds=time.perf_counter() - start, isolation=level)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
