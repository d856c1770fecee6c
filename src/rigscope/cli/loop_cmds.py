"""rigscope demo / calibrate / compare / report: tie predictions and measurements together."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from rigscope.cli.options import Url, db_option, echo_json, open_store

if TYPE_CHECKING:
    from rigscope.records import Run


def _runs(run_ids: tuple[str, ...], db: str | None) -> list[Run]:
    store = open_store(db)
    return [store.run(r) for r in run_ids]


@click.command("demo")
@click.option("--url", type=Url(), help="Benchmark your own server instead of starting llama.cpp.")
@click.option("--model", help="Model name on --url.")
@click.option("--model-spec", help="What --model is (catalog id, config.json, .gguf), to "
              "predict it.")
@click.option("--quick", is_flag=True, help="Fewer and shorter requests (about a minute).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Report file.")
@click.option("--json", "as_json", is_flag=True)
def demo_cmd(url: str | None, model: str | None, model_spec: str | None, quick: bool,
             output: str | None, as_json: bool) -> None:
    """Predict, benchmark and compare on this machine (llama.cpp + SmolLM2), with a report."""
    from pathlib import Path

    from rigscope.demo import DemoPlan, run_demo

    plan = DemoPlan.quick() if quick else DemoPlan()
    result = run_demo(plan, url=url, model=model, model_spec=model_spec,
                      report_path=Path(output) if output else None,
                      say=lambda s: click.echo(s, err=True))
    if as_json:
        from rigscope.contract import demo_json

        echo_json(demo_json(result))
        return
    from rich.console import Console
    from rich.table import Table

    from rigscope.cli.bench_render import print_run

    con = Console()
    for run in result.runs:
        print_run(run, con)
    if result.checks:
        t = Table(title="predicted vs measured on this machine", title_justify="left")
        for col in ("figure", "predicted", "measured", "error"):
            t.add_column(col, justify="left" if col == "figure" else "right")
        for c in result.checks:
            t.add_row(c.what, f"{c.predicted:,.2f}",
                      "-" if c.measured is None else f"{c.measured:,.2f}",
                      "-" if c.error_pct is None else f"{c.error_pct:+.1f}%")
        con.print(t)
    con.print(f"report: {result.report}")


@click.command("calibrate")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--rig", "name", required=True, help="Name of the rig profile to store.")
@click.option("--holdout", multiple=True, metavar="RUN",
              help="A run not fitted on: report the error on it before and after (repeatable).")
@db_option
@click.option("--json", "as_json", is_flag=True)
def calibrate_cmd(run_ids: tuple[str, ...], name: str, holdout: tuple[str, ...],
                  db: str | None, as_json: bool) -> None:
    """Fit the speed model to measured RUNS; estimate and plan then take --rig NAME."""
    from rigscope.calibration import calibrate
    from rigscope.contract import calibration_json

    c = calibrate(_runs(run_ids, db), name, _runs(holdout, db))
    if as_json:
        echo_json(calibration_json(c))
        return
    click.echo(f"rig profile {name!r} ({c.hardware}) from {c.observations} observations: "
               f"{c.profile}")
    for kind in ("decode", "prefill"):
        b, a = c.error_before[kind], c.error_after[kind]
        if b is not None and a is not None:
            click.echo(f"  {kind}: median error {b:.1%} before, {a:.1%} after")
        if c.holdout_error_before and c.holdout_error_after:
            hb, ha = c.holdout_error_before[kind], c.holdout_error_after[kind]
            if hb is not None and ha is not None:
                click.echo(f"  {kind} on held-out runs: {hb:.1%} before, {ha:.1%} after")
    for field, table in c.params.items():
        for key, value in table.items():
            click.echo(f"  {field}[{key}] = {value}")


@click.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@db_option
@click.option("--json", "as_json", is_flag=True)
def compare_cmd(run_ids: tuple[str, ...], db: str | None, as_json: bool) -> None:
    """Compare RUNS level by level (each against the first), with 95% bootstrap intervals."""
    from rigscope.comparison import compare
    from rigscope.contract import comparison_json
    from rigscope.errors import RigscopeError

    if len(run_ids) < 2:
        raise RigscopeError("compare needs at least two runs")
    result = compare(_runs(run_ids, db))
    if as_json:
        echo_json(comparison_json(result))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{run_ids[0]} vs " + ", ".join(run_ids[1:]), title_justify="left",
              caption="* the 95% interval of the difference excludes 0 (beyond run-to-run "
              "noise)", caption_justify="left")
    for col in ("level", "metric", "A", "B", "diff", "95% interval"):
        t.add_column(col, justify="left" if col in ("level", "metric") else "right")
    for row in result.rows:
        scale = 1e3 if row.metric in ("ttft_s", "itl_s", "e2e_s") else 1
        unit = " ms" if scale == 1e3 else ""
        ci = row.ci95
        pct = f" ({row.diff_pct:+.1f}%)" if row.diff_pct is not None else ""
        t.add_row(row.level, row.metric, f"{row.a * scale:,.2f}{unit}",
                  f"{row.b * scale:,.2f}{unit}",
                  f"{row.diff * scale:+,.2f}{pct}" + ("*" if row.significant else ""),
                  f"[{ci[0] * scale:+,.2f}, {ci[1] * scale:+,.2f}]" if ci else "-")
    Console().print(t)


@click.command("report")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_OR_EVAL_ID...")
@db_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="rigscope-report.html",
              show_default=True)
@click.option("--png", "png_dir", type=click.Path(file_okay=False), help="Also write PNGs here.")
def report_cmd(run_ids: tuple[str, ...], db: str | None, output: str,
               png_dir: str | None) -> None:
    """One self-contained HTML file (works offline) with the plots of bench runs and evals."""
    from pathlib import Path

    from rigscope.report import write_report

    store = open_store(db)
    runs = [store.run(r) for r in run_ids if not r.startswith("eval-")]
    evals = [store.eval(r) for r in run_ids if r.startswith("eval-")]
    path = write_report(runs, Path(output), Path(png_dir) if png_dir else None, evals)
    click.echo(str(path))
