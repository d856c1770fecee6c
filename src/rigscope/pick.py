"""What to run on a rig for a use: catalog models ranked by published evidence for that use,
the quantization's measured loss and the speed the rig gives them.

Each model gets the best-quality llama.cpp quantization (or the engine's format) that runs on
the rig and meets the constraints, in the best speed class it reaches (llama.cpp's --fit
placement: on the GPUs, experts in system RAM, or layers spilled). Rows rank by speed class,
then by evidence (the use's benchmarks in order; a model is scored by the first it has, and
scores of different benchmarks are never compared), then by the quantization's loss tier,
then by score, then by decode speed. Models without evidence for the use come after those
with it, marked so; nothing gets a made-up score.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from rigscope.catalog import Score, ggml_types, gguf_mixes, lookup_quant, quality
from rigscope.errors import RigscopeError, unknown
from rigscope.estimator import estimate
from rigscope.estimator.engines import get_engine
from rigscope.estimator.launch import Launch, launch
from rigscope.estimator.speed import estimate_speed
from rigscope.estimator.speed_params import DEFAULT, SpeedParams
from rigscope.specs import MemoryEstimate, ModelSpec, Quant, Rig, SpeedEstimate

USES = ("chat", "code", "reasoning", "agent", "rag")
# Decode tok/s per user that bound the speed classes: reading speed and up, usable, slow.
SPEED_CLASSES = (20.0, 5.0)
SPEED_CLASS_NAMES = ("fast", "usable", "slow")
GGUF_QUANTS = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "IQ3_XXS", "Q2_K")
FORMAT_QUANTS = {"vllm": ("BF16", "FP8", "AWQ"), "mlx": ("BF16", "MLX-8BIT", "MLX-4BIT"),
                 "transformers": ("BF16", "INT8", "NF4")}
# prompt and output tokens of one request, per use
SHAPES = {"chat": (1024, 256), "code": (4096, 768), "reasoning": (1024, 2048),
          "agent": (8192, 384), "rag": (8192, 256)}


@dataclass(frozen=True)
class Evidence:
    benchmark: str  # its key (aa_v3_livecodebench, ...)
    label: str
    kind: str  # "third-party" or "model card"
    score: float
    model: str  # the model's name where it was scored
    source: str
    date: str
    twin: bool  # scored as a fine-tune with the same architecture as the catalog entry


@dataclass(frozen=True)
class Candidate:
    """A model to consider: a catalog spec and, where published, its scores."""

    spec: ModelSpec
    name: str  # the evidence's name for it (the catalog id when it has none)
    scores: tuple[Score, ...]


@dataclass(frozen=True)
class PickRow:
    name: str
    model: ModelSpec
    memory: MemoryEstimate
    speed: SpeedEstimate
    evidence: Evidence | None
    rank_group: int  # the position of the evidence's benchmark in the use's list
    kld: float | None  # the quantization's measured mean KL divergence
    loss_tier: str
    speed_class: int
    launch: Launch

    @property
    def fits(self) -> str:
        m = self.memory
        if not m.rig.devices:
            return "CPU"
        if m.fits:
            return "GPU"
        f = m.fit
        if f is not None and f.cpu_expert_layers and not f.cpu_layers:
            return "experts in RAM"
        return "spill"


@dataclass(frozen=True)
class Picks:
    use: str
    rig: Rig
    context: int
    users: int
    engine: str
    rows: tuple[PickRow, ...]
    skipped: tuple[tuple[str, str], ...]  # (model, why) for models that run nowhere here
    evidence_dates: tuple[str, str]  # oldest and newest date of the evidence shown


def loss_of(quant: Quant) -> tuple[float | None, str]:
    """(mean KLD, tier) of a llama.cpp quantization as measured; (None, "unmeasured")."""
    q = quality()
    value = q.quant_loss.get(quant.name)
    if not isinstance(value, float):
        return None, "unmeasured" if quant.kind == "gguf" else "format"
    for tier, bound in q.loss_tiers.items():
        if value <= bound:
            return value, tier
    return value, "large"


def _tier_rank(tier: str) -> int:
    """Large measured loss ranks after everything else in its class."""
    return 1 if tier == "large" else 0


def speed_class(decode_tps: float) -> int:
    return next((i for i, bound in enumerate(SPEED_CLASSES) if decode_tps >= bound),
                len(SPEED_CLASSES))


def best_evidence(scores: Iterable[Score], use: str) -> tuple[int, Evidence | None]:
    """The use's first benchmark this model has a score on (its best score there)."""
    q = quality()
    order = q.uses[use]
    by_bench: dict[str, Score] = {}
    for s in scores:
        if s.benchmark in order and (s.benchmark not in by_bench
                                     or s.score > by_bench[s.benchmark].score):
            by_bench[s.benchmark] = s
    for i, bench in enumerate(order):
        hit = by_bench.get(bench)
        if hit is not None:
            b = q.benchmarks[bench]
            return i, Evidence(benchmark=bench, label=b.label, kind=b.kind, score=hit.score,
                               model=hit.model, source=hit.source, date=hit.date or b.date,
                               twin=hit.twin)
    return len(order), None


def candidates(specs: Sequence[ModelSpec], scores: Iterable[Score],
               aliases: dict[str, str] | None = None) -> list[Candidate]:
    """One candidate per catalog model, plus one per scored fine-tune of a catalog
    architecture (its own name, that model's shapes). A score names its model by catalog
    id (`rigscope_id`), else by a catalog id in `model`, else by its Hub repo as a catalog
    alias (`aliases`: lower-cased alias -> id, e.g. entries `models update` added)."""
    by_id = {s.id: s for s in specs}
    own: dict[str, list[Score]] = {}
    twins: dict[tuple[str, str], list[Score]] = {}
    lowered = {k.lower(): k for k in by_id} | (aliases or {})
    for s in scores:
        mid = s.rigscope_id or lowered.get(s.model.lower(), "") \
            or lowered.get(s.hf_repo.lower(), "")
        if mid not in by_id:
            continue
        if s.twin:
            twins.setdefault((mid, s.model), []).append(s)
        else:
            own.setdefault(mid, []).append(s)
    out = [Candidate(spec, spec.id, tuple(own.get(spec.id, ()))) for spec in specs]
    out += [Candidate(by_id[mid], name, tuple(sc)) for (mid, name), sc in sorted(twins.items())]
    return out


def _quants(engine: str, model: ModelSpec) -> list[Quant]:
    eng = get_engine(engine)
    if eng.family == "llama.cpp":
        return [gguf_mixes()[n] for n in GGUF_QUANTS]
    out = []
    for n in FORMAT_QUANTS.get(eng.family, ("BF16",)):
        try:
            out.append(lookup_quant(n, eng.family))
        except RigscopeError:
            continue
    return out


def _weights_too_big(model: ModelSpec, quant: Quant, rig: Rig) -> bool:
    """A cheap bound: at its main type's bits per weight alone the weights exceed the GPUs'
    and the host's memory together (no tensor is quantized below the mix's main type)."""
    room = sum(d.usable_bytes for d in rig.devices) + (
        0 if rig.shared_memory else rig.host.memory_bytes)
    if quant.kind != "gguf":
        return model.params * quant.bits / 8 > room
    t = ggml_types()[quant.base or "F16"]
    return model.params * t.bytes / t.block > room


def pick(rig: Rig, use: str = "chat", *, specs: Sequence[ModelSpec],
         scores: Iterable[Score] = (), aliases: dict[str, str] | None = None,
         context: int | None = None, users: int = 1,
         engine: str = "llama.cpp", min_tps: float | None = None,
         max_ttft: float | None = None, p: SpeedParams = DEFAULT) -> Picks:
    """Rank `specs` on `rig` for `use` (see the module's docstring)."""
    if use not in USES:
        raise unknown("use", use, USES)
    q = quality()
    ctx = context or q.contexts[use]
    prompt, output = SHAPES[use]
    prompt = min(prompt, max(ctx - output, 1))
    rows: list[PickRow] = []
    skipped: list[tuple[str, str]] = []
    best_by_spec: dict[str, tuple[MemoryEstimate, SpeedEstimate] | str] = {}
    for cand in candidates(specs, scores, aliases):
        found = best_by_spec.get(cand.spec.id)
        if found is None:
            found = _best_config(cand.spec, rig, engine, ctx, users, prompt, output,
                                 min_tps, max_ttft, p)
            best_by_spec[cand.spec.id] = found
        if isinstance(found, str):
            skipped.append((cand.name, found))
            continue
        mem, speed = found
        group, ev = best_evidence(cand.scores, use)
        kld, tier = loss_of(mem.quant)
        rows.append(PickRow(name=cand.name, model=cand.spec, memory=mem, speed=speed,
                            evidence=ev, rank_group=group, kld=kld, loss_tier=tier,
                            speed_class=speed_class(speed.decode_tokens_per_s),
                            launch=launch(_named(mem, cand.name))))
    rows.sort(key=rank_key)
    dates = sorted(r.evidence.date for r in rows if r.evidence and r.evidence.date)
    return Picks(use=use, rig=rig, context=ctx, users=users, engine=engine, rows=tuple(rows),
                 skipped=tuple(skipped),
                 evidence_dates=(dates[0], dates[-1]) if dates else ("", ""))


def _named(mem: MemoryEstimate, name: str) -> MemoryEstimate:
    """The estimate under another model's name (a fine-tune with this architecture), so
    that its launch line names that model's file."""
    if name == mem.model.id:
        return mem
    model = replace(mem.model, id=name, source="")
    return replace(mem, request=replace(mem.request, model=model))


def rank_key(r: PickRow) -> tuple[int, int, int, float, float]:
    return (r.speed_class, r.rank_group, _tier_rank(r.loss_tier),
            -(r.evidence.score if r.evidence else 0.0), -r.speed.decode_tokens_per_s)


def _best_config(model: ModelSpec, rig: Rig, engine: str, ctx: int, users: int, prompt: int,
                 output: int, min_tps: float | None, max_ttft: float | None,
                 p: SpeedParams) -> tuple[MemoryEstimate, SpeedEstimate] | str:
    """The best-quality quantization in the best speed class this model reaches here, or
    why none runs. Smaller quantizations are as fast or faster, so the best class is the
    smallest's, and the first quantization in it is found by bisection."""
    quants = [q for q in _quants(engine, model) if not _weights_too_big(model, q, rig)]
    if not quants:
        return "its weights exceed this rig's memory at every quantization tried"
    why: list[str] = []
    seen: dict[int, tuple[int, MemoryEstimate, SpeedEstimate] | None] = {}

    def tried(i: int) -> tuple[int, MemoryEstimate, SpeedEstimate] | None:
        if i not in seen:
            seen[i] = _try(model, quants[i], rig, engine, ctx, users, prompt, output,
                           min_tps, max_ttft, p, why)
        return seen[i]

    def rank(i: int) -> int:
        got = tried(i)
        return got[0] if got else len(SPEED_CLASSES) + 1

    first = tried(0)
    if first and first[0] == 0:
        return first[1], first[2]
    best = min(rank(0), rank(len(quants) - 1))
    if best > len(SPEED_CLASSES):
        return why[-1] if why else "no quantization runs here"
    lo, hi = -1, len(quants) - 1 if rank(len(quants) - 1) == best else 0  # rank(hi) == best
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if rank(mid) <= best:
            hi = mid
        else:
            lo = mid
    got = tried(hi)
    assert got is not None
    return got[1], got[2]


def _try(model: ModelSpec, quant: Quant, rig: Rig, engine: str, ctx: int, users: int,
         prompt: int, output: int, min_tps: float | None, max_ttft: float | None,
         p: SpeedParams, why: list[str]) -> tuple[int, MemoryEstimate, SpeedEstimate] | None:
    """(speed class, memory, speed) at this quantization, or None (why appended)."""
    try:
        mem = estimate(model, rig, quant=quant, engine=engine, context=ctx, batch=users)
    except RigscopeError as e:
        why.append(str(e))
        return None
    if not mem.runs:
        why.append(f"does not run at {quant.name} with {ctx} tokens of context")
        return None
    speed = estimate_speed(mem, prompt_tokens=prompt, output_tokens=output, p=p)
    if min_tps is not None and speed.decode_tokens_per_s < min_tps:
        why.append(f"{speed.decode_tokens_per_s:.1f} tok/s at {quant.name}, under --min-tps "
                   f"{min_tps:g}")
        return None
    if max_ttft is not None and speed.ttft_s > max_ttft:
        why.append(f"TTFT {speed.ttft_s:.2f} s at {quant.name}, over --max-ttft {max_ttft:g}")
        return None
    return speed_class(speed.decode_tokens_per_s), mem, speed
