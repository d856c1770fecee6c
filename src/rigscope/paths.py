"""Where rigscope keeps user state: RIGSCOPE_DATA_DIR, else the platform's user data dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def data_dir() -> Path:
    """The user data directory (created on first use by whoever writes to it)."""
    env = os.environ.get("RIGSCOPE_DATA_DIR")
    if env:
        return Path(env)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "rigscope"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "rigscope"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "rigscope"
