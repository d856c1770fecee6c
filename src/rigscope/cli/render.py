"""Human-readable tables (rich) for estimates. stdout only; no logic beyond layout."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from rigscope.specs import DeviceUse, MemoryEstimate
from rigscope.units import format_bytes


def verdict(est: MemoryEstimate) -> str:
    if est.fits:
        return "[bold green]fits[/]: everything on the " + (
            "accelerators" if est.rig.devices else "CPU"
        )
    if est.runs:
        return (f"[bold yellow]spills[/]: {est.offloaded_layers} of {est.model.layers} layers "
                f"({format_bytes(est.offloaded_bytes)}) run from system RAM")
    return "[bold red]cannot run[/]: not enough memory even with offloading"


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f}"


def _row(t: Table, d: DeviceUse, name: str) -> None:
    pct = f"{d.used_bytes / d.capacity_bytes:.0%}" if d.capacity_bytes else "-"
    if not d.fits:
        pct = f"[red]{pct}[/]"
    t.add_row(name, str(d.layers), _gib(d.weights_bytes), _gib(d.kv_bytes),
              _gib(d.compute_bytes), _gib(d.overhead_bytes), _gib(d.used_bytes),
              _gib(d.capacity_bytes), pct)


def print_estimate(est: MemoryEstimate, console: Console | None = None) -> None:
    con = console or Console()
    m = est.model
    title = (f"{m.id} · {est.quant} · {est.engine} · context {est.context:,} · "
             f"batch {est.batch} · KV {est.kv_type} · rig {est.rig.id}")
    t = Table(title=title, title_justify="left", caption="sizes in GiB", caption_justify="left")
    t.add_column("device", no_wrap=True)
    for col in ("layers", "weights", "KV", "compute", "other", "used", "usable", "use"):
        t.add_column(col, justify="right")
    for d in est.devices:
        _row(t, d, d.id)
    if est.host.used_bytes:
        _row(t, est.host, "host RAM")
    t.add_section()
    t.add_row("total", str(m.layers), _gib(est.weights_bytes), _gib(est.kv_cache_bytes),
              _gib(est.compute_bytes), _gib(est.overhead_bytes), _gib(est.total_bytes), "", "")
    con.print(t)
    con.print(verdict(est))
    if est.max_sequences is not None:
        con.print(f"KV pool holds {est.max_sequences} sequences of {est.context:,} tokens")
    con.print("[dim]basis:[/]")
    for line in est.basis:
        con.print(f"  [dim]-[/] {line}", highlight=False)
