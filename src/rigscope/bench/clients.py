"""Inference server APIs: OpenAI-compatible chat and completions, Ollama, llama.cpp /completion.

Each API builds its request body and reads its stream events; `send` runs one request and
timestamps every chunk that carries content.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from rigscope.bench.http import HTTPFailure, Pool
from rigscope.bench.metrics import RequestResult
from rigscope.errors import RigscopeError


@dataclass(frozen=True)
class Work:
    """What to ask: a prompt (or chat messages) and how many tokens to generate."""

    prompt: str
    output_tokens: int
    messages: tuple[dict[str, str], ...] = ()
    seed: int = 0
    logprobs: int = 0  # ask for this many top log-probabilities per token (0: none)
    prompt_tokens: int | None = None  # the intended prompt size, when the workload knows it


@dataclass(frozen=True)
class Event:
    content: str = ""
    usage: dict[str, Any] | None = None
    server: dict[str, float] = field(default_factory=dict)
    top_logprobs: tuple[dict[str, float], ...] = ()


class Api:
    """An inference API: where to post, what to send, how to read the stream."""

    name = ""
    path = ""
    ndjson = False  # Ollama streams JSON lines; the others stream SSE

    def body(self, work: Work, model: str, fixed_length: bool) -> dict[str, Any]:
        raise NotImplementedError

    def event(self, obj: dict[str, Any], seen: int = 0) -> Event:
        """One stream object as an event; `seen`: characters of content already read (for
        APIs that send the whole text so far in every chunk)."""
        raise NotImplementedError


def _messages(work: Work) -> list[dict[str, str]]:
    return list(work.messages) or [{"role": "user", "content": work.prompt}]


class OpenAIChat(Api):
    name, path = "openai", "/v1/chat/completions"

    def body(self, work: Work, model: str, fixed_length: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model, "messages": _messages(work), "max_tokens": work.output_tokens,
            "stream": True, "stream_options": {"include_usage": True}, "temperature": 0,
            "seed": work.seed,
        }
        if fixed_length:  # vLLM and llama.cpp honour these; others ignore unknown fields
            body |= {"ignore_eos": True, "min_tokens": work.output_tokens}
        if work.logprobs:
            body |= {"logprobs": True, "top_logprobs": work.logprobs}
        return body

    def event(self, obj: dict[str, Any], seen: int = 0) -> Event:
        choices = obj.get("choices") or []
        content = ""
        tops: tuple[dict[str, float], ...] = ()
        if choices:
            delta = choices[0].get("delta") or {}
            content = (delta.get("content") or "") + (delta.get("reasoning_content") or "")
            lp = (choices[0].get("logprobs") or {}).get("content") or []
            tops = tuple({t["token"]: float(t["logprob"]) for t in item.get("top_logprobs") or []}
                         for item in lp if isinstance(item, dict))
        return Event(content=content, usage=obj.get("usage"),
                     server=_llamacpp_timings(obj.get("timings")), top_logprobs=tops)


class OpenAICompletions(OpenAIChat):
    name, path = "openai-completions", "/v1/completions"

    def body(self, work: Work, model: str, fixed_length: bool) -> dict[str, Any]:
        body = super().body(work, model, fixed_length)
        del body["messages"]
        return body | {"prompt": work.prompt}

    def event(self, obj: dict[str, Any], seen: int = 0) -> Event:
        choices = obj.get("choices") or []
        text = (choices[0].get("text") or "") if choices else ""
        return Event(content=text, usage=obj.get("usage"))


class LlamaCpp(Api):
    """llama.cpp server's native /completion, which reports its own timings."""

    name, path = "llamacpp", "/completion"

    def body(self, work: Work, model: str, fixed_length: bool) -> dict[str, Any]:
        return {"prompt": work.prompt, "n_predict": work.output_tokens, "stream": True,
                "temperature": 0, "seed": work.seed, "ignore_eos": fixed_length,
                "cache_prompt": True}

    def event(self, obj: dict[str, Any], seen: int = 0) -> Event:
        usage = None
        if obj.get("stop"):
            usage = {"completion_tokens": obj.get("tokens_predicted"),
                     "prompt_tokens": obj.get("tokens_evaluated")}
        return Event(content=obj.get("content") or "", usage=usage,
                     server=_llamacpp_timings(obj.get("timings")))


def _llamacpp_timings(t: dict[str, Any] | None) -> dict[str, float]:
    if not t:
        return {}
    keys = ("prompt_n", "prompt_ms", "predicted_n", "predicted_ms", "cache_n", "draft_n",
            "draft_n_accepted")
    return {k: float(t[k]) for k in keys if isinstance(t.get(k), int | float)}


class OllamaGenerate(Api):
    name, path, ndjson = "ollama", "/api/generate", True

    def body(self, work: Work, model: str, fixed_length: bool) -> dict[str, Any]:
        return {"model": model, "prompt": work.prompt, "stream": True,
                "options": {"num_predict": work.output_tokens, "temperature": 0,
                            "seed": work.seed}}

    def event(self, obj: dict[str, Any], seen: int = 0) -> Event:
        content = obj.get("response") or (obj.get("message") or {}).get("content") or ""
        if not obj.get("done"):
            return Event(content=content)
        server = {k: obj[k] / 1e9 for k in ("total_duration", "load_duration",
                                            "prompt_eval_duration", "eval_duration")
                  if isinstance(obj.get(k), int | float)}
        usage = {"completion_tokens": obj.get("eval_count"),
                 "prompt_tokens": obj.get("prompt_eval_count")}  # absent when cached
        return Event(content=content, usage=usage, server=server)


class SGLang(Api):
    """SGLang's native /generate: every chunk carries the whole text so far and meta_info
    with the token counts."""

    name, path = "sglang", "/generate"

    def body(self, work: Work, model: str, fixed_length: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"max_new_tokens": work.output_tokens, "temperature": 0}
        if fixed_length:
            params |= {"ignore_eos": True, "min_new_tokens": work.output_tokens}
        return {"text": work.prompt, "sampling_params": params, "stream": True}

    def event(self, obj: dict[str, Any], seen: int = 0) -> Event:
        text = obj.get("text") or ""
        meta = obj.get("meta_info") or {}
        usage = {"completion_tokens": meta.get("completion_tokens"),
                 "prompt_tokens": meta.get("prompt_tokens")} if meta else None
        server = {"e2e_latency": float(meta["e2e_latency"])} if isinstance(
            meta.get("e2e_latency"), int | float) else {}
        return Event(content=text[seen:], usage=usage, server=server)


class OllamaChat(OllamaGenerate):
    name, path = "ollama-chat", "/api/chat"

    def body(self, work: Work, model: str, fixed_length: bool) -> dict[str, Any]:
        body = super().body(work, model, fixed_length)
        del body["prompt"]
        return body | {"messages": _messages(work)}


APIS: dict[str, type[Api]] = {c.name: c for c in (OpenAIChat, OpenAICompletions, LlamaCpp,
                                                   OllamaGenerate, OllamaChat, SGLang)}


def parse_stream_line(line: bytes, ndjson: bool) -> dict[str, Any] | None | str:
    """One stream line -> a JSON object, None (nothing to read) or 'done'."""
    line = line.strip()
    if not line:
        return None
    if not ndjson:
        if not line.startswith(b"data:"):
            return None  # comments, event names, ids
        line = line[5:].strip()
        if line == b"[DONE]":
            return "done"
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("event is not a JSON object")
    return obj


async def send(pool: Pool, api: Api, work: Work, model: str, *, index: int, intended: float,
               warmup: bool = False, headers: dict[str, str] | None = None,
               fixed_length: bool = True, timeout: float = 600.0,
               stall_timeout: float = 60.0) -> RequestResult:
    """Run one request; failures are recorded in the result, never raised."""
    body = json.dumps(api.body(work, model, fixed_length)).encode()
    hdrs = {"Content-Type": "application/json"} | (headers or {})
    clock = pool.clock
    result = RequestResult(index=index, intended=intended, start=clock(), warmup=warmup)
    try:
        async with asyncio.timeout(timeout):
            await _stream(pool, api, body, hdrs, result, stall_timeout)
    except TimeoutError:
        result.status, result.reason = "error", "timeout"
        result.detail = f"no answer within {timeout:g} s"
    except HTTPFailure as e:
        result.status, result.reason, result.detail = "error", e.reason, e.detail
    return result


async def _stream(pool: Pool, api: Api, body: bytes, headers: dict[str, str],
                  result: RequestResult, stall_timeout: float) -> None:
    clock = pool.clock
    resp = await pool.request("POST", api.path, body, headers, header_timeout=stall_timeout)
    t = resp.timings
    result.start = t.start
    result.dns_s, result.connect_s, result.tls_s = t.dns_s, t.connect_s, t.tls_s
    result.headers_s, result.reused, result.retried = t.headers - t.start, t.reused, t.retried
    if resp.status != 200:
        text = (await resp.read())[:300].decode("utf-8", "replace")
        raise HTTPFailure(f"http_{resp.status}", text.strip())
    buf = b""
    parts: list[str] = []
    seen = 0
    usage: dict[str, Any] | None = None
    try:
        async for piece in resp.iter_raw(stall_timeout):
            now = clock() - t.start
            buf += piece
            *lines, buf = buf.split(b"\n")
            for line in lines:
                try:
                    obj = parse_stream_line(line, api.ndjson)
                except ValueError as e:
                    raise HTTPFailure("malformed_stream", f"{e}: {line[:80]!r}") from None
                if obj is None or obj == "done":
                    continue
                assert isinstance(obj, dict)
                if "error" in obj:
                    raise HTTPFailure("server_error", str(obj["error"])[:200])
                ev = api.event(obj, seen)
                if ev.content:
                    result.chunk_times.append(now)
                    parts.append(ev.content)
                    seen += len(ev.content)
                if ev.top_logprobs:
                    result.top_logprobs.extend(ev.top_logprobs)
                if ev.usage:
                    usage = ev.usage
                if ev.server:
                    result.server |= ev.server
    finally:
        resp.close()
    if not result.chunk_times:
        raise HTTPFailure("empty_response", "no content in the stream")
    result.ttft_s, result.e2e_s = result.chunk_times[0], result.chunk_times[-1]
    result.client_tokens = len(result.chunk_times)
    result.text = "".join(parts)
    completion = (usage or {}).get("completion_tokens")
    result.output_tokens = int(completion) if completion else result.client_tokens
    prompt = (usage or {}).get("prompt_tokens")
    result.prompt_tokens = int(prompt) if prompt else None
    result.cached_tokens = cached_tokens(usage, result.server)


def cached_tokens(usage: dict[str, Any] | None, server: dict[str, float]) -> int | None:
    """Prompt tokens the server says it took from its cache: the OpenAI usage's
    prompt_tokens_details.cached_tokens (vLLM, SGLang, llama.cpp), else llama.cpp's
    timings.cache_n; None when it says nothing."""
    details = (usage or {}).get("prompt_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        return int(details["cached_tokens"])
    return int(server["cache_n"]) if "cache_n" in server else None


async def get_json(pool: Pool, path: str, headers: dict[str, str] | None = None,
                   timeout: float = 10.0) -> tuple[int, Any]:
    resp = await pool.request("GET", path, headers=headers, header_timeout=timeout)
    raw = await resp.read()
    try:
        return resp.status, json.loads(raw) if raw else None
    except ValueError:
        return resp.status, None


async def detect_api(pool: Pool, headers: dict[str, str] | None = None) -> str:
    """'openai' when /v1/models answers, 'ollama' for /api/tags, 'llamacpp' for /props."""
    for path, api in (("/v1/models", "openai"), ("/api/tags", "ollama"), ("/props", "llamacpp")):
        try:
            status, doc = await get_json(pool, path, headers)
        except HTTPFailure as e:
            raise RigscopeError(f"cannot reach {pool.scheme}://{pool.host}:{pool.port}: "
                                f"{e.detail or e.reason}", exit_code=1) from None
        if status == 200 and doc is not None:
            return api
    raise RigscopeError("the server answers neither /v1/models, /api/tags nor /props; "
                        "use --api openai|ollama|llamacpp", exit_code=1)


async def served_models(pool: Pool, api: str, headers: dict[str, str] | None = None) -> list[str]:
    """Model names the server lists (empty when it does not say)."""
    path = "/api/tags" if api.startswith("ollama") else "/v1/models"
    try:
        status, doc = await get_json(pool, path, headers)
    except HTTPFailure:
        return []
    if status != 200 or not isinstance(doc, dict):
        return []
    if api.startswith("ollama"):
        return [m.get("name", "") for m in doc.get("models", [])]
    return [m.get("id", "") for m in doc.get("data", [])]
