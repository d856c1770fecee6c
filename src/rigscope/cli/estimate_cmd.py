"""rigscope estimate / max-context."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from rigscope.cli.options import (
    Tokens,
    echo_json,
    model_options,
    offload_options,
    rig_options,
)

if TYPE_CHECKING:
    from rigscope.specs import ModelSpec


@click.command("estimate")
@click.argument("model")
@model_options
@offload_options
@click.option("--context", default=None, type=Tokens(),
              help="Tokens of KV cache per sequence (8192, 8k, 32k; default: llama.cpp the "
                   "model's trained context, reduced by --fit as llama-server does; Ollama "
                   "4k/32k/256k by GPU memory; other engines 4096).")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(1, 65536),
              help="Parallel sequences.")
@click.option("--prompt-tokens", default=512, show_default=True, type=click.IntRange(min=0),
              help="Prompt length for prefill and TTFT.")
@click.option("--output-tokens", default=128, show_default=True, type=click.IntRange(min=1),
              help="Tokens generated per request.")
@click.option("--depth", default="0", show_default=True, type=Tokens(low=0),
              help="Tokens already in the cache before the prompt (llama-bench -d): "
                   "prefill and decode at that depth.")
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
def estimate_cmd(model: str, as_json: bool, **options: object) -> None:
    """Memory and speed of MODEL (catalog id, Hub repo, config.json, model dir or .gguf)."""
    from rigscope.answers import EstimateQuery, estimate_answer

    spec, est, speed = estimate_answer(EstimateQuery.from_options(model=model, **options))
    warn_assumptions(spec)
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
@offload_options
@click.option("--batch", "batches", default="1,2,4,8,16", show_default=True,
              help="Parallel sequences to try, comma-separated.")
@rig_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def max_context_cmd(model: str, batches: str, as_json: bool, **options: object) -> None:
    """Largest context that fits, for each number of parallel sequences."""
    from rigscope.answers import ModelQuery, batches_of, max_context_answer

    spec, rig, limits = max_context_answer(ModelQuery.from_options(model=model, **options),
                                           batches_of(batches))
    warn_assumptions(spec)
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
