"""rigscope pick: what to run on this machine (or a named rig) for a use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from rigscope.cli.options import Number, Tokens, echo_json

if TYPE_CHECKING:
    from rich.console import Console

    from rigscope.pick import Picks

SHORT_FITS = {"experts in RAM": "exp RAM"}
USE_HELP = ("chat (instruction following) | code | reasoning | agent (tool use) | rag (long "
            "context)")


@click.command("pick")
@click.option("--use", type=click.Choice(["chat", "code", "reasoning", "agent", "rag"]),
              default="chat", show_default=True, help=USE_HELP)
@click.option("--context", type=Tokens(), help="Tokens of context per user (default by use: "
              "chat 8k, reasoning 16k, code and agent 32k, rag 64k).")
@click.option("--users", type=click.IntRange(1, 4096), default=1, show_default=True,
              help="Concurrent users (sequences).")
@click.option("--min-tps", type=Number(0, 1e6), help="Decode tok/s each user must see.")
@click.option("--max-ttft", type=Number(0, 86400, low_open=True),
              help="Longest acceptable time to first token, s.")
@click.option("--engine", default="llama.cpp", show_default=True,
              help="llama.cpp, ollama, vllm, sglang, mlx, transformers.")
@click.option("--evidence", type=click.Path(dir_okay=False),
              help="Your own scores, CSV with model, benchmark, score, source, date (they "
                   "override the shipped ones for the same model and benchmark).")
@click.option("--gpu", "gpus", multiple=True, metavar="ID",
              help="GPU id, repeatable (default: this machine).")
@click.option("--cpu", is_flag=False, flag_value="", default=None, metavar="[SIZE]",
              help="CPU only, optionally with a RAM size.")
@click.option("--ram", metavar="SIZE", help="Host RAM beside the GPUs.")
@click.option("--ram-bandwidth", type=Number(0, 100000, low_open=True), metavar="GBS",
              help="System RAM bandwidth, GB/s.")
@click.option("--backend", type=click.Choice(["cuda", "rocm", "vulkan", "sycl", "metal"]),
              help="The llama.cpp backend the GPUs run (default: the vendor's own).")
@click.option("--top", type=click.IntRange(1, 10000), default=15, show_default=True,
              help="Rows in the table.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def pick_cmd(top: int, as_json: bool, **options: object) -> None:
    """Which model to run here for a use: catalog models ranked by published benchmark
    scores for that use (quantization loss counted), then speed on this rig, each with
    how it fits, its speed and the command that starts it."""
    from rigscope.answers import PickQuery, pick_answer

    result = pick_answer(PickQuery.from_options(**options))
    if as_json:
        from rigscope.contract import pick_json

        echo_json(pick_json(result))
        return
    print_picks(result, top)


def print_picks(p: Picks, top: int, console: Console | None = None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from rigscope.catalog import quality
    from rigscope.cli.render import table_that_fits
    from rigscope.pick import SPEED_CLASS_NAMES

    con = console or Console()
    q = quality()
    cols = ["#", "model", "quant", "fits", "tok/s", "TTFT s", "speed", "evidence", "score"]
    cells = []
    for i, r in enumerate(p.rows[:top], start=1):
        e = r.evidence
        cells.append([
            str(i), r.name, r.memory.quant.name + ("*" if r.loss_tier == "large" else ""),
            SHORT_FITS.get(r.fits, r.fits), f"{r.speed.decode_tokens_per_s:.1f}",
            f"{r.speed.ttft_s:.2f}", SPEED_CLASS_NAMES[r.speed_class],
            q.benchmarks[e.benchmark].short if e else "no evidence",
            f"{e.score:g}" if e else "-"])
    con.print(table_that_fits(
        lambda: Table(title=f"{p.use} on {p.rig.id}: {p.context:,} tokens of context, "
                            f"{p.users} user(s), {p.engine}", title_justify="left"),
        cols, cells, con.width, drop=("speed", "TTFT s"),
        left=("model", "quant", "fits", "speed", "evidence")))
    oldest, newest = p.evidence_dates
    con.print(Text("ranked by speed class (fast >= 20 tok/s, usable >= 5), then by the "
                   "first of " + ", ".join(q.benchmarks[b].short for b in q.uses[p.use])
                   + " a model has, then score; * large measured quantization loss (KLD > "
                   f"{q.loss_tiers['noticeable']:g}); exp RAM: MoE experts in system RAM"))
    if newest:
        con.print(Text(f"evidence dated {oldest} to {newest}; sources: Artificial Analysis "
                       "(artificialanalysis.ai), LiveBench, LMArena, Aider polyglot; [card]: "
                       "vendor model-card numbers (docs/evidence.md)"))
    for i, r in enumerate(p.rows[:3], start=1):
        con.print(Text.assemble((f"launch #{i}: ", "bold"), r.launch.command), soft_wrap=True)
    if p.skipped:
        con.print(Text(f"{len(p.skipped)} models do not run here (--json lists why)",
                       style="dim"))
