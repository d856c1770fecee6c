"""Compare benchmark runs level by level, with bootstrap confidence intervals."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rigscope.records import LevelSummary, Run, StoredRequest, median

BOOTSTRAP = 1000
Metric = Callable[[Sequence[StoredRequest]], float | None]


def _median_of(key: str) -> Metric:
    def f(reqs: Sequence[StoredRequest]) -> float | None:
        return median([v for r in reqs if (v := getattr(r, key)) is not None])
    return f


def _throughput(reqs: Sequence[StoredRequest]) -> float | None:
    ends = [e for r in reqs if (e := r.end) is not None]
    if not ends:
        return None
    window = max(ends) - min(r.start for r in reqs)
    return sum(r.output_tokens or 0 for r in reqs) / window if window > 0 else None


METRICS: dict[str, Metric] = {"ttft_s": _median_of("ttft_s"), "itl_s": _median_of("itl_s"),
                              "e2e_s": _median_of("e2e_s"), "output_tokens_per_s": _throughput,
                              "prefill_tokens_per_s": _median_of("prefill_tokens_per_s"),
                              "decode_tokens_per_s": _median_of("decode_tokens_per_s")}
# level figures compared as they are (one value per level: no interval)
LEVEL_FIGURES = ("errors", "joules_per_output_token", "acceptance_rate")


def _level_figure(s: LevelSummary, name: str) -> float | None:
    value = s.requests_failed if name == "errors" else getattr(s, name)
    return None if value is None else float(value)


@dataclass(frozen=True)
class Difference:
    """One metric of one level: run B against run A."""

    run_a: str
    run_b: str
    level: str
    metric: str
    a: float
    b: float
    ci95: tuple[float, float] | None  # of b - a (None for counts)
    significant: bool | None  # the interval excludes 0

    @property
    def diff(self) -> float:
        return self.b - self.a

    @property
    def diff_pct(self) -> float | None:
        return self.diff / self.a * 100 if self.a and self.metric != "errors" else None


@dataclass(frozen=True)
class Comparison:
    runs: tuple[str, ...]
    rows: tuple[Difference, ...]


def _ok_by_level(run: Run) -> dict[tuple[float, ...], tuple[str, list[StoredRequest]]]:
    return {lv.order: (lv.label, [r for r in run.requests_of(lv) if r.measured_ok])
            for lv in run.levels}


def bootstrap_ci(a: Sequence[StoredRequest], b: Sequence[StoredRequest], metric: Metric,
                 seed: int = 0, rounds: int = BOOTSTRAP) -> tuple[float, float] | None:
    """95% interval of metric(b) - metric(a), resampling each run's requests."""
    rng = random.Random(seed)
    diffs = []
    for _ in range(rounds):
        ma = metric(rng.choices(a, k=len(a)))
        mb = metric(rng.choices(b, k=len(b)))
        if ma is not None and mb is not None:
            diffs.append(mb - ma)
    if len(diffs) < rounds // 2:
        return None
    diffs.sort()
    return diffs[int(0.025 * len(diffs))], diffs[int(0.975 * len(diffs)) - 1]


def compare(runs: Sequence[Run]) -> Comparison:
    """Each later run against the first, per level (in level order) and metric."""
    base = runs[0]
    base_levels = _ok_by_level(base)
    out: list[Difference] = []
    for other in runs[1:]:
        levels = _ok_by_level(other)
        for order in sorted(set(base_levels) & set(levels)):
            label, a = base_levels[order]
            _, b = levels[order]
            if a and b:
                for name, metric in METRICS.items():
                    va, vb = metric(a), metric(b)
                    if va is None or vb is None:
                        continue
                    ci = bootstrap_ci(a, b, metric)
                    out.append(Difference(base.run_id, other.run_id, label, name, va, vb, ci,
                                          bool(ci and (ci[0] > 0 or ci[1] < 0))))
        summaries_b = {lv.order: s for lv, s in other.summarized}
        for lv, s in base.summarized:
            if lv.order not in summaries_b:
                continue
            for name in LEVEL_FIGURES:
                va, vb = _level_figure(s, name), _level_figure(summaries_b[lv.order], name)
                if va is not None and vb is not None:
                    out.append(Difference(base.run_id, other.run_id, lv.label, name, va, vb,
                                          None, None))
    return Comparison(runs=tuple(r.run_id for r in runs), rows=tuple(out))
