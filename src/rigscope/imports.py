"""Results people already have, read into rigscope's shapes: llama-bench (`-o json`/`jsonl`),
GuideLLM `benchmarks.json`, NVIDIA AIPerf profile exports (JSON or CSV) and vLLM
`bench serve --save-result` JSON. The format is told from the content. Pure: text in, an
Imported out; times are converted to seconds, and what cannot be mapped is kept under `raw`."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from rigscope.catalog import gguf_mixes, gpus, models
from rigscope.errors import RigscopeError
from rigscope.jsonl import parse_objects, refuse_constant
from rigscope.records import LevelSummary, Stats

SOURCES = ("llama-bench", "guidellm", "aiperf", "vllm-bench")


@dataclass
class Imported:
    source: str
    model: str  # as the tool names it
    url: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    # serving benchmarks: (concurrency, rate, summary) per level
    levels: list[tuple[int | None, float | None, LevelSummary]] = field(default_factory=list)


def parse_import(text: str, name: str = "file") -> list[Imported]:
    """Every run in one exported file (a GuideLLM file holds one run of many levels)."""
    stripped = text.lstrip()
    if stripped.startswith("Metric,"):
        return [_aiperf(_aiperf_csv(text), {})]
    try:
        doc: Any = json.loads(text, parse_constant=refuse_constant)
    except ValueError:
        try:  # JSON lines (llama-bench -o jsonl)
            doc = [obj for _, obj in parse_objects(text, name, "result")]
        except RigscopeError:
            doc = None
    if isinstance(doc, list) and doc and all(isinstance(d, dict) and "avg_ts" in d
                                             for d in doc):
        return [_llama_bench(doc)]
    if isinstance(doc, dict):
        if isinstance(doc.get("benchmarks"), list) and doc["benchmarks"] and all(
                isinstance(b, dict) and "metrics" in b for b in doc["benchmarks"]):
            return [_guidellm(doc)]
        if isinstance(doc.get("records"), dict):
            return [_aiperf(doc["records"], doc)]
        if "request_throughput" in doc and ("mean_ttft_ms" in doc or "ttfts" in doc):
            return [_vllm(doc)]
    raise RigscopeError(f"{name}: not a llama-bench, GuideLLM, AIPerf or vLLM bench "
                        "export (json, jsonl or AIPerf csv)")


def _num(v: Any, scale: float = 1.0) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v) * scale


# --- llama-bench ---------------------------------------------------------------------------

def _llama_bench(rows: list[dict[str, Any]]) -> Imported:
    first = rows[0]
    tests = []
    for r in rows:
        n_prompt, n_gen, depth = (int(r.get(k) or 0) for k in ("n_prompt", "n_gen", "n_depth"))
        label = "+".join(([f"pp{n_prompt}"] if n_prompt else []) + ([f"tg{n_gen}"] if n_gen
                                                                     else []))
        tests.append({"name": label + (f"@d{depth}" if depth else ""), "n_prompt": n_prompt,
                      "n_gen": n_gen, "n_depth": depth,
                      "tokens_per_s": _num(r.get("avg_ts")),
                      "stddev_tokens_per_s": _num(r.get("stddev_ts")),
                      "samples_tokens_per_s": [x for x in map(_num, r.get("samples_ts") or [])
                                               if x],
                      "flash_attn": bool(r.get("flash_attn")),
                      "n_ubatch": r.get("n_ubatch"), "n_gpu_layers": r.get("n_gpu_layers")})
    if any(t["tokens_per_s"] is None for t in tests):
        raise RigscopeError("llama-bench file: a row without a numeric avg_ts")
    gpu_info = str(first.get("gpu_info") or "")
    filename = str(first.get("model_filename") or "")
    model_type = str(first.get("model_type") or "")
    config = {
        "source": "llama-bench", "tests": tests,
        "hardware_info": {"gpu": gpu_info or None, "cpu": first.get("cpu_info"),
                          "backends": first.get("backends")},
        "model_info": {"file": filename, "type": model_type,
                       "size_bytes": first.get("model_size"),
                       "params": first.get("model_n_params")},
        "build": first.get("build_number"), "engine": "llama.cpp",
        "hardware": match_gpus(gpu_info) if gpu_info else None,
        "model_spec": match_model(filename, model_type, first.get("model_n_params")),
        "quant": quant_of(model_type),
        "flash_attn": bool(first.get("flash_attn")),
    }
    return Imported("llama-bench", PurePath(filename).name or model_type, "", config)


def quant_of(model_type: str) -> str | None:
    """llama.cpp's file-type description ('Q4_K - Medium', 'IQ4_XS - 4.25 bpw') as a
    catalog quantization name (Q4_K_M, IQ4_XS)."""
    m = re.search(r"\b([A-Z]+\d*(?:_[A-Z0-9]+)*)(?: - (Small|Medium|Large))?", model_type
                  .split(" ", 2)[-1])
    if not m:
        return None
    name = m.group(1) + (f"_{m.group(2)[0]}" if m.group(2) else "")
    return name if name in gguf_mixes() else None


def match_gpus(gpu_info: str) -> str | None:
    """'NVIDIA GeForce RTX 4080' (', '-separated for several) -> 'rtx-4080' or '2xrtx-3090'."""
    names = [n.strip() for n in gpu_info.split(",") if n.strip()]
    ids = {_gpu_id(n) for n in names}
    if len(ids) != 1 or None in ids:
        return None
    gid = ids.pop()
    return gid if len(names) == 1 else f"{len(names)}x{gid}"


def _gpu_id(name: str) -> str | None:
    want = _norm(name)
    exact = [gid for gid, g in gpus().items() if _norm(g.name) == want]
    if exact:
        return exact[0]
    # catalog names may add the memory size ('... RTX 3060 12GB'): the longest that starts so
    near = sorted((gid for gid, g in gpus().items() if _norm(g.name).startswith(want)),
                  key=len)
    return near[0] if len(near) == 1 else None


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()


def match_model(filename: str, model_type: str, n_params: Any) -> str | None:
    """The catalog model of the same architecture with the parameter count llama-bench
    printed (within 1%); among several, the one whose id the file name contains."""
    arch = model_type.split(" ", 1)[0].lower() if model_type else ""
    params = _num(n_params)
    if not params:
        return None
    close = [mid for mid, e in models().items()
             if abs(e.params - params) <= 0.01 * params
             and (not arch or e.arch.replace("_", "") == arch.replace("_", ""))]
    stem = _norm(PurePath(filename).stem).replace(" ", "")
    named = [m for m in close if m.replace("-", "").replace(".", "") in stem.replace(".", "")]
    pick = named or close
    return pick[0] if len(pick) == 1 else None


# --- serving benchmarks -------------------------------------------------------------------

def _stats(mean: Any = None, p50: Any = None, p90: Any = None, p95: Any = None,
           p99: Any = None, lo: Any = None, hi: Any = None, scale: float = 1.0) -> Stats:
    return Stats(mean=_num(mean, scale), p50=_num(p50, scale), p90=_num(p90, scale),
                 p95=_num(p95, scale), p99=_num(p99, scale), min=_num(lo, scale),
                 max=_num(hi, scale))


def _guidellm(doc: dict[str, Any]) -> Imported:
    levels = []
    first = doc["benchmarks"][0]
    for b in doc["benchmarks"]:
        strategy = (b.get("args") or {}).get("strategy") or {}
        kind = strategy.get("type_")
        conc = 1 if kind == "synchronous" else strategy.get("streams") \
            if kind == "concurrent" else None
        rate = _num(strategy.get("rate")) if kind in ("constant", "poisson") else None
        m = b.get("metrics") or {}

        def ok(metric: str, _m: dict[str, Any] = m) -> dict[str, Any]:
            return ((_m.get(metric) or {}).get("successful")) or {}

        def stats(metric: str, scale: float = 1.0) -> Stats:
            s = ok(metric)
            p = s.get("percentiles") or {}
            return _stats(s.get("mean"), s.get("median"), p.get("p90"), p.get("p95"),
                          p.get("p99"), s.get("min"), s.get("max"), scale)

        totals = b.get("request_totals") or (b.get("run_stats") or {}).get("requests_made") \
            or {}
        duration = _num(b.get("duration")) or 0.0
        tokens = _num(ok("output_token_count").get("total_sum")) or 0.0
        failed = int(totals.get("errored") or 0) + int(totals.get("incomplete") or 0)
        summary = LevelSummary(
            requests_ok=int(totals.get("successful") or 0), requests_failed=failed,
            errors={k: int(totals[k]) for k in ("errored", "incomplete") if totals.get(k)},
            ttft_s=stats("time_to_first_token_ms", 1e-3),
            itl_s=stats("inter_token_latency_ms", 1e-3),
            e2e_s=stats("request_latency"),
            output_tokens_per_s=tokens / duration if duration else 0.0,
            requests_per_s=_num(ok("requests_per_second").get("mean")) or 0.0,
            output_tokens=int(tokens), active_window_s=duration,
            output_tokens_per_s_wall=tokens / duration if duration else 0.0,
        )
        levels.append((int(conc) if conc else None, rate, summary))
    worker = first.get("worker") or {}
    loader = first.get("request_loader") or {}
    config = {"source": "guidellm", "data": loader.get("data"),
              "raw": {"profile": (first.get("args") or {}).get("profile"),
                      "backend": worker.get("backend_type")}}
    return Imported("guidellm", str(worker.get("backend_model") or "unknown"),
                    str(worker.get("backend_target") or ""), config, levels)


AIPERF_CSV = {"Time to First Token": "ttft", "Inter Token Latency": "inter_token_latency",
              "Request Latency": "request_latency", "Request Count": "request_count",
              "Error Request Count": "error_request_count",
              "Request Throughput": "request_throughput",
              "Output Token Throughput": "output_token_throughput",
              "Benchmark Duration": "benchmark_duration",
              "Total Output Sequence Length": "total_osl",
              "Output Sequence Length": "output_sequence_length"}


def _aiperf_csv(text: str) -> dict[str, dict[str, Any]]:
    """AIPerf's CSV (a table of statistics, then a table of single values) as its JSON's
    records: {tag: {unit, avg, p50, ...}}."""
    records: dict[str, dict[str, Any]] = {}
    header: list[str] = []
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        if row[0] == "Metric":
            header = row
            continue
        m = re.fullmatch(r"(.+?)(?: \((.+)\))?", row[0])
        if not m or m.group(1) not in AIPERF_CSV:
            continue
        unit = (m.group(2) or "").replace("sec", "s")
        values = {}
        for key, cell in zip(header[1:], row[1:], strict=False):
            try:
                values["avg" if key == "Value" else key] = float(cell)
            except ValueError:
                continue
        records[AIPERF_CSV[m.group(1)]] = {"unit": unit, **values}
    return records


def _aiperf(records: dict[str, Any], doc: dict[str, Any]) -> Imported:
    def rec(tag: str) -> dict[str, Any]:
        r = records.get(tag)
        return r if isinstance(r, dict) else {}

    def stats(tag: str) -> Stats:
        r = rec(tag)
        scale = {"ms": 1e-3, "ns": 1e-9, "us": 1e-6}.get(str(r.get("unit")), 1.0)
        return _stats(r.get("avg"), r.get("p50"), r.get("p90"), r.get("p95"), r.get("p99"),
                      r.get("min"), r.get("max"), scale)

    cfg = doc.get("input_config") or {}
    loadgen = cfg.get("loadgen") or {}
    endpoint = cfg.get("endpoint") or {}
    n_ok = int(_num(rec("request_count").get("avg")) or 0)
    n_err = int(_num(rec("error_request_count").get("avg")) or 0)
    errors = {str((e.get("error_details") or {}).get("type") or "error"): int(e.get("count", 0))
              for e in doc.get("error_summary") or [] if isinstance(e, dict)}
    duration = _num(rec("benchmark_duration").get("avg")) or 0.0
    summary = LevelSummary(
        requests_ok=n_ok, requests_failed=n_err, errors=errors or ({"error": n_err} if n_err
                                                                   else {}),
        ttft_s=stats("ttft"), itl_s=stats("inter_token_latency"), e2e_s=stats("request_latency"),
        output_tokens_per_s=_num(rec("output_token_throughput").get("avg")) or 0.0,
        requests_per_s=_num(rec("request_throughput").get("avg")) or 0.0,
        output_tokens=int(_num(rec("total_osl").get("avg")) or 0), active_window_s=duration,
    )
    conc = loadgen.get("concurrency")
    rate = _num(loadgen.get("request_rate"))
    names = endpoint.get("model_names") or ["unknown"]
    config = {"source": "aiperf", "raw": {"loadgen": loadgen,
                                         "cli_command": cfg.get("cli_command")}}
    return Imported("aiperf", str(names[0]), str(endpoint.get("url") or ""), config,
                    [(int(conc) if conc and not rate else None, rate, summary)])


def _vllm(doc: dict[str, Any]) -> Imported:
    def stats(metric: str) -> Stats:
        return _stats(doc.get(f"mean_{metric}_ms"), doc.get(f"median_{metric}_ms"),
                      doc.get(f"p90_{metric}_ms"), doc.get(f"p95_{metric}_ms"),
                      doc.get(f"p99_{metric}_ms"), scale=1e-3)

    completed = int(doc.get("completed") or 0)
    prompts = int(doc.get("num_prompts") or completed)
    rate = _num(doc.get("request_rate"))
    summary = LevelSummary(
        requests_ok=completed, requests_failed=max(prompts - completed, 0),
        errors={"error": prompts - completed} if prompts > completed else {},
        ttft_s=stats("ttft"), itl_s=stats("tpot"), e2e_s=stats("e2el"),
        chunk_gap_s=stats("itl"),
        output_tokens_per_s=_num(doc.get("output_throughput")) or 0.0,
        requests_per_s=_num(doc.get("request_throughput")) or 0.0,
        output_tokens=int(doc.get("total_output_tokens") or 0),
        active_window_s=_num(doc.get("duration")) or 0.0,
    )
    conc = doc.get("max_concurrency")
    config = {"source": "vllm-bench", "raw": {k: doc.get(k) for k in (
        "date", "backend", "tokenizer_id", "num_prompts", "total_input_tokens", "burstiness")
        if k in doc}}
    return Imported("vllm-bench", str(doc.get("model_id") or "unknown"), "", config,
                    [(int(conc) if conc else None,
                      rate if rate is not None and math.isfinite(rate) else None, summary)])
