"""Progress bars (stderr) and result tables (stdout) for benchmark runs."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rigscope.bench.metrics import RequestResult, percentile
from rigscope.bench.run import Progress as Callbacks

CONTRACT_LEVEL_KEYS = ("concurrency", "rate", "requests_ok", "requests_failed", "errors",
                       "output_tokens_per_s", "requests_per_s")


class LiveProgress:
    """A rich progress bar on stderr with live TTFT p50 and output tok/s."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[live]}"), TimeElapsedColumn(),
                            console=self.console, transient=False)
        self.task: Any = None
        self.ttfts: list[float] = []
        self.tokens = 0
        self.first: float | None = None
        self.last = 0.0
        self.errors = 0

    def __enter__(self) -> LiveProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)  # type: ignore[arg-type]

    def callbacks(self) -> Callbacks:
        return Callbacks(level_started=self.started, request_done=self.done)

    def started(self, name: str, total: int | None) -> None:
        self.ttfts, self.tokens, self.first, self.last, self.errors = [], 0, None, 0.0, 0
        self.task = self.bar.add_task(name, total=total, live="")

    def done(self, r: RequestResult) -> None:
        if r.status == "ok" and r.ttft_s is not None:
            self.ttfts.append(r.ttft_s)
            self.tokens += r.output_tokens or 0
            self.first = r.start if self.first is None else min(self.first, r.start)
            self.last = max(self.last, r.end or 0)
        else:
            self.errors += 1
        window = self.last - self.first if self.first is not None else 0
        live = (f"TTFT p50 {percentile(self.ttfts, 50) * 1e3:.0f} ms · "
                f"{self.tokens / window:,.0f} tok/s" if self.ttfts and window > 0 else "")
        if self.errors:
            live += f" · {self.errors} errors"
        self.bar.update(self.task, advance=1, live=live)


def bench_json(doc: dict[str, Any]) -> dict[str, Any]:
    """The contract's document: run id and per-level summaries."""
    levels = []
    for lv in doc["levels"]:
        out = {k: lv.get(k) for k in CONTRACT_LEVEL_KEYS}
        for key in ("ttft_s", "itl_s", "e2e_s", "chunk_gap_s", "dispatch_delay_s"):
            out[key] = lv.get(key)
        out |= {k: lv.get(k) for k in ("goodput_requests_per_s", "output_tokens",
                                        "active_window_s", "token_count_mismatches",
                                        "connections_reused", "network")}
        levels.append(out)
    return {"run_id": doc["run_id"], "status": doc["status"], "model": doc["model"],
            "url": doc["url"], "api": doc["api"], "levels": levels}


def _ms(stat: dict[str, Any] | None, key: str) -> str:
    v = (stat or {}).get(key)
    return "-" if v is None else f"{v * 1e3:,.1f}"


def print_run(doc: dict[str, Any], console: Console | None = None) -> None:
    con = console or Console()
    t = Table(title=f"run {doc['run_id']} · {doc['model']} at {doc['url']} ({doc['api']})",
              title_justify="left", caption="times in ms; ITL per token", caption_justify="left")
    for col in ("level", "ok", "err", "TTFT p50", "TTFT p99", "ITL p50", "E2E p50", "tok/s",
                "req/s"):
        t.add_column(col, justify="left" if col == "level" else "right", no_wrap=True)
    for lv in doc["levels"]:
        if not lv.get("ttft_s"):
            continue
        name = (f"c={lv['concurrency']}" if lv["concurrency"] is not None
                else f"{lv['rate']:g}/s")
        t.add_row(name, str(lv["requests_ok"]), str(lv["requests_failed"]),
                  _ms(lv["ttft_s"], "p50"), _ms(lv["ttft_s"], "p99"), _ms(lv["itl_s"], "p50"),
                  _ms(lv["e2e_s"], "p50"), f"{lv['output_tokens_per_s']:,.1f}",
                  f"{lv['requests_per_s']:,.2f}")
    con.print(t)
    for lv in doc["levels"]:
        if lv.get("errors"):
            con.print(f"errors at {lv['concurrency'] or lv['rate']}: " + ", ".join(
                f"{k} x{n}" for k, n in lv["errors"].items()))
        if lv.get("token_count_mismatches"):
            con.print(f"[yellow]warning[/]: {lv['token_count_mismatches']} requests where the "
                      "server's token count and the client's differ by more than 10%")
        net = lv.get("network") or {}
        if net.get("connect_s", {}).get("p50") is not None:
            con.print(f"network: connect p50 {_ms(net['connect_s'], 'p50')} ms, headers p50 "
                      f"{_ms(net['headers_s'], 'p50')} ms, {lv['connections_reused']} "
                      "requests on reused connections")
