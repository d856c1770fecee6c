"""What a whole rig costs to buy, power and rent: GPUs plus the platform that holds them (a
tier by GPU count and link class), its PSU and circuit, watts while generating, and the
hours of use at which buying beats renting. Pure: prices come in as a table."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from functools import cache

from rigscope.catalog import PlatformEntry, accelerator_file, gpus, price_book
from rigscope.prices import Price
from rigscope.specs import Accelerator, Rig

HOST_W = 150.0  # a GPU box's CPU, board, disks and fans while generating (PSU sizing rule)
CIRCUIT_W = 1800.0  # a US 15 A / 120 V circuit (continuous loads: 80%, 1,440 W)
PSU_HEADROOM = 1.5  # PSU rule of thumb: 1.5x the summed rated draw (locallmgear.com)
DEFAULT_KWH_USD = 0.17  # assumed: about the 2025-26 US residential average
DEFAULT_HOURS_PER_DAY = 8.0


@dataclass(frozen=True)
class RigCost:
    total_usd: float
    gpus_usd: float
    platform_usd: float
    kind: str  # of the GPUs' price (the platform is a street figure)
    as_of: str
    source: str
    machine: str | None  # Apple (or DGX Spark): the machine this price buys
    platform: str | None  # the platform tier's name
    psu_w: float | None


def platforms(n_gpus: int) -> list[PlatformEntry]:
    """The platform tiers that hold n GPUs (one for 1-2; a board and a frame for 3-8)."""
    return [p for p in price_book().platform if p.gpus[0] <= n_gpus <= p.gpus[1]]


def platform_for(rig: Rig) -> PlatformEntry | None:
    """The tier a discrete-GPU rig sits on: its link class picks among those for its count."""
    if not rig.devices or rig.unified or _whole_machine(rig) or server_gpus(rig):
        return None
    tiers = platforms(len(rig.devices))
    return next((p for p in tiers if rig.links in (None, p.links)), None)


def server_gpus(rig: Rig) -> bool:
    """Datacenter GPUs (HBM; SXM or OAM modules, or passively cooled cards): they go into
    servers the price book has no sourced figure for, so only the GPUs are priced."""
    return bool(rig.devices) and rig.devices[0].hw_class == "hbm"


def _whole_machine(rig: Rig) -> bool:
    return rig.devices[0].hw_class == "lpddr"  # GB10: sold as a complete DGX Spark


def psu_watts(rig: Rig) -> float | None:
    """PSU capacity the rule asks for: 1.5x (cards' rated draw + the host), in 50 W steps."""
    if not rig.devices or rig.unified or any(d.tdp_w is None for d in rig.devices):
        return None
    need = PSU_HEADROOM * (sum(d.tdp_w or 0 for d in rig.devices) + HOST_W)
    return float(-(-need // 50) * 50)


def rig_cost(rig: Rig, prices: dict[str, Price]) -> RigCost | None:
    """Price of the whole rig, or None when a part has no price."""
    if rig.local:
        return RigCost(0.0, 0.0, 0.0, "owned", "", "this machine (owned)", None, None, None)
    if not rig.devices:
        p = prices.get(rig.id)
        return RigCost(p.usd, 0.0, p.usd, p.kind, p.as_of, p.source, None, None, None) if p \
            else None
    each = [prices.get(d.id) for d in rig.devices]
    if any(p is None for p in each):
        return None
    first = each[0]
    assert first is not None
    gpu_usd = sum(p.usd for p in each if p)
    plat = platform_for(rig)
    plat_usd = plat.amount if plat else 0.0
    source = first.source + (f"; platform: {plat.name} (${plat_usd:,.0f}, {plat.source})"
                             if plat else "")
    psu = max(plat.psu_w, psu_watts(rig) or 0) if plat else None
    return RigCost(gpu_usd + plat_usd, gpu_usd, plat_usd, first.kind, first.as_of, source,
                   first.machine, plat.name if plat else None, psu)


@cache
def _measured() -> dict[str, float]:
    return {p.id: p.watts for p in price_book().power}


@cache
def tdp_shares() -> tuple[float, float]:
    """Measured watts while generating over rated TDP, median: (discrete GPUs, Apple)."""
    power, g, fams = price_book().power, gpus(), accelerator_file().apple
    cards = [p.watts / (g[p.id].tdp_w or 1) for p in power if p.id in g and p.scope == "card"]
    macs = [p.watts / fams[p.id].tdp_w for p in power if p.id in fams]
    return statistics.median(cards), statistics.median(macs)


def device_watts(d: Accelerator) -> float | None:
    """Watts one device draws while generating: measured, else the median measured share
    of TDP (None when the TDP is unknown)."""
    m = _measured()
    key = d.id if d.native != "metal" else d.id.split(":")[0].rsplit("-", 1)[0]
    if key in m:
        return m[key]
    if d.tdp_w is None:
        return None
    return d.tdp_w * tdp_shares()[1 if d.native == "metal" else 0]


def rig_watts(rig: Rig) -> float | None:
    """Watts while generating: the devices (measured, else a fitted share of TDP) plus the
    host of a GPU box; an Apple machine's figure is its own."""
    if not rig.devices:
        return None
    ws = [device_watts(d) for d in rig.devices]
    if any(w is None for w in ws):
        return None
    total = sum(w for w in ws if w is not None)
    return total if rig.unified or _whole_machine(rig) else total + HOST_W


def rent_per_hour(rig: Rig, on_demand: bool = True) -> float | None:
    """USD per hour to rent the same GPUs (None for Apple, CPU boxes and unrented cards)."""
    if not rig.devices or rig.unified:
        return None
    rates = {r.id: (r.on_demand if on_demand else r.spot) for r in price_book().rent}
    each = [rates.get(d.id) for d in rig.devices]
    if any(r is None for r in each):
        return None
    return sum(r for r in each if r)


def break_even_hours(price_usd: float, rent_usd_h: float | None, watts: float | None,
                     kwh_usd: float) -> float | None:
    """Hours of use after which owning costs less than renting (power paid by the owner)."""
    if rent_usd_h is None or price_usd <= 0:
        return None
    saved = rent_usd_h - (watts or 0) / 1000 * kwh_usd
    return price_usd / saved if saved > 0 else None


def monthly_power_usd(watts: float | None, kwh_usd: float, hours_per_day: float) -> float | None:
    return None if watts is None else watts / 1000 * hours_per_day * 30 * kwh_usd


def circuit_note(rig: Rig) -> str | None:
    """A PSU sized past one 15 A / 120 V circuit needs 240 V, two circuits or power limits."""
    psu = psu_watts(rig)
    if psu is None or psu < CIRCUIT_W:
        return None
    return (f"{psu:,.0f} W of PSU by the 1.5x rule: more than a US 15 A/120 V circuit; use 240 V "
            "or two circuits, or cap each card (a 3090 at 230-280 W loses under 10%)")
