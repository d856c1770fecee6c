"""One place where user-facing values are checked: numbers in a stated range, token counts,
URLs. The command line and any other front end call these; each error is a RigscopeError (exit
2) naming the option and the bad value."""

from __future__ import annotations

import ipaddress
import math
import re
from urllib.parse import urlsplit

from rigscope.errors import RigscopeError

# The longest context any model ships is Llama 4 Scout's 10M tokens; beyond 2^24 a count is
# a typo, not a workload.
MAX_TOKENS = 1 << 24


def number(value: float | str, name: str, *, low: float | None = None,
           high: float | None = None, low_open: bool = False, integer: bool = False) -> float:
    """A finite number in [low, high] (low excluded when low_open), whole when `integer`."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise RigscopeError(f"invalid {name} {value!r}; use a number") from None
    if not math.isfinite(x):
        raise RigscopeError(f"invalid {name} {value!r}; use a finite number")
    if low is not None and (x < low or (low_open and x == low)):
        raise RigscopeError(f"invalid {name} {value!r}; must be "
                            f"{'above' if low_open else 'at least'} {low:g}")
    if high is not None and x > high:
        raise RigscopeError(f"invalid {name} {value!r}; must be at most {high:g}")
    if integer and x != int(x):
        raise RigscopeError(f"invalid {name} {value!r}; use a whole number")
    return x


def tokens(text: str | int, name: str = "token count", *, low: int = 1,
           high: int = MAX_TOKENS) -> int:
    """'8k' -> 8192, '32768' -> 32768, between low and high."""
    if isinstance(text, int):
        n = text
    else:
        m = re.fullmatch(r"\s*(\d{1,12})\s*([kKmM])?\s*", text)
        if not m:
            raise RigscopeError(f"invalid {name} {text!r}; use e.g. 4096, 8k or 1m")
        n = int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2}[(m.group(2) or "").lower()]
    if n < low:
        raise RigscopeError(f"invalid {name} {text!r}; must be at least {low:,}")
    if n > high:
        raise RigscopeError(f"invalid {name} {text!r}; must be at most {high:,} "
                            f"({high // 1024**2}M tokens)")
    return n


def url(text: str, name: str = "URL") -> str:
    """An http(s) URL with a host: 'http://127.0.0.1:8080'."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as e:
        raise RigscopeError(f"invalid {name} {text!r}: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RigscopeError(f"invalid {name} {text!r}; use http(s)://HOST[:PORT], "
                            "e.g. http://127.0.0.1:8080")
    if port == 0:
        raise RigscopeError(f"invalid {name} {text!r}; port 0 is not a server's port")
    return text.strip()


def number_list(text: str, name: str, *, integer: bool = False,
                high: float | None = None) -> tuple[float, ...]:
    """'1,4,16' -> (1.0, 4.0, 16.0): each positive and finite (whole when `integer`)."""
    parts = [x.strip() for x in text.split(",") if x.strip()]
    if not parts:
        raise RigscopeError(f"invalid {name} {text!r}; use e.g. 1,4,16")
    out = []
    for part in parts:
        x = number(part, name, low=0, low_open=True, high=high)
        if integer and x != int(x):
            raise RigscopeError(f"invalid {name} {part!r}; use whole numbers, e.g. 1,4,16")
        out.append(x)
    return tuple(out)


def is_loopback(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (brackets allowed): reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False
