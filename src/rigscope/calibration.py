"""Fit the speed model's efficiency constants to the user's own measured runs.

A run can calibrate when it says what it ran on: the hardware (`--gpu`/`--cpu`), the model
and its quantization (`rigscope bench ... --hardware cpu --model-spec PATH.gguf`), as the
demo's runs do. Each concurrency-1 level gives two observations: decode (1 / ITL per token)
and prefill (prompt tokens / TTFT). The backend's bandwidth efficiency is fitted to the
decode observations and its prefill efficiency to the prefill ones, each by bisection on the
sum of log errors; the result is a named rig profile in the data dir.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rigscope.errors import RigscopeError
from rigscope.estimator import estimate
from rigscope.estimator.speed import estimate_speed, weights_family
from rigscope.estimator.speed_params import DEFAULT, SpeedParams
from rigscope.paths import data_dir
from rigscope.records import Level, Run, median
from rigscope.sources import resolve_model
from rigscope.specs import MemoryEstimate, Rig
from rigscope.system import resolve_rig

MIN_OBSERVATIONS = 2  # of each kind


@dataclass(frozen=True)
class Observation:
    kind: str  # "decode" | "prefill"
    measured: float  # tokens/s
    estimate: MemoryEstimate
    prompt_tokens: int
    output_tokens: int
    run_id: str

    def predict(self, p: SpeedParams) -> float:
        s = estimate_speed(self.estimate, prompt_tokens=self.prompt_tokens,
                           output_tokens=self.output_tokens, p=p)
        return s.decode_tokens_per_s if self.kind == "decode" else s.prefill_tokens_per_s


def run_rig(run: Run) -> Rig | None:
    """The rig a run measured, from its --hardware ("cpu": the machine that ran it)."""
    hw = run.config.get("hardware")
    return resolve_rig(*rig_args(hw)) if hw else None


def observations(run: Run, rig: Rig | None = None) -> list[Observation]:
    """Decode and prefill observations from a stored run's concurrency-1 levels, on the rig
    it measured (default: run_rig)."""
    cfg = run.config
    spec = cfg.get("model_spec")
    rig = rig or run_rig(run)
    if not spec or rig is None:
        return []
    if cfg.get("source") == "llama-bench":
        return _llama_bench_observations(run, rig)
    def sizes(level: Level) -> tuple[int, int]:
        """A level's whole prompt (its depth's own context in it: no cache) and output."""
        prompt = (level.prompt_tokens or cfg["prompt_tokens"]) + (level.depth or 0)
        return prompt, level.output_tokens or cfg["output_tokens"]

    levels = [(lv, s) for lv, s in run.summarized if lv.concurrency == 1 and s.requests_ok]
    if not levels:
        return []
    est = estimate(resolve_model(spec), rig, quant=cfg.get("quant"), context=max(
        512, *(sum(sizes(lv)) for lv, _ in levels)), flash_attn=cfg.get("flash_attn"))
    out = []
    for level, s in levels:
        prompt, output = sizes(level)
        itl, ttft = s.itl_s.p50, s.ttft_s.p50
        if itl:
            out.append(Observation("decode", 1 / itl, est, prompt, output, run.run_id))
        if ttft and not s.cache_hit_requests:  # a cached prompt's TTFT is no prefill
            out.append(Observation("prefill", prompt / ttft, est, prompt, output, run.run_id))
    return out


def _llama_bench_observations(run: Run, rig: Rig) -> list[Observation]:
    """An imported llama-bench run: each repetition of a ppN test is a prefill observation
    of N tokens, of a tgN test a decode one (tests at a depth, or mixing both, are left
    out)."""
    cfg = run.config
    tests = [t for t in cfg.get("tests", []) if not t.get("n_depth") and t.get("tokens_per_s")]
    model = resolve_model(cfg["model_spec"])
    out = []
    for t in tests:
        n_prompt, n_gen = int(t["n_prompt"]), int(t["n_gen"])
        if bool(n_prompt) == bool(n_gen):
            continue
        est = estimate(model, rig, quant=cfg.get("quant"), context=max(n_prompt + n_gen, 512),
                       flash_attn=t.get("flash_attn", cfg.get("flash_attn")))
        kind = "prefill" if n_prompt else "decode"
        out += [Observation(kind, float(x), est, n_prompt or 1, n_gen or 1, run.run_id)
                for x in t.get("samples_tokens_per_s") or [t["tokens_per_s"]]]
    return out


def rig_args(hardware: str) -> tuple[tuple[str, ...], str | None]:
    """(--gpu values, --cpu value) for a stored hardware spec ("cpu", "2xrtx-3090", ...):
    "cpu" alone is the machine that ran it ("" for --cpu without a size)."""
    if hardware == "cpu" or hardware.startswith("cpu:"):
        return (), hardware.partition(":")[2]
    return tuple(hardware.split("+")), None


def _key(est: MemoryEstimate, kind: str) -> tuple[str, str]:
    dev = est.rig.devices[0] if est.rig.devices else est.rig.host
    if kind == "decode":
        return "bw_eff", f"{dev.backend}:{dev.hw_class.removesuffix('-2die')}"
    family = weights_family(est)
    return "pp_eff", f"{dev.backend}:{family}" if dev.backend != "cpu" else "cpu"


def with_value(p: SpeedParams, field: str, key: str, value: float) -> SpeedParams:
    table = dict(getattr(p, field))
    table[key] = value
    changes: dict[str, Any] = {field: table}
    return dataclasses.replace(p, **changes)


def log_error(obs: Sequence[Observation], p: SpeedParams) -> float:
    return sum(math.log(o.predict(p) / o.measured) for o in obs)


def fit_one(obs: Sequence[Observation], p: SpeedParams, field: str, key: str) -> SpeedParams:
    """The value of p.field[key] that zeroes the summed log error (bisection on a log scale),
    within (0, 1]: an efficiency is a share of a spec figure. Measurements faster than the
    spec allows leave it at 1, and the spec (or the run's hardware) is what to question."""
    lo, hi = 0.01, 1.0

    def err(v: float) -> float:
        return log_error(obs, with_value(p, field, key, v))

    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if err(mid) > 0:  # predicting too fast: less efficiency
            hi = mid
        else:
            lo = mid
    return with_value(p, field, key, math.sqrt(lo * hi))


def errors(obs: Sequence[Observation], p: SpeedParams) -> dict[str, float | None]:
    """Median absolute percentage error per kind."""
    out: dict[str, float | None] = {}
    for kind in ("decode", "prefill"):
        e = [abs(o.predict(p) / o.measured - 1) for o in obs if o.kind == kind]
        out[kind] = median(e)
    return out


def fit(obs: Sequence[Observation], base: SpeedParams = DEFAULT) -> tuple[SpeedParams, dict[str,
                                                                                          Any]]:
    """Fitted params and what changed; refuses when there is too little data."""
    counts = {k: sum(1 for o in obs if o.kind == k) for k in ("decode", "prefill")}
    if min(counts.values()) < MIN_OBSERVATIONS:
        raise RigscopeError(
            f"too little data to calibrate: {counts['decode']} decode and {counts['prefill']} "
            f"prefill observations; need {MIN_OBSERVATIONS} of each (concurrency-1 levels of "
            "runs that name --hardware and --model-spec)")
    keys = {_key(o.estimate, o.kind) for o in obs}
    if len({k for k in keys if k[0] == "bw_eff"}) > 1:
        raise RigscopeError("runs from different kinds of hardware: calibrate one rig at a time")
    p = base
    changed: dict[str, Any] = {}
    for kind in ("decode", "prefill"):
        field, key = _key(next(o.estimate for o in obs if o.kind == kind), kind)
        p = fit_one([o for o in obs if o.kind == kind], p, field, key)
        changed.setdefault(field, {})[key] = round(getattr(p, field)[key], 4)
    return p, changed


def apply(base: SpeedParams, overrides: dict[str, dict[str, float]]) -> SpeedParams:
    for field, table in overrides.items():
        for key, value in table.items():
            base = with_value(base, field, key, value)
    return base


def profile_path(name: str) -> Path:
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise RigscopeError(f"invalid rig name {name!r}; use letters, digits, - and _")
    return data_dir() / "rigs" / f"{name}.json"


def save_profile(name: str, hardware: str, overrides: dict[str, Any], runs: list[str],
                 before: dict[str, Any], after: dict[str, Any]) -> Path:
    path = profile_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": name, "hardware": hardware, "params": overrides,
                                "runs": runs, "error_before": before, "error_after": after},
                               indent=2))
    return path


def load_profile(name: str) -> dict[str, Any]:
    path = profile_path(name)
    if not path.exists():
        have = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.exists() else []
        raise RigscopeError(f"no rig profile {name!r}; have: {', '.join(have) or 'none'} "
                            "(create one with rigscope calibrate RUN... --rig NAME)")
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def profile_params(name: str) -> tuple[SpeedParams, str]:
    """(calibrated params, hardware spec) of a saved rig profile."""
    doc = load_profile(name)
    return apply(DEFAULT, doc["params"]), doc["hardware"]


@dataclass(frozen=True)
class Calibration:
    """A fitted rig profile and the errors it removes."""

    rig: str
    hardware: str
    params: dict[str, Any]  # what changed from the defaults
    observations: int
    error_before: dict[str, float | None]
    error_after: dict[str, float | None]
    profile: str  # where it is saved
    holdout_error_before: dict[str, float | None] | None = None
    holdout_error_after: dict[str, float | None] | None = None


def calibrate(runs: Sequence[Run], name: str, holdout: Sequence[Run] = ()) -> Calibration:
    """Fit the speed model to measured runs and save it as rig profile `name`; with
    `holdout`, also the errors on runs it did not fit."""
    obs = [o for r in runs for o in observations(r)]
    before = errors(obs, DEFAULT)
    params, changed = fit(obs)
    after = errors(obs, params)
    hardware = runs[0].config.get("hardware") or ""
    path = save_profile(name, hardware, changed, [r.run_id for r in runs], before, after)
    held = [o for r in holdout for o in observations(r)]
    return Calibration(
        rig=name, hardware=hardware, params=changed, observations=len(obs),
        error_before=before, error_after=after, profile=str(path),
        holdout_error_before=errors(held, DEFAULT) if holdout else None,
        holdout_error_after=errors(held, params) if holdout else None)
