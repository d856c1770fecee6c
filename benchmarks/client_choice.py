"""Keep rigscope's own HTTP client, or move to aiohttp? The same accuracy and ceiling runs
as bench_accuracy.py, once with each client.

    .venv/bin/pip install aiohttp   # only for this comparison; rigscope does not need it
    .venv/bin/python benchmarks/client_choice.py [--quick]

The aiohttp variant stands in for rigscope.bench.http.Pool behind the same interface (the
request returns at the response headers, the body streams as it arrives), so everything
else — load generation, SSE parsing, timestamps, storage — is the same code.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import bench_accuracy

import rigscope.bench.run as bench_run
from rigscope.bench.http import HTTPFailure, Timings


class AioResponse:
    def __init__(self, resp: aiohttp.ClientResponse, timings: Timings) -> None:
        self._resp = resp
        self.status = resp.status
        self.reason = resp.reason or ""
        self.headers = {k.lower(): v for k, v in resp.headers.items()}
        self.timings = timings

    async def iter_raw(self, stall_timeout: float | None = None) -> AsyncIterator[bytes]:
        try:
            async for data in self._resp.content.iter_any():
                yield data
        except (aiohttp.ClientError, TimeoutError) as e:
            raise HTTPFailure("connection_reset", str(e)) from None
        finally:
            self._resp.release()

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.iter_raw()])

    def close(self) -> None:
        self._resp.close()


class AioPool:
    def __init__(self, base_url: str, clock: Any = time.perf_counter,
                 connect_timeout: float = 10.0) -> None:
        self.base = base_url.rstrip("/")
        self.clock = clock
        url = aiohttp.client.URL(base_url)
        self.scheme, self.host, self.port = url.scheme, url.host or "", url.port or 80
        self._session: aiohttp.ClientSession | None = None

    def _s(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None,
                      header_timeout: float | None = None) -> AioResponse:
        t = Timings(start=self.clock())
        try:
            resp = await self._s().request(method, self.base + path, data=body or None,
                                           headers=headers)
        except (aiohttp.ClientError, OSError) as e:
            raise HTTPFailure("connect_error", str(e)) from None
        t.sent = t.headers = self.clock()
        return AioResponse(resp, t)

    async def reachable(self) -> str | None:
        try:
            r = await self.request("GET", "/")
            r.close()
        except HTTPFailure as e:
            return e.detail
        return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    own = bench_run.Pool
    for name, pool in (("rigscope http.Pool", own), ("aiohttp", AioPool)):
        bench_run.Pool = pool  # type: ignore[misc,assignment]
        print(f"--- {name}")
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            for c, n in ((1, 20), (16, 160), (64, 384)):
                bench_accuracy.accuracy(c, n // 2 if args.quick else n, tmp)
            for c in (16, 64):
                bench_accuracy.accuracy(c, 64, tmp, warmup=1, ttft=0.1, itl=0.01, tokens=64)
            bench_accuracy.ceiling(2.0 if args.quick else 5.0, tmp)
    bench_run.Pool = own  # type: ignore[misc]


if __name__ == "__main__":
    main()
