"""Every JSON document rigscope prints (CLI `--json`) or serves (the web API), in one place.

The fields are the contract scripts rely on (docs/cli-contract.md): add freely, never rename
or remove. Sizes are bytes, times seconds, rates per second.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rigscope.catalog import (
    apple_accelerator,
    apple_chips,
    apple_memory_options,
    gguf_mixes,
    gpus,
)
from rigscope.catalog import formats as weight_formats
from rigscope.estimator.launch import launch
from rigscope.pick import SPEED_CLASS_NAMES
from rigscope.specs import DeviceUse, FitInfo, MemoryEstimate, ModelSpec, Rig, SpeedEstimate

if TYPE_CHECKING:  # the documents' sources, named for their types only (fast imports)
    from rigscope.calibration import Calibration
    from rigscope.comparison import Comparison
    from rigscope.demo import DemoResult
    from rigscope.evaluation.run import EvalRun
    from rigscope.pick import Picks
    from rigscope.plan import Option, Plan, Tiers
    from rigscope.records import Level, Run
    from rigscope.rigcost import RigCost
    from rigscope.sources import CatalogRow
    from rigscope.system import SystemInfo

Doc = dict[str, Any]
SPEED_KEYS = ("decode_tokens_per_s", "aggregate_tokens_per_s", "prefill_tokens_per_s",
              "ttft_s", "e2e_s", "load_time_s", "network_s", "decode_band", "prefill_band",
              "decode_roofline_fraction", "server", "served_decode_tokens_per_s",
              "served_ttft_s")


def _finite(v: float | str | None) -> float | str | None:
    if v is None or isinstance(v, str):
        return v
    return round(v, 6) if math.isfinite(v) else None


def speed_json(speed: SpeedEstimate | None) -> Doc:
    if speed is None:
        return dict.fromkeys(SPEED_KEYS)
    return {k: _finite(getattr(speed, k)) for k in SPEED_KEYS}


def _device(d: DeviceUse) -> Doc:
    return {"id": d.id, "capacity_bytes": d.capacity_bytes, "used_bytes": d.used_bytes,
            "layers": d.layers, "weights_bytes": d.weights_bytes, "kv_bytes": d.kv_bytes,
            "compute_bytes": d.compute_bytes, "overhead_bytes": d.overhead_bytes,
            "repacked_bytes": d.repacked_bytes, "reclaimable_bytes": d.reclaimable_bytes}


def estimate_json(est: MemoryEstimate, speed: SpeedEstimate | None = None) -> Doc:
    """`rigscope estimate --json` (speed null where it cannot run)."""
    m = est.model
    host = _device(est.host)
    del host["id"]
    return {
        "model": {"id": m.id, "params": m.params, "layers": m.layers,
                  "active_params": m.active_params, "source": m.source},
        "quant": est.quant.name,
        "engine": est.engine.name,
        "rig": est.rig.id, "nodes": est.rig.nodes, "interconnect": est.rig.interconnect,
        "context": est.context,
        "batch": est.batch,
        "kv_type": est.kv_type,
        "flash_attn": est.flash_attn,
        "memory": {
            "weights_bytes": est.weights_bytes,
            "repacked_bytes": est.repacked_bytes,
            "reclaimable_bytes": est.reclaimable_bytes,
            "kv_cache_bytes": est.kv_cache_bytes,
            "compute_bytes": est.compute_bytes,
            "overhead_bytes": est.overhead_bytes,
            "total_bytes": est.total_bytes,
            "fits": est.fits,
            "runs": est.runs,
            "devices": [_device(d) for d in est.devices],
            "host": host,
            "offloaded_layers": est.offloaded_layers,
            "offloaded_bytes": est.offloaded_bytes,
            "max_sequences": est.max_sequences,
            "kv_capacity_tokens": est.kv_capacity_tokens,
            "fit": fit_json(est.fit),
        },
        "launch": launch_json(est),
        "speed": speed_json(speed),
        "basis": list(est.basis) + list(speed.basis if speed else ()),
    }


def fit_json(f: FitInfo | None) -> Doc | None:
    """llama.cpp's placement (null for other engines)."""
    if f is None:
        return None
    return {"context": f.context, "context_reduced_from": f.context_reduced_from,
            "method": f.method, "n_gpu_layers": f.n_gpu_layers,
            "tensor_split": list(f.tensor_split),
            "full_gpu_layers": list(f.full_gpu_layers),
            "dense_only_gpu_layers": list(f.dense_only_gpu_layers),
            "cpu_layers": list(f.cpu_layers),
            "cpu_expert_layers": list(f.cpu_expert_layers),
            "override_tensors": list(f.override_tensors)}


def launch_json(est: MemoryEstimate) -> Doc:
    """The command that starts the server the estimate describes."""
    x = launch(est)
    return {"engine": x.engine, "command": x.command, "llama_server": x.llama_server,
            "ollama": None if x.ollama_env is None else {
                "env": x.ollama_env, "modelfile": list(x.ollama_modelfile or ())},
            "notes": list(x.notes)}


def max_context_json(model: ModelSpec, rig: Rig, limits: list[tuple[int, int]]) -> Doc:
    """`rigscope max-context --json`: the largest context per number of sequences."""
    return {"model": model.id, "rig": rig.id, "trained_context": model.max_context,
            "limits": [{"batch": b, "max_context": c} for b, c in limits]}


def _round(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)


def price_json(p: RigCost | None) -> Doc | None:
    """A rig's price: GPUs plus platform, the record used (kind, as-of, source)."""
    if p is None:
        return None
    return {"total_usd": p.total_usd, "gpus_usd": p.gpus_usd, "platform_usd": p.platform_usd,
            "kind": p.kind, "as_of": p.as_of, "source": p.source, "machine": p.machine,
            "platform": p.platform}


def option_json(o: Option) -> Doc:
    s = o.speed
    return {
        "rig": o.rig.id, "model": o.model.id, "quant": o.memory.quant.name,
        "engine": o.memory.engine.name, "kv_type": o.memory.kv_type, "fits": True,
        "decode_tokens_per_s": round(s.decode_tokens_per_s, 3),
        "aggregate_tokens_per_s": round(s.aggregate_tokens_per_s, 3),
        "prefill_tokens_per_s": round(s.prefill_tokens_per_s, 1), "ttft_s": round(s.ttft_s, 4),
        "price_usd": o.price.total_usd if o.price else None,
        "price": price_json(o.price),
        "usd_per_tokens_per_s": round(o.usd_per_tps, 2) if o.usd_per_tps else None,
        "rent_usd_per_hour": _round(o.rent_usd_per_hour, 2),
        "break_even_hours": _round(o.break_even_hours, 0),
        "watts": _round(o.watts, 1),
        "tokens_per_joule": round(o.tokens_per_joule, 4) if o.tokens_per_joule else None,
        "power_usd_per_month": _round(o.power_usd_per_month, 2),
        "psu_w": o.price.psu_w if o.price else None,
        "links": o.rig.links, "nodes": o.rig.nodes, "interconnect": o.rig.interconnect,
        "memory_used_bytes": o.memory.total_bytes, "pareto": o.pareto, "notes": list(o.notes),
    }


def plan_json(plan: Plan) -> Doc:
    """`rigscope plan --json`."""
    w = plan.workload
    return {
        "workload": {"models": [m.id for m in w.models], "context": w.context, "users": w.users,
                     "prompt_tokens": w.prompt_tokens, "output_tokens": w.output_tokens,
                     "min_tps": w.min_tps, "max_ttft": w.max_ttft, "budget": w.budget,
                     "max_watts": w.max_watts, "quant": w.quant, "min_quant": w.min_quant,
                     "engines": list(w.engines), "profile": w.profile,
                     "max_gpus": w.gpu_count_max, "kwh_usd": w.kwh_usd,
                     "hours_per_day": w.hours_per_day},
        "options": [option_json(o) for o in plan.options],
        "rejected": [{"rig": r.rig, "model": r.model, "quant": r.quant, "engine": r.engine,
                      "reason": r.reason} for r in plan.rejected],
        "evaluated": plan.evaluated,
    }


def tiers_json(result: Tiers) -> Doc:
    """`rigscope plan --tiers --json`."""
    return {"tiers": [{"context": ctx, "options": [option_json(o) for o in opts]}
                      for ctx, opts in result.by_context.items()]}


def run_json(run: Run) -> Doc:
    """`rigscope runs show RUN --json`: the run, its levels (with summaries) and requests."""
    return {
        "run_id": run.run_id, "started_at": run.started_at, "finished_at": run.finished_at,
        "status": run.status, "label": run.label, "url": run.url, "model": run.model,
        "api": run.api, "config": run.config,
        "levels": [{"level_id": lv.level_id, **_level_head(lv),
                    **(asdict(lv.summary) if lv.summary else {})} for lv in run.levels],
        "requests": [asdict(r) for r in run.requests],
        "telemetry": [asdict(x) for x in run.telemetry],
    } | imported_json(run)


def imported_json(run: Run) -> Doc:
    """What an imported run adds: its source; llama-bench's tests, hardware and model."""
    source = run.config.get("source")
    if not source:
        return {}
    doc: Doc = {"source": source}
    if source == "llama-bench":
        doc |= {"tests": [{k: t[k] for k in ("name", "n_prompt", "n_gen", "n_depth",
                                             "tokens_per_s", "stddev_tokens_per_s")}
                          for t in run.config.get("tests", [])],
                "hardware": run.config.get("hardware_info"),
                "model": run.config.get("model_info")}
    return doc


CONTRACT_LEVEL_KEYS = ("concurrency", "rate", "requests_ok", "requests_failed", "errors",
                       "output_tokens_per_s", "requests_per_s")
LEVEL_DETAIL_KEYS = ("label", "shape", "ttft_s", "itl_s", "e2e_s", "chunk_gap_s",
                     "dispatch_delay_s", "goodput_requests_per_s", "output_tokens_per_s_wall",
                     "requests_per_s_wall", "output_tokens", "active_window_s",
                     "steady_window_s",
                     "token_count_mismatches", "connections_reused", "network",
                     "requests_retried", "prompt_tokens", "cached_prompt_tokens",
                     "cache_hit_requests", "ttft_cached_s", "ttft_uncached_s",
                     "prefix_cache_hit_rate", "prefix_cache_source",
                     "prefill_tokens_per_s", "decode_tokens_per_s", "draft_tokens",
                     "draft_accepted_tokens", "acceptance_rate", "acceptance_length",
                     "acceptance_source", "energy_j", "joules_per_output_token",
                     "output_tokens_per_joule", "power_source", "power_samples_per_s")


def _level_head(lv: Level) -> Doc:
    """A level's load and shape: concurrency or rate, its label, and what it set of depth
    (tokens of context before each prompt) and prompt/output tokens (a sweep)."""
    return {"concurrency": lv.concurrency, "rate": lv.rate, "label": lv.label,
            "shape": {"depth": lv.depth, "prompt_tokens": lv.prompt_tokens,
                      "output_tokens": lv.output_tokens}}


def bench_json(run: Run) -> Doc:
    """`rigscope bench --json`: the run id and each level's summary."""
    levels = []
    for lv in run.levels:
        s = asdict(lv.summary) if lv.summary else {}
        d = _level_head(lv) | s
        levels.append({k: d.get(k) for k in (*CONTRACT_LEVEL_KEYS, *LEVEL_DETAIL_KEYS)})
    return {"run_id": run.run_id, "status": run.status, "model": run.model, "url": run.url,
            "api": run.api, "levels": levels}


def runs_json(runs: list[Doc]) -> Doc:
    """`rigscope runs list --json` (rows as the store lists them, oldest first)."""
    return {"runs": runs}


def comparison_json(c: Comparison) -> Doc:
    """`rigscope compare --json`."""
    return {"runs": list(c.runs), "rows": [
        {"run_a": d.run_a, "run_b": d.run_b, "level": d.level, "metric": d.metric, "a": d.a,
         "b": d.b, "diff": d.diff, "diff_pct": d.diff_pct,
         "ci95": list(d.ci95) if d.ci95 else None, "significant": d.significant}
        for d in c.rows]}


def eval_json(result: EvalRun) -> Doc:
    """`rigscope eval --json`."""
    return {"eval_id": result.eval_id, "suite": result.suite,
            "endpoints": [asdict(s) for s in result.summaries],
            "agreement": [asdict(a) for a in result.agreement]}


def calibration_json(c: Calibration) -> Doc:
    """`rigscope calibrate --json`."""
    doc = {"rig": c.rig, "hardware": c.hardware, "params": c.params,
           "observations": c.observations, "error_before": c.error_before,
           "error_after": c.error_after, "profile": c.profile}
    if c.holdout_error_before is not None:
        doc |= {"holdout_error_before": c.holdout_error_before,
                "holdout_error_after": c.holdout_error_after}
    return doc


def demo_json(result: DemoResult) -> Doc:
    """`rigscope demo --json`: its runs, predicted vs measured, the report."""
    return {"runs": [r.run_id for r in result.runs],
            "comparison": [asdict(c) | {"error_pct": c.error_pct} for c in result.checks],
            "report": str(result.report)}


def system_json(info: SystemInfo) -> Doc:
    """`rigscope system --json`."""
    from rigscope import cpuprobe

    return {
        "os": info.os, "cpu": info.cpu_model, "cpu_cores": info.cpu_cores,
        "ram_bytes": info.ram_bytes, "ram_bandwidth_gbs": info.ram_gbs,
        "cpu_tflops": info.cpu_tflops, "cpu_features": list(info.cpu_features),
        "cpu_features_source": info.cpu_features_source, "rig": info.rig().id,
        "gpus": [{"id": g.id, "name": g.name, "backend": g.backend,
                  "memory_bytes": g.memory_bytes, "usable_bytes": g.usable_bytes,
                  "memory_source": g.memory_source,
                  "bandwidth_gbs": g.bandwidth_gbs} for g in info.gpus],
        "llamacpp_cpu": cpuprobe.to_json(info.engine) if info.engine else None,
        "notes": list(info.notes),
    }


def gpus_json() -> Doc:
    """`rigscope gpus --json`: catalog GPUs, then Apple chips with their memory options."""
    out: list[Doc] = [
        {"id": g.id, "name": g.name, "backend": g.backend, "memory_bytes": g.memory_bytes,
         "memory_source": g.memory_source, "bandwidth_gbs": g.bandwidth_gbs,
         "fp16_tflops": g.fp16_tflops, "fp16_accumulate": g.fp16_accumulate, "tdp_w": g.tdp_w,
         "price_usd": g.price_usd, "price_kind": g.price_kind, "price_date": g.price_date,
         "pcie": g.pcie, "nvlink_gbs": g.nvlink_gbs, "source": g.source}
        for g in gpus().values()]
    for cid in apple_chips():
        a = apple_accelerator(cid)
        out.append({"id": cid, "name": a.name.rsplit(",", 1)[0], "backend": "metal",
                    "memory_options_gb": apple_memory_options(cid),
                    "bandwidth_gbs": a.bandwidth_gbs, "fp16_tflops": a.fp16_tflops,
                    "tdp_w": a.tdp_w, "source": a.source})
    return {"gpus": out}


def models_json(rows: list[CatalogRow]) -> Doc:
    """`rigscope models --json`."""
    return {"models": [{"id": r.id, "model_type": r.model_type, "params": r.params,
                        "active_params": r.active_params, "layers": r.layers,
                        "max_context": r.max_context, "features": list(r.features),
                        "aliases": list(r.aliases), "source": r.source} for r in rows]}


def quants_json() -> Doc:
    """`rigscope quants --json`: GGUF mixes (llama.cpp, Ollama) and other formats."""
    return {"quants": [
        {"name": q.name, "kind": q.kind, "about": q.about,
         "engines": ["llama.cpp", "ollama"] if q.kind == "gguf" else list(q.engines)}
        for q in (*gguf_mixes().values(), *weight_formats().values())]}


def pick_json(p: Picks) -> Doc:
    """`rigscope pick --json`: models for a use on a rig, best first."""
    from rigscope.catalog import quality

    q = quality()
    rows = []
    for i, r in enumerate(p.rows, start=1):
        e, s = r.evidence, r.speed
        rows.append({
            "rank": i, "model": r.name, "architecture_of": r.model.id,
            "quant": r.memory.quant.name, "engine": r.memory.engine.name, "fits": r.fits,
            "decode_tokens_per_s": round(s.decode_tokens_per_s, 2),
            "prefill_tokens_per_s": round(s.prefill_tokens_per_s, 1),
            "ttft_s": round(s.ttft_s, 3),
            "speed_class": SPEED_CLASS_NAMES[r.speed_class],
            "memory_total_bytes": r.memory.total_bytes,
            "quant_loss": {"kld": r.kld, "tier": r.loss_tier,
                           "source": q.quant_loss["source"] if r.kld is not None else None},
            "evidence": None if e is None else {
                "benchmark": e.benchmark, "label": e.label, "kind": e.kind, "score": e.score,
                "source": e.source, "date": e.date, "scored_as": e.model,
                "same_architecture_as_catalog_entry": e.twin},
            "launch": r.launch.command,
        })
    return {"use": p.use, "rig": p.rig.id, "context": p.context, "users": p.users,
            "engine": p.engine, "benchmarks": q.uses[p.use],
            "evidence_dates": {"oldest": p.evidence_dates[0] or None,
                               "newest": p.evidence_dates[1] or None},
            "rows": rows, "skipped": [{"model": m, "why": w} for m, w in p.skipped]}
