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
