"""Published speed measurements (benchmarks/data/published) and this project's own, as rows
to predict.

Each row names a catalog model, quantization, rig and llama-bench style test (tgN: generate N
tokens from an empty context; ppN: process an N-token prompt) and the measured tokens/s.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "benchmarks" / "data" / "published"
OWN = ROOT / "benchmarks" / "data" / "own_measurements.jsonl"

SCOREBOARD_GPUS = {"RTX 5090": "rtx-5090", "RTX 4090": "rtx-4090", "RTX 3090": "rtx-3090"}
OLLAMA_MODELS = {"deepseek-r1:14b": "qwen2.5-14b", "llama3.1:70b": "llama-3.1-70b",
                 "llama3.2:3b": "llama-3.2-3b"}


@dataclass(frozen=True)
class Row:
    model: str
    quant: str
    gpus: tuple[str, ...]  # --gpu specs; empty for CPU only
    test: str  # "tg" or "pp"
    n: int
    measured: float  # tokens/s
    source: str
    engine: str = "llama.cpp"
    context: int | None = None  # KV reserved, when the source says (else test length)
    cpu_gbs: float | None = None  # host RAM bandwidth, for CPU rows
    cpu_tflops: float | None = None

    @property
    def multi(self) -> bool:
        return sum(int(g.split("x")[0]) if "x" in g and g.split("x")[0].isdigit() else 1
                   for g in self.gpus) > 1


def _test(text: str) -> tuple[str, int]:
    return text[:2], int(text[2:])


def load_rows(shared: Path = PUBLISHED) -> list[Row]:
    rows: list[Row] = []
    with (shared / "llamacpp_llama3_8b_calibration.csv").open() as f:
        for r in csv.DictReader(f):
            t, n = _test(r["test"])
            rows.append(Row(r["model"], r["quant"], (f"{r['count']}x{r['gpu']}",), t, n,
                            float(r["tokens_per_s"]), "XiongjieDai 2024-05"))
    with (shared / "llamacpp_apple_silicon_llama2_7b.csv").open() as f:
        from rigscope.catalog import apple_chips

        for r in csv.DictReader(f):
            if r["chip"] not in apple_chips():
                continue  # e.g. M5: not in the catalog
            t, n = _test(r["test"])
            rows.append(Row(r["model"], r["quant"], (r["chip"],), t, n,
                            float(r["tokens_per_s"]), "llama.cpp #4167"))
    with (shared / "llamacpp_scoreboard_llama2_7b_q4_0.csv").open() as f:
        for r in csv.DictReader(f):
            gpu = SCOREBOARD_GPUS.get(r["gpu"])
            if r["backend"] != "CUDA" or gpu is None:
                continue  # Vulkan is not modelled; A100/H100 rows do not say PCIe or SXM
            for test in ("pp512", "tg128"):
                t, n = _test(test)
                rows.append(Row(r["model"], r["quant"], (gpu,), t, n, float(r[test]),
                                "scoreboard 2025"))
    with (shared / "mlc_llm_perf_bench_decode.csv").open() as f:
        for r in csv.DictReader(f):
            count, gpu = r["gpus"].split("x ", 1)
            quant = {"4-bit": "Q4_0", "FP16": "F16"}[r["precision"]]
            if r["engine"].startswith("llama.cpp"):
                rows.append(Row(r["model"], quant, (f"{count}x{gpu}",), "tg", 256,
                                float(r["decode_tokens_per_s"]), "mlc-llm bench 2023"))
            elif r["engine"].startswith("vLLM"):
                rows.append(Row(r["model"], "FP16" if quant == "F16" else "AWQ",
                                (f"{count}x{gpu}",), "tg", 256,
                                float(r["decode_tokens_per_s"]), "mlc-llm bench 2023",
                                engine="vllm"))
    with (shared / "ollama_eval_rates.csv").open() as f:
        for r in csv.DictReader(f):
            model = OLLAMA_MODELS.get(r["ollama_tag"])
            if model is None:
                continue
            rows.append(Row(model, "Q4_K_M", (r["gpu"].rstrip("?"),), "tg", 256,
                            float(r["eval_tokens_per_s"]), "Ollama (geerlingguy) 2025",
                            engine="ollama", context=4096))
    if OWN.exists():
        for line in OWN.read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                rows.append(Row(d["model"], d["quant"], tuple(d.get("gpus", ())), d["test"],
                                d["n"], d["tokens_per_s"], d["source"],
                                cpu_gbs=d.get("cpu_gbs"), cpu_tflops=d.get("cpu_tflops")))
    return rows


_ESTIMATES: dict[Row, object] = {}


def predict(row: Row, params=None) -> tuple[float, bool]:  # noqa: ANN001
    """(predicted tokens/s, fits) for a row."""
    from rigscope.demo import smollm2_gguf
    from rigscope.estimator import estimate
    from rigscope.estimator.speed import decode_step_seconds, prefill_seconds
    from rigscope.estimator.speed_params import DEFAULT
    from rigscope.hardware import parse_rig
    from rigscope.sources import resolve_model
    from rigscope.specs import Accelerator, Rig

    p = params or DEFAULT
    est = _ESTIMATES.get(row)
    if est is None:  # placement does not depend on the speed constants: compute it once
        model = resolve_model(str(smollm2_gguf()) if row.model == "smollm2" else row.model)
        if row.gpus:
            rig = parse_rig(list(row.gpus))
        else:
            rig = Rig(devices=(), host=Accelerator.cpu(16 * 2**30, row.cpu_gbs, row.cpu_tflops))
        ctx = row.context or max(row.n, 512)
        est = _ESTIMATES[row] = estimate(model, rig, quant=row.quant, engine=row.engine,
                                         context=ctx, flash_attn=False)
    if row.test == "tg":
        t = decode_step_seconds(est, row.n / 2, 1, p)
        return 1 / t, est.fits
    return row.n / prefill_seconds(est, row.n, p), est.fits
