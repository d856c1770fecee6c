"""Typed records of benchmark runs as the store keeps them: per-level summaries, requests, runs.

Also the one definition of the statistics they use (percentile, median) and of a level's
label ("c=4", "2.5/s"). Definitions of the metrics: docs/metrics.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]; NaN for no values."""
    s = sorted(values)
    if not s:
        return math.nan
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(values: Sequence[float]) -> float | None:
    """The median (the mean of the two middle values for an even count); None for none."""
    return percentile(values, 50) if values else None


def prefill_rate(prompt_tokens: int | None, cached_tokens: int | None,
                 ttft_s: float | None) -> float | None:
    """A request's prefill speed: the prompt tokens the server processed (those it did not
    take from its cache) over the time to the first token."""
    if not prompt_tokens or not ttft_s:
        return None
    new = prompt_tokens - (cached_tokens or 0)
    return new / ttft_s if new > 0 else None


def level_label(concurrency: int | None, rate: float | None, depth: int | None = None,
                prompt_tokens: int | None = None, output_tokens: int | None = None) -> str:
    """How a level is named everywhere: 'c=4' (closed loop) or '2.5/s' (open loop), then its
    shape where the level sets one: 'c=4 d=4096' (context depth), 'c=4 p=512 o=128'
    (prompt and output tokens of a sweep)."""
    name = (f"c={concurrency}" if concurrency is not None
            else f"{rate:g}/s" if rate is not None else "trace")
    for key, value in (("d", depth), ("p", prompt_tokens), ("o", output_tokens)):
        if value is not None:
            name += f" {key}={value}"
    return name


def level_order(concurrency: int | None, rate: float | None, depth: int | None = None,
                prompt_tokens: int | None = None, output_tokens: int | None = None
                ) -> tuple[float, ...]:
    """Sort key: closed-loop levels by concurrency, then open-loop levels by rate; within
    one load, by depth, prompt and output tokens."""
    load = (0, float(concurrency)) if concurrency is not None else (1, float(rate or 0))
    return (*load, *(float(v if v is not None else -1)
                     for v in (depth, prompt_tokens, output_tokens)))


@dataclass(frozen=True)
class Stats:
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    min: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            return cls()
        return cls(mean=statistics.fmean(values), p50=percentile(values, 50),
                   p90=percentile(values, 90), p95=percentile(values, 95),
                   p99=percentile(values, 99), min=min(values), max=max(values))


@dataclass(frozen=True)
class NetworkSummary:
    dns_s: Stats = field(default_factory=Stats)
    connect_s: Stats = field(default_factory=Stats)
    tls_s: Stats = field(default_factory=Stats)
    headers_s: Stats = field(default_factory=Stats)


@dataclass(frozen=True)
class LevelSummary:
    """One level's results over its measured (non-warm-up) requests."""

    requests_ok: int = 0
    requests_failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    ttft_s: Stats = field(default_factory=Stats)
    itl_s: Stats = field(default_factory=Stats)
    e2e_s: Stats = field(default_factory=Stats)
    chunk_gap_s: Stats = field(default_factory=Stats)
    dispatch_delay_s: Stats = field(default_factory=Stats)
    output_tokens_per_s: float = 0.0
    requests_per_s: float = 0.0
    goodput_requests_per_s: float | None = None
    output_tokens_per_s_wall: float = 0.0  # over the whole active window, ramp and tail in
    requests_per_s_wall: float = 0.0
    output_tokens: int = 0
    active_window_s: float = 0.0
    steady_window_s: float = 0.0  # the window the throughput figures cover
    token_count_mismatches: int = 0
    connections_reused: int = 0
    network: NetworkSummary = field(default_factory=NetworkSummary)
    # requests whose kept-alive connection was closed before any byte of the answer, sent
    # again once on a new connection (never counted as a server error)
    requests_retried: int = 0
    # prompt tokens as the server counted them, and those it served from its cache (None:
    # the server does not say)
    prompt_tokens: int = 0
    cached_prompt_tokens: int | None = None
    cache_hit_requests: int = 0
    ttft_cached_s: Stats = field(default_factory=Stats)  # requests with a cache hit
    ttft_uncached_s: Stats = field(default_factory=Stats)  # requests without one
    # the level's prefix-cache hit rate as the server's /metrics count it (vLLM: tokens)
    prefix_cache_hit_rate: float | None = None
    prefix_cache_source: str | None = None
    # per request: uncached prompt tokens / TTFT, and 1 / ITL
    prefill_tokens_per_s: Stats = field(default_factory=Stats)
    decode_tokens_per_s: Stats = field(default_factory=Stats)
    # speculative decoding, where the server reports it (None: not reported)
    draft_tokens: int | None = None
    draft_accepted_tokens: int | None = None
    acceptance_rate: float | None = None  # accepted / drafted
    acceptance_length: float | None = None  # tokens per verification step
    acceptance_source: str | None = None  # "llama.cpp timings" | "metrics"
    # energy over the level's active window from sampled power (None: no power source)
    energy_j: float | None = None
    joules_per_output_token: float | None = None
    output_tokens_per_joule: float | None = None
    power_source: str | None = None  # "nvml" | "metrics" | "rapl" (CPU packages)
    power_samples_per_s: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LevelSummary:
        """The summary as stored (JSON); unknown keys are ignored, missing ones default."""
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            if f.type == "Stats":
                v = Stats(**v)
            elif f.type == "NetworkSummary":
                v = NetworkSummary(**{k: Stats(**s) for k, s in v.items()})
            kw[f.name] = v
        return cls(**kw)


@dataclass(frozen=True)
class StoredRequest:
    """One request as stored. Times in seconds; absolute ones on the client's clock."""

    id: int
    run_id: str
    level_id: int
    idx: int
    warmup: bool
    status: str
    reason: str | None
    detail: str | None
    intended: float
    start: float
    dns_s: float | None
    connect_s: float | None
    tls_s: float | None
    headers_s: float | None
    ttft_s: float | None
    e2e_s: float | None
    itl_s: float | None
    prompt_tokens: int | None
    output_tokens: int | None
    client_tokens: int | None
    reused: bool
    chunk_times: list[float]
    server: dict[str, float]
    cached_tokens: int | None = None
    retried: bool = False

    @property
    def prefill_tokens_per_s(self) -> float | None:
        return prefill_rate(self.prompt_tokens, self.cached_tokens, self.ttft_s)

    @property
    def decode_tokens_per_s(self) -> float | None:
        return 1 / self.itl_s if self.itl_s else None

    @property
    def measured_ok(self) -> bool:
        return self.status == "ok" and not self.warmup

    @property
    def end(self) -> float | None:
        return self.start + self.e2e_s if self.e2e_s is not None else None


@dataclass(frozen=True)
class Sample:
    """One telemetry reading: when (the run's clock), from where, what (see
    bench/telemetry.py for the names)."""

    t: float
    source: str  # "metrics" | "slots" | "ollama_ps" | "nvml"
    data: dict[str, float]


@dataclass(frozen=True)
class Level:
    level_id: int
    position: int
    concurrency: int | None
    rate: float | None
    summary: LevelSummary | None  # None while the level runs (or if it never finished)
    depth: int | None = None  # tokens of context before each prompt (bench --depth)
    prompt_tokens: int | None = None  # the level's own prompt size (bench --sweep)
    output_tokens: int | None = None  # the level's own output size (bench --sweep)

    @property
    def shape(self) -> tuple[int | None, float | None, int | None, int | None, int | None]:
        return (self.concurrency, self.rate, self.depth, self.prompt_tokens,
                self.output_tokens)

    @property
    def label(self) -> str:
        return level_label(*self.shape)

    @property
    def order(self) -> tuple[float, ...]:
        return level_order(*self.shape)


@dataclass(frozen=True)
class Check:
    """A predicted figure beside the measured one (the demo stores these with its run)."""

    what: str
    predicted: float
    measured: float | None

    @property
    def error_pct(self) -> float | None:
        m = self.measured
        return (self.predicted - m) / m * 100 if m else None


@dataclass(frozen=True)
class DeviceMemory:
    """Predicted memory of one device, by part (bytes)."""

    id: str
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    overhead_bytes: int


@dataclass(frozen=True)
class Run:
    """A stored benchmark run: its configuration, levels and every request."""

    run_id: str
    started_at: str
    finished_at: str | None
    status: str
    label: str | None
    url: str
    model: str
    api: str
    config: dict[str, Any]  # the BenchConfig as given (+ "prediction" from the demo)
    levels: tuple[Level, ...]
    requests: tuple[StoredRequest, ...]
    telemetry: tuple[Sample, ...] = ()

    @property
    def name(self) -> str:
        return self.label or self.run_id

    @property
    def summarized(self) -> list[tuple[Level, LevelSummary]]:
        """Levels with a summary, in their run order."""
        return [(lv, lv.summary) for lv in self.levels if lv.summary is not None]

    def requests_of(self, level: Level) -> list[StoredRequest]:
        return [r for r in self.requests if r.level_id == level.level_id]

    @property
    def checks(self) -> list[Check]:
        """Predicted vs measured figures stored with the run (the demo's)."""
        rows = self.config.get("prediction", {}).get("rows", [])
        return [Check(r["what"], r["predicted"], r.get("measured")) for r in rows]

    @property
    def predicted_memory(self) -> list[DeviceMemory]:
        return [DeviceMemory(**d) for d in self.config.get("prediction", {}).get("memory", [])]


def level_notes(s: LevelSummary) -> list[tuple[str, str]]:
    """What a level adds beyond the table, as (topic, words): speeds per request, cache
    hits, retries, draft acceptance, energy."""
    out = []
    if s.prefill_tokens_per_s.p50 is not None or s.decode_tokens_per_s.p50 is not None:
        out.append(("speed", f"prefill {_per_s(s.prefill_tokens_per_s.p50)} tok/s, decode "
                             f"{_per_s(s.decode_tokens_per_s.p50)} tok/s (p50 per request)"))
    if s.cached_prompt_tokens is not None:
        share = s.cached_prompt_tokens / s.prompt_tokens if s.prompt_tokens else 0.0
        words = (f"{s.cached_prompt_tokens:,} of {s.prompt_tokens:,} prompt tokens from the "
                 f"server's cache ({share:.0%}), {s.cache_hit_requests} requests with a hit")
        if s.ttft_cached_s.p50 is not None and s.ttft_uncached_s.p50 is not None:
            words += (f"; TTFT p50 {_in_ms(s.ttft_cached_s.p50)} ms with a hit, "
                      f"{_in_ms(s.ttft_uncached_s.p50)} ms without")
        out.append(("prompt cache", words))
    if s.prefix_cache_hit_rate is not None:
        out.append(("prefix cache", f"hit rate {s.prefix_cache_hit_rate:.1%} on the "
                                    "server's /metrics"))
    if s.requests_retried:
        out.append(("connections", f"{s.requests_retried} requests found their kept-alive "
                                   "connection closed and were sent again on a new one"))
    if s.acceptance_source:
        parts = []
        if s.acceptance_rate is not None:
            parts.append(f"{s.acceptance_rate:.1%} of {s.draft_tokens:,} drafted tokens "
                         "accepted")
        if s.acceptance_length is not None:
            parts.append(f"{s.acceptance_length:.2f} tokens per verification step")
        out.append(("speculative decoding", ", ".join(parts) + f" ({s.acceptance_source})"))
    if s.energy_j is not None:
        per = (f"{s.joules_per_output_token:.3f} J per output token, "
               f"{s.output_tokens_per_joule:.2f} tokens/J"
               if s.joules_per_output_token and s.output_tokens_per_joule else "no tokens")
        out.append(("energy", f"{s.energy_j:,.1f} J, {per} ({s.power_source}, "
                              f"{s.power_samples_per_s:.1f} samples/s)"))
    return out


def _in_ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:,.1f}"


def _per_s(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f}"
