"""What a part costs: one record per price (kind, amount or range, as-of date, source), the
default kind chosen per part, and the user's own prices over all of it."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rigscope.catalog import gpus, price_book
from rigscope.errors import RigscopeError, unknown
from rigscope.paths import data_dir

PriceKind = Literal["used", "street", "msrp", "owned", "user"]
KINDS = ("used", "street", "msrp")  # the default: the first kind a part has a record of


@dataclass(frozen=True)
class Price:
    usd: float
    kind: PriceKind
    as_of: str = ""  # YYYY or YYYY-MM
    source: str = ""
    low: float | None = None
    high: float | None = None
    machine: str | None = None  # the price buys this whole machine (Apple, DGX Spark)

    @property
    def label(self) -> str:
        """One line: 'used 2026-05', 'launch MSRP 2020-09', '--price'."""
        if self.kind in ("owned", "user"):
            return self.source
        return f"{self.kind} {self.as_of}"


def load_price_file(path: Path) -> dict[str, float]:
    """A TOML or JSON table {accelerator id: USD}."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except FileNotFoundError:
        raise RigscopeError(f"price file not found: {path}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise RigscopeError(f"{path}: malformed price file ({e})") from e
    if not isinstance(raw, dict):
        raise RigscopeError(f"{path}: a price file is a table of id = USD")
    out = {}
    for key, value in raw.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
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
        if not sep or not key.strip() or not 0 < usd < 1e9:
            raise RigscopeError(f"invalid --price {opt!r}; use ID=USD, e.g. rtx-3090=750")
        out[key.strip().lower()] = usd
    return out


def catalog_prices() -> dict[str, list[Price]]:
    """Every price record by accelerator id ('rtx-3090', 'm3-ultra-60c:96gb')."""
    book = price_book()
    out: dict[str, list[Price]] = {}
    for gid, g in gpus().items():
        if g.price_usd:
            out.setdefault(gid, []).append(Price(
                g.price_usd, "msrp", g.price_date, f"{g.price_kind} (accelerators.toml)"))
    for r in book.gpu:
        out.setdefault(r.id, []).append(
            Price(r.amount, r.kind, r.as_of, r.source, r.low, r.high, r.machine))
    for a in book.apple:
        out.setdefault(f"{a.chip}:{a.memory_gb}gb", []).append(
            Price(a.amount, a.kind, a.as_of, a.source, a.low, a.high, a.machine))
    return out


def pick(records: Sequence[Price], kind: str | None = None) -> Price | None:
    """The record a plan uses: of the first kind in KINDS the part has (or of `kind`), the
    latest; among equally recent ones, the cheapest."""
    for k in (kind,) if kind else KINDS:
        same = [r for r in records if r.kind == k]
        if same:
            return min(same, key=lambda r: (_neg_date(r.as_of), r.usd))
    return None


def _neg_date(as_of: str) -> tuple[int, int]:
    year, _, month = as_of.partition("-")
    return (-int(year), -int(month or 0))


def price_table(options: Sequence[str] = (), file: Path | None = None,
                kind: str | None = None) -> dict[str, Price]:
    """Each part's price: the catalog's record of the default kind (or `kind`), then the
    user's price file in the data dir, --prices FILE, --price ID=USD."""
    if kind is not None and kind not in KINDS:
        raise unknown("price kind", kind, KINDS)
    table = {pid: p for pid, recs in catalog_prices().items() if (p := pick(recs, kind))}
    default_file = data_dir() / "prices.toml"
    for path, label in ((default_file if default_file.exists() else None, "user price file"),
                        (file, f"price file {file}")):
        if path is not None:
            table |= {k: Price(v, "user", source=label) for k, v in load_price_file(path).items()}
    table |= {k: Price(v, "user", source="--price")
              for k, v in parse_price_options(options).items()}
    return table

