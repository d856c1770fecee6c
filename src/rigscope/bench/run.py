"""Run a benchmark: check the server, run each level, store every request, summarize."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from rigscope.bench import telemetry
from rigscope.bench.config import (
    BenchConfig,
    make_workload,
    prepare,
)
from rigscope.bench.http import HTTPFailure, Pool
from rigscope.bench.load import LevelSpec, ServerGone, Target, run_level
from rigscope.bench.metrics import RequestResult, Slo, level_telemetry, summarize
from rigscope.bench.workers import run_level_ray, run_level_workers
from rigscope.errors import RigscopeError
from rigscope.records import LevelSummary, level_label
from rigscope.store import Store
from rigscope.validate import is_loopback

MAX_SEARCH_CONCURRENCY = 256


@dataclass
class Progress:
    """Callbacks the CLI hooks its progress bar to (defaults do nothing)."""

    level_started: Callable[[str, int | None], None] = lambda name, total: None
    request_done: Callable[[RequestResult], None] = lambda r: None
    level_done: Callable[[LevelSummary], None] = lambda summary: None


def meets(summary: LevelSummary, slo: Slo) -> bool:
    """The level's p90 of each SLO metric is within its limit, and nothing failed."""
    if summary.requests_failed or not summary.requests_ok:
        return False
    for stats, limit in ((summary.ttft_s, slo.ttft_s), (summary.itl_s, slo.itl_s),
                         (summary.e2e_s, slo.e2e_s)):
        if limit is not None and (stats.p90 is None or stats.p90 > limit):
            return False
    return True


async def run_async(config: BenchConfig, store: Store, progress: Progress | None = None,
                    run_id_out: list[str] | None = None,
                    watch: Callable[[], str | None] | None = None) -> str:
    """Run every level; returns the run id. Each request is committed as it finishes.

    watch: for a server this process supervises, its death in words (None while it runs).
    """
    progress = progress or Progress()
    workload = make_workload(config)
    target = await prepare(config)
    target.watch = watch
    run_id = store.new_run(config.url, config.model, target.api.name, config.public(),
                           config.label)
    if run_id_out is not None:
        run_id_out.append(run_id)
    status = "cancelled"
    watcher = await _start_telemetry(config, target, store, run_id)
    try:
        position = 0

        async def level(spec: LevelSpec) -> LevelSummary:
            nonlocal position
            shape = (spec.concurrency, spec.rate, spec.depth, spec.prompt_tokens,
                     spec.output_tokens)
            level_id = store.new_level(run_id, position, *shape)
            spec = replace(spec, position=position)
            position += 1
            name = level_label(*shape)
            total = None if spec.requests is None else spec.requests + spec.warmup
            progress.level_started(name, total)

            def done(r: RequestResult) -> None:
                store.add_request(run_id, level_id, r)
                progress.request_done(r)

            if watcher is not None:
                await watcher.snapshot()  # the counters as the level begins
            try:
                if config.ray:
                    results = await run_level_ray(config.ray, config, spec,
                                                  config.seed + position, config.workers, done)
                elif config.workers > 1:
                    results = await run_level_workers(config, spec, config.seed + position,
                                                      config.workers, done)
                else:
                    results = await run_level(target, workload, spec, done,
                                              config.seed + position)
            except ServerGone as gone:
                store.set_summary(level_id, summarize(gone.results, config.slo,
                                                     spec.concurrency if spec.rate is None
                                                     else None))
                kept = sum(1 for r in gone.results if r.status == "ok")
                raise RigscopeError(
                    f"{config.url} stopped answering at {name}, {gone.during()}: {gone.why}; "
                    f"the {kept} requests completed before are kept in run {run_id}",
                    exit_code=1) from None
            summary = summarize(results, config.slo,
                                spec.concurrency if spec.rate is None else None)
            if watcher is not None:
                await watcher.snapshot()
                summary = replace(summary, **level_telemetry(results, watcher.recent()))
                watcher.flush()
            store.set_summary(level_id, summary)
            progress.level_done(summary)
            return summary

        base = LevelSpec(requests=config.requests, duration=config.duration,
                         warmup=config.warmup, trace_speed=config.trace_speed)
        depths: tuple[int | None, ...] = config.depths or (None,)
        if config.replay:
            await level(base)
        elif config.sweep:
            await _sweep(level, config, base)
        elif config.rates:
            for rate in config.rates:
                for d in depths:
                    await level(replace(base, rate=rate, poisson=config.poisson, depth=d))
        elif config.slo is not None and config.concurrency == (0,):
            await _search(level, config.slo, base)
        else:
            for c in config.concurrency:
                for d in depths:
                    await level(replace(base, concurrency=c, depth=d))
        status = "done"
    except RigscopeError:
        status = "failed"
        raise
    finally:
        if watcher is not None:
            await watcher.stop()
        store.finish_run(run_id, status)
        await target.pool.close()
    return run_id


@dataclass
class Watcher:
    """Telemetry sampling during a run. Samples wait in memory and are stored after each
    level (one transaction), so no commit competes with the load's own timing."""

    task: asyncio.Task[None]
    stopping: asyncio.Event
    pool: Pool
    store: Store
    run_id: str
    samples: list[tuple[float, str, dict[str, float]]] = field(default_factory=list)
    last: dict[str, tuple[float, str, dict[str, float]]] = field(default_factory=dict)
    sources: list[telemetry.Source] = field(default_factory=list)

    async def snapshot(self) -> None:
        """One more reading of the server's counters as a level begins and as it ends:
        a level's counts are the change between the two."""
        for src in self.sources:
            if src.name == "metrics":
                try:
                    data = await src.read()
                except (HTTPFailure, ValueError, UnicodeDecodeError, OSError):
                    continue
                if data:  # stamped as the sampler stamps: when the answer arrived
                    self.samples.append((self.pool.clock(), src.name, data))

    def recent(self) -> list[tuple[float, str, dict[str, float]]]:
        """The samples since the last flush, after each source's last one before it (the
        counters as the level began)."""
        return [*self.last.values(), *self.samples]

    def flush(self) -> None:
        self.store.add_telemetry(self.run_id, self.samples)
        self.last |= {s[1]: s for s in self.samples}
        self.samples.clear()

    async def stop(self) -> None:
        await telemetry.stop_sampling(self.task, self.stopping)
        await self.pool.close()
        self.flush()


async def _start_telemetry(config: BenchConfig, target: Target, store: Store, run_id: str
                           ) -> Watcher | None:
    """Detect the telemetry sources and sample them (on a pool of their own) until the run
    ends; the sources found are noted in the run's config."""
    if not config.telemetry:
        return None
    pool = Pool(config.url, clock=target.pool.clock)
    local = is_loopback(urlsplit(config.url).hostname)
    sources = await telemetry.detect(pool, target.api.name, target.headers, local,
                                     telemetry.load_nvml() if local else None,
                                     telemetry.rapl_packages() if local else None)
    store.update_config(run_id, {"telemetry": [s.name for s in sources]})
    if not sources:
        await pool.close()
        return None

    samples: list[tuple[float, str, dict[str, float]]] = []
    stopping = asyncio.Event()
    task = asyncio.create_task(telemetry.sample(
        sources, pool.clock, lambda t, source, data: samples.append((t, source, data)),
        stopping))
    return Watcher(task, stopping, pool, store, run_id, samples, sources=sources)


async def _search(level: Callable[[LevelSpec], Any], slo: Slo, base: LevelSpec) -> None:
    """Double the concurrency until the SLO breaks, then bisect: the highest that meets it."""
    good, bad, c = 0, None, 1
    while c <= MAX_SEARCH_CONCURRENCY:
        if meets(await level(replace(base, concurrency=c)), slo):
            good, c = c, c * 2
        else:
            bad = c
            break
    if bad is None:
        return
    while bad - good > 1:
        mid = (good + bad) // 2
        if meets(await level(replace(base, concurrency=mid)), slo):
            good = mid
        else:
            bad = mid


async def _sweep(level: Callable[[LevelSpec], Any], config: BenchConfig, base: LevelSpec
                 ) -> None:
    """Concurrency x prompt x output tokens, each size pair from low concurrency up. With
    --slo a direction stops where a level misses it: that pair goes no higher, and no
    larger pair (longer prompt or output, which only costs more) tries that concurrency
    or above."""
    failed: dict[tuple[int, int], int] = {}  # (prompt, output) -> first concurrency missed
    for p, o in itertools.product(sorted(config.prompt_sweep or (config.prompt_tokens,)),
                                  sorted(config.output_sweep or (config.output_tokens,))):
        limit = min((c for (fp, fo), c in failed.items() if fp <= p and fo <= o),
                    default=None)
        for c in sorted(config.concurrency):
            if limit is not None and c >= limit:
                break
            summary = await level(replace(base, concurrency=c, prompt_tokens=p,
                                          output_tokens=o))
            if config.slo is not None and not meets(summary, config.slo):
                failed[(p, o)] = c
                break


def run_bench(config: BenchConfig, store: Store, progress: Progress | None = None,
              watch: Callable[[], str | None] | None = None) -> tuple[str, bool]:
    """Benchmark a server: every level of `config`, each request stored as it completes.

    Runs in a fresh event loop (uvloop when installed). Returns (run id, completed); a
    Ctrl-C keeps what finished and returns completed False. `watch` reports the death of a
    server this process supervises (see llamacpp.server.LlamaServer.death)."""
    ids: list[str] = []
    try:
        import uvloop

        runner: Callable[[Coroutine[Any, Any, str]], str] = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(run_async(config, store, progress, ids, watch))
    except KeyboardInterrupt:
        if not ids:
            raise
        return ids[0], False
    return ids[0], True
