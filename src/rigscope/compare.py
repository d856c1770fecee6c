"""Compare benchmark runs level by level, with bootstrap confidence intervals."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from typing import Any

BOOTSTRAP = 1000
METRICS: dict[str, Callable[[list[dict[str, Any]]], float | None]] = {}


def _median_of(key: str) -> Callable[[list[dict[str, Any]]], float | None]:
    def f(reqs: list[dict[str, Any]]) -> float | None:
        values = [r[key] for r in reqs if r.get(key) is not None]
        return statistics.median(values) if values else None
    return f


def _throughput(reqs: list[dict[str, Any]]) -> float | None:
    ends = [r["start"] + r["e2e_s"] for r in reqs if r.get("e2e_s") is not None]
    if not ends:
        return None
    window = max(ends) - min(r["start"] for r in reqs)
    return sum(r["output_tokens"] or 0 for r in reqs) / window if window > 0 else None


METRICS |= {"ttft_s": _median_of("ttft_s"), "itl_s": _median_of("itl_s"),
            "e2e_s": _median_of("e2e_s"), "output_tokens_per_s": _throughput}


def level_key(level: dict[str, Any]) -> str:
    return f"c={level['concurrency']}" if level["concurrency"] is not None else (
        f"rate={level['rate']:g}")


def _requests_by_level(run: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    names = {lv["level_id"]: level_key(lv) for lv in run["levels"]}
    out: dict[str, list[dict[str, Any]]] = {}
    for r in run["requests"]:
        if not r["warmup"] and r["status"] == "ok":
            out.setdefault(names[r["level_id"]], []).append(r)
    return out


def bootstrap_ci(a: list[dict[str, Any]], b: list[dict[str, Any]],
                 metric: Callable[[list[dict[str, Any]]], float | None], seed: int = 0,
                 rounds: int = BOOTSTRAP) -> tuple[float, float] | None:
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


def compare(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each later run against the first, per level and metric."""
    base = runs[0]
    base_reqs = _requests_by_level(base)
    out = []
    for other in runs[1:]:
        reqs = _requests_by_level(other)
        for key in sorted(set(base_reqs) & set(reqs)):
            a, b = base_reqs[key], reqs[key]
            for name, metric in METRICS.items():
                va, vb = metric(a), metric(b)
                if va is None or vb is None:
                    continue
                ci = bootstrap_ci(a, b, metric)
                out.append({
                    "run_a": base["run_id"], "run_b": other["run_id"], "level": key,
                    "metric": name, "a": va, "b": vb, "diff": vb - va,
                    "diff_pct": (vb - va) / va * 100 if va else None,
                    "ci95": list(ci) if ci else None,
                    "significant": bool(ci and (ci[0] > 0 or ci[1] < 0)),
                })
        for lv_a in base["levels"]:
            for lv_b in other["levels"]:
                if level_key(lv_a) == level_key(lv_b):
                    out.append({"run_a": base["run_id"], "run_b": other["run_id"],
                                "level": level_key(lv_a), "metric": "errors",
                                "a": lv_a.get("requests_failed", 0),
                                "b": lv_b.get("requests_failed", 0),
                                "diff": lv_b.get("requests_failed", 0)
                                - lv_a.get("requests_failed", 0),
                                "diff_pct": None, "ci95": None, "significant": None})
    return {"runs": [r["run_id"] for r in runs], "rows": out}
