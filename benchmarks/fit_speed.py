"""Fit the speed model's constants to the published llama.cpp measurements, within physical
bounds, and say how well it predicts GPUs and models it never saw.

    .venv/bin/python benchmarks/fit_speed.py [--cv]

Every efficiency is fitted within (0, 1]: a share of the device's spec bandwidth or tensor
peak. Least squares on log(predicted / measured), each GPU's rows weighted by
1/sqrt(its row count) so that one well-measured machine does not set the constants for all.

--cv runs two grouped 5-fold cross-validations: the rows of a GPU (and then of a model) are
never in both the fitting and the scored fold, so every error is out of sample for the GPU
(or the model) itself. It prints the median and 90th percentile per backend x memory class,
and the bands (90th percentiles of the GPU-grouped residuals) that speed_params.DEFAULT
carries for each category.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import math
import statistics

import numpy as np
from calibration import Row, load_rows, predict
from scipy.optimize import least_squares

from rigscope.estimator.speed_params import DEFAULT, SpeedParams
from rigscope.hardware import parse_rig

E = (0.02, 1.0)  # an efficiency: a share of a spec figure
# decode constants (fitted to tgN rows) and prefill constants (to ppN rows)
DECODE: list[tuple[str, str | None, float, float]] = [
    *[("bw_eff", k, *E) for k in ("cuda:gddr", "cuda:hbm", "cuda:lpddr", "rocm:gddr",
                                  "metal:unified", "cpu:ram")],
    *[("issue_gbs", k, 0.3, 60.0) for k in ("cuda:f16", "cuda:q8", "cuda:legacy",
                                             "cuda:kquant", "cuda:iq", "metal:f16",
                                             "metal:q8", "metal:legacy", "metal:kquant",
                                             "rocm:legacy", "rocm:kquant", "rocm:q8")],
    ("apple_2die", None, *E), ("overlap", None, 1.0, 8.0),
    *[("kv_eff", k, *E) for k in ("cuda", "cuda:fa", "rocm:fa", "metal", "metal:fa",
                                  "cpu:fa")],
    *[("layer_s", k, 0.0, 400e-6) for k in ("cuda", "rocm", "metal", "cpu")],
    ("moe_layer_s", None, 0.0, 400e-6), ("hop_s", None, 0.0, 3e-3),
    *[("era_decode", k, 0.2, 1.0) for k in ("2023", "2024")],
]
PREFILL: list[tuple[str, str | None, float, float]] = [
    *[("pp_eff", k, *E) for k in ("cuda:f16", "cuda:q8", "cuda:legacy", "cuda:kquant",
                                  "metal:f16", "metal:q8", "metal:legacy", "metal:kquant",
                                  "rocm", "cpu:legacy", "cpu:q8")],
    *[("attn_eff", k, *E) for k in ("cuda", "cuda:fa", "rocm:fa", "metal", "metal:fa",
                                    "cpu:fa")],
    ("hopper_peak", None, *E),
    *[("moe_tile", k, 4.0, 1024.0) for k in ("cuda", "rocm", "metal")],
    *[("pp_layer_s", k, 0.0, 2e-3) for k in ("cuda", "rocm", "metal", "cpu")],
    *[("era_prefill", k, 0.2, 1.0) for k in ("2023", "2024")],
]
FREE = DECODE + PREFILL
PRIOR = 0.5  # weight of the family prior, against rows weighted 1/sqrt(rows of their GPU)


def params_from(x: np.ndarray, base: SpeedParams, free: list = FREE) -> SpeedParams:  # noqa: B006
    changes: dict[str, object] = {}
    eras = {k: list(v) for k, v in base.eras.items()}
    for (field, key, _, _), value in zip(free, x, strict=True):
        if field.startswith("era_"):
            eras.setdefault(key, [1.0, 1.0])[field == "era_prefill"] = float(value)
            changes["eras"] = {k: tuple(v) for k, v in eras.items()}
        elif key is None:
            changes[field] = float(value)
        else:
            table = dict(changes.get(field) or getattr(base, field))  # type: ignore[call-overload]
            table[key] = float(value)
            changes[field] = table
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def initial(base: SpeedParams, free: list) -> np.ndarray:
    out = []
    for field, key, lo, hi in free:
        if field.startswith("era_"):
            v = base.eras.get(key, (1.0, 1.0))[field == "era_prefill"]
        else:
            v = getattr(base, field) if key is None else getattr(base, field).get(
                key, (lo + hi) / 2)
        out.append(min(max(v, lo * 1.01 + 1e-12), hi * 0.99))
    return np.array(out)


def gpu_of(row: Row) -> str:
    return row.gpus[0].split("x", 1)[-1] if row.gpus and "x" in row.gpus[0][:3] else (
        row.gpus[0] if row.gpus else "cpu")


def category(row: Row) -> str:
    if not row.gpus:
        return "cpu:ram"
    dev = parse_rig(list(row.gpus)).devices[0]
    return f"{dev.backend}:{dev.hw_class}"


def backend_of(row: Row) -> str:
    return parse_rig(list(row.gpus)).devices[0].backend if row.gpus else "cpu"


def fit_part(rows: list[Row], base: SpeedParams, free: list) -> SpeedParams:
    """Bounded least squares of `free` on log(predicted / measured), from `base`. Constants
    of a backend no row runs on are left as they are (nothing constrains them)."""
    backends = {backend_of(r) for r in rows}
    free = [f for f in free if f[1] is None or f[1].split(":")[0] in backends]
    counts = collections.Counter(gpu_of(r) for r in rows)
    weight = np.array([1 / math.sqrt(counts[gpu_of(r)]) for r in rows])
    lo = np.array([f[2] for f in free])
    span = np.array([f[3] for f in free]) - lo

    # kernel families (and memory classes) of one backend share a prior: each is pulled
    # toward their geometric mean, gently (PRIOR), so that a family or class without rows
    # in a fold takes its backend's typical value rather than an arbitrary start
    # Attention's efficiencies share a prior across GPU backends, with and without flash
    # attention apart (the CPU's threads are another matter).
    groups = collections.defaultdict(list)
    for i, (field, key, _, _) in enumerate(free):
        if key and field in ("bw_eff", "issue_gbs", "pp_eff") and ":" in key:
            groups[(field, key.split(":")[0])].append(i)
        elif key and field in ("attn_eff", "kv_eff") and not key.startswith("cpu"):
            groups[(field, key.endswith(":fa"))].append(i)

    def residuals(z: np.ndarray) -> np.ndarray:
        x = lo + z * span
        p = params_from(x, base, free)
        data = weight * np.array([math.log(predict(r, p)[0] / r.measured) for r in rows])
        prior = [PRIOR * (math.log(x[i]) - float(np.mean(np.log(x[idx]))))
                 for idx in groups.values() if len(idx) > 1 for i in idx]
        return np.concatenate([data, prior])

    z0 = (initial(base, free) - lo) / span
    result = least_squares(residuals, z0, bounds=(0.0, 1.0), loss="soft_l1", f_scale=0.15,
                           max_nfev=4000)
    return params_from(lo + result.x * span, base, free)


def fit(rows: list[Row], base: SpeedParams = DEFAULT) -> SpeedParams:
    """Decode constants on the tgN rows, then prefill constants on the ppN rows."""
    p = fit_part([r for r in rows if r.test == "tg"], base, DECODE)
    return fit_part([r for r in rows if r.test == "pp"], p, PREFILL)


def errors(pairs: list[tuple[Row, float]], keep=lambda r: True) -> dict[str, list[float]]:  # noqa: ANN001, E731
    out: dict[str, list[float]] = collections.defaultdict(list)
    for r, pred in pairs:
        if keep(r):
            out[r.test].append(abs(pred / r.measured - 1))
    return out


def line(name: str, errs: list[float]) -> str:
    errs = sorted(errs)
    p90 = errs[min(len(errs) - 1, int(0.9 * len(errs)))]
    within = sum(e <= 0.3 for e in errs) / len(errs)
    return (f"  {name:26} n={len(errs):3} median {statistics.median(errs):6.1%}  p90 "
            f"{p90:6.1%}  within 30% {within:5.0%}  max {errs[-1]:6.1%}")


def report(title: str, pairs: list[tuple[Row, float]]) -> dict[str, float]:
    print(title)
    bands: dict[str, float] = {}
    for test, kind in (("tg", "decode"), ("pp", "prefill")):
        allerr = errors(pairs)[test]
        if allerr:
            print(line(f"all {kind}", allerr))
            s = sorted(allerr)
            bands[kind] = round(s[min(len(s) - 1, int(0.9 * len(s)))], 2)
        for cat in sorted({category(r) for r, _ in pairs}):
            errs = errors(pairs, lambda r, c=cat: category(r) == c)[test]
            if errs:
                print(line(f"{cat} {kind}", errs))
                s = sorted(errs)
                if len(s) >= 8:
                    bands[f"{kind}:{cat}"] = round(s[min(len(s) - 1, int(0.9 * len(s)))], 2)
    return bands


def grouped_cv(rows: list[Row], group, folds: int = 5) -> list[tuple[Row, float]]:  # noqa: ANN001
    """Each group's rows predicted by a fit on the other folds' groups only."""
    sizes = collections.Counter(group(r) for r in rows)
    assign: dict[str, int] = {}
    load = [0] * folds
    for g, n in sorted(sizes.items(), key=lambda kv: -kv[1]):  # balance folds by rows
        i = load.index(min(load))
        assign[g] = i
        load[i] += n
    out = []
    for i in range(folds):
        train = [r for r in rows if assign[group(r)] != i]
        held = [r for r in rows if assign[group(r)] == i]
        p = fit(train, DEFAULT)
        out += [(r, predict(r, p)[0]) for r in held]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cv", action="store_true", help="grouped cross-validation (by GPU, by "
                                                      "model)")
    args = ap.parse_args()
    rows = [r for r in load_rows() if r.engine == "llama.cpp"]
    best = fit(rows)
    print("fitted (to copy into rigscope/estimator/speed_params.py, DEFAULT):")
    for field in dict.fromkeys("eras" if f.startswith("era_") else f for f, _, _, _ in FREE):
        v = getattr(best, field)
        if field == "eras":
            v = {k: tuple(float(f"{y:.3g}") for y in x) for k, x in sorted(v.items())}
        elif isinstance(v, dict):
            v = {k: float(f"{x:.3g}") for k, x in sorted(v.items())}
        else:
            v = float(f"{v:.3g}")
        print(f"  {field}={v},")
    report("in sample:", [(r, predict(r, best)[0]) for r in rows])
    if args.cv:
        by_gpu = grouped_cv(rows, gpu_of)
        bands = report("grouped by GPU (no GPU in both the fit and the scored fold):", by_gpu)
        report("grouped by model:", grouped_cv(rows, lambda r: r.model))
        print("bands =", dict(sorted(bands.items())))
        worst = sorted(by_gpu, key=lambda rp: -abs(math.log(rp[1] / rp[0].measured)))[:15]
        print("largest GPU-held-out errors:")
        for r, pred in worst:
            rig = r.gpus[0] if r.gpus else "cpu"
            print(f"  {pred / r.measured - 1:+7.1%} {r.test}{r.n}@{r.depth} {rig} {r.model} "
                  f"{r.quant} fa={int(r.flash_attn)} ({r.source[:24]})")


if __name__ == "__main__":
    main()
