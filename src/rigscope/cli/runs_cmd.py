"""rigscope runs list | show | export: read the SQLite store."""

from __future__ import annotations

import json
import sys

import click

from rigscope.cli.options import db_option, echo_json
from rigscope.cli.options import open_store as _store


@click.group("runs")
def runs_cmd() -> None:
    """Stored benchmark runs."""


@runs_cmd.command("list")
@db_option
@click.option("--json", "as_json", is_flag=True)
def list_cmd(db: str | None, as_json: bool) -> None:
    """Runs, oldest first."""
    runs = _store(db).runs()
    if as_json:
        from rigscope.contract import runs_json

        echo_json(runs_json(runs))
        return
    for r in runs:
        click.echo(f"{r['run_id']}  {r['started_at']}  {r['status']:9} {r['requests']:5} req  "
                   f"{r['model']} @ {r['url']}" + (f"  [{r['label']}]" if r["label"] else ""))


@runs_cmd.command("show")
@click.argument("run_id")
@db_option
@click.option("--json", "as_json", is_flag=True)
def show_cmd(run_id: str, db: str | None, as_json: bool) -> None:
    """One run with its levels and requests."""
    run = _store(db).run(run_id)
    if as_json:
        from rigscope.contract import run_json

        echo_json(run_json(run))
    else:
        from rigscope.cli.bench_render import print_run

        print_run(run)


@runs_cmd.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--hardware", metavar="RIG", help="What it ran on (rtx-4090, 2xrtx-3090), when "
              "the file does not say it in words rigscope knows.")
@click.option("--model-spec", metavar="MODEL", help="The model as rigscope knows it (catalog "
              "id, config.json, .gguf), when the file's name and size do not tell.")
@click.option("--label", help="A name for the imported run(s).")
@db_option
@click.option("--json", "as_json", is_flag=True)
def import_cmd(file: str, hardware: str | None, model_spec: str | None, label: str | None,
               db: str | None, as_json: bool) -> None:
    """Store results measured by llama-bench (-o json/jsonl), GuideLLM (benchmarks.json),
    AIPerf (profile export json/csv) or vLLM (bench serve --save-result); the format is told
    from the content. Imported llama-bench runs can calibrate (rigscope calibrate)."""
    from pathlib import Path

    from rigscope.errors import RigscopeError
    from rigscope.imports import parse_import

    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RigscopeError(f"{path}: not UTF-8 text") from None
    runs = parse_import(text, path.name)
    if hardware:
        from rigscope.hardware import parse_rig

        parse_rig([hardware])  # a bad id fails here, before anything is stored
    if model_spec:
        from rigscope.sources import resolve_model

        resolve_model(model_spec)
    store = _store(db)
    out = []
    for imp in runs:
        config = imp.config | {"imported_from": path.name}
        config |= {k: v for k, v in (("hardware", hardware), ("model_spec", model_spec)) if v}
        run_id = store.add_finished_run(imp.url, imp.model, imp.source, config,
                                        label or f"{imp.source}: {path.name}", imp.levels)
        out.append({"run_id": run_id, "source": imp.source})
    if as_json:
        echo_json({"runs": out})
        return
    for r in out:
        click.echo(f"{r['run_id']}: imported from {path.name} ({r['source']})")


@runs_cmd.command("export")
@click.argument("run_id")
@db_option
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="csv",
              show_default=True)
def export_cmd(run_id: str, db: str | None, fmt: str) -> None:
    """Every request of a run, as CSV or JSON, on stdout."""
    from dataclasses import asdict

    rows = [asdict(r) for r in _store(db).run(run_id).requests]
    if fmt == "json":
        echo_json(rows)
        return
    import csv

    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
    writer.writeheader()
    for r in rows:
        writer.writerow(r | {"chunk_times": json.dumps(r["chunk_times"]),
                             "server": json.dumps(r["server"])})
