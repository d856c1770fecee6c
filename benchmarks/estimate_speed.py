"""Estimates per second over the whole catalog (models x GPU rigs x GGUF mixes).

    .venv/bin/python benchmarks/estimate_speed.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import time

from rigscope.catalog import apple_chips, gguf_mixes, gpus, models
from rigscope.estimator import estimate
from rigscope.hardware import parse_rig
from rigscope.sources import catalog_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    specs = [catalog_model(m) for m in models()]
    rigs = [parse_rig([g]) for g in gpus()] + [parse_rig([f"2x{g}"]) for g in gpus()]
    rigs += [parse_rig([c]) for c in apple_chips()]
    quants = list(gguf_mixes())
    combos = [(s, r, q) for s in specs for r in rigs for q in quants]
    n, fits = 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        s, r, q = combos[n % len(combos)]
        fits += estimate(s, r, quant=q, context=8192).fits
        n += 1
    elapsed = time.perf_counter() - start
    print(f"catalog: {len(specs)} models x {len(rigs)} rigs x {len(quants)} quants "
          f"= {len(combos)} configurations")
    print(f"estimates: {n} in {elapsed:.2f} s = {n / elapsed:,.0f} per second "
          f"({elapsed / n * 1e3:.3f} ms each); {fits} fit")


if __name__ == "__main__":
    main()
