"""rigscope: will this LLM fit on this hardware, how fast will it run, and what should I buy?

The public API, a small explicit set (each name loads on first use, so the command line
starts fast)::

    import rigscope

    model = rigscope.resolve_model("llama-3-8b")       # catalog id, config.json, .gguf
    rig = rigscope.parse_rig(["2xrtx-3090"])            # or rigscope.resolve_rig(): this machine
    est = rigscope.estimate(model, rig, quant="Q4_K_M", context=8192)
    speed = rigscope.estimate_speed(est, prompt_tokens=1024, output_tokens=256)
    plan = rigscope.make_plan(rigscope.workload_from([model], "chat"), rigscope.price_table())
    run_id, done = rigscope.run_bench(rigscope.BenchConfig(url=..., model=...), store)
    rigscope.compare([store.run(a), store.run(b)])
    doc = rigscope.estimate_doc(rigscope.EstimateQuery(model="llama-3-8b", gpus=("rtx-3090",)))
    app = rigscope.create_app()                         # the web API (rigscope serve)

Every JSON document the CLI prints comes from rigscope.contract; errors the user can act on
are rigscope.RigscopeError (exit_code 2: bad input, 1: anything else).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # estimate: memory and speed of a model on a rig
    "estimate": "rigscope.estimator", "max_context": "rigscope.estimator",
    "estimate_speed": "rigscope.estimator.speed",
    "resolve_model": "rigscope.sources", "parse_rig": "rigscope.hardware",
    "resolve_rig": "rigscope.system", "detect": "rigscope.system",
    # plan: what to buy or run for a workload
    "make_plan": "rigscope.plan", "workload_from": "rigscope.plan", "Workload": "rigscope.plan",
    "price_table": "rigscope.prices",
    # the questions the CLI and the web API answer, as typed queries and their JSON
    "EstimateQuery": "rigscope.answers", "PlanQuery": "rigscope.answers",
    "estimate_doc": "rigscope.answers", "plan_doc": "rigscope.answers",
    "create_app": "rigscope.web.app",
    # bench, eval, compare: measure servers and close the loop
    "run_bench": "rigscope.bench.run", "BenchConfig": "rigscope.bench.config",
    "parse_import": "rigscope.imports",
    "Store": "rigscope.store", "evaluate": "rigscope.evaluation.run",
    "Endpoint": "rigscope.evaluation.run", "load_suite": "rigscope.evaluation.suites",
    "compare": "rigscope.comparison", "calibrate": "rigscope.calibration",
    # result types
    "ModelSpec": "rigscope.specs", "Rig": "rigscope.specs", "Accelerator": "rigscope.specs",
    "Quant": "rigscope.specs", "MemoryEstimate": "rigscope.specs",
    "SpeedEstimate": "rigscope.specs", "Plan": "rigscope.plan", "Option": "rigscope.plan",
    "Run": "rigscope.records", "LevelSummary": "rigscope.records",
    "Comparison": "rigscope.comparison", "EvalRun": "rigscope.evaluation.run",
    "Calibration": "rigscope.calibration", "SystemInfo": "rigscope.system",
    "RigscopeError": "rigscope.errors",
}
__all__ = ["Accelerator", "BenchConfig", "Calibration", "Comparison", "Endpoint",
           "EstimateQuery", "EvalRun", "LevelSummary", "MemoryEstimate", "ModelSpec", "Option",
           "Plan", "PlanQuery", "Quant", "Rig", "RigscopeError", "Run", "SpeedEstimate",
           "Store", "SystemInfo", "Workload", "calibrate", "compare", "create_app", "detect",
           "estimate", "estimate_doc", "estimate_speed", "evaluate", "load_suite", "make_plan",
           "max_context", "parse_import", "parse_rig", "plan_doc", "price_table",
           "resolve_model", "resolve_rig", "run_bench", "workload_from"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rigscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from rigscope.answers import EstimateQuery, PlanQuery, estimate_doc, plan_doc
    from rigscope.bench.config import BenchConfig
    from rigscope.bench.run import run_bench
    from rigscope.calibration import Calibration, calibrate
    from rigscope.comparison import Comparison, compare
    from rigscope.errors import RigscopeError
    from rigscope.estimator import estimate, max_context
    from rigscope.estimator.speed import estimate_speed
    from rigscope.evaluation.run import Endpoint, EvalRun, evaluate
    from rigscope.evaluation.suites import load_suite
    from rigscope.hardware import parse_rig
    from rigscope.imports import parse_import
    from rigscope.plan import Option, Plan, Workload, make_plan, workload_from
    from rigscope.prices import price_table
    from rigscope.records import LevelSummary, Run
    from rigscope.sources import resolve_model
    from rigscope.specs import Accelerator, MemoryEstimate, ModelSpec, Quant, Rig, SpeedEstimate
    from rigscope.store import Store
    from rigscope.system import SystemInfo, detect, resolve_rig
    from rigscope.web.app import create_app
