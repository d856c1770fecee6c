"""rigscope bench: measure a running inference server."""

from __future__ import annotations

import click

from rigscope.cli.options import Number, TokenList, Tokens, Url, db_option


def _floats(text: str | None, what: str, integer: bool = False) -> tuple[float, ...]:
    from rigscope.validate import number_list

    return number_list(text, what, integer=integer, high=1e6) if text else ()


def parse_slo(text: str | None):  # noqa: ANN201
    from rigscope.bench.metrics import Slo
    from rigscope.errors import RigscopeError

    if not text:
        return None
    limits = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key.strip() not in ("ttft", "itl", "e2e"):
            raise RigscopeError(f"invalid --slo {text!r}; keys: ttft, itl, e2e (seconds)")
        try:
            limits[f"{key.strip()}_s"] = float(value)
        except ValueError:
            raise RigscopeError(f"invalid --slo {text!r}; use e.g. ttft=0.5,itl=0.05") from None
    return Slo(**limits)


@click.command("bench")
@click.option("--url", required=True, type=Url(), help="Server base URL, e.g. http://127.0.0.1:8080")
@click.option("--model", required=True, help="Model name the server knows.")
@click.option("--api", type=click.Choice(["openai", "openai-completions", "ollama",
                                          "ollama-chat", "llamacpp", "sglang"]),
              help="API (default: detect; OpenAI-compatible servers, TensorRT-LLM's "
                   "trtllm-serve among them, are 'openai'; sglang is SGLang's /generate).")
@click.option("--concurrency", help="Levels of concurrent requests, e.g. 1,2,4,8.")
@click.option("--rate", help="Open-loop levels in requests/s, e.g. 2,5 (instead of --concurrency).")
@click.option("--poisson", is_flag=True, help="Poisson arrivals at --rate (default: constant).")
@click.option("--requests", type=click.IntRange(min=1),
              help="Measured requests per level (default 16; a replayed trace: all of it).")
@click.option("--duration", type=Number(0, 86400, low_open=True),
              help="Seconds per level (instead of --requests).")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Requests per level excluded from results.")
@click.option("--prompt-tokens", type=TokenList(), default="512", show_default=True,
              help="Prompt tokens (with --sweep a list, e.g. 128,512,2k).")
@click.option("--output-tokens", type=TokenList(), default="128", show_default=True,
              help="Output tokens (with --sweep a list, e.g. 64,256).")
@click.option("--depth", type=TokenList(low=0), help="Context depths, e.g. 0,4k,16k: each "
              "level's prompts carry that many tokens of their own context before the "
              "measured part (as llama-bench -d; no cache hit), for each concurrency.")
@click.option("--shared-prefix", type=Tokens(), help="Tokens of one text every prompt "
              "starts with (a RAG document, an agent's tool list): the server may cache it.")
@click.option("--sweep", is_flag=True, help="Levels over --concurrency (default 1,2,4,8,16) x "
              "--prompt-tokens x --output-tokens; with --slo a direction stops where a level "
              "misses it.")
@click.option("--trace-speed", type=Number(0, 1000, low_open=True), default=1.0,
              show_default=True, help="Replay a trace workload this many times faster.")
@click.option("--workload", default="synthetic", show_default=True,
              help="synthetic, chat, rag, code, agent, or a .jsonl file (prompts, or a "
                   "Mooncake trace: timestamp, input_length, output_length, hash_ids; "
                   "replayed at its timestamps unless --concurrency or --rate is given).")
@click.option("--timeout", type=Number(0, 86400, low_open=True), default=600, show_default=True,
              help="Seconds a request may take.")
@click.option("--slo", help="e.g. ttft=0.5,itl=0.05: goodput; without --concurrency, search "
              "the highest concurrency that meets it (p90).")
@click.option("--no-fixed-length", is_flag=True, help="Let the server stop at EOS.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Local processes generating the load (for servers one process cannot "
                   "saturate); the schedule stays global, results land in one store.")
@click.option("--ray", "ray_address", metavar="ADDRESS",
              help="Run the --workers on this Ray cluster (e.g. 10.0.0.5:6379, or 'auto' "
                   "inside one) instead of local processes.")
@click.option("--no-telemetry", is_flag=True, help="Do not sample the server's /metrics, "
              "/slots or /api/ps, nor the local GPUs (NVML).")
@click.option("--api-key-env", metavar="VAR", help="Environment variable holding the API key "
              "(default: RIGSCOPE_API_KEY, then OPENAI_API_KEY).")
@click.option("--hardware", metavar="RIG", help="What the server runs on (rtx-4090, 2xrtx-3090, "
              "cpu), stored with the run for `rigscope calibrate`.")
@click.option("--model-spec", metavar="MODEL", help="The served model as rigscope knows it "
              "(catalog id, config.json, .gguf), for `rigscope calibrate`.")
@click.option("--quant", help="Its quantization (default: the GGUF's own).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--label", help="A name for this run.")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def bench_cmd(url: str, model: str, api: str | None, concurrency: str | None, rate: str | None,
              poisson: bool, requests: int | None, duration: float | None, warmup: int,
              prompt_tokens: tuple[int, ...], output_tokens: tuple[int, ...],
              depth: tuple[int, ...] | None, shared_prefix: int | None, sweep: bool,
              trace_speed: float, workload: str, timeout: float,
              slo: str | None, no_fixed_length: bool, workers: int,
              ray_address: str | None, no_telemetry: bool,
              api_key_env: str | None,
              hardware: str | None, model_spec: str | None, quant: str | None, seed: int,
              label: str | None, db: str | None, as_json: bool) -> None:
    """Benchmark a running server (vLLM, llama.cpp, Ollama, any OpenAI-compatible API)."""
    import os

    from rigscope.bench.config import BenchConfig, api_key_from_env, make_workload
    from rigscope.bench.run import run_bench
    from rigscope.cli.options import echo_json, open_store
    from rigscope.errors import RigscopeError

    if concurrency and rate:
        raise RigscopeError("give --concurrency or --rate, not both")
    if not sweep and (len(prompt_tokens) > 1 or len(output_tokens) > 1):
        raise RigscopeError("several --prompt-tokens or --output-tokens need --sweep")
    if sweep and (rate or depth):
        raise RigscopeError("--sweep runs closed-loop levels at --concurrency; "
                            "leave out --rate and --depth")
    limits = parse_slo(slo)
    levels = tuple(int(c) for c in _floats(concurrency, "--concurrency", integer=True))
    if not levels:
        levels = (1, 2, 4, 8, 16) if sweep else (0,) if limits and not rate else (1,)
    replay = not (concurrency or rate or sweep) and workload.endswith(".jsonl") and \
        make_workload(BenchConfig(url=url, model=model, workload=workload)).trace
    if requests is None and not (duration or replay):
        requests = 16
    key = os.environ.get(api_key_env) if api_key_env else api_key_from_env()
    if api_key_env and not key:
        raise RigscopeError(f"environment variable {api_key_env} is not set")
    config = BenchConfig(
        url=url, model=model, api=api, concurrency=levels, rates=_floats(rate, "--rate"),
        poisson=poisson, requests=None if duration else requests, duration=duration,
        warmup=warmup, prompt_tokens=prompt_tokens[0], output_tokens=output_tokens[0],
        depths=depth or (), shared_prefix=shared_prefix or 0, sweep=sweep,
        prompt_sweep=prompt_tokens if sweep else (), output_sweep=output_tokens if sweep else (),
        replay=bool(replay), trace_speed=trace_speed,
        workload=workload, timeout=timeout, label=label, slo=limits, seed=seed,
        fixed_length=not no_fixed_length, telemetry=not no_telemetry, workers=workers,
        ray=ray_address,
        api_key=key,
        hardware=hardware,
        model_spec=model_spec, quant=quant,
    )
    from rigscope.cli.bench_render import LiveProgress, print_run
    from rigscope.contract import bench_json

    store = open_store(db)
    with LiveProgress() as progress:
        run_id, completed = run_bench(config, store, progress.callbacks())
    run = store.run(run_id)
    if as_json:
        echo_json(bench_json(run))
    else:
        print_run(run)
    if not completed:
        click.echo("interrupted: the requests that finished are stored", err=True)
        raise SystemExit(130)
