"""Options shared by commands: the model's format and engine, the rig, the store."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rigscope.store import Store

F = Callable[..., Any]


class Number(click.ParamType):
    """A finite number in a range stated next to the option; errors are rigscope's one line."""

    name = "number"

    def __init__(self, low: float | None = None, high: float | None = None,
                 low_open: bool = False, integer: bool = False) -> None:
        self.low, self.high, self.low_open, self.integer = low, high, low_open, integer
        self.name = "integer" if integer else "number"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float | int:
        from rigscope import validate

        name = param.opts[0] if param and param.opts else self.name
        x = validate.number(value, name, low=self.low, high=self.high, low_open=self.low_open,
                            integer=self.integer)
        return int(x) if self.integer else x


class Tokens(click.ParamType):
    """A token count: 4096, 8k, 1m (at least `low`, at most validate.MAX_TOKENS)."""

    name = "tokens"

    def __init__(self, low: int = 1) -> None:
        self.low = low

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        from rigscope import validate

        return validate.tokens(value, param.opts[0] if param and param.opts else "tokens",
                               low=self.low)


class TokenList(click.ParamType):
    """Token counts separated by commas: 0,4k,16k (each at least `low`)."""

    name = "tokens"

    def __init__(self, low: int = 1) -> None:
        self.low = low

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[int, ...]:
        from rigscope import validate
        from rigscope.errors import RigscopeError

        if isinstance(value, tuple):
            return value
        name = param.opts[0] if param and param.opts else "tokens"
        parts = [p for p in str(value).split(",") if p.strip()]
        if not parts:
            raise RigscopeError(f"invalid {name} {value!r}; use e.g. 512 or 128,512,2k")
        return tuple(validate.tokens(p, name, low=self.low) for p in parts)


class Url(click.ParamType):
    name = "url"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        from rigscope import validate

        return validate.url(value, param.opts[0] if param and param.opts else "URL")

db_option = click.option("--db", type=click.Path(dir_okay=False),
                         help="SQLite file (default: runs.db in the data dir).")


def rig_options(f: F) -> F:
    f = click.option("--interconnect", type=click.Choice(["nvlink", "ib-400g", "eth-100g",
                                                          "eth-25g", "eth-10g"]),
                     help="Link between nodes (default ib-400g when --nodes > 1).")(f)
    f = click.option("--nodes", type=click.IntRange(1, 16), default=1, show_default=True,
                     help="Machines, each with the --gpu GPUs (vllm, sglang, tensorrt-llm: "
                          "tensor parallel in a node, pipeline parallel across).")(f)
    f = click.option("--cpu-isa", type=click.Choice(["none", "avx2", "avx512", "amx", "neon",
                                                     "neon-dotprod", "neon-i8mm"]),
                     help="CPU features of the llama.cpp build on a --cpu rig (decides which "
                          "weights it repacks; default: this machine's build, else avx2).")(f)
    f = click.option("--backend",
                     type=click.Choice(["cuda", "rocm", "vulkan", "sycl", "metal", "cpu"]),
                     help="The llama.cpp backend the GPUs run (default: the vendor's own: "
                          "cuda, rocm, metal, sycl); vulkan runs on any of them.")(f)
    f = click.option("--ram-bandwidth", type=Number(0, 100000, low_open=True), metavar="GBS",
                     help="System RAM bandwidth, GB/s (layers or experts held there run at "
                          "it; default: measured here, else the catalog's).")(f)
    f = click.option("--ram", metavar="SIZE",
                     help="Host RAM beside the GPUs (default: 64gb for catalog GPUs).")(f)
    f = click.option("--cpu", is_flag=False, flag_value="", default=None, metavar="[SIZE]",
                     help="CPU only, optionally with a RAM size (default: this machine's).")(f)
    f = click.option("--gpu", "gpus", multiple=True, metavar="ID",
                     help="GPU id, repeatable; 2xrtx-3090 for two; m3-max-40c:64gb for Apple.")(f)
    return f


def model_options(f: F) -> F:
    f = click.option("--outputs", type=click.Choice(["sequences", "ubatch"]), default=None,
                     help="llama.cpp logits reserved in the compute buffer: one row per "
                          "sequence (llama-server, 2026 builds; the default) or a whole "
                          "ubatch (llama-bench, llama-cli, older builds; the default for "
                          "--engine llama-cpp-python).")(f)
    f = click.option("--repack", type=click.Choice(["on", "off"]), default="on",
                     show_default=True,
                     help="llama.cpp on the CPU: repack weights as the build does (off: "
                          "--no-repack or GGML_CPU_REPACK=OFF).")(f)
    f = click.option("--engine-version", default=None, metavar="BUILD",
                     help="the llama.cpp build (b2800) or year the prediction describes "
                          "(default: today's; builds before b6200 run without flash "
                          "attention by default); for vLLM its version (0.7.1: engine V0, "
                          "which profiles the whole max-model-len).")(f)
    f = click.option("--flash-attn", type=click.Choice(["on", "off"]), default=None,
                     help="llama.cpp flash attention (default on, as llama.cpp's auto; off "
                          "for an --engine-version before b6200).")(f)
    f = click.option("--kv-type", default="f16", show_default=True,
                     help="KV cache type: f16, bf16, f32, q8_0, q4_0 (llama.cpp), fp8 (vLLM).")(f)
    f = click.option("--mem-fraction", type=Number(0, 1, low_open=True),
                     help="vLLM: --gpu-memory-utilization (0.9); SGLang: "
                          "--mem-fraction-static (0.8-0.88 by GPU memory); TensorRT-LLM: "
                          "kv_cache_free_gpu_mem_fraction (0.9).")(f)
    f = click.option("--engine", default="llama.cpp", show_default=True,
                     help="llama.cpp, ollama, llama-cpp-python, vllm, sglang, tensorrt-llm, "
                          "transformers, mlx.")(f)
    f = click.option("--quant", default=None,
                     help="Q4_K_M, Q8_0, F16, ... or AWQ, GPTQ, FP8, NF4, MLX-4BIT "
                          "(default: the GGUF's own, else the engine's usual).")(f)
    return f


def offload_options(f: F) -> F:
    """llama.cpp's placement flags, named as llama-server names them."""
    f = click.option("--batch-size", "batch_size", type=click.IntRange(1, 2**20),
                     default=2048, show_default=True,
                     help="llama.cpp's logical batch (-b), which caps --ubatch.")(f)
    f = click.option("--ubatch", "--ubatch-size", "-ub", "ubatch",
                     type=click.IntRange(1, 2**20), default=512, show_default=True,
                     help="llama.cpp's physical batch (-ub): compute buffers and prefill "
                          "steps (with experts in RAM, the weights copied per step).")(f)
    f = click.option("--override-tensor", "-ot", "override_tensor", multiple=True,
                     metavar="PATTERN=BUFFER",
                     help="Tensors whose name matches the regex go to BUFFER (CPU, CUDA0, "
                          "...); repeatable or comma-separated, first match wins.")(f)
    f = click.option("--cpu-moe", is_flag=True, default=False,
                     help="Every layer's expert tensors in system RAM.")(f)
    f = click.option("--n-cpu-moe", type=click.IntRange(0, 100000), default=0, metavar="N",
                     help="Expert tensors of the first N layers in system RAM.")(f)
    f = click.option("--tensor-split", "-ts", "tensor_split", metavar="A,B,...",
                     help="Layers per GPU in these proportions (default: by free memory).")(f)
    f = click.option("--n-gpu-layers", "-ngl", "n_gpu_layers", metavar="N|auto|all",
                     help="Layers on the GPUs, counted from the last (default auto: all, "
                          "unless --fit moves some).")(f)
    f = click.option("--fit-ctx", type=click.IntRange(1, 2**24), default=4096, show_default=True,
                     help="The least context --fit reduces to when no --context is given.")(f)
    f = click.option("--fit-target", type=click.IntRange(0, 2**24), default=1024,
                     show_default=True, metavar="MIB",
                     help="Memory --fit leaves free on each GPU.")(f)
    f = click.option("--fit", type=click.Choice(["on", "off"]), default="on",
                     show_default=True,
                     help="llama.cpp's --fit: context, then experts (MoE) or layers moved to "
                          "system RAM until each GPU keeps --fit-target free; off: every layer "
                          "on the GPUs unless -ngl/-ot say otherwise.")(f)
    return f


def open_store(db: str | None) -> Store:
    from pathlib import Path

    from rigscope.store import Store

    return Store(Path(db) if db else None)


def echo_json(doc: object) -> None:
    import json

    click.echo(json.dumps(doc, indent=2))
