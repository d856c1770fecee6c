"""rigscope estimate / max-context."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from rigscope.cli.options import (
    Tokens,
    echo_json,
    flash,
    make_rig,
    model_options,
    rig_options,
)

if TYPE_CHECKING:
    from rigscope.specs import ModelSpec


@click.command("estimate")
@click.argument("model")
@model_options
@click.option("--context", default="4096", show_default=True, type=Tokens(),
              help="Tokens of KV cache per sequence (8192, 8k, 32k).")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(1, 65536),
              help="Parallel sequences.")
@click.option("--prompt-tokens", default=512, show_default=True, type=click.IntRange(min=0),
              help="Prompt length for prefill and TTFT.")
@click.option("--output-tokens", default=128, show_default=True, type=click.IntRange(min=1),
              help="Tokens generated per request.")
@click.option("--disk", default="nvme", show_default=True,
              type=click.Choice(["nvme", "sata-ssd", "hdd", "network"]),
              help="Where the model file is read from (load time).")
@click.option("--network", default="loopback", show_default=True,
              type=click.Choice(["loopback", "10gbe", "1gbe", "wifi"]),
              help="Link between client and server (TTFT, end-to-end).")
@rig_options
@click.option("--rig", "rig_name", help="A calibrated rig profile (rigscope calibrate): its "
              "hardware, unless --gpu/--cpu say otherwise, and its speed constants.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (the contract).")
def estimate_cmd(model: str, quant: str | None, engine: str, kv_type: str,
                 flash_attn: str | None, engine_version: str | None, repack: str,
                 outputs: str, context: int, batch: int,
                 prompt_tokens: int, output_tokens: int, disk: str, network: str,
                 gpus: tuple[str, ...], cpu: str | None, ram: str | None, cpu_isa: str | None,
                 rig_name: str | None, as_json: bool) -> None:
    """Memory and speed of MODEL (catalog id, Hub repo, config.json, model dir or .gguf)."""
    from rigscope.estimator import estimate
    from rigscope.estimator.speed import estimate_speed
    from rigscope.estimator.speed_params import DEFAULT
    from rigscope.sources import resolve_model

    params = DEFAULT
    if rig_name:
        from rigscope.calibration import profile_params, rig_args

        params, hardware = profile_params(rig_name)
        if not gpus and cpu is None:
            gpus, cpu = rig_args(hardware)
    rig = make_rig(gpus, cpu, ram, cpu_isa)
    spec = resolve_model(model, quant=quant)
    warn_assumptions(spec)
    est = estimate(spec, rig, quant=quant, engine=engine, context=context,
                   batch=batch, kv_type=kv_type, flash_attn=flash(flash_attn, engine_version),
                   repack=repack == "on", outputs=outputs)
    speed = estimate_speed(est, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                           engine_version=engine_version,
                           disk=disk, network=network, p=params) if est.runs else None
    if as_json:
        from rigscope.contract import estimate_json

        echo_json(estimate_json(est, speed))
    else:
        from rigscope.cli.render import print_estimate

        print_estimate(est, speed)


def warn_assumptions(spec: ModelSpec) -> None:
    """What reading the model had to assume (unknown model_type, cached Hub answers), on
    stderr, so that it is seen even when the output is JSON."""
    for warning in spec.warnings:
        click.echo(f"rigscope: warning: {warning}", err=True)


@click.command("max-context")
@click.argument("model")
@model_options
@click.option("--batch", "batches", default="1,2,4,8,16", show_default=True,
              help="Parallel sequences to try, comma-separated.")
@rig_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def max_context_cmd(model: str, quant: str | None, engine: str, kv_type: str,
                    flash_attn: str | None, engine_version: str | None, repack: str,
                    outputs: str, batches: str,
                    gpus: tuple[str, ...], cpu: str | None, ram: str | None,
                    cpu_isa: str | None, as_json: bool) -> None:
    """Largest context that fits, for each number of parallel sequences."""
    from rigscope.errors import RigscopeError
    from rigscope.estimator import max_context
    from rigscope.sources import resolve_model

    try:
        counts = [int(b) for b in batches.split(",") if b.strip()]
    except ValueError:
        raise RigscopeError(f"invalid --batch {batches!r}; use e.g. 1,2,4") from None
    if not counts or min(counts) <= 0:
        raise RigscopeError(f"invalid --batch {batches!r}; counts must be positive")
    rig = make_rig(gpus, cpu, ram, cpu_isa)
    spec = resolve_model(model, quant=quant)
    warn_assumptions(spec)
    limits = [(b, max_context(spec, rig, batch=b, quant=quant, engine=engine, kv_type=kv_type,
                              flash_attn=flash(flash_attn, engine_version),
                              repack=repack == "on",
                              outputs=outputs)) for b in counts]
    if as_json:
        from rigscope.contract import max_context_json

        echo_json(max_context_json(spec, rig, limits))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{spec.id} on {rig.id}: largest context that fits "
                    f"(trained: {spec.max_context})")
    t.add_column("parallel sequences", justify="right")
    t.add_column("max context per sequence", justify="right")
    for b, ctx in limits:
        t.add_row(str(b), f"{ctx:,}" if ctx else "does not fit")
    Console().print(t)
