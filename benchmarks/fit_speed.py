"""Fit the speed model's efficiency constants to the calibration rows (log-error least squares).

    .venv/bin/python benchmarks/fit_speed.py

Prints the fitted values to copy into rigscope/estimate/speed.py (DEFAULT) and the residuals.
Only llama.cpp rows are fitted (vLLM's are reported by benchmarks/accuracy.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import statistics

import numpy as np
from calibration import load_rows, predict
from scipy.optimize import least_squares

from rigscope.estimator.speed_params import DEFAULT, SpeedParams

# (field, key or None for a scalar, lower bound, upper bound)
FREE = [
    ("bw_eff", "cuda:gddr", 0.2, 1.0), ("bw_eff", "cuda:hbm", 0.1, 1.0),
    ("bw_eff", "metal:unified", 0.2, 1.0), ("bw_eff", "metal:unified-2die", 0.2, 1.0),
    ("bw_eff", "cpu:ram", 0.2, 5.0), ("layer_s", "cpu", 0.0, 500e-6),
    ("family_bw", "cuda:f16", 0.5, 2.0), ("family_bw", "cuda:legacy", 0.5, 2.0),
    ("family_bw", "metal:f16", 0.5, 2.0), ("family_bw", "metal:q8", 0.5, 2.0),
    ("family_bw", "metal:legacy", 0.5, 2.0),
    ("kv_eff", "cuda", 0.02, 1.0),
    ("layer_s", "cuda", 0.0, 200e-6), ("layer_s", "metal", 0.0, 300e-6),
    ("hop_s", None, 0.0, 2e-3),
    ("pp_eff", "cuda:kquant", 0.05, 1.0), ("pp_eff", "cuda:f16", 0.05, 1.0),
    ("pp_eff", "cuda:legacy", 0.05, 1.0),
    ("pp_eff", "metal:f16", 0.1, 1.0), ("pp_eff", "metal:legacy", 0.1, 1.0),
    ("pp_eff", "metal:q8", 0.1, 1.0), ("pp_eff", "cpu", 0.05, 3.0),
    ("pp_eff", "cpu:q8", 0.05, 5.0),
    ("attn_eff", "cuda", 0.005, 1.0), ("hopper_peak", None, 0.2, 1.0),
]


def params_from(x: np.ndarray, base: SpeedParams) -> SpeedParams:
    changes: dict[str, object] = {}
    for (field, key, _, _), value in zip(FREE, x, strict=True):
        if key is None:
            changes[field] = float(value)
        else:
            table = dict(changes.get(field) or getattr(base, field))  # type: ignore[call-overload]
            table[key] = float(value)
            changes[field] = table
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def initial(base: SpeedParams) -> np.ndarray:
    out = []
    for field, key, lo, hi in FREE:
        v = getattr(base, field) if key is None else getattr(base, field).get(key, (lo + hi) / 2)
        out.append(min(max(v, lo), hi))
    return np.array(out)


def fit(rows: list, base: SpeedParams = DEFAULT) -> SpeedParams:  # noqa: ANN001
    """Least squares on log(predicted / measured), starting from `base`."""
    scale = np.array([hi for _, _, _, hi in FREE])

    def residuals(z: np.ndarray) -> np.ndarray:
        p = params_from(z * scale, base)
        return np.array([math.log(predict(r, p)[0] / r.measured) for r in rows])

    result = least_squares(residuals, initial(base) / scale,
                           bounds=([lo / hi for _, _, lo, hi in FREE], [1.0] * len(FREE)),
                           loss="soft_l1", f_scale=0.2)
    return params_from(result.x * scale, base)


def report(name: str, rows: list, p: SpeedParams) -> list[float]:  # noqa: ANN001
    out = []
    for test in ("tg", "pp"):
        errs = sorted(abs(predict(r, p)[0] / r.measured - 1) for r in rows if r.test == test)
        if errs:
            p90 = errs[min(len(errs) - 1, int(0.9 * len(errs)))]
            print(f"  {name[:34]:34} {test}: n={len(errs):3} median {statistics.median(errs):6.1%}"
                  f"  p90 {p90:6.1%}  max {errs[-1]:6.1%}")
            out += errs
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cv", action="store_true",
                    help="also run a 5-fold cross-validation (out-of-sample errors)")
    args = ap.parse_args()
    rows = [r for r in load_rows() if r.engine != "vllm"]
    best = fit(rows)
    for field, key, _, _ in FREE:
        v = getattr(best, field) if key is None else getattr(best, field)[key]
        print(f"{field:12} {key or '':22} {v:.4g}")
    print("in sample:")
    report("all rows", rows, best)
    if args.cv:
        # Start every fold from neutral values, not from the fitted DEFAULT (no leakage).
        neutral = params_from(np.array([(lo + hi) / 4 for _, _, lo, hi in FREE]), DEFAULT)
        rng = random.Random(7)
        order = rows[:]
        rng.shuffle(order)
        folds = [order[i::5] for i in range(5)]
        out: list = []
        for i, held in enumerate(folds):
            train = [r for j, fold in enumerate(folds) if j != i for r in fold]
            p = fit(train, neutral)
            out += [(r, predict(r, p)[0]) for r in held]
        print("5-fold cross-validation (each row predicted by a fit that never saw it):")
        for name, keep in [("all", lambda r: True), ("cuda", lambda r: r.gpus and "m" not in
                            r.gpus[0][:1]), ("metal", lambda r: r.gpus and r.gpus[0][:1] == "m"),
                           ("multi-device", lambda r: r.multi)]:
            for test in ("tg", "pp"):
                errs = sorted(abs(pred / r.measured - 1) for r, pred in out
                              if r.test == test and keep(r))
                if errs:
                    p90 = errs[min(len(errs) - 1, int(0.9 * len(errs)))]
                    print(f"  {name:13} {test}: n={len(errs):3} median "
                          f"{statistics.median(errs):6.1%}  p90 {p90:6.1%}  max {errs[-1]:6.1%}")


if __name__ == "__main__":
    main()
