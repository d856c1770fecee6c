"""One level's load from several local processes (bench --workers N), for servers that one
client process cannot saturate.

Each worker runs a Shard of the level (load.Shard): every N-th request index, its share of
the concurrent streams, the level's intended schedule kept global on the shared monotonic
clock. Results come back to this process as each request finishes and are stored here, in
the one SQLite store. A worker that dies loses only the requests it had in flight; they are
recorded as failures with reason `worker_lost`."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue as queue_mod
import time
from collections.abc import Callable
from typing import Any

from rigscope.bench.config import make_workload, prepare
from rigscope.bench.load import LevelSpec, Shard, run_level
from rigscope.bench.metrics import RequestResult

START_DELAY_S = 1.0  # every worker is up (spawned, imported, connected) before the start


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
    results: list[RequestResult] = []
    in_flight: dict[int, int] = {}  # request index -> worker part
    done: set[int] = set()
    errors: list[str] = []

    def take(item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "sent":
            in_flight[item[1]] = item[1] % len(parts)
        elif kind == "result":
            r: RequestResult = item[1]
            in_flight.pop(r.index, None)
            results.append(r)
            on_result(r)
        elif kind == "done":
            done.add(item[1])
        else:
            errors.append(item[1])

    while True:
        try:
            take(await asyncio.to_thread(out.get, True, 0.2))
            continue
        except queue_mod.Empty:
            pass
        if all(not p.is_alive() for p in procs):
            while True:  # what the last ones put before exiting
                try:
                    take(out.get_nowait())
                except queue_mod.Empty:
                    break
            break
    for p in procs:
        p.join()
    if errors and not results and not in_flight:
        from rigscope.errors import RigscopeError

        raise RigscopeError(f"every worker failed: {errors[0]}", exit_code=1)
    for index, part in sorted(in_flight.items()):  # sent by a worker that died: lost
        lost = RequestResult(index=index, intended=start, start=start,
                             warmup=index < spec.warmup, status="error",
                             reason="worker_lost",
                             detail=f"worker {part + 1} of {len(parts)} died"
                                    + (f" ({errors[0]})" if errors else ""))
        results.append(lost)
        on_result(lost)
    return results
