"""`rigscope serve`: the web page and the REST API over the same library as the CLI.

Every answer is the matching CLI command's JSON (rigscope.answers + rigscope.contract), and
every value is checked by the CLI's own option declarations (their click types: the ranges
stated next to each option), so a bad value gets the same words as on the command line,
as HTTP 400 {"error": ...}. Estimates and plans run in FastAPI's worker threads."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import click
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.middleware.cors import CORSMiddleware

from rigscope import answers, contract
from rigscope.cli.estimate_cmd import estimate_cmd, max_context_cmd
from rigscope.cli.pick_cmd import pick_cmd
from rigscope.cli.plan_cmd import plan_cmd
from rigscope.errors import NotFound, RigscopeError
from rigscope.validate import is_loopback

STATIC = ("index.html", "app.js", "style.css")
_UNSET = getattr(click.core, "UNSET", object())  # click 8.3: "no default given"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}
# options a web caller may not use: they name files on the server
SERVER_FILES = frozenset({"price_file", "evidence"})


@dataclass(frozen=True)
class Settings:
    token: str | None = None
    cors: tuple[str, ...] = ()
    allow_local_files: bool = False
    db: Path | None = None  # the runs store (default: the data dir's)


def api_name(param: click.Parameter) -> str:
    """The query-parameter name of a CLI option: --kv-type -> kv_type, MODEL -> model."""
    if isinstance(param, click.Argument):
        return param.name or ""
    return param.opts[0].lstrip("-").replace("-", "_")


def options_of(command: click.Command, query: dict[str, list[str]],
               skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The command's options from query parameters, each converted by the option's own type
    (the CLI's checks, the CLI's words); defaults for the rest."""
    params = {api_name(p): p for p in command.params
              if p.name not in skip and api_name(p) not in ("json", "help")}
    unknown = sorted(set(query) - set(params))
    if unknown:
        raise RigscopeError(f"unknown parameter {unknown[0]!r}; valid: {', '.join(params)}")
    ctx = click.Context(command)
    out: dict[str, Any] = {}
    for name, p in params.items():
        values = query.get(name)
        if not values:
            if p.required:
                raise RigscopeError(f"missing parameter {name!r}")
            default = p.get_default(ctx)
            if default is _UNSET:
                default = None
            if p.multiple or p.nargs == -1:
                default = tuple(default or ())
            elif default is not None and not isinstance(p, click.Argument):
                default = p.type_cast_value(ctx, default)
            out[p.name or name] = default
            continue
        try:
            if isinstance(p, click.Option) and p.is_flag:
                converted: Any = click.BOOL.convert(values[-1], p, None)
            elif p.multiple or p.nargs == -1:
                converted = tuple(p.type.convert(v, p, None) for v in values)
            else:
                converted = p.type.convert(values[-1], p, None)
        except click.BadParameter as e:
            raise RigscopeError(f"invalid value for {p.opts[0]!r}: {e.message}") from None
        out[p.name or name] = converted
    return out


def _query(request: Request) -> dict[str, list[str]]:
    q: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        q.setdefault(k, []).append(v)
    return q


_PATH = re.compile(r"(?<![\w:/.])/(?:[^\s'\"/]+/)+([^\s'\";,]+)")


def scrub(message: str) -> str:
    """An error without this machine's paths: '/home/u/.local/x/runs.db' -> 'runs.db'."""
    return _PATH.sub(lambda m: m.group(1), message)


def _status(e: RigscopeError) -> int:
    if isinstance(e, NotFound):
        return 404
    return 400 if e.exit_code == 2 else 503


def create_app(settings: Settings | None = None) -> FastAPI:
    s = settings or Settings()
    app = FastAPI(title="rigscope", summary="Will this LLM fit on this hardware, how fast "
                  "will it run, and what should I buy?", version=_version())
    if s.cors:
        app.add_middleware(CORSMiddleware, allow_origins=list(s.cors), allow_methods=["*"],
                           allow_headers=["*"])

    @app.exception_handler(RigscopeError)
    async def _user_error(request: Request, e: RigscopeError) -> JSONResponse:
        return JSONResponse({"error": scrub(" ".join(str(e).split()))}, status_code=_status(e))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return JSONResponse({"error": f"invalid {where or 'request'}: "
                                      f"{first.get('msg', 'bad input')}"}, status_code=400)

    def authorized(request: Request) -> None:
        if s.token is None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given, f"Bearer {s.token}"):
            raise HTTPException(401, "a bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code,
                            headers=e.headers)

    auth = [Depends(authorized)]
    files = s.allow_local_files

    @app.get("/api/estimate", dependencies=auth)
    def estimate(request: Request) -> dict[str, Any]:
        """= `rigscope estimate MODEL ... --json`; every estimate option as a query
        parameter (`gpu` repeatable)."""
        o = options_of(estimate_cmd, _query(request))
        return answers.estimate_doc(answers.EstimateQuery.from_options(**o), files)

    @app.get("/api/max-context", dependencies=auth)
    def max_context(request: Request) -> dict[str, Any]:
        """= `rigscope max-context MODEL ... --json`."""
        o = options_of(max_context_cmd, _query(request))
        q = answers.ModelQuery.from_options(**o)
        return answers.max_context_doc(q, answers.batches_of(o["batches"]), files)

    @app.post("/api/plan", dependencies=auth)
    def plan(body: dict[str, Any]) -> dict[str, Any]:
        """= `rigscope plan ... --json`: {"models": [...], "quant": ..., "context": ...,
        "users": ..., ...}, each key a plan option (lists for repeatable ones)."""
        query = {k: [str(x) for x in v] if isinstance(v, list) else [_text(v)]
                 for k, v in body.items() if v is not None}
        o = options_of(plan_cmd, query, skip=frozenset() if files else SERVER_FILES)
        return answers.plan_doc(answers.PlanQuery.from_options(**o), files)

    @app.get("/api/pick", dependencies=auth)
    def pick(request: Request) -> dict[str, Any]:
        """= `rigscope pick ... --json`: `use`, `gpu` (repeatable), `cpu`, `ram`, `context`,
        `users`, `min_tps`, `max_ttft`, `engine` as query parameters; no rig given: the
        machine this server runs on."""
        o = options_of(pick_cmd, _query(request), skip=frozenset() if files else SERVER_FILES)
        return answers.pick_doc(answers.PickQuery.from_options(**o), files)

    @app.get("/api/gpus", dependencies=auth)
    def gpus() -> dict[str, Any]:
        """= `rigscope gpus --json`."""
        return contract.gpus_json()

    @app.get("/api/models", dependencies=auth)
    def models(search: str | None = None) -> dict[str, Any]:
        """= `rigscope models [--search TEXT] --json`."""
        from rigscope.sources import list_models

        return contract.models_json(list_models(search))

    @app.get("/api/quants", dependencies=auth)
    def quants() -> dict[str, Any]:
        """= `rigscope quants --json`."""
        return contract.quants_json()

    @app.get("/api/system", dependencies=auth)
    def system() -> dict[str, Any]:
        """= `rigscope system --json` (the machine this server runs on)."""
        from rigscope.system import detect

        return contract.system_json(detect())

    def store() -> Any:
        from rigscope.store import Store

        return Store(s.db)

    @app.get("/api/runs", dependencies=auth)
    def runs() -> dict[str, Any]:
        """= `rigscope runs list --json`."""
        return contract.runs_json(store().runs())

    @app.get("/api/runs/{run_id}", dependencies=auth)
    def run(run_id: str) -> dict[str, Any]:
        """= `rigscope runs show RUN --json`."""
        return contract.run_json(store().run(run_id))

    @app.get("/api/runs/{run_id}/report", dependencies=auth, response_class=HTMLResponse)
    def report(run_id: str) -> str:
        """The HTML report of one run (as `rigscope report RUN` writes it)."""
        from rigscope.report import render

        return render([store().run(run_id)])

    app.get("/", include_in_schema=False)(lambda: _static("index.html"))
    for name in STATIC[1:]:
        app.get(f"/{name}", include_in_schema=False)(lambda name=name: _static(name))
    return app


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _static(name: str) -> Response:
    text = resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")
    return Response(text, media_type=TYPES[Path(name).suffix],
                    headers={"Cache-Control": "no-cache"})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rigscope")
    except PackageNotFoundError:
        return "0"


def serve(host: str = "127.0.0.1", port: int = 8000, settings: Settings | None = None) -> None:
    """Run the server until interrupted. Any address other than loopback needs a token."""
    import uvicorn

    s = settings or Settings()
    if not is_loopback(host) and not s.token:
        raise RigscopeError(f"--host {host} is reachable from other machines: give --token "
                            "(callers then send 'Authorization: Bearer TOKEN'), or bind "
                            "127.0.0.1")
    uvicorn.run(create_app(s), host=host, port=port, log_level="warning")
