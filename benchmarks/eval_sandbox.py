"""What the sandbox adds per code task: every code-suite reference solution run in the sandbox
and with a bare interpreter, side by side.

    .venv/bin/python benchmarks/eval_sandbox.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from rigscope.evaluation import sandbox
from rigscope.evaluation.suites import load_suite


def main() -> None:
    tasks = load_suite("code").tasks
    bare, boxed = [], []
    for t in tasks:
        code = t.reference + "\n\n" + t.tests
        start = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", code], check=True,
                       capture_output=True)
        bare.append(time.perf_counter() - start)
        out = sandbox.run(code)
        assert out.passed, t.id
        boxed.append(out.seconds)
    added = [b - a for a, b in zip(bare, boxed, strict=True)]
    print(f"isolation: {sandbox.isolation()}")
    print(f"{len(tasks)} code tasks: bare interpreter median {statistics.median(bare) * 1e3:.1f} "
          f"ms, in the sandbox median {statistics.median(boxed) * 1e3:.1f} ms; the sandbox adds "
          f"median {statistics.median(added) * 1e3:.1f} ms, max {max(added) * 1e3:.1f} ms "
          "per task")


if __name__ == "__main__":
    main()
