"""rigscope command line: thin commands over the library. Heavy imports happen inside commands."""

from __future__ import annotations

import os
import sys

import click

from rigscope.cli.bench_cmd import bench_cmd
from rigscope.cli.catalog_cmds import gpus_cmd, models_cmd, quants_cmd
from rigscope.cli.estimate_cmd import estimate_cmd, max_context_cmd
from rigscope.cli.eval_cmd import eval_cmd
from rigscope.cli.loop_cmds import calibrate_cmd, compare_cmd, demo_cmd, report_cmd
from rigscope.cli.pick_cmd import pick_cmd
from rigscope.cli.plan_cmd import plan_cmd
from rigscope.cli.runs_cmd import runs_cmd
from rigscope.cli.serve_cmd import serve_cmd
from rigscope.cli.system_cmd import system_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="rigscope")
def cli() -> None:
    """Will this LLM fit on this hardware, how fast will it run, and what should I buy?"""


cli.add_command(estimate_cmd)
cli.add_command(max_context_cmd)
cli.add_command(gpus_cmd)
cli.add_command(models_cmd)
cli.add_command(quants_cmd)
cli.add_command(plan_cmd)
cli.add_command(pick_cmd)
cli.add_command(system_cmd)
cli.add_command(bench_cmd)
cli.add_command(runs_cmd)
cli.add_command(demo_cmd)
cli.add_command(calibrate_cmd)
cli.add_command(compare_cmd)
cli.add_command(report_cmd)
cli.add_command(eval_cmd)
cli.add_command(serve_cmd)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors (exit 2 bad input, 1 other); RIGSCOPE_DEBUG=1 for tracebacks."""
    from rigscope.errors import RigscopeError

    try:
        cli.main(args=argv, prog_name="rigscope", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:  # usage errors too: one line, as rigscope's own
        msg = " ".join(e.format_message().split())
        hint = ""
        if isinstance(e, click.UsageError) and e.ctx is not None:
            hint = f" (rigscope {e.ctx.command_path.partition(' ')[2] or ''} --help)".replace(
                "  ", " ")
        click.echo(f"rigscope: error: {msg[:1].lower() + msg[1:]}{hint}", err=True)
        return e.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except RigscopeError as e:
        if os.environ.get("RIGSCOPE_DEBUG"):
            raise
        click.echo(f"rigscope: error: {e}", err=True)
        return e.exit_code
    except Exception as e:  # anything unexpected: one line unless debugging
        if os.environ.get("RIGSCOPE_DEBUG"):
            raise
        click.echo(f"rigscope: internal error: {type(e).__name__}: {e} "
                   "(RIGSCOPE_DEBUG=1 shows the traceback)", err=True)
        return 1
    return 0


def run() -> None:
    sys.exit(main())
