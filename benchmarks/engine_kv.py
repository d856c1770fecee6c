"""KV-pool capacity of vLLM, SGLang and TensorRT-LLM: rigscope's estimate against what real
servers printed at startup (benchmarks/data/published/engine_kv.csv, copied from
the project's shared data set, data/engine_kv.csv, with each log line's source).

    .venv/bin/python benchmarks/engine_kv.py

Rows whose model or GPU the log does not name, or names one rigscope has no entry for, are
listed as skipped with the reason. The GPU of an unnamed "~80 GB class" log is taken as an
H100 80GB (SXM), as the logs' free memory (78.8 GiB) says.
"""

from __future__ import annotations

import csv
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from rigscope.estimator import estimate
from rigscope.estimator.paged import token_bytes
from rigscope.hardware import parse_rig
from rigscope.sources import catalog_model
from rigscope.units import GIB

DATA = Path(__file__).parent / "data" / "published" / "engine_kv.csv"

MODELS = {  # the log's model -> (catalog id, weight format)
    "meta-llama/Llama-3.1-8B-Instruct": ("llama-3.1-8b", "BF16"),
    "meta-llama/Meta-Llama-3.1-8B-Instruct": ("llama-3.1-8b", "BF16"),
    "meta-llama/Meta-Llama-3-8B": ("llama-3-8b", "BF16"),
    "Qwen2.5-32B-Instruct": ("qwen2.5-32b", "BF16"),
    "Qwen/QwQ-32B": ("qwen2.5-32b", "BF16"),  # QwQ-32B is a Qwen2.5-32B fine-tune
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": ("qwen2.5-14b", "BF16"),
    "llama-2-7b": ("llama-2-7b", "BF16"),
    "meta-llama/Llama-2-7b-hf": ("llama-2-7b", "BF16"),
    "openai/gpt-oss-20b": ("gpt-oss-20b", None),
    "Qwen/Qwen3-235B-A22B-FP8": ("qwen3-235b-a22b", "FP8"),
}
GPUS = {"NVIDIA GeForce RTX 3090": "rtx-3090", "NVIDIA A100 40GB": "a100-pcie-40gb",
        "NVIDIA L40S": "l40s", "NVIDIA GeForce RTX 4090": "rtx-4090", "NVIDIA A10": "a10",
        "NVIDIA A100": "a100-sxm-80gb", "NVIDIA H100": "h100-sxm", "NVIDIA L4": "l4",
        "NVIDIA GeForce RTX 5090": "rtx-5090", "": "h100-sxm"}


@dataclass
class Row:
    engine: str
    version: str
    model: str
    quant: str | None
    gpu: str
    count: int
    context: int
    fraction: float | None
    kv_type: str
    tokens: int | None  # the pool as printed, in tokens
    kv_gib: float | None  # or only its size
    source: str


def _model_key(text: str) -> str:
    return re.sub(r"\s*\(.*$", "", text).strip()


def load() -> tuple[list[Row], list[str]]:
    rows, skipped = [], []
    with DATA.open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            key = _model_key(r["model"])
            gpu_key = re.sub(r"\s*\(.*$", "", r["gpu"]).strip()
            why = ("model not named or not in the catalog" if key not in MODELS else
                   "GPU not in the catalog" if gpu_key not in GPUS else "")
            tokens = int(r["reported_kv_tokens"]) if r["reported_kv_tokens"] else (
                int(r["reported_blocks"]) * int(r["block_size"] or 16)
                if r["reported_blocks"] else None)
            kv_gib = float(r["reported_kv_gib"]) if r["reported_kv_gib"] else None
            if not why and tokens is None and kv_gib is None:
                why = "no capacity printed"
            if why:
                skipped.append(f"{r['engine']} {r['model'][:40]} on {r['gpu'] or '?'}: {why}")
                continue
            model, quant = MODELS[key]
            count = int(r["tp"] or r["gpu_count"] or 1)
            rows.append(Row(
                engine=r["engine"], version=r["engine_version"], model=model, quant=quant,
                gpu=GPUS[gpu_key], count=count, context=int(r["max_model_len"] or 4096),
                fraction=float(r["mem_fraction"]) if r["mem_fraction"] else None,
                kv_type="fp8" if r["kv_dtype"] == "fp8" else "f16",
                tokens=tokens, kv_gib=kv_gib, source=r["source_url"][:60]))
    return rows, skipped


def predict(row: Row) -> tuple[float, float]:
    """(predicted, reported): tokens where the log prints tokens, else GiB per GPU.
    A log whose pool cannot fit the GPU it names raises ValueError."""
    rig = parse_rig([f"{row.count}x{row.gpu}"])
    version = row.version if re.match(r"\d", row.version or "") else (
        "0.7" if row.engine == "vllm" and "V1" not in (row.version or "") else None)
    est = estimate(catalog_model(row.model), rig, quant=row.quant, engine=row.engine,
                   context=row.context, kv_type=row.kv_type, mem_fraction=row.fraction,
                   engine_version=version)
    if row.tokens is not None:
        need = row.tokens * token_bytes(est.request, row.count)
        if need > rig.devices[0].memory_bytes:
            raise ValueError(f"its pool ({row.tokens:,} tokens = {need / GIB:.0f} GiB per GPU "
                             f"of KV) is larger than the {row.gpu} it names")
        return float(est.kv_capacity_tokens or 0), float(row.tokens)
    pool = max(d.kv_bytes for d in est.devices) / GIB
    return pool, float(row.kv_gib or 0)


def errors() -> tuple[list[tuple[Row, float, float, float]], list[str]]:
    """Each comparable row with (predicted, reported, relative error); why others are not."""
    rows, skipped = load()
    out = []
    for row in rows:
        try:
            p, r = predict(row)
        except ValueError as e:
            skipped.append(f"{row.engine} {row.model} on {row.gpu}: {e}")
            continue
        out.append((row, p, r, p / r - 1))
    return out, skipped


def main() -> None:
    compared, skipped = errors()
    print(f"{'engine':13} {'model':16} {'rig':18} {'ctx':>7} {'frac':>5} "
          f"{'predicted':>10} {'reported':>10} {'error':>7}")
    errs = []
    for row, p, r, e in compared:
        unit = "" if row.tokens is not None else " GiB"
        print(f"{row.engine:13} {row.model:16} {row.count}x{row.gpu:15} {row.context:>7} "
              f"{row.fraction or 0:5.2f} {p:>10,.0f}{unit} {r:>10,.0f}{unit} {e:+7.1%}")
        errs.append(abs(e))
    print(f"{len(errs)} rows: median |error| {statistics.median(errs):.1%}, "
          f"worst {max(errs):.1%}")
    for s in skipped:
        print("skipped:", s)


if __name__ == "__main__":
    main()
