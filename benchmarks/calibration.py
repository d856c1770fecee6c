"""Published speed measurements (benchmarks/data/published) and this project's own, as rows
to predict.

Each row names a catalog model, quantization, rig and llama-bench style test (tgN: generate N
tokens from an empty context; ppN: process an N-token prompt) and the measured tokens/s.
"""

from __future__ import annotations

import csv
import json
import re
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
    depth: int = 0  # tokens already in the context (llama-bench "@ dN")
    ubatch: int = 512  # llama-bench -ub
    flash_attn: bool = False
    build: str = ""  # the llama.cpp build or date the row was measured with
    era: str = "2025+"  # speed_params.ERAS: when that build was made
    backend: str | None = None  # the llama.cpp backend when not the vendor's own (vulkan)

    @property
    def multi(self) -> bool:
        return sum(int(g.split("x")[0]) if "x" in g and g.split("x")[0].isdigit() else 1
                   for g in self.gpus) > 1


def _test(text: str) -> tuple[str, int]:
    return text[:2], int(text[2:])


# llama-bench rows of 2024-2026 builds: GPU names as printed -> catalog ids (names that do
# not say which variant, e.g. "H100 80GB (SXM/PCIe not stated)", are left out)
RECENT_GPUS = {
    "NVIDIA GB10 (DGX Spark)": "gb10",
    "NVIDIA RTX PRO 6000 Blackwell Workstation Edition": "rtx-pro-6000-blackwell",
    "NVIDIA RTX PRO 6000 Blackwell": "rtx-pro-6000-blackwell",
    "AMD Radeon PRO W7900": "radeon-pro-w7900", "AMD Radeon RX 9070 XT": "rx-9070-xt",
    "AMD Radeon RX 7900 XTX": "rx-7900-xtx", "AMD Radeon RX 7900 XT": "rx-7900-xt",
    "AMD Radeon RX 7900 GRE": "rx-7900-gre", "AMD Radeon RX 7800 XT": "rx-7800-xt",
    "AMD Radeon RX 6900 XT": "rx-6900-xt", "AMD Radeon RX 6800 XT": "rx-6800-xt",
    "AMD Instinct MI300X": "mi300x",
    # ggml-org's own M2 Ultra benches run on the 76-core part (assumed where not stated)
    "Apple M2 Ultra (GPU core count not stated in file)": "m2-ultra-76c",
    "Apple M1 Ultra (64-core GPU, 128GB)": "m1-ultra-64c",
    "Apple M4 (Mac mini, 10-core CPU, 16GB; GPU core count not stated)": "m4-10c:16gb",
    "NVIDIA H100 80GB HBM3": "h100-sxm", "NVIDIA H200": "h200", "NVIDIA A30": "a30",
    "Intel Arc B580": "arc-b580", "Intel Arc B570": "arc-b570", "Intel Arc A770": "arc-a770",
    "Intel Arc A750": "arc-a750", "Intel Arc Pro B60": "arc-pro-b60",
    "Intel Arc Pro B50": "arc-pro-b50", "NVIDIA Jetson AGX Orin": "jetson-agx-orin-64gb",
    "AMD Ryzen AI Max+ 395 (Radeon 8060S iGPU)": "radeon-8060s",
    "NVIDIA GeForce RTX 4070 Ti": "rtx-4070-ti", "NVIDIA GeForce RTX 4070 SUPER":
    "rtx-4070-super", "NVIDIA GeForce RTX 4070": "rtx-4070", "NVIDIA GeForce RTX 3070":
    "rtx-3070",
    "NVIDIA GeForce RTX 4090": "rtx-4090", "NVIDIA GeForce RTX 4080": "rtx-4080",
    "NVIDIA GeForce RTX 4080 SUPER": "rtx-4080-super", "NVIDIA GeForce RTX 5080": "rtx-5080",
    "NVIDIA GeForce RTX 5070 Ti": "rtx-5070-ti", "NVIDIA GeForce RTX 5070": "rtx-5070",
    "NVIDIA GeForce RTX 3090 Ti": "rtx-3090-ti", "NVIDIA GeForce RTX 3090": "rtx-3090",
    "NVIDIA L40": "l40", "NVIDIA RTX 6000 Ada Generation": "rtx-6000-ada",
    "NVIDIA RTX A6000": "rtx-a6000", "NVIDIA RTX A5000": "rtx-a5000",
    "NVIDIA RTX A4500": "rtx-a4500", "NVIDIA RTX A4000": "rtx-a4000",
    "NVIDIA Tesla T4": "tesla-t4", "NVIDIA Tesla V100": "tesla-v100",
    "NVIDIA GeForce RTX 2080 Ti": "rtx-2080-ti",
}
# (llama-bench model name, params in B) -> (catalog model, GGUF mix)
RECENT_MODELS = {
    ("gpt-oss 20B MXFP4 MoE", "20.91"): ("gpt-oss-20b", "MXFP4_MOE"),
    ("gpt-oss 120B MXFP4 MoE", "116.83"): ("gpt-oss-120b", "MXFP4_MOE"),
    ("gpt-oss 120B Q8_0", "116.83"): ("gpt-oss-120b", "Q8_0"),
    ("qwen3moe 30B.A3B Q8_0", "30.53"): ("qwen3-30b-a3b", "Q8_0"),
    ("qwen3moe 30B.A3B Q4_K - Medium", "30.53"): ("qwen3-30b-a3b", "Q4_K_M"),
    ("qwen2 7B Q8_0", "7.62"): ("qwen2.5-7b", "Q8_0"),
    ("llama 7B Q4_0", "6.74"): ("llama-2-7b", "Q4_0"),
    ("gemma3 4B Q4_0", "3.88"): ("gemma-3-4b", "Q4_0"),
    ("llama 8B Q4_K_M", "8"): ("llama-3.1-8b", "Q4_K_M"),
    ("llama 3.1 8b q4_k_m (normiebench label)", "8"): ("llama-3.1-8b", "Q4_K_M"),
    ("llama 7B Q4_K - Medium", "6.74"): ("llama-2-7b", "Q4_K_M"),
    ("llama 7B Q4_K - Medium", "7.25"): ("mistral-7b-v0.3", "Q4_K_M"),
    ("llama 3B Q4_K - Medium", "3.21"): ("llama-3.2-3b", "Q4_K_M"),
    ("llama 70B Q4_K - Medium", "70.55"): ("llama-3.3-70b", "Q4_K_M"),
    ("llama 13B Q4_K - Medium", "12.25"): ("mistral-nemo-12b", "Q4_K_M"),
    ("llama 8B Q5_K - Medium", "8.03"): ("llama-3.1-8b", "Q5_K_M"),
    ("qwen2 ?B Q5_K - Medium", "32.76"): ("qwen2.5-32b", "Q5_K_M"),
    ("qwen2 ?B Q8_0", "32.76"): ("qwen2.5-32b", "Q8_0"),
    ("deepseek2 671B Q5_K - Medium", "671.03"): ("deepseek-v3", "Q5_K_M"),
    ("Qwen3 0.6B Q4_K_M (llama-bench name not printed in source)", "0.6"): ("qwen3-0.6b",
                                                                           "Q4_K_M"),
    ("Qwen3 1.7B Q4_K_M (llama-bench name not printed in source)", "1.7"): ("qwen3-1.7b",
                                                                           "Q4_K_M"),
    ("Qwen3 4B Q4_K_M (llama-bench name not printed in source)", "4"): ("qwen3-4b", "Q4_K_M"),
    ("Qwen3 8B Q4_K_M (llama-bench name not printed in source)", "8"): ("qwen3-8b", "Q4_K_M"),
}


def recent_rows(shared: Path = PUBLISHED, vulkan: bool = False
                ) -> tuple[list[Row], list[str]]:
    """llamacpp_recent_rows.csv as rows (CUDA, ROCm and Metal at full offload; with
    `vulkan` the Vulkan rows too, backend "vulkan"); and what was left out, with why
    (Vulkan unless asked for, GPUs or models not in the catalog, power-limited runs, a size
    that disagrees with the catalog's)."""
    from rigscope.catalog import gguf_mixes
    from rigscope.estimator.memory import layer_weights
    from rigscope.estimator.speed_params import era_of
    from rigscope.sources import resolve_model

    rows, left = [], []
    with (shared / "llamacpp_recent_rows.csv").open() as f:
        for r in csv.DictReader(f):
            gpu = RECENT_GPUS.get(r["gpu"])
            model = RECENT_MODELS.get((r["model"], r["model_params_b"]))
            why = ("Vulkan" if r["backend"] == "Vulkan" and not vulkan else
                   f"GPU {r['gpu']!r}" if gpu is None else
                   f"model {r['model']!r}" if model is None else
                   "power-limited" if "power limit" in r["quote"] and "600W" not in r["quote"]
                   else "partial offload" if r["ngl"] not in ("", "99", "999") else "")
            if why:
                left.append(why)
                continue
            assert gpu is not None and model is not None
            size = r["model_size_gib"].split(" ")[0]
            if size:
                ours = layer_weights(resolve_model(model[0]), gguf_mixes()[model[1]]).total
                if abs(ours / 2**30 / float(size) - 1) > 0.03:
                    left.append(f"size {size} GiB vs {ours / 2**30:.2f} for {model}")
                    continue
            test, _, depth = r["test"].partition(" @ d")
            if "+" in test or test[:2] not in ("tg", "pp"):
                left.append(f"test {r['test']}")
                continue
            t, n = _test(test)
            count = int(r["gpu_count"] or 1)
            rows.append(Row(model[0], model[1], (f"{count}x{gpu}" if count > 1 else gpu,), t,
                            n, float(r["tokens_per_s"]), r["source"][:60],
                            depth=int(depth or 0), flash_attn=r["flash_attn"] == "1",
                            ubatch=int(m.group(1)) if (m := re.search(
                                r"n_ubatch[= ](\d+)", r["quote"])) else 512,
                            era=era_of(b.group(1) if (b := re.search(r"\((\d+)\)", r["build"]))
                                       else (r["date"][:4] if r["date"][:4].isdigit() else None)),
                            build=f"{r['build']} {r['date']}",
                            backend="vulkan" if r["backend"] == "Vulkan" else None))
    return rows, left


def load_rows(shared: Path = PUBLISHED) -> list[Row]:
    rows: list[Row] = []
    with (shared / "llamacpp_llama3_8b_calibration.csv").open() as f:
        for r in csv.DictReader(f):
            t, n = _test(r["test"])
            rows.append(Row(r["model"], r["quant"], (f"{r['count']}x{r['gpu']}",), t, n,
                            float(r["tokens_per_s"]), "XiongjieDai 2024-05", era="2024"))
    with (shared / "llamacpp_apple_silicon_llama2_7b.csv").open() as f:
        from rigscope.catalog import apple_chips

        for r in csv.DictReader(f):
            if r["chip"] not in apple_chips():
                continue  # e.g. M5: not in the catalog
            t, n = _test(r["test"])
            # the discussion's table dates from late 2023 (builds near b1600)
            rows.append(Row(r["model"], r["quant"], (r["chip"],), t, n,
                            float(r["tokens_per_s"]), "llama.cpp #4167", era="2023"))
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
                                float(r["decode_tokens_per_s"]), "mlc-llm bench 2023",
                                era="2023"))
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
    rows += recent_rows(shared)[0]
    if OWN.exists():
        for line in OWN.read_text().splitlines():
            if line.strip() and not (d := json.loads(line)).get("kind"):
                rows.append(Row(d["model"], d["quant"], tuple(d.get("gpus", ())), d["test"],
                                d["n"], d["tokens_per_s"], d["source"],
                                cpu_gbs=d.get("cpu_gbs"), cpu_tflops=d.get("cpu_tflops"),
                                depth=d.get("depth", 0), flash_attn=d.get("flash_attn", False)))
    return rows


_ESTIMATES: dict[Row, object] = {}


def predict(row: Row, params=None) -> tuple[float, bool]:  # noqa: ANN001
    """(predicted tokens/s, fits) for a row."""
    from rigscope.demo import smollm2_gguf
    from rigscope.estimator import estimate
    from rigscope.estimator.speed import decode_step_seconds, prefill_seconds
    from rigscope.estimator.speed_params import DEFAULT
    from rigscope.hardware import parse_rig, with_backend
    from rigscope.sources import resolve_model
    from rigscope.specs import Accelerator, Offload, Rig

    p = params or DEFAULT
    est = _ESTIMATES.get(row)
    if est is None:  # placement does not depend on the speed constants: compute it once
        model = resolve_model(str(smollm2_gguf()) if row.model == "smollm2" else row.model)
        if row.gpus:
            rig = with_backend(parse_rig(list(row.gpus)), row.backend)
        else:
            rig = Rig(devices=(), host=Accelerator.cpu(16 * 2**30, row.cpu_gbs, row.cpu_tflops))
        ctx = row.context or max(row.depth + row.n, 512)
        # llama-bench runs every layer on the GPUs (-ngl 99), no --fit
        est = _ESTIMATES[row] = estimate(
            model, rig, quant=row.quant, engine=row.engine, context=ctx,
            flash_attn=row.flash_attn, offload=Offload(fit=False)
            if row.engine == "llama.cpp" else None)
    if row.test == "tg":
        t = decode_step_seconds(est, row.depth + row.n / 2, 1, p)
        return p.era_factor(row.era, "decode") / t, est.fits
    return p.era_factor(row.era, "prefill") * row.n / prefill_seconds(
        est, row.n, p, depth=row.depth, ubatch=row.ubatch), est.fits
