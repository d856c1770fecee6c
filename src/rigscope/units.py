"""Parsing and formatting of sizes and token counts."""

from __future__ import annotations

import re

from rigscope import validate
from rigscope.errors import RigscopeError

GIB = 1024**3  # memory sizes: llama.cpp, nvidia-smi and RAM ("64 GB" of RAM is 64 GiB)
MIB = 1024**2
GB = 10**9  # rates and file sizes vendors quote in decimal units (GB/s, "4.9 GB" files)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gib|gb|g|mib|mb|m|tib|tb|t)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'64gb' -> bytes. Memory sizes follow the marketing convention (GB means GiB for RAM)."""
    m = _SIZE.match(text)
    if not m:
        raise RigscopeError(f"invalid size {text!r}; use e.g. 64gb, 512mb")
    value = float(m.group(1))
    unit = (m.group(2) or "gb").lower()[0]
    scale = {"m": MIB, "g": GIB, "t": 1024 * GIB}[unit]
    if value <= 0:
        raise RigscopeError(f"invalid size {text!r}; must be positive")
    return int(value * scale)


def parse_tokens(text: str | int, name: str = "token count") -> int:
    """'8k' -> 8192, '32768' -> 32768: positive, at most validate.MAX_TOKENS."""
    return validate.tokens(text, name)


def format_bytes(n: float) -> str:
    """Bytes as MiB or GiB, the units llama.cpp and nvidia-smi print."""
    if abs(n) >= GIB:
        return f"{n / GIB:.2f} GiB"
    return f"{n / MIB:.1f} MiB"
