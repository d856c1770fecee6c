"""Tables and JSON for plans."""

from __future__ import annotations

import re

from rich import box
from rich.console import Console
from rich.table import Table

from rigscope.cli.render import table_that_fits
from rigscope.plan import Option, Plan, Tiers, Workload


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _title(w: Workload) -> str:
    parts = [", ".join(m.id for m in w.models), f"context {w.context:,}", f"{w.users} user(s)",
             f"prompt {w.prompt_tokens:,} -> {w.output_tokens:,} tokens"]
    if w.profile:
        parts.append(f"profile {w.profile}")
    for label, v in (("min tok/s", w.min_tps), ("max TTFT s", w.max_ttft),
                     ("budget $", w.budget), ("max W", w.max_watts)):
        if v is not None:
            parts.append(f"{label} {v:g}")
    parts.append(f"quant {w.quant}" if w.quant else f"quant >= {w.min_quant}")
    return " · ".join(parts)


def _price_notes(o: Option) -> tuple[str, ...]:
    p = o.price
    if p is None or p.kind == "owned":
        return ()
    what = p.machine or (f"GPUs ${p.gpus_usd:,.0f} ({p.kind} {p.as_of}) + {p.platform} "
                         f"${p.platform_usd:,.0f}" if p.platform else f"{p.kind} {p.as_of}")
    out = [what]
    if o.break_even_hours is not None:
        out.append(f"buying beats renting after {o.break_even_hours:,.0f} h of use")
    return tuple(out)


def print_plan(plan: Plan, top: int, console: Console | None = None) -> None:
    con = console or Console()
    users = plan.workload.users
    cols = ["#", "rig", "quant", "engine", "tok/s" if users == 1 else "tok/s/user"]
    cols += ["all tok/s"] if users > 1 else []
    cols += ["TTFT s", "price", "$/tok/s", "rent $/h", "W", "tok/J"]
    multi_model = len(plan.workload.models) > 1
    notes: dict[str, list[int]] = {}
    cells = []
    for i, o in enumerate(plan.options[:top], 1):
        s = o.speed
        row = [str(i), o.rig.id + ("*" if o.pareto else "")
               + (f" ({o.model.id})" if multi_model else ""), o.memory.quant.name,
               o.memory.engine.name, f"{s.decode_tokens_per_s:,.1f}"]
        row += [f"{s.aggregate_tokens_per_s:,.0f}"] if users > 1 else []
        row += [f"{s.ttft_s:,.2f}", f"${o.price.total_usd:,.0f}" if o.price else "-",
                _num(o.usd_per_tps, ",.0f"), _num(o.rent_usd_per_hour, ",.2f"),
                _num(o.watts, ".0f"), _num(o.tokens_per_joule, ".3f")]
        cells.append(row)
        for n in _price_notes(o) + o.notes:
            notes.setdefault(n, []).append(i)
    t = table_that_fits(
        lambda: Table(title=_title(plan.workload), title_justify="left",
                      caption_justify="left", caption="* Pareto-optimal on price vs aggregate "
                      "tok/s", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0)),
        cols, cells, con.width, drop=("tok/J", "W", "rent $/h", "$/tok/s", "TTFT s"))
    con.print(t)
    for n, rows in notes.items():
        con.print(f"  [dim]#{','.join(map(str, rows))}:[/] {n}", highlight=False)
    kinds = sorted({o.price.kind for o in plan.options[:top] if o.price})
    w = plan.workload
    con.print(f"{len(plan.options)} rigs fit ({plan.evaluated} configurations estimated); "
              f"prices: {', '.join(kinds) or 'none known'} (--json gives each record's source); "
              f"power at ${w.kwh_usd:g}/kWh, {w.hours_per_day:g} h/day")
    pareto = [o for o in plan.options if o.pareto and o.price]
    if pareto:
        con.print("Pareto front (price -> aggregate tok/s): " + ", ".join(
            f"{o.rig.id} {o.memory.quant.name} ${o.price.total_usd:,.0f} -> "
            f"{o.speed.aggregate_tokens_per_s:,.0f}" for o in pareto if o.price))
    reasons: dict[str, int] = {}
    for r in plan.rejected:
        key = reason_key(r.reason)
        reasons[key] = reasons.get(key, 0) + 1
    if reasons:
        con.print(f"{len(plan.rejected)} rejected (--json lists each with its reason): "
                  + "; ".join(f"{n} {k}" for k, n in sorted(reasons.items(), key=lambda x: -x[1])))


def reason_key(reason: str) -> str:
    """Like reasons grouped: the numbers in them (not the digits of a name such as fp8 or
    Q4_K_M, nor a dot in llama.cpp) read N."""
    head = reason.split(":")[0].split(" at ")[0]
    return re.sub(r"(?<![A-Za-z_\d])\d[\d,]*(?:\.\d+)?", "N", head)


def print_tiers(tiers: Tiers, console: Console | None = None) -> None:
    con = console or Console()
    w, result = tiers.workload, tiers.by_context
    t = Table(title=f"{', '.join(m.id for m in w.models)} · {w.users} user(s): cheapest rigs "
                    "with 10% memory to spare, by context", title_justify="left")
    for col in ("context", "rig", "quant", "tok/s/user", "price", "memory used"):
        t.add_column(col, justify="left" if col in ("rig", "quant") else "right")
    for ctx, opts in result.items():
        if not opts:
            t.add_row(f"{ctx:,}", "nothing fits", "", "", "", "")
        for i, o in enumerate(opts):
            t.add_row(f"{ctx:,}" if i == 0 else "", o.rig.id, o.memory.quant.name,
                      f"{o.speed.decode_tokens_per_s:,.1f}",
                      f"${o.price.total_usd:,.0f}" if o.price else "-",
                      f"{o.memory.total_bytes / 2**30:,.1f} GiB")
        t.add_section()
    con.print(t)
