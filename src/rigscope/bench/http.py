"""A small asyncio HTTP/1.1 client built for measuring: exact timestamps, no pool limits.

Each request records when DNS, TCP connect, TLS and the response headers finished, whether
the connection was reused, and hands the body over as it arrives (chunked or sized), so
streaming clients can timestamp every piece. Connections are kept alive and reused; the
pool opens as many as the callers need.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rigscope import validate

Clock = Callable[[], float]


class HTTPFailure(Exception):
    """A request that did not complete; `reason` is a short, countable label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Timings:
    start: float  # clock() when the request began (before DNS or connection reuse)
    dns_s: float | None = None  # None: no lookup (reused connection or literal IP)
    connect_s: float | None = None
    tls_s: float | None = None
    sent: float = 0.0  # clock() when the request was written
    headers: float = 0.0  # clock() when the response headers were parsed
    reused: bool = False
    retried: bool = False  # a kept-alive connection closed before the answer: sent anew


@dataclass(eq=False)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    timings: Timings
    _conn: _Conn
    _pool: Pool
    _clock: Clock
    _done: bool = False
    chunk_times: list[float] = field(default_factory=list)

    async def iter_raw(self, stall_timeout: float | None = None) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (transfer framing removed)."""
        reader = self._conn.reader
        try:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                # Decode chunk framing from whatever has arrived: one read can carry many
                # chunks, and each yield hands over everything complete at that moment.
                buf = b""
                pos = 0
                ended = False
                while not ended:
                    data = await _wait(reader.read(65536), stall_timeout)
                    if not data:
                        raise HTTPFailure("connection_reset", "stream ended mid-body")
                    buf = buf[pos:] + data
                    pos = 0
                    out = []
                    while True:
                        eol = buf.find(b"\r\n", pos)
                        if eol < 0:
                            break
                        size = int(buf[pos:eol].split(b";", 1)[0].strip() or b"0", 16)
                        if size == 0:
                            ended = True
                            pos = eol + 2
                            break
                        end = eol + 2 + size
                        if len(buf) < end + 2:
                            break
                        out.append(buf[eol + 2:end])
                        pos = end + 2
                    if out:
                        yield b"".join(out)
                # the last chunk is followed by trailer lines, if any, and an empty line: read
                # them all before the connection carries another response
                tail = buf[pos:]
                while not (tail.startswith(b"\r\n") or b"\r\n\r\n" in tail):
                    data = await _wait(reader.read(65536), stall_timeout)
                    if not data:
                        raise HTTPFailure("connection_reset", "stream ended in the trailers")
                    tail += data
                rest = tail[2:] if tail.startswith(b"\r\n") else tail.split(b"\r\n\r\n", 1)[1]
                if rest:  # bytes no request asked for: the connection cannot be trusted
                    self._pool._discard(self._conn)
                    self._done = True
                    return
            elif "content-length" in self.headers:
                left = int(self.headers["content-length"])
                while left > 0:
                    data = await _wait(reader.read(min(left, 65536)), stall_timeout)
                    if not data:
                        raise HTTPFailure("connection_reset", "body ended early")
                    left -= len(data)
                    yield data
            else:  # delimited by close
                while data := await _wait(reader.read(65536), stall_timeout):
                    yield data
                self._pool._discard(self._conn)
                self._done = True
                return
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            self._pool._discard(self._conn)
            self._done = True
            raise HTTPFailure("connection_reset", str(e) or type(e).__name__) from None
        except ValueError as e:  # a bad chunk size line
            self._pool._discard(self._conn)
            self._done = True
            raise HTTPFailure("malformed_response", str(e)) from None
        self._done = True
        if self.headers.get("connection", "").lower() == "close":
            self._pool._discard(self._conn)
        else:
            self._pool._release(self._conn)

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.iter_raw()])

    def close(self) -> None:
        """Drop the connection unless the body was read to the end."""
        if not self._done:
            self._pool._discard(self._conn)
            self._done = True


async def _wait(aw: object, timeout: float | None) -> bytes:
    try:
        return await asyncio.wait_for(aw, timeout)  # type: ignore[arg-type]
    except TimeoutError:
        raise HTTPFailure("stalled", f"no data for {timeout:g} s") from None


class Pool:
    """Keep-alive connections to one origin; never limits how many are open at once."""

    def __init__(self, base_url: str, clock: Clock = time.perf_counter,
                 connect_timeout: float = 10.0) -> None:
        parts = urlsplit(validate.url(base_url))
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self.clock = clock
        self.connect_timeout = connect_timeout
        self._idle: list[_Conn] = []
        self._all: set[_Conn] = set()
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.host_header = parts.netloc

    async def _open(self, t: Timings) -> _Conn:
        """A new connection: every address the name resolves to is tried in turn (IPv6 and
        IPv4, in the resolver's order) until one accepts."""
        loop = asyncio.get_running_loop()
        host = self.host
        t0 = self.clock()
        try:
            infos = await loop.getaddrinfo(host, self.port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise HTTPFailure("connect_error", f"{self.host}:{self.port}: {e}") from None
        t1 = self.clock()
        t.dns_s = t1 - t0
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        errors = []
        for address in addresses:
            start = self.clock()
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(address, self.port), self.connect_timeout)
            except OSError as e:
                errors.append(f"{address}: {e.strerror or e}")
                continue
            except TimeoutError:
                errors.append(f"{address}: no answer in {self.connect_timeout:g} s")
                continue
            t2 = self.clock()
            t.connect_s = t2 - start
            if self._ssl is not None:
                try:
                    await writer.start_tls(self._ssl, server_hostname=host)
                except (OSError, ssl.SSLError) as e:
                    writer.close()
                    raise HTTPFailure("tls_error", f"{self.host}:{self.port}: {e}") from None
                t.tls_s = self.clock() - t2
            conn = _Conn(reader, writer)
            self._all.add(conn)
            return conn
        timed_out = all("no answer" in e for e in errors)
        raise HTTPFailure("connect_timeout" if timed_out else "connect_error",
                          f"{self.host}:{self.port}: " + "; ".join(errors))

    async def reachable(self) -> str | None:
        """None when a fresh connection opens; else why not ('connect_error: ... refused')."""
        t = Timings(start=self.clock())
        try:
            conn = await self._open(t)
        except HTTPFailure as e:
            return f"{e.reason}: {e.detail}" if e.detail else e.reason
        self._discard(conn)
        return None

    def _release(self, conn: _Conn) -> None:
        if conn in self._all:
            self._idle.append(conn)

    def _discard(self, conn: _Conn) -> None:
        if conn in self._all:
            self._all.discard(conn)
            conn.writer.close()

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None,
                      header_timeout: float | None = None) -> Response:
        """Send a request; returns once the response headers are in."""
        t = Timings(start=self.clock())
        head = [f"{method} {self.base_path}{path} HTTP/1.1", f"Host: {self.host_header}",
                "Accept: */*", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        # A kept-alive connection may have been closed by the server while it sat idle: when
        # it ends before any byte of the answer, the request goes once more on a new
        # connection (never on another idle one, which may be just as stale).
        for attempt in (0, 1):
            if self._idle and not attempt:
                conn, t.reused = self._idle.pop(), True
            else:
                conn, t.reused = await self._open(t), False
            try:
                conn.writer.write(payload)
                await conn.writer.drain()
                t.sent = self.clock()
                raw = await _wait(conn.reader.readuntil(b"\r\n\r\n"), header_timeout)
                t.headers = self.clock()
                break
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                self._discard(conn)
                answered = isinstance(e, asyncio.IncompleteReadError) and bool(e.partial)
                if not t.reused or attempt or answered:
                    raise HTTPFailure("connection_reset", str(e) or type(e).__name__) from None
                t.retried = True
            except HTTPFailure:
                self._discard(conn)
                raise
        while True:
            lines = raw.decode("latin-1").split("\r\n")
            try:
                _, code, *reason = lines[0].split(" ", 2)
                status = int(code)
            except ValueError:
                self._discard(conn)
                raise HTTPFailure("malformed_response", lines[0][:80]) from None
            if not 100 <= status < 200 or status == 101:
                break
            try:  # 100 Continue, 103 Early Hints: the final response follows
                raw = await _wait(conn.reader.readuntil(b"\r\n\r\n"), header_timeout)
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                self._discard(conn)
                raise HTTPFailure("connection_reset", str(e) or type(e).__name__) from None
            t.headers = self.clock()
        hdrs = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        return Response(status, reason[0] if reason else "", hdrs, t, conn, self, self.clock)

    async def close(self) -> None:
        for conn in list(self._all):
            self._discard(conn)
        self._idle.clear()
