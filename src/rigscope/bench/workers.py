"""One level's load from several local processes (bench --workers N), for servers that one
client process cannot saturate.

Each worker runs a Shard of the level (load.Shard): every N-th request index, its share of
the concurrent streams, the level's intended schedule kept global on the shared monotonic
clock. Results come back to this process as each request finishes and are stored here, in
the one SQLite store. A worker that dies loses only the requests it had in flight; they are
recorded as failures with reason `worker_lost`."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import queue as queue_mod
import time
from collections.abc import Callable
from typing import Any

from rigscope.bench.config import make_workload, prepare
from rigscope.bench.load import LevelSpec, Shard, run_level
from rigscope.bench.metrics import RequestResult
from rigscope.errors import RigscopeError

START_DELAY_S = 1.0  # every worker is up (spawned, imported, connected) before the start
POLL_S = 0.005  # how often the parent takes what the workers reported


def shards(spec: LevelSpec, workers: int, start: float) -> list[Shard]:
    """Split a level: closed-loop streams as evenly as possible (none idle), open-loop
    sends by index."""
    if spec.rate is None:
        streams = spec.concurrency or 1
        workers = min(workers, streams)
        return [Shard(k, workers, streams // workers + (k < streams % workers), start)
                for k in range(workers)]
    return [Shard(k, workers, None, start) for k in range(workers)]


def _worker(config: Any, spec: LevelSpec, seed: int, shard: Shard, out: Any) -> None:
    """A worker process: prepare its own connection pool, run its shard, report."""
    async def go() -> None:
        target = await prepare(config)
        try:
            await run_level(target, make_workload(config), spec,
                            lambda r: out.put(("result", r)), seed, shard,
                            lambda i: out.put(("sent", i)))
        finally:
            await target.pool.close()

    try:
        asyncio.run(go())
    except BaseException as e:  # noqa: BLE001 - reported to the parent, then exit non-zero
        out.put(("error", f"{type(e).__name__}: {e}"))
        raise SystemExit(1) from None
    out.put(("done", shard.part))


class _Collector:
    """What the workers report: results as they land, indices in flight, failures."""

    def __init__(self, parts: int, on_result: Callable[[RequestResult], None]) -> None:
        self.parts, self.on_result = parts, on_result
        self.results: list[RequestResult] = []
        self.in_flight: dict[int, int] = {}  # request index -> worker part
        self.errors: list[str] = []

    def drain(self, source: Any, empty: type[Exception]) -> None:
        """Take everything the queue holds now."""
        while True:
            try:
                self.take(source.get_nowait())
            except empty:
                return

    def take(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "sent":
            self.in_flight[item[1]] = item[1] % self.parts
        elif kind == "result":
            r: RequestResult = item[1]
            self.in_flight.pop(r.index, None)
            self.results.append(r)
            self.on_result(r)
        elif kind == "error":
            self.errors.append(item[1])

    def finish(self, spec: LevelSpec, start: float) -> list[RequestResult]:
        """The results, with each request a dead worker had in flight recorded as lost."""
        if self.errors and not self.results and not self.in_flight:
            raise RigscopeError(f"every worker failed: {self.errors[0]}", exit_code=1)
        for index, part in sorted(self.in_flight.items()):
            lost = RequestResult(index=index, intended=start, start=start,
                                 warmup=index < spec.warmup, status="error",
                                 reason="worker_lost",
                                 detail=f"worker {part + 1} of {self.parts} died"
                                        + (f" ({self.errors[0]})" if self.errors else ""))
            self.results.append(lost)
            self.on_result(lost)
        return self.results


async def run_level_workers(config: Any, spec: LevelSpec, seed: int, workers: int,
                            on_result: Callable[[RequestResult], None],
                            worker: Callable[..., None] = _worker) -> list[RequestResult]:
    """Run one level over `workers` processes; on_result sees each request as it lands.
    `worker` is the process body (tests give one that dies)."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = time.perf_counter() + START_DELAY_S
    parts = shards(spec, workers, start)
    procs = [ctx.Process(target=worker, args=(config, spec, seed, s, out), daemon=True)
             for s in parts]
    for p in procs:
        p.start()
    collected = _Collector(len(parts), on_result)
    while True:  # poll: no thread blocks on the queue, results are stored as they land
        alive = any(p.is_alive() for p in procs)
        collected.drain(out, queue_mod.Empty)
        if not alive:
            collected.drain(out, queue_mod.Empty)  # what the last ones put before exiting
            break
        await asyncio.sleep(POLL_S)
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
    return collected.finish(spec, start)


RAY_START_DELAY_S = 3.0  # tasks are scheduled, imported and connected before the start


def _ray_shard(config: Any, spec: LevelSpec, seed: int, shard: Shard, start_wall: float,
               out: Any) -> None:
    """A Ray task: the shard's start moved from the wall clock to this machine's monotonic
    clock, then the same body as a local worker."""
    from dataclasses import replace

    local = time.perf_counter() + (start_wall - time.time())
    _worker(config, spec, seed, replace(shard, start=local), out)


async def run_level_ray(address: str, config: Any, spec: LevelSpec, seed: int, workers: int,
                        on_result: Callable[[RequestResult], None]) -> list[RequestResult]:
    """Run one level as `workers` tasks on the Ray cluster at `address` (Ray schedules them;
    results stream back through a Ray queue as each request finishes). A task that dies
    loses its in-flight requests, recorded as worker_lost."""
    try:
        import ray
        from ray.util.queue import Empty, Queue
    except ImportError:
        raise RigscopeError("--ray needs Ray: pip install 'rigscope[ray]'", exit_code=1) from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise RigscopeError(f"cannot join the Ray cluster at {address}: "
                                f"{' '.join(str(e).split())[:200]}", exit_code=1) from None
    out = Queue()
    start_wall = time.time() + RAY_START_DELAY_S
    parts = shards(spec, workers, 0.0)
    task = ray.remote(max_retries=0, num_cpus=1)(_ray_shard)
    refs = [task.remote(config, spec, seed, s, start_wall, out) for s in parts]
    collected = _Collector(len(parts), on_result)
    pending = list(refs)
    while True:
        collected.drain(out, Empty)
        # completion only (fetch_local=False): polling with timeout=0 while each call
        # starts fetching the result to this node can keep a finished task "not ready"
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0,
                                  fetch_local=False)
        for ref in ready:
            try:
                ray.get(ref)
            except Exception as e:  # noqa: BLE001 - a crashed or failed task
                collected.errors.append(f"{type(e).__name__}: {str(e)[:200]}")
        if not pending:
            collected.drain(out, Empty)
            break
        await asyncio.sleep(POLL_S)
    return collected.finish(spec, start_wall)
