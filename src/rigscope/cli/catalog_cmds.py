"""rigscope gpus / models / quants: list the embedded catalogs."""

from __future__ import annotations

import json

import click


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
        out: list[dict[str, object]] = [
               {"id": g.id, "name": g.name, "backend": g.backend, "memory_bytes": g.memory_bytes,
                "memory_source": g.memory_source, "bandwidth_gbs": g.bandwidth_gbs,
                "fp16_tflops": g.fp16_tflops, "fp16_accumulate": g.fp16_accumulate,
                "tdp_w": g.tdp_w, "price_usd": g.price_usd, "price_kind": g.price_kind,
                "price_date": g.price_date, "pcie": g.pcie, "nvlink_gbs": g.nvlink_gbs,
                "source": g.source} for g in items]
        for cid, sizes in apple.items():
            a = apple_accelerator(cid)
            out.append({"id": cid, "name": a.name.rsplit(",", 1)[0], "backend": "metal",
                        "memory_options_gb": sizes, "bandwidth_gbs": a.bandwidth_gbs,
                        "fp16_tflops": a.fp16_tflops, "tdp_w": a.tdp_w, "source": a.source})
        click.echo(json.dumps({"gpus": out}, indent=2))
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
        click.echo(json.dumps({"models": [
            {"id": k, "params": m.params, "layers": m.layers, "max_context": m.max_context,
             "aliases": m.aliases, "source": m.source} for k, m in entries.items()]}, indent=2))
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
        click.echo(json.dumps({"quants": [
            {"name": x.name, "kind": x.kind, "about": x.about,
             "engines": ["llama.cpp", "ollama"] if x.kind == "gguf" else list(x.engines)}
            for x in q]}, indent=2))
        return
    _print_table("Quantizations", ["name", "kind", "engines", "about"], [
        [x.name, "GGUF mix" if x.kind == "gguf" else "format",
         "llama.cpp, ollama" if x.kind == "gguf" else ", ".join(x.engines), x.about]
        for x in q])
