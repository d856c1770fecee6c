"""rigscope plan: recommend rigs and configurations for a workload."""

from __future__ import annotations

import click

from rigscope.cli.options import Number, Tokens

PROFILE_HELP = "chat | rag (long prompts, short answers) | code (Q8_0 floor) | agent (long context)"


@click.command("plan")
@click.argument("models", nargs=-1)
@click.option("--min-params", type=Number(0, 1e5, low_open=True),
              help="Any catalog model with at least this many "
              "billion parameters (instead of naming models).")
@click.option("--profile", type=click.Choice(["chat", "rag", "code", "agent"]), help=PROFILE_HELP)
@click.option("--context", type=Tokens(), help="Tokens of context per user (8192, 8k, 32k).")
@click.option("--users", type=click.IntRange(min=1), help="Concurrent users (sequences).")
@click.option("--prompt-tokens", type=click.IntRange(min=0), help="Prompt length (TTFT).")
@click.option("--output-tokens", type=click.IntRange(min=1), help="Answer length.")
@click.option("--min-tps", type=Number(0, 1e6), help="Decode tok/s each user must see (default 5, "
              "about reading speed; 0 for none).")
@click.option("--max-ttft", type=Number(0, 86400, low_open=True),
              help="Longest acceptable time to first token, s.")
@click.option("--budget", type=Number(0, 1e9, low_open=True), help="Most the rig may cost, USD.")
@click.option("--max-watts", type=Number(0, 1e6, low_open=True), help="Power cap for the rig, W.")
@click.option("--quant", help="Exactly this quantization.")
@click.option("--min-quant", help="Quality floor (default Q4_K_M; code: Q8_0).")
@click.option("--engine", "engines", multiple=True,
              help="llama.cpp, ollama, vllm, transformers, mlx (default: llama.cpp, vllm, mlx).")
@click.option("--max-gpus", "--gpu-count-max", "gpu_count_max", type=click.IntRange(1, 8),
              default=4, show_default=True, help="Most GPUs per rig (5-8 need a server board "
              "or a mining frame with several PSUs, priced as such).")
@click.option("--price-kind", type=click.Choice(["used", "street", "msrp"]),
              help="Price every part at this kind of price (default: used where a used "
              "market exists, else street, else MSRP).")
@click.option("--kwh-price", type=Number(0, 10), default=0.17, show_default=True,
              help="Electricity, USD per kWh (power cost and rent-vs-buy).")
@click.option("--hours", type=Number(0, 24), default=8.0, show_default=True,
              help="Hours a day of generating, for the monthly power cost.")
@click.option("--price", "price_opts", multiple=True, metavar="ID=USD",
              help="Override a price, e.g. rtx-3090=750 (repeatable).")
@click.option("--prices", "price_file", type=click.Path(dir_okay=False),
              help="TOML or JSON file of {id: USD}.")
@click.option("--gpu", "gpus", multiple=True, metavar="ID",
              help="Only this rig (repeatable: each value is one candidate, e.g. 2xrtx-3090).")
@click.option("--backend", type=click.Choice(["cuda", "rocm", "vulkan", "sycl", "metal"]),
              help="Only rigs whose GPUs run this llama.cpp backend, run by it.")
@click.option("--local/--no-local", default=True, show_default=True,
              help="Include this machine (rigscope system), priced as owned.")
@click.option("--rig", "rig_name", help="Use a calibrated rig profile's speed constants.")
@click.option("--tiers", is_flag=True, help="Cheapest rigs per context tier (4k..128k).")
@click.option("--all", "all_configs", is_flag=True, help="Every fitting quantization, not "
              "just each rig's best.")
@click.option("--top", type=click.IntRange(1, 10000), default=15, show_default=True,
              help="Rows in the table.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def plan_cmd(models: tuple[str, ...], tiers: bool, top: int, as_json: bool,
             **options: object) -> None:
    """Rank rigs (1-4 of each GPU with the platform that holds them, Apple machines, CPU
    boxes) for MODELS under a workload, priced as people pay (used, street, list)."""
    from rigscope import contract
    from rigscope.answers import PlanQuery, plan_answer
    from rigscope.cli import plan_render as render
    from rigscope.cli.options import echo_json
    from rigscope.plan import Plan

    result = plan_answer(PlanQuery.from_options(models=models, tiers=tiers, **options))
    if isinstance(result, Plan):
        if as_json:
            echo_json(contract.plan_json(result))
        else:
            render.print_plan(result, top)
    elif as_json:
        echo_json(contract.tiers_json(result))
    else:
        render.print_tiers(result)
