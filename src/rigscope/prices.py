"""Prices for plans: catalog prices (with kind and date) overridden by the user's."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rigscope.catalog import gpus
from rigscope.errors import RigscopeError
from rigscope.paths import data_dir


@dataclass(frozen=True)
class Price:
    usd: float
    label: str  # where it comes from: "launch MSRP 2022-10", "user price file", "--price"


def load_price_file(path: Path) -> dict[str, float]:
    """A TOML or JSON table {accelerator id: USD}."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except FileNotFoundError:
        raise RigscopeError(f"price file not found: {path}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise RigscopeError(f"{path}: malformed price file ({e})") from e
    out = {}
    for key, value in raw.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise RigscopeError(f"{path}: price of {key!r} must be a positive number of USD")
        out[key.lower()] = float(value)
    return out


def parse_price_options(options: Sequence[str]) -> dict[str, float]:
    """--price ID=USD, repeatable."""
    out = {}
    for opt in options:
        key, sep, value = opt.partition("=")
        try:
            usd = float(value)
        except ValueError:
            usd = -1
        if not sep or usd <= 0:
            raise RigscopeError(f"invalid --price {opt!r}; use ID=USD, e.g. rtx-3090=750")
        out[key.strip().lower()] = usd
    return out


def price_table(options: Sequence[str] = (), file: Path | None = None) -> dict[str, Price]:
    """Catalog prices, then the user's price file in the data dir, --prices FILE, --price."""
    table = {
        g.id: Price(g.price_usd, f"{g.price_kind} {g.price_date}")
        for g in gpus().values() if g.price_usd
    }
    default_file = data_dir() / "prices.toml"
    for path, label in ((default_file if default_file.exists() else None, "user price file"),
                        (file, f"price file {file}")):
        if path is not None:
            table |= {k: Price(v, label) for k, v in load_price_file(path).items()}
    table |= {k: Price(v, "--price") for k, v in parse_price_options(options).items()}
    return table
