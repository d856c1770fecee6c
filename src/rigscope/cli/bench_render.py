"""Progress bars (stderr) and result tables (stdout) for benchmark runs."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rigscope.bench.metrics import RequestResult
from rigscope.bench.run import Progress as Callbacks
from rigscope.records import Run, level_notes, percentile


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


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:,.1f}"


def print_run(run: Run, console: Console | None = None) -> None:
    con = console or Console()
    t = Table(title=f"run {run.run_id} · {run.model} at {run.url} ({run.api})",
              title_justify="left", caption="times in ms; ITL per token", caption_justify="left")
    widest = max((len(lv.label) for lv, _ in run.summarized), default=5)
    t.add_column("level", no_wrap=True, min_width=widest)
    for col in ("ok", "err", "TTFT\np50", "TTFT\np99", "ITL\np50", "E2E\np50", "tok/s",
                "req/s"):
        t.add_column(col, justify="right", no_wrap=True)
    for lv, s in run.summarized:
        t.add_row(lv.label, str(s.requests_ok), str(s.requests_failed), _ms(s.ttft_s.p50),
                  _ms(s.ttft_s.p99), _ms(s.itl_s.p50), _ms(s.e2e_s.p50),
                  f"{s.output_tokens_per_s:,.1f}", f"{s.requests_per_s:,.2f}")
    con.print(t)
    for lv, s in run.summarized:
        if s.errors:
            con.print(f"errors at {lv.label}: " + ", ".join(
                f"{k} x{n}" for k, n in s.errors.items()))
        if s.token_count_mismatches:
            con.print(f"[yellow]warning[/] at {lv.label}: {s.token_count_mismatches} requests "
                      "where the server's token count and the client's differ by more than 10%")
        net = s.network
        if net.connect_s.p50 is not None:
            con.print(f"network at {lv.label}: connect p50 {_ms(net.connect_s.p50)} ms, "
                      f"headers p50 {_ms(net.headers_s.p50)} ms, {s.connections_reused} "
                      "requests on reused connections")
        elif s.requests_ok:
            con.print(f"network at {lv.label}: every request on a kept-alive connection, "
                      f"headers p50 {_ms(net.headers_s.p50)} ms")
        for line in level_notes(s):
            con.print(f"{line[0]} at {lv.label}: {line[1]}")
    if any(s.acceptance_source for _, s in run.summarized) or not run.summarized:
        return
    con.print("speculative decoding: not reported by this server")
