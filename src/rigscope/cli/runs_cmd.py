"""rigscope runs list | show | export: read the SQLite store."""

from __future__ import annotations

import json
import sys

import click

db_option = click.option("--db", type=click.Path(dir_okay=False), help="SQLite file.")


def _store(db: str | None):  # noqa: ANN202
    from pathlib import Path

    from rigscope.store import Store

    return Store(Path(db) if db else None)


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
        click.echo(json.dumps({"runs": runs}, indent=2))
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
    doc = _store(db).run(run_id)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        from rigscope.cli.bench_render import print_run

        print_run(doc)


@runs_cmd.command("export")
@click.argument("run_id")
@db_option
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="csv",
              show_default=True)
def export_cmd(run_id: str, db: str | None, fmt: str) -> None:
    """Every request of a run, as CSV or JSON, on stdout."""
    doc = _store(db).run(run_id)
    if fmt == "json":
        click.echo(json.dumps(doc["requests"], indent=2))
        return
    import csv

    rows = doc["requests"]
    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
    writer.writeheader()
    for r in rows:
        writer.writerow(r | {"chunk_times": json.dumps(r["chunk_times"]),
                             "server": json.dumps(r["server"])})
