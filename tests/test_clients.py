"""API clients against recorded responses (Ollama cannot be installed here), and workloads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rigscope.bench.clients import APIS, Work, detect_api, send
from rigscope.bench.http import Pool
from rigscope.bench.workloads import WorkloadGenerator as Workload
from rigscope.errors import RigscopeError

DATA = Path(__file__).parent / "data"


async def replay(body: bytes, content_type: str, routes: dict[str, bytes] | None = None,
                 pieces: int = 3) -> tuple[asyncio.Server, str, list[bytes]]:
    """Serve `body` in chunked pieces to every POST; GET paths from `routes` as JSON."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(next((h.split(b":")[1] for h in head.split(b"\r\n")
                               if h.lower().startswith(b"content-length")), b"0"))
            seen.append(head + await reader.readexactly(length))
            path = head.split(b" ")[1].decode()
            if head.startswith(b"GET"):
                doc = (routes or {}).get(path)
                status = b"200 OK" if doc is not None else b"404 Not Found"
                doc = doc or b"{}"
                writer.write(b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s"
                             % (status, len(doc), doc))
                continue
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n" % content_type.encode())
            step = max(len(body) // pieces, 1)
            for i in range(0, len(body), step):
                part = body[i:i + step]
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
                await asyncio.sleep(0.002)
            writer.write(b"0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen


def run_api(api: str, recording: str, content_type: str) -> tuple:  # noqa: ANN201
    async def go() -> tuple:  # noqa: ANN202
        server, url, seen = await replay((DATA / recording).read_bytes(), content_type)
        pool = Pool(url)
        r = await send(pool, APIS[api](), Work(prompt="why is the sky blue", output_tokens=4),
                       "llama3.2:3b", index=0, intended=pool.clock())
        await pool.close()
        server.close()
        return r, seen
    return asyncio.run(go())


def test_ollama_generate_reads_server_durations() -> None:
    r, seen = run_api("ollama", "ollama_generate_stream.ndjson", "application/x-ndjson")
    assert r.status == "ok" and r.text == "The sky is blue"
    assert r.output_tokens == 4 and r.prompt_tokens == 26
    assert r.server == {"total_duration": 0.512, "load_duration": 0.021,
                        "prompt_eval_duration": 0.13, "eval_duration": 0.04}
    assert b'"num_predict": 4' in seen[0] and b"POST /api/generate" in seen[0]


def test_ollama_chat_without_prompt_eval_count() -> None:
    r, seen = run_api("ollama-chat", "ollama_chat_stream.ndjson", "application/x-ndjson")
    assert r.text == "Hi there" and r.output_tokens == 2 and r.prompt_tokens is None
    assert b'"messages"' in seen[0] and b"POST /api/chat" in seen[0]


def test_llamacpp_completion_timings() -> None:
    r, seen = run_api("llamacpp", "llamacpp_completion_stream.sse", "text/event-stream")
    assert r.text == "Hello world" and r.output_tokens == 2 and r.prompt_tokens == 7
    assert r.server == {"prompt_n": 7, "prompt_ms": 12.5, "predicted_n": 2, "predicted_ms": 18.0}
    assert b'"ignore_eos": true' in seen[0] and b'"n_predict": 4' in seen[0]


@pytest.mark.parametrize(("routes", "api"), [
    ({"/v1/models": b'{"data": []}'}, "openai"),
    ({"/api/tags": b'{"models": []}'}, "ollama"),
    ({"/props": b'{"total_slots": 1}'}, "llamacpp"),
])
def test_api_detection(routes: dict[str, bytes], api: str) -> None:
    async def go() -> str:
        server, url, _ = await replay(b"", "text/plain", routes)
        pool = Pool(url)
        try:
            return await detect_api(pool)
        finally:
            await pool.close()
            server.close()
    assert asyncio.run(go()) == api


def test_workloads_are_deterministic_and_shaped() -> None:
    a, b = Workload("synthetic", 100, 10, seed=1), Workload("synthetic", 100, 10, seed=1)
    assert [a.make(i).prompt for i in range(3)] == [b.make(i).prompt for i in range(3)]
    assert a.make(0).prompt != Workload("synthetic", 100, 10, seed=2).make(0).prompt
    assert len(a.make(0).prompt.split()) == 100
    rag = Workload("rag", 4000, 50).make(0)
    assert rag.prompt.count("Document ") == 4 and len(rag.prompt.split()) > 3900
    agent = Workload("agent", 200, 10)
    first = agent.next_turn(0, 0, None)
    second = agent.next_turn(0, 1, "I will call the tool.")
    assert len(second.prompt) > len(first.prompt) and "I will call the tool." in second.prompt
    assert [m["role"] for m in second.messages] == ["user", "assistant", "user"]


def test_jsonl_workload(tmp_path: Path) -> None:
    f = tmp_path / "w.jsonl"
    f.write_text('{"prompt": "a b c", "output_tokens": 7}\n\n{"messages": [{"role": "user", '
                 '"content": "hello"}]}\n')
    w = Workload("file", path=f)
    assert w.make(0).output_tokens == 7 and w.make(1).prompt == "hello"
    assert w.make(2).prompt == "a b c"
    (tmp_path / "bad.jsonl").write_text('{"output_tokens": 3}\n')
    with pytest.raises(RigscopeError, match="needs a 'prompt'"):
        Workload("file", path=tmp_path / "bad.jsonl")


# --- the HTTP client: framing edge cases, every address, 1xx ------------------------------

async def _raw_server(script: list[list[bytes | float]]) -> tuple[asyncio.Server, int]:
    """Answer the n-th request on a connection with script[n]: bytes are written, floats are
    pauses (seconds) between writes."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for steps in script:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            for step in steps:
                if isinstance(step, float):
                    await writer.drain()
                    await asyncio.sleep(step)
                else:
                    writer.write(step)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("ending", [
    [b"0\r\n", 0.05, b"\r\n"],  # the closing CRLF arrives in a later packet
    [b"0\r\nX-Trailer: 1\r\n", 0.05, b"Another: 2\r\n\r\n"],  # trailers, split
    [b"0\r\n\r\n"],
])
def test_chunked_end_and_trailers_are_consumed_before_reuse(ending: list[bytes | float]
                                                             ) -> None:
    async def go() -> list[bytes]:
        server, port = await _raw_server([
            [CHUNKED, b"5\r\nhello\r\n", *ending],
            [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
        ])
        pool = Pool(f"http://127.0.0.1:{port}")
        try:
            first = await (await pool.request("GET", "/a")).read()
            second = await pool.request("GET", "/b")
            assert second.timings.reused  # the same connection, read cleanly
            return [first, await second.read()]
        finally:
            await pool.close()
            server.close()
    assert asyncio.run(go()) == [b"hello", b"ok"]


def test_informational_responses_are_skipped() -> None:
    async def go() -> tuple[int, bytes]:
        server, port = await _raw_server([[
            b"HTTP/1.1 100 Continue\r\n\r\n", 0.02,
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone"]])
        pool = Pool(f"http://127.0.0.1:{port}")
        try:
            r = await pool.request("POST", "/x", b"{}")
            return r.status, await r.read()
        finally:
            await pool.close()
            server.close()
    assert asyncio.run(go()) == (200, b"done")


def test_every_address_is_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name whose first address (IPv6 ::1) refuses, against an IPv4-only server."""
    async def go() -> bytes:
        server, port = await _raw_server([[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv4"]])
        loop = asyncio.get_running_loop()

        async def resolve(host: str, port: int, **kw: object) -> list[tuple]:  # type: ignore[type-arg]
            assert host == "both.example"
            import socket
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

        monkeypatch.setattr(loop, "getaddrinfo", resolve)
        pool = Pool(f"http://both.example:{port}")
        try:
            return await (await pool.request("GET", "/")).read()
        finally:
            await pool.close()
            server.close()
    assert asyncio.run(go()) == b"v4"


def test_unreachable_names_every_address() -> None:
    async def go() -> str | None:
        pool = Pool("http://127.0.0.1:9")
        try:
            return await pool.reachable()
        finally:
            await pool.close()
    why = asyncio.run(go())
    assert why and why.startswith("connect_error") and "127.0.0.1" in why


def test_sglang_generate_reads_cumulative_text() -> None:
    r, seen = run_api("sglang", "sglang_generate_stream.sse", "text/event-stream")
    assert r.status == "ok" and r.text == "The sky is blue"
    assert r.client_tokens == 4 and r.output_tokens == 4 and r.prompt_tokens == 6
    assert r.server == {"e2e_latency": 0.0421}
    assert b"POST /generate" in seen[0] and b'"max_new_tokens": 4' in seen[0]
    assert b'"ignore_eos": true' in seen[0]


def test_tensorrt_llm_serve_stream_as_openai() -> None:
    """trtllm-serve: a role-only first chunk, a last content chunk of two words, usage in a
    chunk of its own."""
    r, seen = run_api("openai", "trtllm_chat_stream.sse", "text/event-stream")
    assert r.status == "ok" and r.text == "The sky is blue"
    assert r.client_tokens == 3 and r.output_tokens == 4 and r.prompt_tokens == 15
    assert b"POST /v1/chat/completions" in seen[0]
