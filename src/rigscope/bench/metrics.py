"""Per-request records and per-level summaries. Definitions: docs/metrics.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rigscope.records import LevelSummary, NetworkSummary, Stats, prefill_rate

# a prompt-cache hit: at least this many tokens and this share of the prompt from the cache
HIT_TOKENS, HIT_SHARE = 64, 0.1


@dataclass
class RequestResult:
    """One request as measured. Times are seconds; absolute ones are on the client's clock."""

    index: int
    intended: float  # when the load generator meant to send it
    start: float  # when it was actually sent
    warmup: bool = False
    status: str = "ok"  # "ok" | "error"
    reason: str | None = None  # countable label: http_429, timeout, connection_reset, ...
    detail: str | None = None
    dns_s: float | None = None
    connect_s: float | None = None
    tls_s: float | None = None
    headers_s: float | None = None  # start -> response headers
    ttft_s: float | None = None  # start -> first chunk with content
    e2e_s: float | None = None  # start -> last chunk with content
    prompt_tokens: int | None = None
    output_tokens: int | None = None  # the server's usage count (else the client's)
    client_tokens: int | None = None  # content chunks the client saw
    chunk_times: list[float] = field(default_factory=list)  # start -> each content chunk
    server: dict[str, float] = field(default_factory=dict)  # server-reported timings
    reused: bool = False
    retried: bool = False  # its kept-alive connection was closed; sent again on a new one
    cached_tokens: int | None = None  # prompt tokens the server took from its cache
    text: str = ""
    top_logprobs: list[dict[str, float]] = field(default_factory=list)  # per output token

    @property
    def itl_s(self) -> float | None:
        """Inter-token latency per token: (E2E - TTFT) / (output tokens - 1)."""
        if self.e2e_s is None or self.ttft_s is None or not self.output_tokens:
            return None
        if self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)

    @property
    def prefill_tokens_per_s(self) -> float | None:
        return prefill_rate(self.prompt_tokens, self.cached_tokens, self.ttft_s)

    @property
    def cache_hit(self) -> bool:
        """The server took at least HIT_TOKENS and HIT_SHARE of the prompt from its cache
        (the few tokens a chat template puts before every prompt are no hit)."""
        return bool(self.cached_tokens and self.prompt_tokens
                    and self.cached_tokens >= max(HIT_TOKENS, HIT_SHARE * self.prompt_tokens))

    @property
    def chunk_gaps(self) -> list[float]:
        t = self.chunk_times
        return [b - a for a, b in zip(t, t[1:], strict=False)]

    @property
    def dispatch_delay_s(self) -> float:
        return self.start - self.intended

    @property
    def end(self) -> float | None:
        return self.start + self.e2e_s if self.e2e_s is not None else None

    @property
    def token_mismatch(self) -> bool:
        """Server usage and the client's chunk count disagree by more than 10%."""
        if not self.output_tokens or not self.client_tokens:
            return False
        return abs(self.client_tokens - self.output_tokens) > 0.1 * self.output_tokens


@dataclass(frozen=True)
class Slo:
    ttft_s: float | None = None
    itl_s: float | None = None
    e2e_s: float | None = None

    def met_by(self, r: RequestResult) -> bool:
        checks = ((self.ttft_s, r.ttft_s), (self.itl_s, r.itl_s), (self.e2e_s, r.e2e_s))
        return r.status == "ok" and all(
            limit is None or (v is not None and v <= limit) for limit, v in checks)


def steady_interval(spans: Sequence[tuple[float, float]], concurrency: int | None
                    ) -> tuple[float, float] | None:
    """The interval in which requests spanning (start, end) ran at their load.

    Closed loop (`concurrency` workers): from the first moment `concurrency` requests were in
    flight to the last moment they still were, so the ramp and the ragged last wave are
    outside. Open loop (`concurrency` None): from the first completion (the ramp is over) to
    the last start (the drain begins)."""
    if not spans:
        return None
    if concurrency is None:
        t0, t1 = min(e for _, e in spans), max(s for s, _ in spans)
        return (t0, t1) if t1 > t0 else None
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    n = 0
    first: float | None = None
    last: float | None = None
    for t, step in events:
        before = n
        n += step
        if n >= concurrency and first is None:
            first = t
        if before >= concurrency > n:
            last = t
    if first is None or last is None or last <= first:
        return None
    return first, last


def steady_window(results: Sequence[RequestResult], concurrency: int | None
                  ) -> tuple[float, float] | None:
    """steady_interval of a level's requests on the client's clock (warm-up requests hold
    slots too, so they count)."""
    return steady_interval([(r.start, r.end) for r in results
                            if r.status == "ok" and r.end is not None], concurrency)


def _tokens_between(r: RequestResult, t0: float, t1: float) -> float:
    """Output tokens of r whose chunks arrived in [t0, t1] (a chunk may carry several)."""
    if not r.output_tokens:
        return 0.0
    if not r.chunk_times:
        return float(r.output_tokens) if r.end is not None and t0 <= r.end <= t1 else 0.0
    per_chunk = r.output_tokens / len(r.chunk_times)
    return per_chunk * sum(1 for c in r.chunk_times if t0 <= r.start + c <= t1)


def _drafts(ok: Sequence[RequestResult]) -> dict[str, Any]:
    """Speculative decoding as llama.cpp's timings report it per request (draft_n,
    draft_n_accepted); nothing when no request carries them."""
    reported = [r for r in ok if "draft_n" in r.server]
    if not reported:
        return {}
    drafted = int(sum(r.server["draft_n"] for r in reported))
    accepted = int(sum(r.server.get("draft_n_accepted", 0.0) for r in reported))
    return {"draft_tokens": drafted, "draft_accepted_tokens": accepted,
            "acceptance_rate": accepted / drafted if drafted else None,
            "acceptance_source": "llama.cpp timings"}


Sample = tuple[float, str, dict[str, float]]  # (t, source, data) as telemetry stores it
POWER_KEYS = (("nvml", "gpu_power_w"), ("metrics", "power_w"), ("rapl", "cpu_power_w"))


def integrate(points: Sequence[tuple[float, float]], t0: float, t1: float) -> float:
    """The integral over [t0, t1] of the piecewise-linear curve through (t, value) points
    (sorted by t); before the first and after the last point the curve holds its value."""
    if not points or t1 <= t0:
        return 0.0

    def at(t: float) -> float:
        if t <= points[0][0]:
            return points[0][1]
        if t >= points[-1][0]:
            return points[-1][1]
        k = next(i for i, (x, _) in enumerate(points) if x >= t)
        (xa, ya), (xb, yb) = points[k - 1], points[k]
        return ya + (yb - ya) * (t - xa) / (xb - xa) if xb > xa else yb

    xs = [t0, *(x for x, _ in points if t0 < x < t1), t1]
    return sum((b - a) * (at(a) + at(b)) / 2 for a, b in zip(xs, xs[1:], strict=False))


def level_telemetry(results: Sequence[RequestResult], samples: Sequence[Sample]
                    ) -> dict[str, Any]:
    """What a level's telemetry adds to its summary: energy per output token over the level's
    active window (every request of the level, warm-up too: the power covers all the work),
    from NVML, a /metrics power series or RAPL, with the sampling rate; the prefix-cache hit
    rate and, when requests carry none, speculative-decoding acceptance as /metrics count
    them. `samples`: the level's, after each source's last one before it."""
    done = [r for r in results if r.status == "ok" and r.end is not None]
    if not done:
        return {}
    t0, t1 = min(r.start for r in done), max(r.end or 0.0 for r in done)
    metrics = sorted(((t, d) for t, src, d in samples if src == "metrics"),
                     key=lambda x: x[0])
    out = _energy(samples, t0, t1, sum(r.output_tokens or 0 for r in done))
    out |= _prefix_cache(metrics, t0)
    if not any("draft_n" in r.server for r in done):
        out |= _acceptance(metrics, t0)
    return out


def _energy(samples: Sequence[Sample], t0: float, t1: float, tokens: int) -> dict[str, Any]:
    for source, key in POWER_KEYS:
        points = sorted((t, d[key]) for t, src, d in samples if src == source and key in d)
        inside = sum(1 for t, _ in points if t0 <= t <= t1)
        if inside and t1 > t0:  # a level shorter than the sampling period has no figure
            energy = integrate(points, t0, t1)
            return {"energy_j": energy, "power_source": source,
                    "power_samples_per_s": inside / (t1 - t0),
                    "joules_per_output_token": energy / tokens if tokens else None,
                    "output_tokens_per_joule": tokens / energy if energy > 0 else None}
    return {}


def _counters(metrics: Sequence[tuple[float, dict[str, float]]], t0: float, key: str
              ) -> tuple[dict[str, float], dict[str, float]] | None:
    """The readings that carry `key` as the level began (the last at or before its start,
    else its first) and as it ended (its last); None without one during the level."""
    with_key = [(t, d) for t, d in metrics if key in d]
    before = [d for t, d in with_key if t <= t0]
    during = [d for t, d in with_key if t > t0]
    if not during:
        return None
    return (before[-1] if before else during[0]), during[-1]


def _change(pair: tuple[dict[str, float], dict[str, float]], key: str) -> float:
    first, last = pair
    return last.get(key, 0.0) - first.get(key, 0.0)


def _mean_during(metrics: Sequence[tuple[float, dict[str, float]]], t0: float, key: str
                 ) -> float | None:
    values = [d[key] for t, d in metrics if t > t0 and key in d]
    return sum(values) / len(values) if values else None


def _prefix_cache(metrics: Sequence[tuple[float, dict[str, float]]], t0: float
                  ) -> dict[str, Any]:
    """The level's prefix-cache hit rate as the server's /metrics count it: the change of
    vLLM's hit and query counters (tokens) over the level, or SGLang's mean hit rate."""
    pair = _counters(metrics, t0, "prefix_cache_queries")
    if pair is not None:
        queries = _change(pair, "prefix_cache_queries")
        if queries <= 0:
            return {}
        rate: float | None = _change(pair, "prefix_cache_hits") / queries
    else:
        rate = _mean_during(metrics, t0, "prefix_cache_hit_rate")
    return {} if rate is None else {"prefix_cache_hit_rate": rate,
                                    "prefix_cache_source": "metrics"}


def _acceptance(metrics: Sequence[tuple[float, dict[str, float]]], t0: float
                ) -> dict[str, Any]:
    """Speculative decoding over the level from vLLM's or llama.cpp's counters (acceptance
    length = 1 + accepted / drafts), or SGLang's mean acceptance length."""
    pair = _counters(metrics, t0, "spec_draft_tokens")
    if pair is not None:
        drafted, accepted = _change(pair, "spec_draft_tokens"), _change(pair,
                                                                         "spec_accepted_tokens")
        drafts = _change(pair, "spec_drafts")
        return {"draft_tokens": int(drafted), "draft_accepted_tokens": int(accepted),
                "acceptance_rate": accepted / drafted if drafted > 0 else None,
                "acceptance_length": 1 + accepted / drafts if drafts > 0 else None,
                "acceptance_source": "metrics"}
    length = _mean_during(metrics, t0, "spec_accept_length")
    return {} if length is None else {"acceptance_length": length,
                                      "acceptance_source": "metrics"}


def summarize(results: Sequence[RequestResult], slo: Slo | None = None,
              concurrency: int | None = None) -> LevelSummary:
    """A level's summary over its measured (non-warmup) requests; throughput over the
    steady window (see steady_window), with the whole active window's figures beside it."""
    measured = [r for r in results if not r.warmup]
    ok = [r for r in measured if r.status == "ok"]
    errors: dict[str, int] = {}
    for r in measured:
        if r.status != "ok":
            errors[r.reason or "error"] = errors.get(r.reason or "error", 0) + 1
    ends = [r.end for r in ok if r.end is not None]
    starts = [r.start for r in ok]
    window = (max(ends) - min(starts)) if ends and starts else 0.0
    tokens = sum(r.output_tokens or 0 for r in ok)
    steady = steady_window(results, concurrency)
    if steady is None:  # too few requests to reach the load: the wall figures are all there is
        steady_s, steady_tokens, steady_done = window, float(tokens), ok
    else:
        t0, t1 = steady
        steady_s = t1 - t0
        # every request's work inside the window counts, a warm-up's too: it held a slot
        # and the server did it
        done = [r for r in results if r.status == "ok"]
        steady_tokens = sum(_tokens_between(r, t0, t1) for r in done)
        steady_done = [r for r in done if r.end is not None and t0 < r.end <= t1]
    return LevelSummary(
        requests_ok=len(ok),
        requests_failed=len(measured) - len(ok),
        errors=errors,
        ttft_s=Stats.of([r.ttft_s for r in ok if r.ttft_s is not None]),
        itl_s=Stats.of([x for r in ok if (x := r.itl_s) is not None]),
        e2e_s=Stats.of([r.e2e_s for r in ok if r.e2e_s is not None]),
        chunk_gap_s=Stats.of([g for r in ok for g in r.chunk_gaps]),
        dispatch_delay_s=Stats.of([r.dispatch_delay_s for r in measured]),
        output_tokens_per_s=steady_tokens / steady_s if steady_s > 0 else 0.0,
        requests_per_s=len(steady_done) / steady_s if steady_s > 0 else 0.0,
        goodput_requests_per_s=(sum(1 for r in steady_done if slo.met_by(r)) / steady_s
                                if slo and steady_s > 0 else None),
        output_tokens_per_s_wall=tokens / window if window > 0 else 0.0,
        requests_per_s_wall=len(ok) / window if window > 0 else 0.0,
        output_tokens=tokens,
        active_window_s=window,
        steady_window_s=steady_s,
        token_count_mismatches=sum(1 for r in ok if r.token_mismatch),
        connections_reused=sum(1 for r in measured if r.reused),
        requests_retried=sum(1 for r in measured if r.retried),
        prompt_tokens=sum(r.prompt_tokens or 0 for r in ok),
        cached_prompt_tokens=(sum(r.cached_tokens or 0 for r in ok)
                              if any(r.cached_tokens is not None for r in ok) else None),
        cache_hit_requests=sum(1 for r in ok if r.cache_hit),
        ttft_cached_s=Stats.of([r.ttft_s for r in ok if r.cache_hit and r.ttft_s]),
        ttft_uncached_s=Stats.of([r.ttft_s for r in ok
                                  if not r.cache_hit and r.ttft_s is not None]),
        prefill_tokens_per_s=Stats.of([x for r in ok if (x := r.prefill_tokens_per_s)]),
        decode_tokens_per_s=Stats.of([1 / x for r in ok if (x := r.itl_s)]),
        **_drafts(ok),
        network=NetworkSummary(
            dns_s=Stats.of([r.dns_s for r in measured if r.dns_s is not None]),
            connect_s=Stats.of([r.connect_s for r in measured if r.connect_s is not None]),
            tls_s=Stats.of([r.tls_s for r in measured if r.tls_s is not None]),
            headers_s=Stats.of([r.headers_s for r in measured if r.headers_s is not None]),
        ),
    )
