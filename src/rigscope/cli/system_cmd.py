"""rigscope system: what this machine has."""

from __future__ import annotations

import click


@click.command("system")
@click.option("--refresh", is_flag=True, help="Measure RAM bandwidth again (cached a week).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def system_cmd(refresh: bool, as_json: bool) -> None:
    """Detect this machine's GPUs, CPU, RAM and RAM bandwidth (the default rig)."""
    from rigscope.system import detect

    info = detect(refresh=refresh)
    rig = info.rig()
    doc = {
        "os": info.os, "cpu": info.cpu_model, "cpu_cores": info.cpu_cores,
        "ram_bytes": info.ram_bytes, "ram_bandwidth_gbs": info.ram_gbs,
        "cpu_tflops": info.cpu_tflops, "rig": rig.id,
        "gpus": [{"id": g.id, "name": g.name, "backend": g.backend,
                  "memory_bytes": g.memory_bytes, "usable_bytes": g.usable_bytes,
                  "bandwidth_gbs": g.bandwidth_gbs} for g in info.gpus],
        "notes": list(info.notes),
    }
    if as_json:
        import json

        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"OS      {info.os}")
    click.echo(f"CPU     {info.cpu_model} ({info.cpu_cores} cores)")
    bw = f", {info.ram_gbs:.1f} GB/s read on one core" if info.ram_gbs else ""
    click.echo(f"RAM     {info.ram_bytes / 2**30:.1f} GiB{bw}")
    for g in info.gpus:
        click.echo(f"GPU     {g.name}: {g.memory_bytes / 2**30:.1f} GiB ({g.backend}, "
                   f"catalog id {g.id})")
    for n in info.notes:
        click.echo(n)
    click.echo(f"default rig: {rig.id}")
