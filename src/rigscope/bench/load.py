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
from rigscope.bench.workloads import WorkloadGenerator

TURNS = 4  # requests per conversation for chat and agent workloads
# failures after which the client checks whether the server is still there
GONE_REASONS = {"connect_error", "connect_timeout", "connection_reset", "stalled", "timeout",
                "empty_response"}


class ServerGone(Exception):
    """The server stopped answering (or its supervised process died) during a level."""

    def __init__(self, why: str, index: int, work: Work, results: list[RequestResult]) -> None:
        super().__init__(why)
        self.why, self.index, self.work, self.results = why, index, work, results

    def during(self) -> str:
        size = (f"a {self.work.prompt_tokens:,}-token prompt" if self.work.prompt_tokens
                else f"a {len(self.work.prompt.split()):,}-word prompt")
        return f"during request {self.index + 1} ({size})"


@dataclass(frozen=True)
class LevelSpec:
    concurrency: int | None = None  # closed loop: this many requests in flight
    rate: float | None = None  # open loop: requests per second
    poisson: bool = False  # exponential gaps instead of constant ones
    requests: int | None = 16  # measured requests (warmup excluded); None: until duration
    duration: float | None = None  # seconds
    warmup: int = 1
    position: int = 0  # the level's place in its run: its prompts are its own
    depth: int | None = None  # tokens of context before each prompt (bench --depth)
    prompt_tokens: int | None = None  # the level's own sizes (bench --sweep)
    output_tokens: int | None = None
    trace_speed: float = 1.0  # a trace replays at its timestamps divided by this

    @property
    def trace(self) -> bool:
        """A trace level: sent at the trace's own times, neither closed nor open loop."""
        return self.concurrency is None and self.rate is None


@dataclass
class Target:
    pool: Pool
    api: Api
    model: str
    headers: dict[str, str]
    fixed_length: bool = True
    timeout: float = 600.0
    stall_timeout: float = 60.0
    # a supervised server's death, in words (None while it runs); see llamacpp.server
    watch: Callable[[], str | None] | None = None

    async def gone(self) -> str | None:
        """Why the server is gone (its process died, or it refuses connections), or None."""
        if self.watch is not None:
            # a dying process may still accept connections for a moment before it exits:
            # give it a second to be seen dead before trusting an open socket
            for _ in range(20):
                if (why := self.watch()) is not None:
                    return why
                await asyncio.sleep(0.05)
        return await self.pool.reachable()

    async def send(self, work: Work, index: int, intended: float, warmup: bool
                   ) -> RequestResult:
        return await send(self.pool, self.api, work, self.model, index=index,
                          intended=intended, warmup=warmup, headers=self.headers,
                          fixed_length=self.fixed_length, timeout=self.timeout,
                          stall_timeout=self.stall_timeout)


@dataclass(frozen=True)
class Shard:
    """This process's part of a level run by several (bench --workers): request indices
    `part`, `part + parts`, ...; `concurrency` of the level's streams (closed loop); the
    level's common start on the shared monotonic clock (open loop: the intended schedule
    stays global, each part sends its own requests at their intended times)."""

    part: int = 0
    parts: int = 1
    concurrency: int | None = None
    start: float | None = None


async def run_level(target: Target, workload: WorkloadGenerator, spec: LevelSpec,
                    on_result: Callable[[RequestResult], None], seed: int = 0,
                    shard: Shard = Shard(),
                    on_send: Callable[[int], None] = lambda i: None
                    ) -> list[RequestResult]:
    """Run one level (or this shard of it); each finished request goes to on_result at once,
    each index to on_send as it is sent.

    A failure that means the server may be gone is checked at once; if it is, the level
    stops (in-flight requests are cancelled) and ServerGone carries what completed.
    """
    clock = target.pool.clock
    workload = workload.shaped(spec.position, spec.depth or 0, spec.prompt_tokens,
                               spec.output_tokens)
    times = workload.times if spec.trace else None
    total = None if spec.requests is None else spec.requests + spec.warmup
    if times is not None:
        total = min(total or len(times), len(times))
    t0 = shard.start if shard.start is not None else clock()
    deadline = t0 + spec.duration if spec.duration else None
    results: list[RequestResult] = []
    counter = shard.part

    def more() -> int | None:
        nonlocal counter
        if (total is not None and counter >= total) or (deadline and clock() >= deadline):
            return None
        counter += shard.parts
        return counter - shard.parts

    async def one(i: int, work: Work, intended: float) -> RequestResult:
        on_send(i)
        r = await target.send(work, i, intended, i < spec.warmup)
        results.append(r)
        on_result(r)
        if r.status != "ok" and r.reason in GONE_REASONS:
            why = await target.gone()
            if why is not None:
                raise ServerGone(why, i, work, results)
        return r

    conversational = workload.kind in ("chat", "agent") and workload.items is None
    conversations = 0

    async def worker() -> None:  # closed loop: one request in flight per worker
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

    async def schedule(group: asyncio.TaskGroup) -> None:  # open loop: sends on a clock
        rng = random.Random(seed)
        rate, intended, i = spec.rate or 1.0, t0, 0
        while (total is None or i < total) and not (deadline and intended >= deadline):
            if times is not None:
                intended = t0 + times[i] / spec.trace_speed
            if i % shard.parts == shard.part:  # the schedule is global; send our own
                delay = intended - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                group.create_task(one(i, workload.make(i), intended))
            i += 1
            intended += rng.expovariate(rate) if spec.poisson else 1 / rate

    try:
        async with asyncio.TaskGroup() as group:  # a ServerGone cancels the rest
            if spec.rate is None and times is None:
                streams = shard.concurrency if shard.concurrency is not None \
                    else spec.concurrency or 1
                for _ in range(streams):
                    group.create_task(worker())
            else:
                await schedule(group)
    except ExceptionGroup as eg:
        gone = [e for e in eg.exceptions if isinstance(e, ServerGone)]
        if gone:
            raise gone[0] from None
        raise
    return results
