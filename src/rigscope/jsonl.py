"""Reading the user's JSONL files: one JSON object a line, blank lines skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rigscope.errors import RigscopeError


def read_objects(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a one-line error names the bad line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RigscopeError(f"cannot read {what} {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise RigscopeError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return parse_objects(text, str(path), what)


def parse_objects(text: str, source: str, what: str) -> list[tuple[int, dict[str, Any]]]:
    """read_objects on text already read; `source` names it in the errors."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_constant=refuse_constant)
        except ValueError as e:
            raise RigscopeError(f"{source}:{n}: not JSON ({str(e)[:80]})") from None
        if not isinstance(obj, dict):
            raise RigscopeError(f"{source}:{n}: expected a JSON object")
        out.append((n, obj))
    if not out:
        raise RigscopeError(f"{source}: no {what} entries")
    return out


def refuse_constant(name: str) -> None:
    """json.loads' parse_constant: NaN and Infinity are not JSON numbers; refuse them."""
    raise ValueError(f"{name} is not a JSON number")
