"""rigscope gpus / models / quants: list the embedded catalogs."""

from __future__ import annotations

import click

from rigscope.cli.options import Number, echo_json


def _print_table(title: str, columns: list[str], rows: list[list[str]],
                 drop: tuple[str, ...] = (), wrap: tuple[str, ...] = ()) -> None:
    """A table whose columns fit the terminal: `drop` (first named, first dropped) go
    before any header or cell would be cut."""
    from rich.console import Console
    from rich.table import Table

    from rigscope.cli.render import table_that_fits

    con = Console()
    con.print(table_that_fits(lambda: Table(title=title, title_justify="left"), columns,
                              rows, con.width, drop=drop, left=tuple(columns), wrap=wrap))


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
                                  "W", "price"], rows, drop=("W", "FP16 TFLOPS"),
                 wrap=("name",))


@click.group("models", invoke_without_command=True)
@click.option("--search", metavar="TEXT",
              help="only models whose id, aliases, model type or features contain TEXT "
                   "(every word of it), e.g. 'qwen3 moe'")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_cmd(ctx: click.Context, search: str | None, as_json: bool) -> None:
    """Models in the catalog (and yours: `rigscope models add`), with their Hub aliases."""
    if ctx.invoked_subcommand is not None:
        return
    from rigscope.sources import list_models

    rows = list_models(search)
    if as_json:
        from rigscope.contract import models_json

        echo_json(models_json(rows))
        return
    if not rows:
        raise click.ClickException(f"no catalog model matches {search!r}")
    _print_table("Models (Hub aliases: --json)", ["id", "type", "params", "active", "layers",
                                                   "context", "features"], [
        [r.id, r.model_type, f"{r.params / 1e9:.2f} B",
         f"{r.active_params / 1e9:.2f} B" if "moe" in r.features else "",
         str(r.layers), f"{r.max_context:,}", " ".join(r.features)]
        for r in rows], drop=("layers", "type"), wrap=("features",))


@models_cmd.command("add")
@click.argument("source", metavar="DIR_OR_REPO")
@click.option("--id", "model_id", help="catalog id (default: the folder or repo name)")
@click.option("--alias", "aliases", multiple=True,
              help="a name it is also known by, e.g. a Hub repo id (repeatable)")
@click.option("--params", type=Number(0, 1e14, low_open=True, integer=True),
              help="the published parameter count to check it by")
@click.option("--source", "source_text", help="where the config and the count come from")
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False),
              help="catalog file to write (default: your own, in the user data dir)")
def models_add_cmd(source: str, model_id: str | None, aliases: tuple[str, ...],
                   params: int | None, source_text: str | None,
                   catalog_path: str | None) -> None:
    """Add (or replace) a catalog entry generated from a config.json, a model directory or
    a Hugging Face Hub repo (owner/repo)."""
    from pathlib import Path

    from rigscope.catalog import user_catalog, write_entry
    from rigscope.sources import catalog_entry

    key, record = catalog_entry(source, model_id=model_id, aliases=aliases, params=params,
                                source=source_text)
    path = Path(catalog_path) if catalog_path else user_catalog()
    write_entry(path, key, record)
    click.echo(f"{key}: written to {path}")


@models_cmd.command("update")
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False),
              help="catalog file to write (default: your own, in the user data dir)")
@click.option("--json", "as_json", is_flag=True)
def models_update_cmd(catalog_path: str | None, as_json: bool) -> None:
    """Add a catalog entry, from its Hub repo's config.json and safetensors headers, for
    every model the shipped quality evidence scores that the catalog lacks (so `pick` can
    rank it). Answers are cached for offline use; a repo whose architecture rigscope does
    not estimate is listed with the reason."""
    import datetime
    from pathlib import Path

    from rigscope.catalog import evidence, model_aliases, user_catalog, write_entry
    from rigscope.cli.options import echo_json
    from rigscope.errors import RigscopeError
    from rigscope.sources import catalog_entry

    known = model_aliases()
    repos = sorted({s.hf_repo for s in evidence()
                    if s.hf_repo and not s.rigscope_id and s.hf_repo.lower() not in known})
    path = Path(catalog_path) if catalog_path else user_catalog()
    added, failed = [], []
    for repo in repos:
        try:
            key, record = catalog_entry(repo)
        except RigscopeError as e:
            failed.append({"repo": repo, "why": str(e)})
            continue
        write_entry(path, key, record)
        added.append({"repo": repo, "id": key})
    doc = {"date": datetime.date.today().isoformat(), "catalog": str(path),
           "added": added, "failed": failed}
    if as_json:
        echo_json(doc)
        return
    click.echo(f"{len(added)} of {len(repos)} scored models added to {path} "
               f"({doc['date']}); {len(failed)} not:")
    for f in failed:
        click.echo(f"  {f['repo']}: {f['why']}")


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
        for x in q], wrap=("engines", "about"))
