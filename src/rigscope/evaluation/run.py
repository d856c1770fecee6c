"""Run a suite against several endpoints side by side: identical prompts and sampling,
bounded concurrency per endpoint, every scored answer stored as it finishes."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from rigscope.bench.clients import Work, detect_api, served_models
from rigscope.bench.config import BenchConfig, prepare
from rigscope.bench.http import Pool
from rigscope.bench.load import Target
from rigscope.bench.metrics import RequestResult
from rigscope.errors import RigscopeError
from rigscope.evaluation import sandbox
from rigscope.evaluation.suites import Suite, Task, extract_code, matches, normalize
from rigscope.records import median
from rigscope.store import Store

TOP_LOGPROBS = 5


@dataclass(frozen=True)
class Endpoint:
    label: str
    url: str
    model: str | None = None


def parse_endpoint(text: str) -> Endpoint:
    """LABEL=URL[,model=NAME]"""
    label, sep, rest = text.partition("=")
    url, _, opts = rest.partition(",")
    if not sep or not label or not url.startswith(("http://", "https://")):
        raise RigscopeError(f"invalid --endpoint {text!r}; use LABEL=URL[,model=NAME]")
    model = None
    for opt in filter(None, opts.split(",")):
        key, _, value = opt.partition("=")
        if key != "model" or not value:
            raise RigscopeError(f"invalid --endpoint option {opt!r}; valid: model=NAME")
        model = value
    return Endpoint(label, url, model)


@dataclass
class Answer:
    task: Task
    sample: int
    result: RequestResult
    passed: bool = False
    reason: str = ""
    isolation: str | None = None

    def row(self) -> dict[str, Any]:
        r = self.result
        return {"task_id": self.task.id, "sample": self.sample, "category": self.task.category,
                "passed": self.passed, "reason": self.reason, "answer": r.text,
                "ttft_s": r.ttft_s, "itl_s": r.itl_s, "output_tokens": r.output_tokens,
                "isolation": self.isolation}


@dataclass
class EndpointResult:
    endpoint: Endpoint
    answers: list[Answer] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> EndpointSummary:
        scored = self.answers
        passed = sum(a.passed for a in scored)
        total = len(scored)
        ok = [a.result for a in scored if a.result.status == "ok"]
        itl = median([r.itl_s for r in ok if r.itl_s])
        cats: dict[str, list[int]] = {}
        for a in scored:
            c = cats.setdefault(a.task.category, [0, 0])
            c[0] += a.passed
            c[1] += 1
        iso = sorted({a.isolation for a in scored if a.isolation})
        return EndpointSummary(
            label=self.endpoint.label, url=self.endpoint.url, model=self.endpoint.model,
            passed=passed, total=total, pass_rate=passed / total if total else 0.0,
            ci95=wilson(passed, total),
            categories={k: {"passed": v[0], "total": v[1]} for k, v in sorted(cats.items())},
            decode_tokens_per_s=1 / itl if itl else None,
            ttft_s=median([r.ttft_s for r in ok if r.ttft_s is not None]),
            request_errors=sum(1 for a in scored if a.result.status != "ok"),
            sandbox=iso[0] if iso else None, error=self.error,
        )


@dataclass(frozen=True)
class EndpointSummary:
    label: str
    url: str
    model: str | None
    passed: int
    total: int
    pass_rate: float
    ci95: tuple[float, float]  # Wilson interval of the pass rate
    categories: dict[str, dict[str, int]]
    decode_tokens_per_s: float | None  # 1 / median ITL during the eval
    ttft_s: float | None  # median
    request_errors: int
    sandbox: str | None  # the isolation model-written code ran in
    error: str | None


@dataclass(frozen=True)
class Agreement:
    """How often a candidate endpoint answers like the reference (the first)."""

    reference: str
    candidate: str
    tasks: int
    answer_agreement: float | None
    verdict_agreement: float | None
    logprob_positions: int
    top_token_agreement: float | None
    mean_kl: float | None


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, center - half), min(1.0, center + half))


def score(task: Task, result: RequestResult, allow_weak_sandbox: bool = False
          ) -> tuple[bool, str, str | None]:
    """(passed, reason, isolation) for one answer."""
    if result.status != "ok":
        return False, result.reason or "error", None
    if task.kind == "code":
        outcome = sandbox.run(extract_code(result.text) + "\n\n" + task.tests,
                              allow_weak=allow_weak_sandbox)
        return outcome.passed, outcome.reason, outcome.isolation
    passed = matches(result.text, task.accept)
    return passed, "passed" if passed else "wrong answer", None


async def _run_endpoint(target: Target, suite: Suite, samples: int, concurrency: int,
                        logprobs: int, done: Callable[[Answer], None],
                        allow_weak_sandbox: bool) -> list[Answer]:
    sem = asyncio.Semaphore(concurrency)
    answers: list[Answer] = []

    async def one(i: int, task: Task, sample: int) -> None:
        async with sem:
            work = Work(prompt=task.prompt, output_tokens=task.max_tokens, seed=sample,
                        logprobs=logprobs)
            r = await target.send(work, i, target.pool.clock(), False)
        passed, reason, iso = await asyncio.to_thread(score, task, r, allow_weak_sandbox)
        answer = Answer(task, sample, r, passed, reason, iso)
        answers.append(answer)
        done(answer)

    jobs = [one(i, t, s) for i, (t, s) in enumerate(
        (t, s) for t in suite.tasks for s in range(samples))]
    await asyncio.gather(*jobs)
    order = {t.id: n for n, t in enumerate(suite.tasks)}
    answers.sort(key=lambda a: (order[a.task.id], a.sample))
    return answers


@dataclass
class EvalRun:
    eval_id: str
    suite: str
    results: list[EndpointResult]
    agreement: list[Agreement]

    @property
    def summaries(self) -> list[EndpointSummary]:
        return [r.summary() for r in self.results]


async def run_eval(endpoints: list[Endpoint], suite: Suite, store: Store, *, samples: int = 1,
                   concurrency: int = 2, timeout: float = 300.0, logprobs: bool = True,
                   allow_weak_sandbox: bool = False,
                   on_answer: Callable[[str, Answer], None] = lambda label, a: None,
                   on_start: Callable[[str, int], None] = lambda label, n: None) -> EvalRun:
    """Every endpoint in parallel; each answer is scored and committed as it finishes."""
    if any(t.kind == "code" for t in suite.tasks):
        sandbox.isolation(allow_weak_sandbox)  # no sandbox, no eval: before anything is sent
    targets = []
    for ep in endpoints:
        model = ep.model or await _first_model(ep)
        targets.append(await prepare(BenchConfig(url=ep.url, model=model, timeout=timeout,
                                                 fixed_length=False)))
    eps = [Endpoint(e.label, e.url, t.model) for e, t in zip(endpoints, targets, strict=True)]
    config = {"endpoints": [e.__dict__ for e in eps], "samples": samples,
              "concurrency": concurrency, "tasks": len(suite.tasks)}
    eval_id = store.new_eval(suite.name, config)
    results = [EndpointResult(e) for e in eps]
    status = "cancelled"
    try:
        async def run_one(res: EndpointResult, target: Target) -> None:
            label = res.endpoint.label
            on_start(label, len(suite.tasks) * samples)

            def done(a: Answer) -> None:
                store.add_eval_result(eval_id, label, a.row())
                on_answer(label, a)

            res.answers = await _run_endpoint(target, suite, samples, concurrency,
                                              TOP_LOGPROBS if logprobs else 0, done,
                                              allow_weak_sandbox)

        await asyncio.gather(*(run_one(r, t) for r, t in zip(results, targets, strict=True)))
        status = "done"
    finally:
        agreement = [agree(results[0], r) for r in results[1:]] if results[0].answers else []
        store.finish_eval(eval_id, status, {
            "endpoints": [asdict(r.summary()) for r in results],
            "agreement": [asdict(a) for a in agreement]})
        for t in targets:
            await t.pool.close()
    return EvalRun(eval_id, suite.name, results, agreement)


def evaluate(endpoints: list[Endpoint], suite: Suite, store: Store, **options: Any) -> EvalRun:
    """Run `suite` against every endpoint side by side (temperature 0, identical prompts);
    each scored answer is stored as it finishes. `options` are run_eval's."""
    return asyncio.run(run_eval(endpoints, suite, store, **options))


async def _first_model(ep: Endpoint) -> str:
    pool = Pool(ep.url)
    try:
        models = await served_models(pool, await detect_api(pool))
    finally:
        await pool.close()
    if not models:
        raise RigscopeError(f"{ep.label}: the server lists no model; add ,model=NAME")
    return models[0]


def agree(ref: EndpointResult, cand: EndpointResult) -> Agreement:
    """How often the candidate answers like the reference; with log-probabilities, how often
    its top token matches and the mean KL(reference || candidate) over top-k tokens, on the
    positions both share (up to and including the first where the generated tokens differ)."""
    mine = {(a.task.id, a.sample): a for a in cand.answers}
    same_answer = same_verdict = n = 0
    top_same = positions = 0
    kl_sum = 0.0
    for a in ref.answers:
        b = mine.get((a.task.id, a.sample))
        if b is None:
            continue
        n += 1
        same_answer += normalize(a.result.text) == normalize(b.result.text)
        same_verdict += a.passed == b.passed
        for pa, pb in zip(a.result.top_logprobs, b.result.top_logprobs, strict=False):
            if not pa or not pb:
                break
            positions += 1
            ta, tb = max(pa, key=pa.__getitem__), max(pb, key=pb.__getitem__)
            top_same += ta == tb
            kl_sum += kl_divergence(pa, pb)
            if ta != tb:
                break
    return Agreement(reference=ref.endpoint.label, candidate=cand.endpoint.label, tasks=n,
                     answer_agreement=same_answer / n if n else None,
                     verdict_agreement=same_verdict / n if n else None,
                     logprob_positions=positions,
                     top_token_agreement=top_same / positions if positions else None,
                     mean_kl=kl_sum / positions if positions else None)


def kl_divergence(p_log: dict[str, float], q_log: dict[str, float]) -> float:
    """KL(P || Q) over the union of two top-k lists, each renormalized; a token missing from a
    list gets that list's smallest listed probability (an upper bound on its true mass)."""
    def dist(logs: dict[str, float], keys: set[str]) -> dict[str, float]:
        floor = min(logs.values())
        raw = {k: math.exp(logs.get(k, floor)) for k in keys}
        total = sum(raw.values())
        return {k: v / total for k, v in raw.items()}
    keys = set(p_log) | set(q_log)
    p, q = dist(p_log, keys), dist(q_log, keys)
    return sum(p[k] * math.log(p[k] / q[k]) for k in keys if p[k] > 0)
