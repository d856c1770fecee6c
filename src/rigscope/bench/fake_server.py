"""A fake OpenAI-compatible streaming server with known timing, for tests and benchmarks.

It schedules each chunk at an absolute deadline (request arrival + TTFT + k x ITL), logs when
it really wrote each one (time.perf_counter, the same monotonic clock as the client's on one
machine), and can inject faults: HTTP 500, 429, a reset mid-stream, malformed SSE, a stall.

    python -m rigscope.bench.fake_server --port 0 --ttft 0.05 --itl 0.01 --log server.jsonl

prints "listening on PORT" once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from rigscope.bench.metrics import steady_interval


@dataclass
class FakeConfig:
    model: str = "fake-model"
    ttft_s: float = 0.0
    ttft_per_active_s: float = 0.0  # added TTFT per request already in flight (load)
    itl_s: float = 0.0  # per token
    tokens_per_chunk: int = 1
    output_tokens: int | None = None  # default: the request's max_tokens
    error_rate: float = 0.0  # HTTP 500
    rate_limit_rate: float = 0.0  # HTTP 429
    reset_rate: float = 0.0  # close the connection mid-stream
    malformed_rate: float = 0.0  # a data line that is not JSON
    stall_rate: float = 0.0  # stop sending for stall_s mid-stream
    stall_s: float = 30.0
    answers: str | None = None  # JSON file {prompt substring: reply}: answer from it
    logprob_shift: float = 0.0  # perturbs the log-probabilities it reports (0: none)
    metrics: int = 1  # serve a vLLM-style /metrics page (0: none)
    # prompt processing: TTFT adds uncached prompt tokens / prefill_tps and cached ones /
    # cached_prefill_tps (0: that part costs nothing)
    prefill_tps: float = 0.0
    cached_prefill_tps: float = 0.0
    prefix_cache: int = 0  # 1: reuse the longest prompt prefix (in words) seen before
    itl_per_ktoken_s: float = 0.0  # ITL grows this much per 1,000 prompt tokens (depth)
    draft_n: int = 0  # speculative decoding: tokens drafted per request (llama.cpp timings)
    draft_accept: float = 0.0  # ... of which this share is accepted
    power_w: float = 0.0  # watts on /metrics (DCGM's series) while a request runs (0: none)
    idle_power_w: float = 0.0  # ... and while none does
    close_after: int = 0  # close a kept-alive connection, unannounced, after N responses
    seed: int = 0


@dataclass
class Served:
    """What the server did for one request (perf_counter times)."""

    id: int
    path: str
    received: float
    status: int = 200
    fault: str | None = None
    tokens: int = 0
    sent: list[float] = field(default_factory=list)  # each content chunk written
    tokens_per_chunk: int = 1
    prompt_hash: str = ""  # of the prompt's text: tells distinct prompts apart
    prompt_tokens: int = 0
    cached_tokens: int = 0  # taken from the prefix cache
    ttft_s: float = 0.0  # the TTFT it scheduled (before load)
    itl_s: float = 0.0  # the ITL it scheduled
    draft_n: int = 0
    draft_accepted: int = 0


class FakeServer:
    def __init__(self, config: FakeConfig, log: IO[str] | None = None) -> None:
        self.config = config
        self.log = log
        self.served: list[Served] = []
        self._rng = random.Random(config.seed)
        self._count = 0
        self._active = 0
        self._answers: dict[str, str] = (
            json.loads(Path(config.answers).read_text()) if config.answers else {})
        self.server: asyncio.Server | None = None
        self._cache: list[list[str]] = []  # prompts seen, as words (prefix_cache)
        self._queried = self._hits = 0  # prompt tokens asked for, and found in the cache

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.server = await asyncio.start_server(self._handle, host, port, backlog=4096)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        try:
            while True:
                if self.config.close_after and answered >= self.config.close_after:
                    # as a server that times out idle connections: it said keep-alive,
                    # then closes without a word once the client has gone quiet
                    await asyncio.sleep(0.05)
                    return
                answered += 1
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                received = time.perf_counter()
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                keep = await self._respond(method, path, body, received, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _respond(self, method: str, path: str, body: bytes, received: float,
                       writer: asyncio.StreamWriter) -> bool:
        c = self.config
        if method == "GET" and path.endswith("/v1/models"):
            self._json(writer, 200, {"object": "list", "data": [{"id": c.model,
                                                                   "object": "model"}]})
            return True
        if method == "GET" and path.endswith("/metrics") and c.metrics:
            text = ("# TYPE vllm:num_requests_running gauge\n"
                    f'vllm:num_requests_running{{model_name="{c.model}"}} {self._active}\n'
                    f'vllm:num_requests_waiting{{model_name="{c.model}"}} 0\n'
                    f'vllm:kv_cache_usage_perc{{model_name="{c.model}"}} '
                    f"{min(1.0, self._active / 64)}\n")
            if c.prefix_cache:  # vLLM's counters, in tokens, of what it has served
                text += (f"vllm:prefix_cache_queries_total {self._queried}\n"
                         f"vllm:prefix_cache_hits_total {self._hits}\n")
            if c.power_w or c.idle_power_w:
                watts = c.power_w if self._active else c.idle_power_w
                text += f'DCGM_FI_DEV_POWER_USAGE{{gpu="0"}} {watts}\n'
                if self.log is not None:  # what it reported, when: the truth for energy
                    self.log.write(json.dumps({"power_w": watts,
                                               "t": time.perf_counter()}) + "\n")
                    self.log.flush()
            page = text.encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(page), page))
            return True
        if method != "POST" or not path.endswith(("/chat/completions", "/v1/completions")):
            self._json(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return True
        self._count += 1
        rec = Served(id=self._count, path=path, received=received,
                     tokens_per_chunk=c.tokens_per_chunk)
        self.served.append(rec)
        try:
            req = json.loads(body)
        except ValueError:
            req = {}
        if req.get("model") not in (None, c.model):
            rec.status = 404
            self._json(writer, 404, {"error": {"message": f"model {req.get('model')!r} "
                                                          f"not found; have {c.model}"}})
            return self._logged(rec, True)
        fault = self._fault()
        rec.fault = fault
        if fault in ("error", "rate_limit"):
            rec.status = 500 if fault == "error" else 429
            self._json(writer, rec.status, {"error": {"message": fault}})
            return self._logged(rec, True)
        n = c.output_tokens or int(req.get("max_tokens") or 16)
        chat = path.endswith("/chat/completions")
        prompt = _prompt_text(req).split()
        rec.prompt_hash = hashlib.sha256(" ".join(prompt).encode()).hexdigest()[:16]
        rec.prompt_tokens = len(prompt)
        if c.prefix_cache:
            rec.cached_tokens = max((_common(prompt, seen) for seen in self._cache), default=0)
            rec.cached_tokens = min(rec.cached_tokens, len(prompt) - 1)  # one is always new
            self._cache.append(prompt)
            self._queried += rec.prompt_tokens
            self._hits += rec.cached_tokens
        new_tokens = rec.prompt_tokens - rec.cached_tokens
        rec.ttft_s = (c.ttft_s + (new_tokens / c.prefill_tps if c.prefill_tps else 0.0)
                      + (rec.cached_tokens / c.cached_prefill_tps
                         if c.cached_prefill_tps else 0.0))
        rec.itl_s = c.itl_s + c.itl_per_ktoken_s * rec.prompt_tokens / 1000
        if c.draft_n:
            rec.draft_n = c.draft_n
            rec.draft_accepted = round(c.draft_n * c.draft_accept)
        reply = self._reply(req)
        if reply is not None:
            n = len(reply)
        self._active += 1
        try:
            return await self._stream(rec, req, n, chat, received, fault, writer, reply)
        finally:
            self._active -= 1

    def _reply(self, req: dict[str, Any]) -> list[str] | None:
        """Words of the scripted answer whose key occurs in the prompt, if any."""
        text = req.get("prompt") or " ".join(m.get("content", "") for m in
                                             req.get("messages", []))
        for key, reply in self._answers.items():
            if key in str(text):
                words = reply.split(" ")
                return [w if i == 0 else " " + w for i, w in enumerate(words)]
        return None

    def _logprobs(self, tokens: list[str]) -> dict[str, Any]:
        """Deterministic top-3 log-probabilities for the tokens sent, shifted by the knob."""
        shift = self.config.logprob_shift
        content = []
        for t in tokens:
            top = [{"token": t, "logprob": -0.1 - shift},
                   {"token": t + "x", "logprob": -2.5 + shift}, {"token": "~", "logprob": -4.0}]
            content.append({"token": t, "logprob": top[0]["logprob"], "top_logprobs": top})
        return {"content": content}

    async def _stream(self, rec: Served, req: dict[str, Any], n: int, chat: bool,
                      received: float, fault: str | None, writer: asyncio.StreamWriter,
                      reply: list[str] | None = None) -> bool:
        c = self.config
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n")
        start = received + rec.ttft_s + (self._active - 1) * c.ttft_per_active_s
        chunks = (n + c.tokens_per_chunk - 1) // c.tokens_per_chunk
        fault_at = self._rng.randrange(max(chunks, 1)) if fault else -1
        sent_tokens = 0
        for k in range(chunks):
            deadline = start + k * c.tokens_per_chunk * rec.itl_s
            delay = deadline - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if k == fault_at and fault == "reset":
                writer.transport.abort()
                return self._logged(rec, False)
            if k == fault_at and fault == "stall":
                await asyncio.sleep(c.stall_s)
            take = min(c.tokens_per_chunk, n - sent_tokens)
            pieces = (reply[sent_tokens:sent_tokens + take] if reply is not None
                      else [" tok"] * take)
            text = "".join(pieces)
            if k == fault_at and fault == "malformed":
                event = b"data: {not json\n\n"
            elif chat:
                choice: dict[str, Any] = {"index": 0, "delta": {"content": text},
                                          "finish_reason": None}
                if req.get("logprobs"):
                    choice["logprobs"] = self._logprobs(pieces)
                event = _sse({"id": f"c{rec.id}", "object": "chat.completion.chunk",
                              "model": c.model, "choices": [choice]})
            else:
                event = _sse({"id": f"c{rec.id}", "object": "text_completion", "model": c.model,
                              "choices": [{"index": 0, "text": text, "finish_reason": None}]})
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            rec.sent.append(time.perf_counter())
            sent_tokens += take
            if writer.transport.get_write_buffer_size() > 65536:
                await writer.drain()
        rec.tokens = sent_tokens
        usage: dict[str, Any] = {"prompt_tokens": rec.prompt_tokens,
                                 "completion_tokens": sent_tokens,
                                 "total_tokens": rec.prompt_tokens + sent_tokens}
        if c.prefix_cache:
            usage["prompt_tokens_details"] = {"cached_tokens": rec.cached_tokens}
        last: dict[str, Any] = {"id": f"c{rec.id}", "choices": [], "usage": usage}
        if rec.draft_n:  # as llama-server's final chunk carries them
            last["timings"] = {"draft_n": rec.draft_n, "draft_n_accepted": rec.draft_accepted}
        tail = _sse(last) + b"data: [DONE]\n\n"
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
        await writer.drain()
        return self._logged(rec, True)

    def _fault(self) -> str | None:
        c, r = self.config, self._rng.random()
        for name, rate in (("error", c.error_rate), ("rate_limit", c.rate_limit_rate),
                           ("reset", c.reset_rate), ("malformed", c.malformed_rate),
                           ("stall", c.stall_rate)):
            if r < rate:
                return name
            r -= rate
        return None

    def _json(self, writer: asyncio.StreamWriter, status: int, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests",
                  500: "Internal Server Error"}[status]
        writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (status, reason.encode(), len(body), body))

    def _logged(self, rec: Served, keep: bool) -> bool:
        if self.log is not None:
            self.log.write(json.dumps(asdict(rec)) + "\n")
            self.log.flush()
        return keep


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _prompt_text(req: dict[str, Any]) -> str:
    return str(req.get("prompt") or " ".join(m.get("content", "")
                                             for m in req.get("messages", [])))


def _common(a: list[str], b: list[str]) -> int:
    """Words the two prompts share from their start."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def served_rate(served: list[Served], concurrency: int | None = None) -> float:
    """Output tokens per second the server realized: over the same steady interval the
    client's summary uses (metrics.steady_interval, on the server's own times), or over
    the whole span when `concurrency` is None."""
    spans = [(s.received, s.sent[-1]) for s in served if s.sent]
    window = steady_interval(spans, concurrency) if concurrency else None
    t0, t1 = window or (min(a for a, _ in spans), max(b for _, b in spans))
    written = sum(s.tokens / len(s.sent) for s in served if s.sent
                  for c in s.sent if t0 <= c <= t1)
    return written / (t1 - t0)


def read_log(path: Path) -> list[Served]:
    """The requests the server logged."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [Served(**d) for d in lines if "power_w" not in d]


def read_power_log(path: Path) -> list[tuple[float, float]]:
    """The (time, watts) readings its /metrics page reported."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [(d["t"], d["power_w"]) for d in lines if "power_w" in d]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", type=Path, help="append one JSON line per request")
    for f in FakeConfig.__dataclass_fields__.values():
        if f.name != "seed" and f.type in ("float", "int", "str", "int | None", "str | None"):
            kind = str if f.type.startswith("str") else (float if f.type == "float" else int)
            flag = f.name[:-2] if f.name.endswith("_s") else f.name
            ap.add_argument("--" + flag.replace("_", "-"), dest=f.name, type=kind,
                            default=f.default)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    config = FakeConfig(**{k: getattr(args, k) for k in FakeConfig.__dataclass_fields__})
    log = args.log.open("a") if args.log else None

    async def serve() -> None:
        server = FakeServer(config, log)
        port = await server.start(args.host, args.port)
        print(f"listening on {port}", flush=True)
        assert server.server is not None
        await server.server.serve_forever()

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
