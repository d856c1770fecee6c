"""Human-readable tables (rich) for estimates. stdout only; no logic beyond layout."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rigscope.estimator.launch import launch
from rigscope.specs import DeviceUse, MemoryEstimate, SpeedEstimate
from rigscope.units import format_bytes


def verdict(est: MemoryEstimate) -> str:
    if est.fits:
        return "[bold green]fits[/]: everything on the " + (
            "accelerators" if est.rig.devices else "CPU"
        )
    f = est.fit
    if est.runs and f is not None and f.cpu_expert_layers and not f.cpu_layers:
        return (f"[bold yellow]experts in RAM[/]: every layer's attention and dense weights "
                f"on the GPUs, expert tensors of {len(f.cpu_expert_layers)} of "
                f"{est.model.layers} layers ({format_bytes(est.offloaded_bytes)}) in system RAM")
    if est.runs:
        return (f"[bold yellow]spills[/]: {est.offloaded_layers} of {est.model.layers} layers "
                f"({format_bytes(est.offloaded_bytes)}) run from system RAM")
    return "[bold red]cannot run[/]: not enough memory even with offloading"


def _row(t: Table, d: DeviceUse, name: str, unit: int) -> None:
    pct = f"{d.used_bytes / d.capacity_bytes:.0%}" if d.capacity_bytes else "-"
    if not d.fits:
        pct = f"[red]{pct}[/]"
    n = _scaled(unit)
    t.add_row(name, str(d.layers), n(d.weights_bytes), n(d.kv_bytes), n(d.compute_bytes),
              n(d.overhead_bytes), n(d.used_bytes), n(d.capacity_bytes), pct)


def _scaled(unit: int) -> Callable[[int], str]:
    return lambda b: f"{b / unit:.2f}" if unit == 2**30 else f"{b / unit:.1f}"


def speed_lines(speed: SpeedEstimate, batch: int) -> list[str]:
    d, pp = speed.decode_band, speed.prefill_band
    per = " per sequence" if batch > 1 else ""
    lines = [
        f"decode  [bold]{speed.decode_tokens_per_s:,.1f}[/] tok/s{per} (+-{d:.0%})"
        + (f", {speed.aggregate_tokens_per_s:,.1f} tok/s for all {batch}" if batch > 1 else ""),
        f"prefill [bold]{speed.prefill_tokens_per_s:,.0f}[/] tok/s (+-{pp:.0%})",
        f"TTFT {speed.ttft_s:,.2f} s · end-to-end {speed.e2e_s:,.2f} s · "
        f"load {speed.load_time_s:,.1f} s",
    ]
    return lines


def print_estimate(
    est: MemoryEstimate, speed: SpeedEstimate | None = None, console: Console | None = None
) -> None:
    con = console or Console()
    m = est.model
    title = (f"{m.id} · {est.quant.name} · {est.engine.name} · context {est.context:,} · "
             f"batch {est.batch} · KV {est.kv_type} · rig {est.rig.id}")
    unit = 2**30 if est.total_bytes >= 2 * 2**30 else 2**20
    t = Table(title=title, title_justify="left", caption_justify="left",
              caption=f"sizes in {'GiB' if unit == 2**30 else 'MiB'}")
    t.add_column("device", no_wrap=True)
    for col in ("layers", "weights", "KV", "compute", "other", "used", "usable", "use"):
        t.add_column(col, justify="right")
    for d in est.devices:
        _row(t, d, d.id, unit)
    if est.host.used_bytes:
        _row(t, est.host, "host RAM", unit)
    t.add_section()
    n = _scaled(unit)
    t.add_row("total", str(m.layers), n(est.weights_bytes), n(est.kv_cache_bytes),
              n(est.compute_bytes), n(est.overhead_bytes), n(est.total_bytes), "", "")
    con.print(t)
    con.print(verdict(est))
    if est.max_sequences is not None:
        con.print(f"KV pool holds {est.max_sequences} sequences of {est.context:,} tokens")
    if speed is not None:
        for line in speed_lines(speed, est.batch):
            con.print(line)
    con.print("[dim]basis:[/]")
    for line in (*est.basis, *(speed.basis if speed else ())):
        con.print(f"  [dim]-[/] {line}", highlight=False)
    x = launch(est)
    for note in x.notes:
        con.print(Text.assemble(("note: ", "dim"), note))
    if x.llama_server and x.llama_server != x.command:
        con.print(Text.assemble(("llama-server: ", "dim"), x.llama_server), soft_wrap=True)
    con.print(Text.assemble(("launch: ", "bold"), x.command), soft_wrap=True)


def table_that_fits(make: Callable[[], Table], cols: list[str], rows: list[list[str]],
                    width: int, drop: tuple[str, ...],
                    left: tuple[str, ...] = ("rig", "quant", "engine"),
                    wrap: tuple[str, ...] = ()) -> Table:
    """The table with every column, less those in `drop` (first named, first dropped) until
    rich can lay it out in `width` without cutting a header or a cell; columns in `wrap`
    fold their text (each counted at WRAP_WIDTH when fitting)."""
    keep = list(range(len(cols)))
    measure = Console(width=10_000)

    def build(ks: list[int]) -> Table:
        t = make()
        for k in ks:
            folds = cols[k] in wrap
            t.add_column(cols[k], justify="left" if cols[k] in left else "right",
                         no_wrap=not folds, overflow="fold" if folds else "ellipsis",
                         min_width=min(len(cols[k]), WRAP_WIDTH) if folds else None)
        for row in rows:
            t.add_row(*(row[k] for k in ks))
        return t

    while True:
        fixed = [k for k in keep if cols[k] not in wrap]
        need = measure.measure(build(fixed)).maximum + WRAP_WIDTH * (len(keep) - len(fixed))
        name = next((n for n in drop if n in cols and cols.index(n) in keep), None)
        if need <= width or name is None:
            return build(keep)
        keep.remove(cols.index(name))


WRAP_WIDTH = 24  # what a folding column needs to stay readable
