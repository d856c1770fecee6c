"""The inference engines rigscope models: whose memory rules apply, where each runs, what it
loads by default. The one place that decides which engine runs on which backend."""

from __future__ import annotations

from rigscope.errors import RigscopeError, unknown
from rigscope.specs import Engine, Rig

_ALL = frozenset({"cpu", "cuda", "rocm", "metal", "vulkan", "sycl"})
ENGINES: dict[str, Engine] = {e.name: e for e in (
    Engine("llama.cpp", "llama.cpp", _ALL, "Q4_K_M",
           "llama.cpp (llama-server): GGUF files, layer split over GPUs, spills to RAM"),
    Engine("ollama", "llama.cpp", _ALL, "Q4_K_M", "Ollama: runs llama.cpp"),
    Engine("llama-cpp-python", "llama.cpp", _ALL, "Q4_K_M",
           "llama-cpp-python's server: runs llama.cpp, one request at a time"),
    Engine("vllm", "vllm", frozenset({"cuda", "rocm"}), "BF16",
           "vLLM: tensor parallel over GPUs, paged KV cache"),
    # the same weight formats and tensor parallelism as vLLM (family "vllm"); each sizes
    # its KV pool by its own rule (estimator/paged.py)
    Engine("sglang", "vllm", frozenset({"cuda", "rocm"}), "BF16",
           "SGLang: tensor parallel over GPUs, a token pool with a radix (prefix) cache"),
    Engine("tensorrt-llm", "vllm", frozenset({"cuda"}), "BF16",
           "TensorRT-LLM (trtllm-serve): tensor parallel over GPUs, paged KV blocks"),
    Engine("transformers", "transformers", frozenset({"cpu", "cuda", "rocm"}), "BF16",
           "Hugging Face transformers + accelerate (device_map='auto')"),
    Engine("mlx", "mlx", frozenset({"metal"}), "MLX-4BIT", "mlx-lm on Apple silicon"),
)}


def get_engine(name: str | Engine) -> Engine:
    """An engine by name (case-insensitive); an unknown one is an error naming the valid."""
    if isinstance(name, Engine):
        return name
    e = ENGINES.get(name.lower())
    if e is None:
        raise unknown("engine", name, ENGINES)
    return e


def rig_backend(rig: Rig) -> str:
    return rig.devices[0].backend if rig.devices else "cpu"


def why_not(e: Engine, rig: Rig) -> str | None:
    """Why `e` cannot run on `rig` at all (None: it can)."""
    backend = rig_backend(rig)
    if backend in e.backends:
        if e.family == "vllm" and len(rig.devices) > 1 and rig.links == "x1":
            return (f"{e.name} splits every layer across the GPUs (tensor parallel): over x1 "
                    "risers it collapses (8x MI50 on vLLM: 6-7 tok/s)")
        return None
    need = " or ".join(sorted(e.backends))
    return f"--engine {e.name} needs {need} devices; this rig has {backend}"


def require(e: Engine, rig: Rig) -> None:
    why = why_not(e, rig)
    if why is not None:
        raise RigscopeError(why)
