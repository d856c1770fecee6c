"""rigscope serve: the web page and REST API."""

from __future__ import annotations

import click

from rigscope.cli.options import db_option


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--token", envvar="RIGSCOPE_TOKEN", help="Require 'Authorization: Bearer "
              "TOKEN' on every API call (env RIGSCOPE_TOKEN).")
@click.option("--cors", "cors", multiple=True, metavar="ORIGIN",
              help="Allow browser calls from this origin (repeatable; default: none).")
@click.option("--allow-local-files", is_flag=True, help="Let callers name files on this "
              "machine as models (config.json, .gguf) or price files.")
@db_option
def serve_cmd(host: str, port: int, token: str | None, cors: tuple[str, ...],
              allow_local_files: bool, db: str | None) -> None:
    """Serve the web planner at / and the REST API at /api (OpenAPI schema: /openapi.json,
    docs: /docs). Every API answer is the matching command's --json."""
    from pathlib import Path

    from rigscope.web.app import Settings, serve

    settings = Settings(token=token or None, cors=cors, allow_local_files=allow_local_files,
                        db=Path(db) if db else None)
    click.echo(f"rigscope: serving http://{host}:{port}/ (Ctrl-C stops)", err=True)
    serve(host, port, settings)
