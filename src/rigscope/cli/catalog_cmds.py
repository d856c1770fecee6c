"""rigscope gpus / models / quants: list the embedded catalogs."""

from __future__ import annotations

import click

from rigscope.cli.options import echo_json


def _print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*r)
    Console().print(t)


@click.command("gpus")
@click.option("--json", "as_json", is_flag=True)
def gpus_cmd(as_json: bool) -> None:
    """Accelerators in the catalog (Apple chips take :SIZEgb)."""
    from rigscope.catalog import apple_accelerator, apple_chips, apple_memory_options, gpus

    items = list(gpus().values())
    apple = {cid: apple_memory_options(cid) for cid in apple_chips()}
    if as_json:
        from rigscope.contract import gpus_json

        echo_json(gpus_json())
        return
    rows = [[g.id, g.name, g.backend, f"{g.memory_bytes / 2**30:.1f} GiB", f"{g.bandwidth_gbs:g}",
             f"{g.fp16_tflops:g}", f"{g.tdp_w:g}", f"${g.price_usd:,.0f}" if g.price_usd else "-"]
            for g in items]
    for cid, sizes in apple.items():
        a = apple_accelerator(cid)
        rows.append([f"{cid}:SIZE", a.name.rsplit(",", 1)[0], "metal",
                     "/".join(str(s) for s in sizes) + " GB", f"{a.bandwidth_gbs:g}",
                     f"{a.fp16_tflops:g}", f"{a.tdp_w:g}", "-"])
    rows.append(["cpu[:SIZE]", "CPU with system RAM", "cpu", "this machine's", "-", "-", "-", "-"])
    _print_table("Accelerators", ["id", "name", "backend", "memory", "GB/s", "FP16 TFLOPS",
                                  "W", "price"], rows)


@click.command("models")
@click.option("--json", "as_json", is_flag=True)
def models_cmd(as_json: bool) -> None:
    """Models in the catalog, with their Hugging Face aliases."""
    from rigscope.catalog import models

    entries = models()
    if as_json:
        from rigscope.contract import models_json

        echo_json(models_json())
        return
    _print_table("Models", ["id", "params", "layers", "context", "aliases"], [
        [k, f"{m.params / 1e9:.2f} B", str(m.layers), f"{m.max_context:,}", ", ".join(m.aliases)]
        for k, m in entries.items()])


@click.command("quants")
@click.option("--json", "as_json", is_flag=True)
def quants_cmd(as_json: bool) -> None:
    """Quantizations: llama.cpp GGUF mixes and other weight formats."""
    from rigscope.catalog import formats, gguf_mixes

    q = [*gguf_mixes().values(), *formats().values()]
    if as_json:
        from rigscope.contract import quants_json

        echo_json(quants_json())
        return
    _print_table("Quantizations", ["name", "kind", "engines", "about"], [
        [x.name, "GGUF mix" if x.kind == "gguf" else "format",
         "llama.cpp, ollama" if x.kind == "gguf" else ", ".join(x.engines), x.about]
        for x in q])
