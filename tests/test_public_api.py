"""The public API: every advertised name resolves, and importing rigscope loads nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import rigscope


def test_every_exported_name_resolves() -> None:
    assert sorted(rigscope.__all__) == rigscope.__all__
    for name in rigscope.__all__:
        assert getattr(rigscope, name) is not None, name


def test_import_is_light() -> None:
    code = ("import sys, rigscope; heavy = [m for m in ('fastapi', 'uvicorn', 'pydantic', "
            "'transformers', 'ray', 'matplotlib') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
