"""A self-contained HTML report of benchmark runs (inline SVG plots, no scripts, no CDN).

Plots: throughput and latency percentiles vs concurrency, throughput against per-user
speed with its Pareto front, prefill and decode at each context depth, TTFT and ITL
distributions, the network breakdown, predicted vs measured, and memory per device when the
run carries a prediction (the demo's runs do). `--png DIR` writes each plot as a PNG as well.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rigscope.errors import RigscopeError
from rigscope.records import LevelSummary, Run, StoredRequest, level_notes, median
from rigscope.units import MIB

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _plt():  # noqa: ANN202 - matplotlib, optional, is imported only when a report is drawn
    try:
        import matplotlib
    except ImportError:
        raise RigscopeError("reports need matplotlib: pip install 'rigscope[report]' "
                            "(or pip install matplotlib)", exit_code=1) from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.figsize": (7.2, 3.8), "axes.grid": True, "grid.alpha": 0.3,
                         "font.size": 10, "svg.fonttype": "none",
                         "figure.constrained_layout.use": True})
    return plt


def _levels(run: Run) -> list[tuple[int, LevelSummary]]:
    """Closed-loop levels of the run's own shape that finished, as (concurrency, summary)
    (depth and sweep levels have plots of their own)."""
    return [(lv.concurrency, s) for lv, s in run.summarized if lv.concurrency
            and lv.depth is None and lv.prompt_tokens is None and lv.output_tokens is None]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other beats on both axes (higher is better on each), by x."""
    front = [p for p in points
             if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(set(front))


def fig_pareto(runs: Sequence[Run]):  # noqa: ANN201
    """Total throughput against each user's decode speed, one point per closed-loop level,
    the front of the levels no other beats on both drawn as a line."""
    series = []
    for run in runs:
        pts = [(s.decode_tokens_per_s.p50, s.output_tokens_per_s, lv.label)
               for lv, s in run.summarized
               if lv.concurrency and s.decode_tokens_per_s.p50 is not None]
        if len(pts) >= 2:
            series.append((run, pts))
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots()
    for i, (run, pts) in enumerate(series):
        color = COLORS[i % 6]
        ax.scatter([x for x, _, _ in pts], [y for _, y, _ in pts], color=color, alpha=0.5)
        front = pareto_front([(x, y) for x, y, _ in pts])
        ax.plot([x for x, _ in front], [y for _, y in front], "o-", color=color,
                label=f"{run.name}: Pareto front")
        for x, y, label in pts:
            if (x, y) in front:
                ax.annotate(label, (x, y), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
    ax.set(title="Throughput vs per-user speed", xlabel="decode tokens/s per request (p50)",
           ylabel="output tokens/s (all requests)")
    ax.legend()
    return fig


def fig_depth(runs: Sequence[Run]):  # noqa: ANN201
    """Prefill and decode speed per request at each context depth (bench --depth)."""
    rows = [(run, [(lv.depth, s) for lv, s in run.summarized if lv.depth is not None])
            for run in runs]
    rows = [(run, lv) for run, lv in rows if lv]
    if not rows:
        return None
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.8))
    for i, (run, levels) in enumerate(rows):
        color = COLORS[i % 6]
        depths = [float(d or 0) for d, _ in levels]
        a1.plot(depths, [s.prefill_tokens_per_s.p50 for _, s in levels], "o-", color=color,
                label=run.name)
        a2.plot(depths, [s.decode_tokens_per_s.p50 for _, s in levels], "o-", color=color,
                label=run.name)
        for at, what, ax in _predicted_at_depth(run):
            (a1 if what == "prefill" else a2).plot([at], [ax], "x", color=color, ms=9)
    a1.set(title="Prefill at depth", xlabel="tokens in context before the prompt",
           ylabel="tokens/s per request (p50)")
    a2.set(title="Decode at depth", xlabel="tokens in context before the prompt",
           ylabel="tokens/s per request (p50)")
    a1.legend()
    return fig


def _predicted_at_depth(run: Run) -> list[tuple[float, str, float]]:
    """Predictions stored with the run for a depth: (depth, 'prefill'|'decode', tok/s)."""
    rows = run.config.get("prediction", {}).get("depth", [])
    return [(float(r["depth"]), r["what"], float(r["tokens_per_s"])) for r in rows]


def fig_throughput(runs: Sequence[Run]):  # noqa: ANN201
    if not any(_levels(r) for r in runs):
        return None
    plt = _plt()
    fig, ax = plt.subplots()
    for i, run in enumerate(runs):
        lv = _levels(run)
        if lv:
            ax.plot([c for c, _ in lv], [s.output_tokens_per_s for _, s in lv],
                    "o-", color=COLORS[i % 6], label=f"{run.name}: output tok/s")
    ax.set(title="Throughput vs concurrency", xlabel="concurrent requests",
           ylabel="output tokens/s (aggregate)")
    _concurrency_axis(ax, runs)
    ax.legend()
    return fig


def _concurrency_axis(ax: Any, runs: Sequence[Run]) -> None:
    ticks = sorted({c for run in runs for c, _ in _levels(run)})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()


def fig_latency(runs: Sequence[Run]):  # noqa: ANN201
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.8))
    for i, run in enumerate(runs):
        lv = _levels(run)
        c = [x for x, _ in lv]
        for q, style in (("p50", "o-"), ("p90", "s--"), ("p99", "^:")):
            a1.plot(c, [(getattr(s.ttft_s, q) or 0) * 1e3 for _, s in lv], style,
                    color=COLORS[i % 6], label=f"{run.name} {q}")
            a2.plot(c, [(getattr(s.itl_s, q) or 0) * 1e3 for _, s in lv], style,
                    color=COLORS[i % 6], label=f"{run.name} {q}")
    a1.set(title="TTFT percentiles", xlabel="concurrent requests", ylabel="TTFT (ms)")
    a2.set(title="ITL per token, percentiles", xlabel="concurrent requests", ylabel="ITL (ms)")
    for ax in (a1, a2):
        _concurrency_axis(ax, runs)
        ax.legend(fontsize=7)
    return fig


def fig_distributions(runs: Sequence[Run]):  # noqa: ANN201
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.8))
    for i, run in enumerate(runs):
        ok = [r for r in run.requests if r.measured_ok]
        a1.hist([r.ttft_s * 1e3 for r in ok if r.ttft_s is not None], bins=30, alpha=0.6,
                color=COLORS[i % 6], label=run.name)
        a2.hist([r.itl_s * 1e3 for r in ok if r.itl_s], bins=30, alpha=0.6,
                color=COLORS[i % 6], label=run.name)
    a1.set(title="TTFT distribution (all levels)", xlabel="TTFT (ms)", ylabel="requests")
    a2.set(title="ITL per token distribution", xlabel="ITL (ms)", ylabel="requests")
    a1.legend(fontsize=8)
    a2.legend(fontsize=8)
    return fig


def fig_network(runs: Sequence[Run]):  # noqa: ANN201
    plt = _plt()
    fig, ax = plt.subplots()
    names = [r.name for r in runs]
    bottom = [0.0] * len(runs)

    def wait(r: StoredRequest) -> float | None:  # request sent -> headers back
        if r.headers_s is None:
            return None
        return r.headers_s - sum(v or 0 for v in (r.dns_s, r.connect_s, r.tls_s))

    parts: list[tuple[str, Callable[[StoredRequest], float | None]]] = [
        ("DNS", lambda r: r.dns_s), ("TCP connect", lambda r: r.connect_s),
        ("TLS", lambda r: r.tls_s), ("waiting for headers", wait)]
    for j, (label, get) in enumerate(parts):
        vals = []
        for run in runs:
            m = median([v for r in run.requests if (v := get(r)) is not None])
            vals.append(m * 1e3 if m is not None else 0.0)
        ax.bar(names, vals, bottom=bottom, color=COLORS[j], label=label)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set(title="Network breakdown (median per request)", ylabel="ms",
           xlabel="run (connect and TLS only on new connections)")
    ax.legend()
    return fig


def fig_predicted(runs: Sequence[Run]):  # noqa: ANN201
    rows = [p for r in runs for p in r.checks if "tok/s" in p.what]  # rates: one axis, one unit
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots()
    labels = [p.what for p in rows]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [p.predicted for p in rows], 0.4, color=COLORS[0],
           label="predicted")
    ax.bar([i + 0.2 for i in x], [p.measured or 0 for p in rows], 0.4, color=COLORS[2],
           label="measured")
    for i, p in enumerate(rows):
        if p.error_pct is not None:
            ax.annotate(f"{p.error_pct:+.0f}%", (i, max(p.predicted, p.measured or 0)),
                        ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), labels, rotation=15, fontsize=8)
    ax.set(title="Predicted vs measured", ylabel="tokens/s")
    ax.legend()
    return fig


def fig_memory(runs: Sequence[Run]):  # noqa: ANN201
    devices = [d for r in runs for d in r.predicted_memory]
    if not devices:
        return None
    plt = _plt()
    fig, ax = plt.subplots()
    names = [d.id for d in devices]
    bottom = [0.0] * len(devices)
    for j, key in enumerate(("weights_bytes", "kv_bytes", "compute_bytes", "overhead_bytes")):
        vals = [getattr(d, key) / MIB for d in devices]
        ax.bar(names, vals, bottom=bottom, color=COLORS[j], label=key[:-6].replace("_", " "))
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set(title="Predicted memory per device", ylabel="MiB")
    ax.legend()
    return fig


TELEMETRY_PANELS = (
    ("requests", ("requests_running", "requests_waiting", "slots_busy")),
    ("share, %", ("kv_cache_usage", "prefix_cache_hit_rate", "gpu_share", "gpu_util_pct")),
    ("GPU power, W", ("gpu_power_w",)),
)
PERCENT_SHARES = ("kv_cache_usage", "prefix_cache_hit_rate", "gpu_share")


def fig_telemetry(runs: Sequence[Run]):  # noqa: ANN201
    """What the server and the GPU said over each run's timeline."""
    runs = [r for r in runs if r.telemetry]
    if not runs:
        return None
    panels = [(label, keys) for label, keys in TELEMETRY_PANELS
              if any(k in x.data for r in runs for x in r.telemetry for k in keys)]
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False,
                             figsize=(6.4, 1.9 + 1.6 * len(panels)))
    for (label, keys), ax in zip(panels, axes[:, 0], strict=True):
        for i, run in enumerate(runs):
            t0 = min(x.t for x in run.telemetry)
            for j, key in enumerate(k for k in keys if any(k in x.data for x in run.telemetry)):
                pts = [(x.t - t0, x.data[key] * (100 if key in PERCENT_SHARES else 1))
                       for x in run.telemetry if key in x.data]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=COLORS[(i + j) % 6],
                        linestyle=("-", "--", ":", "-.")[j % 4],
                        label=f"{key}" + (f" ({run.name})" if len(runs) > 1 else ""))
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("seconds since the run's first sample")
    axes[0, 0].set_title("Server and GPU telemetry")
    return fig


def _memory_table(runs: Sequence[Run]) -> str:
    """Predicted memory beside what the GPU (NVML) or Ollama reported at most."""
    rows = []
    for run in runs:
        predicted = sum(d.weights_bytes + d.kv_bytes + d.compute_bytes + d.overhead_bytes
                        for d in run.predicted_memory)
        for key, what in (("gpu_memory_used_bytes", "GPU memory used (NVML)"),
                          ("vram_bytes", "model in VRAM (Ollama)")):
            seen = [x.data[key] for x in run.telemetry if key in x.data]
            if seen and predicted:
                rows.append(f"<tr><td>{html.escape(run.name)}</td><td>{what}</td>"
                            f"<td>{predicted / MIB:,.0f}</td><td>{max(seen) / MIB:,.0f}</td>"
                            f"<td>{(predicted / max(seen) - 1) * 100:+.1f}%</td></tr>")
    if not rows:
        return ""
    return ("<h2>Memory: predicted vs reported</h2><table><tr><th>run</th><th>reported by"
            "</th><th>predicted MiB</th><th>reported MiB (max)</th><th>error</th></tr>"
            + "".join(rows) + "</table>")


FIGURES = [("throughput", fig_throughput), ("pareto", fig_pareto), ("depth", fig_depth),
           ("latency", fig_latency),
           ("distributions", fig_distributions), ("network", fig_network),
           ("predicted", fig_predicted), ("memory", fig_memory),
           ("telemetry", fig_telemetry)]


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.find("<svg"):]


def _table(runs: Sequence[Run]) -> str:
    head = ("<tr><th>run</th><th>level</th><th>ok</th><th>failed</th><th>TTFT p50 ms</th>"
            "<th>TTFT p99 ms</th><th>ITL p50 ms</th><th>tok/s</th><th>req/s</th></tr>")
    rows = []
    for run in runs:
        for lv, s in run.summarized:
            ms = [s.ttft_s.p50, s.ttft_s.p99, s.itl_s.p50]
            cells = [html.escape(run.name), lv.label, s.requests_ok, s.requests_failed,
                     *(f"{v * 1e3:.1f}" if v is not None else "-" for v in ms),
                     f"{s.output_tokens_per_s:.1f}", f"{s.requests_per_s:.2f}"]
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _notes(runs: Sequence[Run]) -> str:
    """What levels add beyond the table: speeds per request, cache hits, retries, draft
    acceptance, energy (the same words as the CLI's)."""
    rows = [f"<tr><td>{html.escape(run.name)}</td><td>{html.escape(lv.label)}</td>"
            f"<td>{html.escape(topic)}</td><td style='text-align:left'>{html.escape(words)}"
            "</td></tr>"
            for run in runs for lv, s in run.summarized for topic, words in level_notes(s)]
    unreported = [html.escape(r.name) for r in runs
                  if r.summarized and not any(s.acceptance_source for _, s in r.summarized)]
    note = (f"<p class='meta'>speculative decoding: not reported by the server of "
            f"{', '.join(unreported)}</p>" if unreported else "")
    if not rows:
        return note
    return ("<table><tr><th>run</th><th>level</th><th>what</th><th>measured</th></tr>"
            + "".join(rows) + "</table>" + note)


def _prediction_table(runs: Sequence[Run]) -> str:
    rows = []
    for run in runs:
        for p in run.checks:
            err = f"{p.error_pct:+.1f}%" if p.error_pct is not None else "-"
            measured = f"{p.measured:.1f}" if p.measured is not None else "-"
            rows.append(f"<tr><td>{html.escape(p.what)}</td><td>{p.predicted:.1f}</td>"
                        f"<td>{measured}</td><td>{err}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Predicted vs measured</h2><table><tr><th>figure</th><th>predicted</th>"
            "<th>measured</th><th>error</th></tr>" + "".join(rows) + "</table>")


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}figure{margin:1.5em 0}svg{max-width:100%;height:auto}
.meta{color:#666;font-size:90%}"""


def fig_eval(evals: Sequence[dict[str, Any]]):  # noqa: ANN201
    rows = [(ev["eval_id"], e) for ev in evals for e in ev["summary"].get("endpoints", [])]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots()
    names = [f"{e['label']}" + (f"\n{eid[-6:]}" if len(evals) > 1 else "") for eid, e in rows]
    rates = [e["pass_rate"] * 100 for _, e in rows]
    err = [[r - e["ci95"][0] * 100 for r, (_, e) in zip(rates, rows, strict=True)],
           [e["ci95"][1] * 100 - r for r, (_, e) in zip(rates, rows, strict=True)]]
    ax.bar(names, rates, yerr=err, capsize=6, color=[COLORS[i % 6] for i in range(len(rows))])
    ax.set(title="Eval pass rate with 95% interval", ylabel="% of tasks passed", ylim=(0, 100))
    return fig


def _eval_tables(evals: Sequence[dict[str, Any]]) -> str:
    out = []
    for ev in evals:
        rows = []
        for e in ev["summary"].get("endpoints", []):
            lo, hi = e["ci95"]
            tps = e["decode_tokens_per_s"]
            rows.append(f"<tr><td>{html.escape(e['label'])}</td><td>{e['passed']}/{e['total']}"
                        f"</td><td>{e['pass_rate']:.0%} [{lo:.0%}, {hi:.0%}]</td>"
                        f"<td>{'-' if tps is None else f'{tps:.1f}'}</td></tr>")
        agree = "".join(
            f"<p class='meta'>{html.escape(a['candidate'])} vs {html.escape(a['reference'])}: "
            f"same answer on {a['answer_agreement']:.0%} of {a['tasks']} tasks</p>"
            for a in ev["summary"].get("agreement", []) if a.get("answer_agreement") is not None)
        out.append(f"<h3>{html.escape(ev['eval_id'])} · suite {html.escape(ev['suite'])}</h3>"
                   "<table><tr><th>endpoint</th><th>passed</th><th>pass rate</th>"
                   f"<th>decode tok/s</th></tr>{''.join(rows)}</table>{agree}")
    return "<h2>Evaluations</h2>" + "".join(out) if out else ""


def render(runs: Sequence[Run], png_dir: Path | None = None,
           evals: Sequence[dict[str, Any]] = ()) -> str:
    """The report's HTML; with png_dir, each plot is also written there as a PNG."""
    figs = []
    drawn = [(name, make(runs)) for name, make in FIGURES] if runs else []
    for name, fig in [*drawn, ("eval", fig_eval(evals))]:
        if fig is None:
            continue
        if png_dir is not None:
            png_dir.mkdir(parents=True, exist_ok=True)
            fig.savefig(png_dir / f"{name}.png", dpi=110)
        figs.append(f'<figure id="{name}">{_svg(fig)}</figure>')
        _plt().close(fig)
    meta = "".join(
        f"<p class='meta'>{html.escape(r.name)}: {html.escape(r.model)} at "
        f"{html.escape(r.url)} ({html.escape(r.api)}), started {r.started_at}, "
        f"{r.status}</p>" for r in runs)
    names = [r.name for r in runs] + [e["eval_id"] for e in evals]
    title = "rigscope report: " + ", ".join(html.escape(n) for n in names)
    levels = (f"<h2>Levels</h2>{_table(runs)}{_notes(runs)}{_prediction_table(runs)}"
              f"{_memory_table(runs)}"
              if runs else "")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{CSS}</style></head><body><h1>{title}</h1>{meta}"
            f"{levels}{_eval_tables(evals)}<h2>Plots</h2>{''.join(figs)}</body></html>")


def write_report(runs: Sequence[Run], path: Path, png_dir: Path | None = None,
                 evals: Sequence[dict[str, Any]] = ()) -> Path:
    path.write_text(render(runs, png_dir, evals), encoding="utf-8")
    return path
