"""rigscope eval: quality of several endpoints side by side, with speed from the same run."""

from __future__ import annotations

from typing import Any

import click

from rigscope.cli.options import Number, db_option, echo_json, open_store


@click.command("eval")
@click.option("--endpoint", "endpoints", multiple=True, required=True,
              metavar="LABEL=URL[,model=NAME]", help="Repeatable; the first is the reference "
              "for agreement.")
@click.option("--suite", required=True, help="code, qa, rag, or a .jsonl file of your tasks.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N tasks.")
@click.option("--samples", type=click.IntRange(min=1), default=1, show_default=True,
              help="Answers per task (different seeds).")
@click.option("--concurrency", type=click.IntRange(min=1), default=2, show_default=True,
              help="Requests in flight per endpoint.")
@click.option("--timeout", type=Number(0, 86400, low_open=True), default=300, show_default=True)
@click.option("--allow-weak-sandbox", is_flag=True,
              help="Without bubblewrap, run model-written code in a network namespace with "
                   "rlimits and an audit hook (not a security boundary) instead of refusing.")
@db_option
@click.option("--json", "as_json", is_flag=True)
def eval_cmd(endpoints: tuple[str, ...], suite: str, limit: int | None, samples: int,
             concurrency: int, timeout: float, allow_weak_sandbox: bool, db: str | None,
             as_json: bool) -> None:
    """Run a suite against every endpoint with identical prompts (temperature 0)."""
    from dataclasses import replace

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from rigscope.contract import eval_json
    from rigscope.evaluation.run import evaluate, parse_endpoint
    from rigscope.evaluation.suites import load_suite

    eps = [parse_endpoint(e) for e in endpoints]
    labels = [e.label for e in eps]
    if len(set(labels)) != len(labels):
        from rigscope.errors import RigscopeError

        raise RigscopeError(f"endpoint labels must differ: {', '.join(labels)}")
    s = load_suite(suite)
    if limit:
        s = replace(s, tasks=s.tasks[:limit])
    store = open_store(db)
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), console=Console(stderr=True))
    ids: dict[str, Any] = {}
    passed: dict[str, int] = {}

    def start(label: str, n: int) -> None:
        ids[label] = bars.add_task(label, total=n, rate="")
        passed[label] = 0

    def answered(label: str, a: Any) -> None:
        passed[label] += a.passed
        bars.update(ids[label], advance=1, rate=f"{passed[label]} passed")

    with bars:
        result = evaluate(eps, s, store, samples=samples, concurrency=concurrency,
                          timeout=timeout, on_answer=answered, on_start=start,
                          allow_weak_sandbox=allow_weak_sandbox)
    doc = eval_json(result)
    if as_json:
        echo_json(doc)
        return
    print_eval(result.eval_id, result.suite, doc["endpoints"], doc["agreement"])


def print_eval(eval_id: str, suite: str, summaries: list[dict[str, Any]],
               agreement: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    cats = sorted({c for s in summaries for c in s["categories"]})
    t = Table(title=f"eval {eval_id} · suite {suite}", title_justify="left",
              caption="pass rate with its 95% Wilson interval; speed measured during the eval",
              caption_justify="left")
    for col in ("endpoint", "passed", "pass rate", *cats, "tok/s", "TTFT s"):
        t.add_column(col, justify="left" if col == "endpoint" else "right")
    for s in summaries:
        lo, hi = s["ci95"]
        per_cat = [f"{s['categories'][c]['passed']}/{s['categories'][c]['total']}"
                   if c in s["categories"] else "-" for c in cats]
        t.add_row(s["label"], f"{s['passed']}/{s['total']}",
                  f"{s['pass_rate']:.0%} [{lo:.0%}, {hi:.0%}]", *per_cat,
                  "-" if s["decode_tokens_per_s"] is None else f"{s['decode_tokens_per_s']:.1f}",
                  "-" if s["ttft_s"] is None else f"{s['ttft_s']:.2f}")
    con.print(t)
    sandboxes = {s["sandbox"] for s in summaries if s["sandbox"]}
    if sandboxes:
        con.print(f"code ran in the sandbox: {', '.join(sorted(sandboxes))}")
    for a in agreement:
        line = (f"{a['candidate']} vs {a['reference']}: same answer on "
                f"{a['answer_agreement']:.0%}, same verdict on {a['verdict_agreement']:.0%}")
        if a["top_token_agreement"] is not None:
            line += (f"; top token agrees on {a['top_token_agreement']:.0%} of "
                     f"{a['logprob_positions']} positions, mean KL {a['mean_kl']:.4f}")
        con.print(line)
