"""The questions the command line and the web API both answer, as typed queries: one place
turns a query into the library's result, so both print exactly the same JSON (contract.py)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Self

from rigscope import contract, validate
from rigscope.errors import RigscopeError
from rigscope.estimator import estimate, max_context
from rigscope.estimator.speed import estimate_speed
from rigscope.estimator.speed_params import DEFAULT, flash_attn_default
from rigscope.pick import Picks, pick
from rigscope.plan import MAX_GPUS, Plan, Tiers
from rigscope.rigcost import DEFAULT_HOURS_PER_DAY, DEFAULT_KWH_USD
from rigscope.specs import MemoryEstimate, ModelSpec, Offload, Rig, SpeedEstimate
from rigscope.system import resolve_rig

Doc = contract.Doc


# option names that differ from the query's field names
RENAMED = {"price_opts": "prices", "gpu_count_max": "max_gpus"}


class _FromOptions:
    @classmethod
    def from_options(cls, **options: Any) -> Self:
        """A query from a command's options as click passes them (the web API passes the
        same): renamed ones mapped, on/off switches made booleans, presentation options
        (as_json, top, ...) dropped."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        kw = {}
        for key, value in options.items():
            key = RENAMED.get(key, key)
            if key not in names:
                continue
            if key in ("repack", "cpu_moe") and isinstance(value, str):
                value = value == "on"
            if isinstance(value, list):
                value = tuple(value)
            kw[key] = value
        return cls(**kw)


@dataclass(frozen=True)
class ModelQuery(_FromOptions):
    """What every memory question names: the model, its format and engine, the rig."""

    model: str
    quant: str | None = None
    engine: str = "llama.cpp"
    kv_type: str = "f16"
    flash_attn: str | None = None  # "on" | "off" | None (the build's default)
    engine_version: str | None = None
    repack: bool = True
    outputs: str | None = None  # llama.cpp logits rows (None: the front end's own)
    fit: str = "on"  # llama.cpp's --fit
    fit_target: int = 1024  # MiB per device
    fit_ctx: int = 4096
    n_gpu_layers: str | None = None  # -ngl: a number, "auto" or "all"
    tensor_split: str | None = None  # -ts 3,1
    n_cpu_moe: int = 0
    cpu_moe: bool = False
    override_tensor: tuple[str, ...] = ()  # -ot PATTERN=BUFFER (comma lists too)
    ubatch: int = 512  # -ub
    batch_size: int = 2048  # -b
    gpus: tuple[str, ...] = ()
    cpu: str | None = None
    ram: str | None = None
    cpu_isa: str | None = None
    ram_bandwidth: float | None = None  # GB/s of system RAM (default: measured or catalog)
    backend: str | None = None  # the llama.cpp backend the GPUs run (default: the vendor's)
    mem_fraction: float | None = None  # vLLM, SGLang, TensorRT-LLM: the engine's own knob
    nodes: int = 1
    interconnect: str | None = None

    def rig(self, gpus: tuple[str, ...] | None = None, cpu: str | None = None) -> Rig:
        from rigscope.hardware import multi_node, with_backend, with_ram_bandwidth

        one = resolve_rig(self.gpus if gpus is None else gpus,
                          self.cpu if gpus is None else cpu, self.ram, self.cpu_isa)
        one = with_backend(with_ram_bandwidth(one, self.ram_bandwidth), self.backend)
        return multi_node(one, self.nodes, self.interconnect)

    def flash(self) -> bool | None:
        """--flash-attn for llama.cpp; other engines choose their own kernels."""
        from rigscope.estimator.engines import get_engine

        if get_engine(self.engine).family != "llama.cpp":
            return None
        return flash(self.flash_attn, self.engine_version)

    def options(self) -> dict[str, Any]:
        """estimate()'s and max_context()'s options for this query."""
        return {"quant": self.quant, "engine": self.engine, "kv_type": self.kv_type,
                "flash_attn": self.flash(), "repack": self.repack, "outputs": self.outputs,
                "mem_fraction": self.mem_fraction, "engine_version": self.engine_version,
                "offload": self.offload()}

    def offload(self) -> Offload | None:
        """llama.cpp's placement knobs as given (None: the front end's defaults)."""
        if self.fit not in ("on", "off"):
            raise RigscopeError(f"invalid --fit {self.fit!r}; valid: on, off")
        ngl: int | None = None
        if self.n_gpu_layers not in (None, "auto"):
            ngl = 10**6 if self.n_gpu_layers == "all" else int(validate.number(
                self.n_gpu_layers, "--n-gpu-layers", low=0, integer=True))
        split = validate.number_list(self.tensor_split, "--tensor-split") \
            if self.tensor_split else ()
        overrides = []
        for item in self.override_tensor:
            for one in item.split(","):
                pattern, eq, buf = one.strip().rpartition("=")
                if not eq or not pattern or not buf:
                    raise RigscopeError(f"invalid --override-tensor {one!r}; use "
                                        "PATTERN=BUFFER, e.g. 'blk\\.[0-9]+\\.ffn_.*_exps=CPU'")
                overrides.append((pattern, buf))
        o = Offload(fit=self.fit == "on", fit_target_mib=self.fit_target, fit_ctx=self.fit_ctx,
                    n_gpu_layers=ngl, tensor_split=split, n_cpu_moe=self.n_cpu_moe,
                    cpu_moe=self.cpu_moe, overrides=tuple(overrides), n_ubatch=self.ubatch,
                    n_batch=self.batch_size)
        return None if o == Offload() else o


@dataclass(frozen=True)
class EstimateQuery(ModelQuery):
    context: int | None = None  # None: the engine's default (llama.cpp: trained, fitted)
    batch: int = 1
    prompt_tokens: int = 512
    output_tokens: int = 128
    depth: int = 0  # tokens already in the cache before the prompt
    disk: str = "nvme"
    network: str = "loopback"
    rig_name: str | None = None  # a calibrated rig profile


def flash(value: str | None, engine_version: str | None) -> bool | None:
    """--flash-attn as given; unset: llama.cpp's default for the build (None: today's)."""
    if value is not None:
        if value not in ("on", "off"):
            raise RigscopeError(f"invalid --flash-attn {value!r}; valid: on, off")
        return value == "on"
    if engine_version is None:
        return None
    try:
        return flash_attn_default(engine_version)
    except ValueError as e:
        raise RigscopeError(f"invalid --engine-version: {e}") from None


def model_of(q: ModelQuery, allow_files: bool = True) -> ModelSpec:
    """The model a query names; `allow_files` False refuses paths (a server's files)."""
    from rigscope.sources import resolve_model

    if not allow_files and _looks_like_path(q.model):
        raise RigscopeError(f"model {Path(q.model).name!r}: this server reads no local "
                            "files (start it with --allow-local-files); use a catalog id "
                            "or a Hub repo (owner/name)")
    return resolve_model(q.model, quant=q.quant)


def _looks_like_path(text: str) -> bool:
    t = text.strip()
    return (t.startswith((".", "/", "~", "\\")) or t.lower().endswith((".gguf", ".json"))
            or t.count("/") > 1 or Path(t).exists())


def estimate_answer(q: EstimateQuery, allow_files: bool = True
                    ) -> tuple[ModelSpec, MemoryEstimate, SpeedEstimate | None]:
    """Memory on each device and, when it runs, the speed."""
    params = DEFAULT
    gpus, cpu = q.gpus, q.cpu
    if q.rig_name:
        from rigscope.calibration import profile_params, rig_args

        params, hardware = profile_params(q.rig_name)
        if not gpus and cpu is None:
            gpus, cpu = rig_args(hardware)
    rig = q.rig(gpus, cpu)
    spec = model_of(q, allow_files)
    est = estimate(spec, rig, context=q.context, batch=q.batch, **q.options())
    build = q.engine_version if est.engine.family == "llama.cpp" else None
    speed = estimate_speed(est, prompt_tokens=q.prompt_tokens, output_tokens=q.output_tokens,
                           engine_version=build, disk=q.disk, network=q.network,
                           p=params, depth=q.depth) if est.runs else None
    return spec, est, speed


def estimate_doc(q: EstimateQuery, allow_files: bool = True) -> Doc:
    """`rigscope estimate --json`."""
    _, est, speed = estimate_answer(q, allow_files)
    return contract.estimate_json(est, speed)


def max_context_answer(q: ModelQuery, batches: tuple[int, ...], allow_files: bool = True
                       ) -> tuple[ModelSpec, Rig, list[tuple[int, int]]]:
    rig = q.rig()
    spec = model_of(q, allow_files)
    limits = [(b, max_context(spec, rig, batch=b, **q.options())) for b in batches]
    return spec, rig, limits


def max_context_doc(q: ModelQuery, batches: tuple[int, ...], allow_files: bool = True) -> Doc:
    """`rigscope max-context --json`."""
    spec, rig, limits = max_context_answer(q, batches, allow_files)
    return contract.max_context_json(spec, rig, limits)


def batches_of(text: str) -> tuple[int, ...]:
    """'1,2,4' -> (1, 2, 4)."""
    return tuple(int(b) for b in validate.number_list(text, "--batch", integer=True,
                                                      high=65536))


@dataclass(frozen=True)
class PlanQuery(_FromOptions):
    models: tuple[str, ...] = ()
    min_params: float | None = None  # billions: every catalog model this large
    profile: str | None = None
    context: int | None = None
    users: int | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    min_tps: float | None = None
    max_ttft: float | None = None
    budget: float | None = None
    max_watts: float | None = None
    quant: str | None = None
    min_quant: str | None = None
    engines: tuple[str, ...] = ()
    max_gpus: int = MAX_GPUS
    price_kind: str | None = None
    kwh_price: float = DEFAULT_KWH_USD
    hours: float = DEFAULT_HOURS_PER_DAY
    prices: tuple[str, ...] = ()  # ID=USD overrides
    backend: str | None = None  # only rigs whose GPUs run it, run by it
    price_file: str | None = None
    gpus: tuple[str, ...] = ()  # only these rigs
    local: bool = True  # this machine, priced as owned
    rig_name: str | None = None
    tiers: bool = False
    all_configs: bool = False


def plan_answer(q: PlanQuery, allow_files: bool = True) -> Plan | Tiers:
    """A Plan, or with `tiers` the cheapest rigs per context tier."""
    from rigscope import plan as planning
    from rigscope.catalog import models as catalog
    from rigscope.hardware import parse_rig
    from rigscope.prices import price_table
    from rigscope.sources import catalog_model

    if q.models and q.min_params:
        raise RigscopeError("name models or give --min-params, not both")
    if q.min_params:
        specs = [catalog_model(m) for m, e in catalog().items()
                 if e.params >= q.min_params * 1e9]
        if not specs:
            raise RigscopeError(f"no catalog model has {q.min_params:g} B parameters or more")
    elif q.models:
        specs = [model_of(ModelQuery(m), allow_files) for m in q.models]
    else:
        raise RigscopeError("name a model (e.g. llama-3-8b) or give --min-params")
    w = planning.workload_from(
        specs, q.profile, context=q.context, users=q.users, prompt_tokens=q.prompt_tokens,
        output_tokens=q.output_tokens, min_tps=q.min_tps, max_ttft=q.max_ttft,
        budget=q.budget, max_watts=q.max_watts, quant=q.quant, min_quant=q.min_quant,
        engines=q.engines or None, gpu_count_max=q.max_gpus, kwh_usd=q.kwh_price,
        hours_per_day=q.hours)
    # a plan over the catalog lists only priced rigs; rigs the user names are listed anyway
    w = replace(w, require_price=not q.gpus)
    if q.price_file and not allow_files:
        raise RigscopeError("this server reads no local files: give prices as ID=USD")
    prices = price_table(q.prices, Path(q.price_file) if q.price_file else None, q.price_kind)
    rigs = [parse_rig([g]) for g in q.gpus] if q.gpus else planning.candidate_rigs(q.max_gpus)
    if q.local and not q.gpus:
        from rigscope.system import local_rig

        rigs.insert(0, replace(local_rig(), local=True))
    if q.backend:  # the rigs whose GPUs run that backend, run by it
        from rigscope.hardware import BACKENDS, with_backend

        rigs = [with_backend(r, q.backend) for r in rigs if r.devices and all(
            q.backend in BACKENDS.get(d.native, ()) for d in r.devices)]
        if not rigs:
            raise RigscopeError(f"no candidate rig runs --backend {q.backend}")
    params = DEFAULT
    if q.rig_name:
        from rigscope.calibration import profile_params

        params = profile_params(q.rig_name)[0]
    if q.tiers:
        return planning.tiers(w, prices, rigs=rigs, params=params)
    return planning.make_plan(w, prices, rigs, all_configs=q.all_configs, params=params)


def plan_doc(q: PlanQuery, allow_files: bool = True) -> Doc:
    """`rigscope plan --json` (with tiers: `plan --tiers --json`)."""
    result = plan_answer(q, allow_files)
    if isinstance(result, Plan):
        return contract.plan_json(result)
    return contract.tiers_json(result)


@dataclass(frozen=True)
class PickQuery(_FromOptions):
    """`rigscope pick`: what to run on a rig for a use."""

    use: str = "chat"
    context: int | None = None
    users: int = 1
    min_tps: float | None = None
    max_ttft: float | None = None
    engine: str = "llama.cpp"
    evidence: str | None = None  # a CSV of the user's own scores (model, benchmark, score,
    # source, date), added to and overriding the shipped ones
    gpus: tuple[str, ...] = ()
    cpu: str | None = None
    ram: str | None = None
    ram_bandwidth: float | None = None
    backend: str | None = None


def pick_answer(q: PickQuery, allow_files: bool = True) -> Picks:
    from rigscope.catalog import evidence, model_aliases, models, parse_scores
    from rigscope.hardware import with_backend, with_ram_bandwidth
    from rigscope.sources import catalog_model

    rig = with_backend(with_ram_bandwidth(resolve_rig(q.gpus, q.cpu, q.ram), q.ram_bandwidth),
                       q.backend)
    scores = list(evidence())
    if q.evidence:
        if not allow_files:
            raise RigscopeError("this server reads no local files: --evidence is refused")
        path = Path(q.evidence)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise RigscopeError(f"cannot read --evidence {path.name}: "
                                f"{getattr(e, 'strerror', None) or e}") from None
        mine = parse_scores(text, path.name)
        keys = {(s.model.lower(), s.benchmark) for s in mine}
        scores = [s for s in scores if (s.model.lower(), s.benchmark) not in keys
                  and (s.rigscope_id.lower(), s.benchmark) not in keys] + mine
    specs = [catalog_model(m) for m in models()]
    return pick(rig, q.use, specs=specs, scores=scores, aliases=model_aliases(),
                context=q.context, users=q.users,
                engine=q.engine, min_tps=q.min_tps, max_ttft=q.max_ttft)


def pick_doc(q: PickQuery, allow_files: bool = True) -> Doc:
    """`rigscope pick --json`."""
    return contract.pick_json(pick_answer(q, allow_files))
