"""The asyncio load generator: closed loop (concurrency) or open loop (constant/Poisson rate).

Every request carries the time it was meant to start, so backlog in the client shows up as
dispatch delay instead of hiding in the latencies (coordinated omission).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from rigscope.bench.clients import Api, Work, send
from rigscope.bench.http import Pool
from rigscope.bench.metrics import RequestResult
from rigscope.bench.workloads import Workload

TURNS = 4  # requests per conversation for chat and agent workloads


@dataclass(frozen=True)
class LevelSpec:
    concurrency: int | None = None  # closed loop: this many requests in flight
    rate: float | None = None  # open loop: requests per second
    poisson: bool = False  # exponential gaps instead of constant ones
    requests: int | None = 16  # measured requests (warmup excluded); None: until duration
    duration: float | None = None  # seconds
    warmup: int = 1


@dataclass
class Target:
    pool: Pool
    api: Api
    model: str
    headers: dict[str, str]
    fixed_length: bool = True
    timeout: float = 600.0
    stall_timeout: float = 60.0

    async def send(self, work: Work, index: int, intended: float, warmup: bool
                   ) -> RequestResult:
        return await send(self.pool, self.api, work, self.model, index=index,
                          intended=intended, warmup=warmup, headers=self.headers,
                          fixed_length=self.fixed_length, timeout=self.timeout,
                          stall_timeout=self.stall_timeout)


async def run_level(target: Target, workload: Workload, spec: LevelSpec,
                    on_result: Callable[[RequestResult], None], seed: int = 0
                    ) -> list[RequestResult]:
    """Run one level; each finished request goes to on_result at once."""
    clock = target.pool.clock
    total = None if spec.requests is None else spec.requests + spec.warmup
    t0 = clock()
    deadline = t0 + spec.duration if spec.duration else None
    results: list[RequestResult] = []
    counter = 0

    def more() -> int | None:
        nonlocal counter
        if (total is not None and counter >= total) or (deadline and clock() >= deadline):
            return None
        counter += 1
        return counter - 1

    async def one(i: int, work: Work, intended: float) -> RequestResult:
        r = await target.send(work, i, intended, i < spec.warmup)
        results.append(r)
        on_result(r)
        return r

    conversational = workload.kind in ("chat", "agent") and workload.items is None
    if spec.rate is None:  # closed loop
        conversations = 0

        async def worker() -> None:
            nonlocal conversations
            while True:
                if conversational:
                    conv, conversations = conversations, conversations + 1
                    answer = None
                    for turn in range(TURNS):
                        i = more()
                        if i is None:
                            return
                        r = await one(i, workload.next_turn(conv, turn, answer), clock())
                        answer = r.text if r.status == "ok" else ""
                else:
                    i = more()
                    if i is None:
                        return
                    await one(i, workload.make(i), clock())

        await asyncio.gather(*(worker() for _ in range(spec.concurrency or 1)))
        return results
    rng = random.Random(seed)
    tasks = []
    intended = t0
    while (i := more()) is not None:
        delay = intended - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, workload.make(i), intended)))
        gap = rng.expovariate(spec.rate) if spec.poisson else 1 / spec.rate
        intended += gap
        if deadline and intended >= deadline:
            break
    await asyncio.gather(*tasks)
    return results
