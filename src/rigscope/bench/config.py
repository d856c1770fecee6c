"""What a benchmark asks for (BenchConfig), and what it needs before its first level: the
server checked and its API known (prepare), the workload made. Shared by the process that
runs a benchmark and the worker processes that help it (bench --workers)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rigscope.bench.clients import APIS, detect_api, served_models
from rigscope.bench.http import HTTPFailure, Pool
from rigscope.bench.load import Target
from rigscope.bench.metrics import Slo
from rigscope.bench.workloads import WorkloadGenerator
from rigscope.errors import RigscopeError

API_KEY_VARS = ("RIGSCOPE_API_KEY", "OPENAI_API_KEY")


@dataclass
class BenchConfig:
    url: str
    model: str
    api: str | None = None  # None: detect
    concurrency: tuple[int, ...] = (1,)
    rates: tuple[float, ...] = ()
    poisson: bool = False
    requests: int | None = 16
    duration: float | None = None
    warmup: int = 1
    prompt_tokens: int = 512
    output_tokens: int = 128
    workload: str = "synthetic"
    timeout: float = 600.0
    stall_timeout: float = 60.0
    label: str | None = None
    slo: Slo | None = None
    seed: int = 0
    fixed_length: bool = True
    # what the server runs, when known (lets `calibrate` fit the speed model to this run)
    hardware: str | None = None  # --gpu/--cpu spelling: "cpu", "2xrtx-3090"
    model_spec: str | None = None  # catalog id, config.json or .gguf
    quant: str | None = None
    flash_attn: bool | None = None
    telemetry: bool = True  # sample the server's /metrics, /slots or /api/ps, and NVML
    workers: int = 1  # processes generating the load (bench/workers.py)
    ray: str | None = None  # a Ray cluster's address: the workers run there as Ray tasks
    depths: tuple[int, ...] = ()  # levels at these context depths (tokens before the prompt)
    shared_prefix: int = 0  # tokens of one text every prompt starts with
    sweep: bool = False  # levels over concurrency x prompt_sweep x output_sweep
    prompt_sweep: tuple[int, ...] = ()
    output_sweep: tuple[int, ...] = ()
    replay: bool = False  # a trace workload at its own timestamps
    trace_speed: float = 1.0  # ... divided by this (2: twice as fast)
    api_key: str | None = field(default=None, repr=False)  # never stored or printed

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("api_key")
        d["slo"] = asdict(self.slo) if self.slo else None
        return d


def api_key_from_env() -> str | None:
    return next((os.environ[v] for v in API_KEY_VARS if os.environ.get(v)), None)


async def prepare(config: BenchConfig) -> Target:
    """Fail fast: the server answers, the API is known, the model is served."""
    pool = Pool(config.url)
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    api_name = config.api or await detect_api(pool, headers)
    if api_name not in APIS:
        raise RigscopeError(f"unknown api {api_name!r}; valid: {', '.join(APIS)}")
    try:
        models = await served_models(pool, api_name, headers)
    except HTTPFailure as e:
        raise RigscopeError(f"cannot reach {config.url}: {e.detail or e.reason}",
                            exit_code=1) from None
    if models and config.model not in models:
        raise RigscopeError(f"model {config.model!r} is not served at {config.url}; "
                            f"it serves: {', '.join(models)}")
    return Target(pool=pool, api=APIS[api_name](), model=config.model, headers=headers,
                  fixed_length=config.fixed_length, timeout=config.timeout,
                  stall_timeout=config.stall_timeout)


def make_workload(config: BenchConfig) -> WorkloadGenerator:
    """The workload a config names: synthetic, a profile, or a .jsonl file."""
    path = Path(config.workload) if config.workload.endswith(".jsonl") else None
    return WorkloadGenerator("file" if path else config.workload, config.prompt_tokens,
                             config.output_tokens, config.seed, path, config.shared_prefix)
