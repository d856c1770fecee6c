"""Recommend hardware and configuration for a workload: search, filter, rank, explain.

The search covers 1..N of every catalog GPU, every Apple chip at every memory size, and CPU-only
boxes, with each engine that runs there, the quantizations at or above the quality floor and
f16 or q8_0 KV caches. Each rig keeps its best configuration (highest quality, then fastest)
that meets the workload; rigs with none are listed with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from rigscope.catalog import (
    apple_accelerator,
    apple_chips,
    apple_memory_options,
    gguf_mixes,
    gpus,
    lookup_quant,
)
from rigscope.errors import RigscopeError
from rigscope.estimator import Request, place
from rigscope.estimator.engines import get_engine, why_not
from rigscope.estimator.memory import layer_weights
from rigscope.estimator.speed import estimate_speed
from rigscope.estimator.speed_params import DEFAULT, SpeedParams
from rigscope.hardware import DEFAULT_HOST_RAM, apple_host, multi_node
from rigscope.prices import Price
from rigscope.rigcost import (
    DEFAULT_HOURS_PER_DAY,
    DEFAULT_KWH_USD,
    RigCost,
    break_even_hours,
    circuit_note,
    monthly_power_usd,
    platform_for,
    platforms,
    rent_per_hour,
    rig_cost,
    rig_watts,
    server_gpus,
)
from rigscope.specs import (
    Accelerator,
    Engine,
    MemoryEstimate,
    ModelSpec,
    Quant,
    Rig,
    SpeedEstimate,
)
from rigscope.units import GIB

# Workload profiles: prompt and output lengths and the context they need.
PROFILES: dict[str, dict[str, int | str]] = {
    # a conversation: short turns, history kept
    "chat": {"prompt_tokens": 1024, "output_tokens": 256, "context": 4096},
    # retrieved documents make long prompts; answers are short
    "rag": {"prompt_tokens": 6144, "output_tokens": 256, "context": 8192},
    # code: whole files in, long answers out; strict logic suffers first from quantization
    "code": {"prompt_tokens": 4096, "output_tokens": 768, "context": 16384,
             "min_quant": "Q8_0"},
    # agent loops: many dependent calls, each re-sending a context that keeps growing
    "agent": {"prompt_tokens": 12288, "output_tokens": 384, "context": 32768},
}
TIERS = (4096, 8192, 16384, 32768, 131072)
HEADROOM = 0.10  # --tiers keeps rigs with at least this share of memory free
GGUF_CANDIDATES = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "Q2_K")
FORMAT_CANDIDATES = {"vllm": ("BF16", "FP8", "AWQ"), "mlx": ("BF16", "MLX-8BIT", "MLX-4BIT"),
                     "transformers": ("BF16", "INT8", "NF4")}
CPU_RAM_SIZES = (64, 128, 256)  # GB of the CPU-only boxes considered
MAX_GPUS = 4  # GPUs per rig a plan considers unless asked for more
SERVER_GPUS = 8  # GPUs in one server node (HGX/OAM boards)
MAX_SERVER_NODES = 4


@dataclass(frozen=True)
class Workload:
    models: tuple[ModelSpec, ...]
    context: int = 4096
    users: int = 1
    prompt_tokens: int = 1024
    output_tokens: int = 256
    min_tps: float | None = 5.0  # decode tok/s each user must see (5: about reading speed)
    max_ttft: float | None = None  # seconds
    budget: float | None = None  # USD
    max_watts: float | None = None
    quant: str | None = None  # exactly this quantization
    min_quant: str | None = "Q4_K_M"  # quality floor
    engines: tuple[str, ...] = ("llama.cpp", "vllm", "mlx")  # names in ENGINES
    gpu_count_max: int = MAX_GPUS
    profile: str | None = None
    kwh_usd: float = DEFAULT_KWH_USD  # electricity price
    hours_per_day: float = DEFAULT_HOURS_PER_DAY  # of generating, for the power bill
    require_price: bool = False  # rigs without a known price are rejected ("no price")


@dataclass(frozen=True)
class Option:
    rig: Rig
    model: ModelSpec
    memory: MemoryEstimate
    speed: SpeedEstimate
    price: RigCost | None
    watts: float | None
    notes: tuple[str, ...] = field(default=())
    pareto: bool = False
    rent_usd_per_hour: float | None = None
    break_even_hours: float | None = None
    power_usd_per_month: float | None = None

    @property
    def usd_per_tps(self) -> float | None:
        agg = self.speed.aggregate_tokens_per_s
        return self.price.total_usd / agg if self.price and agg > 0 else None

    @property
    def tokens_per_joule(self) -> float | None:
        return self.speed.aggregate_tokens_per_s / self.watts if self.watts else None


@dataclass(frozen=True)
class Rejection:
    rig: str
    model: str
    quant: str
    engine: str
    reason: str


@dataclass(frozen=True)
class Plan:
    workload: Workload
    options: tuple[Option, ...]
    rejected: tuple[Rejection, ...]
    evaluated: int  # configurations estimated


def workload_from(models: Sequence[ModelSpec], profile: str | None = None,
                  **overrides: object) -> Workload:
    """A workload from a profile's defaults, with explicit options taking precedence."""
    values: dict[str, object] = {}
    if profile is not None:
        if profile not in PROFILES:
            raise RigscopeError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        values |= PROFILES[profile]
    values |= {k: v for k, v in overrides.items() if v is not None}
    if "engines" in values:  # names as the table spells them; an unknown one is an error
        values["engines"] = tuple(get_engine(str(e)).name for e in values["engines"])  # type: ignore[attr-defined]
    return Workload(models=tuple(models), profile=profile, **values)  # type: ignore[arg-type]


def candidate_rigs(gpu_count_max: int = MAX_GPUS, ids: Iterable[str] | None = None
                   ) -> list[Rig]:
    """1..gpu_count_max of each catalog GPU on each platform that holds that many (3 or more:
    a board with x16 links or a mining frame with x1 risers), each Apple chip at each size,
    CPU-only boxes."""
    wanted = set(ids) if ids is not None else None
    rigs = []
    for g in gpus().values():
        if wanted is None or g.id in wanted:
            host = Accelerator.cpu(g.memory_bytes if g.hw_class == "lpddr"  # one memory
                                   else max(DEFAULT_HOST_RAM, 2 * g.memory_bytes))
            for n in range(1, (1 if g.hw_class == "lpddr" else gpu_count_max) + 1):
                links: list[str | None] = [*sorted({p.links for p in platforms(n)})] or [None]
                rigs += [Rig(devices=(g,) * n, host=host, host_default=True, links=li)
                         for li in links]
    for chip in apple_chips():
        if wanted is None or chip in wanted:
            for gb in apple_memory_options(chip):
                a = apple_accelerator(chip, gb)
                rigs.append(Rig(devices=(a,), host=apple_host(a.memory_bytes)))
    if wanted is None or "cpu" in wanted:
        rigs += [Rig(devices=(), host=Accelerator.cpu(gb * GIB)) for gb in CPU_RAM_SIZES]
    return rigs


def _engines_for(rig: Rig, engines: Sequence[str]) -> list[Engine]:
    return [e for e in map(get_engine, engines) if why_not(e, rig) is None]


def _quants_for(engine: Engine, w: Workload) -> list[Quant]:
    """Candidate quantizations for an engine, best quality first, at or above the floor."""
    family = engine.family
    if w.quant:
        try:
            return [lookup_quant(w.quant, family)]
        except RigscopeError:
            return []  # that format does not run on this engine
    names = GGUF_CANDIDATES if family == "llama.cpp" else FORMAT_CANDIDATES[family]
    quants = [lookup_quant(n, family) for n in names]
    if w.min_quant:
        floor = lookup_quant(w.min_quant, "llama.cpp" if _is_gguf(w.min_quant) else "vllm").rank
        quants = [q for q in quants if q.rank >= floor]
    return sorted(quants, key=lambda q: -q.rank)


def _is_gguf(name: str) -> bool:
    return name.upper() in gguf_mixes() or name.upper() in ("FP16", "FP32")


def notes_for(rig: Rig, engine: Engine, users: int, mem: MemoryEstimate) -> tuple[str, ...]:
    notes = []
    backend = rig.devices[0].backend if rig.devices else "cpu"
    if backend == "rocm":
        notes.append("ROCm needs more setup than CUDA")
    if backend == "metal" and users > 1:
        notes.append("Metal batches concurrent users less well than CUDA")
    plat = platform_for(rig)
    if plat is not None and len(rig.devices) > 1:
        notes.append(f"{plat.name}, {plat.links} links"
                     + (": layer split only, slower prefill" if plat.links == "x1" else ""))
    circuit = circuit_note(rig)
    if circuit:
        notes.append(circuit)
    if mem.kv_type != "f16":
        notes.append(f"KV cache at {mem.kv_type}")
    if engine.family == "vllm":
        notes.append(f"{engine.name} pages KV for {mem.max_sequences} sequences of this "
                     "context")
    if server_gpus(rig):
        notes.append("price: the GPUs only (no sourced price for the server that holds them)")
    if rig.host_default and mem.host.layers:
        notes.append("host RAM assumed")
    if rig.nodes > 1:
        notes.append(f"{rig.nodes} nodes over {rig.interconnect}: pipeline parallel across "
                     f"them, Ray runs {engine.name}'s workers on each")
    return tuple(notes)


def _lower_bound_fails(model: ModelSpec, quant: Quant, rig: Rig) -> str | None:
    """A cheap bound: weights alone exceed all accelerator memory."""
    lw = layer_weights(model, quant)
    capacity = sum(d.usable_bytes for d in rig.devices) or rig.host.memory_bytes
    need = lw.total - (lw.token_embd if rig.devices else 0)
    if need > capacity:
        return (f"weights alone need {need / GIB:.1f} GiB at {quant.name}; "
                f"it has {capacity / GIB:.1f} GiB")
    return None


def make_plan(
    w: Workload, prices: dict[str, Price], rigs: Sequence[Rig] | None = None,
    all_configs: bool = False, params: SpeedParams = DEFAULT, escalate: bool = True,
) -> Plan:
    """Every rig's best configuration that meets the workload, ranked; why the others fail.
    A model that no rig given holds is tried on server nodes (server_rigs) when `escalate`."""
    rigs = list(rigs) if rigs is not None else candidate_rigs(w.gpu_count_max)
    options: list[Option] = []
    rejected: list[Rejection] = []
    evaluated = 0
    for model in w.models:
        before = len(options)
        for rig in rigs:
            evaluated += _plan_rig(model, rig, w, prices, params, all_configs, options,
                                   rejected)
        if escalate and len(options) == before:
            for rig in server_rigs():
                evaluated += _plan_rig(model, rig, w, prices, params, all_configs, options,
                                       rejected)
    ranked = _mark_pareto(sorted(options, key=_rank_key))
    return Plan(workload=w, options=tuple(ranked), rejected=tuple(rejected), evaluated=evaluated)


def server_rigs(max_nodes: int = MAX_SERVER_NODES) -> list[Rig]:
    """Nodes of SERVER_GPUS datacenter GPUs (HBM), alone and 2..max_nodes of them joined by
    InfiniBand: what a model needs that no workstation holds."""
    out = []
    for g in gpus().values():
        if g.hw_class != "hbm":
            continue
        node = Rig(devices=(g,) * SERVER_GPUS, host=Accelerator.cpu(
            max(DEFAULT_HOST_RAM, 2 * SERVER_GPUS * g.memory_bytes)), host_default=True)
        out += [node, *(multi_node(node, n) for n in range(2, max_nodes + 1))]
    return out


def _plan_rig(model: ModelSpec, rig: Rig, w: Workload, prices: dict[str, Price],
              params: SpeedParams, all_configs: bool, options: list[Option],
              rejected: list[Rejection]) -> int:
    """Add the rig's best configuration(s) for `model` to `options`, or why not to
    `rejected`; returns how many configurations were estimated."""
    engines = _engines_for(rig, w.engines)
    if not engines:
        rejected.append(Rejection(rig.id, model.id, w.quant or "-", "-",
                                  "no requested engine runs here"))
        return 0
    price, watts = rig_cost(rig, prices), rig_watts(rig)
    if (w.budget is not None or w.require_price) and price is None and not rig.local:
        rejected.append(Rejection(rig.id, model.id, "-", "-", "no price"))  # --price ID=USD
        return 0
    if w.budget is not None and price is not None and price.total_usd > w.budget:
        rejected.append(Rejection(rig.id, model.id, "-", "-",
                                  f"price ${price.total_usd:,.0f} over budget"))
        return 0
    if w.max_watts is not None and watts is not None and watts > w.max_watts:
        rejected.append(Rejection(rig.id, model.id, "-", "-",
                                  f"{watts:.0f} W over the power cap"))
        return 0
    evaluated = 0
    for engine in engines:
        found, why, n = _best_on(model, rig, engine, w, price, watts, all_configs, params)
        evaluated += n
        options += found
        if not found:
            rejected.append(Rejection(rig.id, model.id, why[0], engine.name, why[1]))
    return evaluated


def _best_on(
    model: ModelSpec, rig: Rig, engine: Engine, w: Workload, price: RigCost | None,
    watts: float | None, all_configs: bool, params: SpeedParams,
) -> tuple[list[Option], tuple[str, str], int]:
    quants = _quants_for(engine, w)
    if not quants:
        return [], (w.quant or "-", f"{w.quant} does not run on {engine.name}"), 0
    kv_types = ("f16", "q8_0") if engine.family == "llama.cpp" else ("f16",)
    found: list[Option] = []
    reason: tuple[str, str] = (quants[-1].name, "")
    n = 0
    for quant in quants:  # best quality first: the first that meets the workload wins
        bound = _lower_bound_fails(model, quant, rig)
        if bound:
            reason = (quant.name, bound)
            continue
        for kv in kv_types:
            n += 1
            try:
                mem = place(Request(model=model, quant=quant, engine=engine, context=w.context,
                                    batch=w.users, kv_type=kv, flash_attn=True), rig)
            except RigscopeError as e:
                reason = (quant.name, str(e))
                continue
            if not mem.fits:
                reason = (quant.name, _misfit(mem))
                continue
            speed = estimate_speed(mem, prompt_tokens=w.prompt_tokens,
                                   output_tokens=w.output_tokens, p=params)
            miss = _unmet(speed, w)
            if miss:
                reason = (quant.name, miss)
                continue
            rent = rent_per_hour(rig)
            found.append(Option(
                rig=rig, model=model, memory=mem, speed=speed, price=price, watts=watts,
                notes=notes_for(rig, engine, w.users, mem), rent_usd_per_hour=rent,
                break_even_hours=break_even_hours(price.total_usd, rent, watts, w.kwh_usd)
                if price else None,
                power_usd_per_month=monthly_power_usd(watts, w.kwh_usd, w.hours_per_day)))
            break  # a quantized KV cache only when f16 does not do
        if found and not all_configs:
            break
    return found, reason, n


def _misfit(mem: MemoryEstimate) -> str:
    if mem.max_sequences is not None:  # paged engines: the pool is what the weights leave
        return (f"does not fit: {mem.engine.name}'s KV pool holds {mem.max_sequences} of "
                f"{mem.batch} sequences of {mem.context} tokens")
    f = mem.fit
    if mem.runs and f is not None and f.cpu_expert_layers and not f.cpu_layers:
        return (f"does not fit: runs only with the experts of {len(f.cpu_expert_layers)} of "
                f"{mem.model.layers} layers in system RAM (llama.cpp --fit)")
    if mem.runs and mem.offloaded_layers:
        return (f"does not fit: {mem.offloaded_layers} of {mem.model.layers} layers would "
                "spill to system RAM")
    over = [d for d in mem.devices if not d.fits]
    if over:
        d = over[0]
        return (f"does not fit: {d.used_bytes / GIB:.1f} GiB needed on {d.id}, "
                f"{d.capacity_bytes / GIB:.1f} usable (context {mem.context}, "
                f"{mem.batch} user{'s' if mem.batch > 1 else ''})")
    return "does not fit in host memory"


def _unmet(speed: SpeedEstimate, w: Workload) -> str | None:
    if w.min_tps is not None and speed.decode_tokens_per_s < w.min_tps:
        return (f"decode {speed.decode_tokens_per_s:.1f} tok/s per user < {w.min_tps:g}")
    if w.max_ttft is not None and speed.ttft_s > w.max_ttft:
        return f"TTFT {speed.ttft_s:.2f} s > {w.max_ttft:g} s"
    return None


def _rank_key(o: Option) -> tuple[float, float, float]:
    """Cheapest first (unknown prices last), then better quality, then faster."""
    return (o.price.total_usd if o.price else math.inf, -o.memory.quant.rank,
            -o.speed.aggregate_tokens_per_s)


def _mark_pareto(options: list[Option]) -> list[Option]:
    """Flag options no other option beats on both price and aggregate speed."""
    def key(o: Option) -> tuple[float, float]:
        return (o.price.total_usd if o.price else 0.0, -o.speed.aggregate_tokens_per_s)

    priced = sorted((o for o in options if o.price), key=key)
    best, frontier = -1.0, set()
    for o in priced:
        if o.speed.aggregate_tokens_per_s > best:
            best = o.speed.aggregate_tokens_per_s
            frontier.add(id(o))
    return [replace(o, pareto=id(o) in frontier) for o in options]


@dataclass(frozen=True)
class Tiers:
    """For each context tier, the cheapest rigs that fit with HEADROOM of memory to spare."""

    workload: Workload
    by_context: dict[int, list[Option]]


def tiers(w: Workload, prices: dict[str, Price], per_tier: int = 3,
          rigs: Sequence[Rig] | None = None, params: SpeedParams = DEFAULT) -> Tiers:
    """The cheapest `per_tier` roomy rigs at each context in TIERS."""
    rigs = list(rigs) if rigs is not None else candidate_rigs(w.gpu_count_max)
    out = {}
    for ctx in TIERS:
        plan = make_plan(replace(w, context=ctx), prices, rigs, params=params)
        roomy = [o for o in plan.options if _headroom(o.memory) >= HEADROOM]
        out[ctx] = roomy[:per_tier]
    return Tiers(w, out)


def _headroom(mem: MemoryEstimate) -> float:
    return min((1 - d.used_bytes / d.capacity_bytes) for d in mem.devices if d.capacity_bytes)
