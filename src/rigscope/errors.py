"""The one user-facing error type."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RigscopeError(Exception):
    """An error the user can act on; the CLI prints it in one line.

    exit_code 2 means bad input (unknown id, malformed file, invalid option); 1 anything else.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class NotFound(RigscopeError):
    """An id that names nothing stored (a run, an eval): bad input, and a 404 on the web."""


def unknown(kind: str, value: str, choices: Iterable[str]) -> RigscopeError:
    """An 'unknown X' error naming the nearest valid choices (or a few of them)."""
    options = sorted(set(choices))
    near = difflib.get_close_matches(value.lower(), [o.lower() for o in options], n=4, cutoff=0.5)
    lookup = {o.lower(): o for o in options}
    if near:
        hint = "did you mean: " + ", ".join(lookup[n] for n in near)
    else:
        shown = options if len(options) <= 12 else options[:12] + ["…"]
        hint = "valid: " + ", ".join(shown)
    return RigscopeError(f"unknown {kind} {value!r}; {hint}")
