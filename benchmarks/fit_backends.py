"""Fit the speed constants of llama.cpp's Vulkan backend to the published Vulkan rows, the
other backends' constants held as fitted (benchmarks/fit_speed.py), and say how well it
predicts GPUs it never saw.

    .venv/bin/python benchmarks/fit_backends.py

Rows: llama-bench results on Vulkan in benchmarks/data/published (llamacpp_recent_rows.csv,
the llama.cpp scoreboard) for GPUs in the catalog. Decode constants (bandwidth shares by
memory class, the cost per layer, attention's share of the KV read) are fitted to the tgN
rows, prefill constants (the mat-mul share of the tensor peak, the cost per layer and
ubatch) to the ppN rows, by least squares on log(predicted / measured), each GPU's rows
weighted by 1/sqrt(its row count). Leave-one-GPU-out: each GPU predicted by a fit without
it; prints the median and 90th percentile of those errors, for speed_params.DEFAULT.
"""

from __future__ import annotations

import csv
import dataclasses
import statistics
from collections import Counter

import numpy as np
from calibration import PUBLISHED, SCOREBOARD_GPUS, Row, _test, predict, recent_rows
from scipy.optimize import least_squares

from rigscope.estimator.speed_params import DEFAULT, SpeedParams

# Vulkan runs each vendor's GPUs at its own efficiency: constants per vendor (speed key
# vulkan-cuda, vulkan-rocm, vulkan-sycl)
VENDORS = ("vulkan-cuda", "vulkan-rocm", "vulkan-sycl")
DECODE = [*[("bw_eff", f"{v}:gddr", 0.05, 0.95) for v in VENDORS],
          ("bw_eff", "vulkan-rocm:lpddr", 0.05, 0.95),
          *[("layer_s", v, 0.0, 400e-6) for v in VENDORS]]
PREFILL = [*[("pp_eff", v, 0.005, 1.0) for v in VENDORS],
           *[("pp_layer_s", v, 0.0, 3e-3) for v in VENDORS]]


def vulkan_rows() -> list[Row]:
    rows = [r for r in recent_rows(vulkan=True)[0] if r.backend == "vulkan"]
    with (PUBLISHED / "llamacpp_scoreboard_llama2_7b_q4_0.csv").open() as f:
        for r in csv.DictReader(f):
            gpu = SCOREBOARD_GPUS.get(r["gpu"])
            if r["backend"] == "Vulkan" and gpu is not None:
                for test in ("pp512", "tg128"):
                    t, n = _test(test)
                    rows.append(Row(r["model"], r["quant"], (gpu,), t, n, float(r[test]),
                                    "scoreboard 2025", backend="vulkan"))
    return rows


def with_values(base: SpeedParams, free: list, x: np.ndarray) -> SpeedParams:
    changes: dict[str, dict[str, float]] = {}
    for (field, key, _, _), v in zip(free, x, strict=True):
        table = changes.setdefault(field, dict(getattr(base, field)))
        table[key] = float(v)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def fit(rows: list[Row], free: list, base: SpeedParams) -> SpeedParams:
    if not rows:
        return base
    gpus = Counter(r.gpus for r in rows)
    w = np.array([1 / np.sqrt(gpus[r.gpus]) for r in rows])
    used = [f for f in free if any(_uses(r, f) for r in rows)]

    def resid(x: np.ndarray) -> np.ndarray:
        p = with_values(base, used, x)
        return w * np.array([np.log(predict(r, p)[0] / r.measured) for r in rows])

    x0 = np.array([min(max(getattr(base, f).get(k, (lo + hi) / 2), lo), hi)
                   if getattr(base, f).get(k) else (lo + hi) / 4 for f, k, lo, hi in used])
    lo = np.array([f[2] for f in used])
    hi = np.array([f[3] for f in used])
    sol = least_squares(resid, np.clip(x0, lo + 1e-9, hi - 1e-9), bounds=(lo, hi))
    return with_values(base, used, sol.x)


def _uses(row: Row, f: tuple) -> bool:
    from rigscope.hardware import parse_rig, with_backend

    dev = with_backend(parse_rig(list(row.gpus)), row.backend).devices[0]
    key = f[1]
    if f[0] == "bw_eff":
        return f"{dev.speed_key}:{dev.hw_class}" == key
    return dev.speed_key == key


def main() -> None:
    rows = vulkan_rows()
    for kind, free in (("tg", DECODE), ("pp", PREFILL)):
        sel = [r for r in rows if r.test == kind]
        p = fit(sel, free, DEFAULT)
        print(f"{kind}: {len(sel)} rows of {len({r.gpus for r in sel})} GPUs on Vulkan")
        for f, k, _, _ in free:
            if k in getattr(p, f) and getattr(p, f)[k] != getattr(DEFAULT, f).get(k):
                print(f"  {f}[{k!r}] = {getattr(p, f)[k]:.4g}")
        errs = []
        for g in sorted({r.gpus for r in sel}):
            held = fit([r for r in sel if r.gpus != g], free, DEFAULT)
            for r in sel:
                if r.gpus == g:
                    errs.append(abs(predict(r, held)[0] / r.measured - 1))
                    print(f"    {g[0]:22} {r.model:14} {r.test}{r.n:<5} measured "
                          f"{r.measured:9.1f} held-out prediction {predict(r, held)[0]:9.1f}")
        if errs:
            errs.sort()
            print(f"  leave-one-GPU-out: median {statistics.median(errs):.1%}, 90th "
                  f"percentile {errs[int(0.9 * (len(errs) - 1))]:.1%}")


if __name__ == "__main__":
    main()
