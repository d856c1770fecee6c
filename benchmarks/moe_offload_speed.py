"""Predicted vs measured speed with MoE FFN/expert tensors in system RAM.

    .venv/bin/python benchmarks/moe_offload_speed.py

Rows: benchmarks/data/moe_offload_speed.csv (measured runs with -ot/--n-cpu-moe placements,
sources in the file). Each row is estimated with its GPUs, its placement as -ot overrides and
the spec bandwidth of its stated (or assumed) RAM; prints predicted vs measured and the median
absolute error for decode (tg) and prefill (pp). Rows from the ik_llama.cpp fork are marked:
its prefill is often faster than mainline llama.cpp's.
"""

from __future__ import annotations

import csv
import dataclasses
import statistics
from pathlib import Path

from rigscope.estimator import estimate
from rigscope.estimator.speed import estimate_speed
from rigscope.hardware import parse_rig, with_ram_bandwidth
from rigscope.sources import resolve_model
from rigscope.specs import Offload

DATA = Path(__file__).parent / "data" / "moe_offload_speed.csv"


def rows() -> list[dict[str, str]]:
    lines = [ln for ln in DATA.read_text().splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def predict(row: dict[str, str]) -> float:
    rig = with_ram_bandwidth(parse_rig([row["gpus"]], None, "512gb"), float(row["ram_gbs"]))
    if row["gpu_mib"]:  # a card with more memory than the catalog's (a modded 20 GB 3080)
        mib = int(row["gpu_mib"]) * 2**20
        rig = dataclasses.replace(rig, devices=tuple(
            dataclasses.replace(g, memory_bytes=mib, usable_bytes=mib) for g in rig.devices))
    overrides = tuple(tuple(x.rsplit("=", 1)) for x in row["overrides"].split(";"))
    split = tuple(float(x) for x in row["tensor_split"].split(",")) if row["tensor_split"] else ()
    n = int(row["test"][2:]) if row["test"][2:].isdigit() else 512
    depth = int(row["depth"])
    est = estimate(resolve_model(row["model"]), rig, quant=row["quant"],
                   context=max(8192, depth + n + 256), kv_type=row["kv_type"],
                   offload=Offload(overrides=overrides,  # type: ignore[arg-type]
                                   tensor_split=split, n_ubatch=int(row["ubatch"])))
    if row["test"].startswith("tg"):
        s = estimate_speed(est, prompt_tokens=0, output_tokens=n, depth=depth)
        return s.decode_tokens_per_s
    s = estimate_speed(est, prompt_tokens=n, output_tokens=1, depth=depth)
    return s.prefill_tokens_per_s


def main() -> None:
    errors: dict[str, list[float]] = {"tg": [], "pp": []}
    print(f"{'row':4} {'gpus':12} {'model':16} {'quant':7} {'test':6} {'measured':>9} "
          f"{'predicted':>9} {'error':>7}  engine")
    for row in rows():
        got, want = predict(row), float(row["tokens_per_s"])
        err = got / want - 1
        errors[row["test"][:2]].append(abs(err))
        print(f"{row['id']:4} {row['gpus']:12} {row['model']:16} {row['quant']:7} "
              f"{row['test']:6} {want:9.2f} {got:9.2f} {err:+7.1%}  {row['engine']}")
    for kind, errs in errors.items():
        if errs:
            print(f"{kind}: median |error| {statistics.median(errs):.1%} over {len(errs)} rows")


if __name__ == "__main__":
    main()
