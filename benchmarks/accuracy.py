"""Predicted vs measured speed for every calibration row (shared/data and own measurements).

    .venv/bin/python benchmarks/accuracy.py [--rows]

Prints median / mean / max absolute percentage error for decode (tgN) and prefill (ppN),
split by backend and by single vs multi device, plus fit/no-fit agreement (every row ran).
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

from calibration import Row, load_rows, predict

from rigscope.hardware import parse_rig


def backend(row: Row) -> str:
    if row.engine == "vllm":
        return "vllm"
    if not row.gpus:
        return "cpu"
    return parse_rig(list(row.gpus)).devices[0].backend


def naive_decode(row: Row) -> float:
    """The common bandwidth heuristic: tokens/s = bandwidth / model size, no efficiencies."""
    from calibration import _ESTIMATES

    from rigscope.estimator.speed import parts

    est = _ESTIMATES[row]
    return 1 / sum(p.use.read_bytes / ((p.dev.bandwidth_gbs or 1) * 1e9) for p in parts(est))


def line(name: str, errs: list[float]) -> str:
    a = sorted(abs(e) for e in errs)
    within30 = sum(1 for e in a if e <= 30) / len(a)
    p90 = a[min(len(a) - 1, int(0.9 * len(a)))]
    return (f"  {name[:30]:30} n={len(a):4}  median {statistics.median(a):5.1f}%  "
            f"mean {statistics.mean(a):5.1f}%  p90 {p90:5.1f}%  max {a[-1]:6.1f}%  "
            f"within 30%: {within30:.0%}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", action="store_true", help="print every row")
    args = ap.parse_args()
    groups: dict[str, list[float]] = defaultdict(list)
    misfits = []
    naive: list[float] = []
    for row in load_rows():
        pred, fits = predict(row)
        err = (pred - row.measured) / row.measured * 100
        kind = "decode" if row.test == "tg" else "prefill"
        if row.test == "tg":
            naive.append((naive_decode(row) - row.measured) / row.measured * 100)
        for g in (kind, f"{kind} {backend(row)}",
                  f"{kind} {'multi' if row.multi else 'single'}-device", f"{kind} {row.source}"):
            groups[g].append(err)
        if not fits and row.engine != "ollama":
            misfits.append(row)
        if args.rows:
            print(f"{row.source[:26]:26} {row.model:13} {row.quant:6} {','.join(row.gpus):19} "
                  f"{row.test}{row.n:<5} measured {row.measured:9.2f} predicted {pred:9.2f} "
                  f"{err:+6.1f}%")
    for kind in ("decode", "prefill"):
        print(f"{kind} (tokens/s, |predicted - measured| / measured)")
        for name in sorted(g for g in groups if g.startswith(kind)):
            print(line(name[len(kind):].strip() or "all", groups[name]))
    print("naive baseline (decode = spec bandwidth / weight bytes, one device after another):")
    print(line("decode", naive))
    print(f"rows that ran but were predicted not to fit: {len(misfits)} "
          "(Ollama's 70B-on-one-4090 row spills by design and is excluded)")
    for r in misfits:
        print(f"  {r}")


if __name__ == "__main__":
    main()
