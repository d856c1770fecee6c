"""rigscope system: what this machine has."""

from __future__ import annotations

import click


@click.command("system")
@click.option("--refresh", is_flag=True, help="Measure RAM bandwidth and llama.cpp's speed "
              "on this CPU again (cached a week).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def system_cmd(refresh: bool, as_json: bool) -> None:
    """Detect this machine's GPUs, CPU, RAM and RAM bandwidth (the default rig)."""
    from rigscope.cli.options import echo_json
    from rigscope.contract import system_json
    from rigscope.system import detect

    info = detect(refresh=refresh, engine=True)
    rig = info.rig()
    if as_json:
        echo_json(system_json(info))
        return
    click.echo(f"OS      {info.os}")
    click.echo(f"CPU     {info.cpu_model} ({info.cpu_cores} cores)")
    bw = f", {info.ram_gbs:.1f} GB/s read on one core" if info.ram_gbs else ""
    click.echo(f"RAM     {info.ram_bytes / 2**30:.1f} GiB{bw}")
    click.echo(f"llama.cpp CPU features: {', '.join(info.cpu_features) or 'none'} "
               f"({info.cpu_features_source})")
    if info.engine is not None:
        e = info.engine
        click.echo(f"llama.cpp on this CPU ({e.source}): {e.layer_s * 1e6:.0f} us per layer "
                   f"per token; decode GB/s / prefill GFLOPS by weight type: " + ", ".join(
                       f"{t} {d / 1e9:.1f}/{f / 1e9:.0f}" for t, d, f in e.kernels))
    for g in info.gpus:
        click.echo(f"GPU     {g.name}: {g.memory_bytes / 2**30:.1f} GiB, "
                   f"{g.usable_bytes / 2**30:.1f} GiB usable ({g.memory_source}; {g.backend}, "
                   f"catalog id {g.id})")
    for n in info.notes:
        click.echo(n)
    click.echo(f"default rig: {rig.id}")
