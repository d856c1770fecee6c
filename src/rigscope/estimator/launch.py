"""The command that starts the server an estimate describes, for its engine.

llama.cpp: llama-server with the context, layers, split and tensor overrides of the
placement (so the run matches the estimate with or without --fit); Ollama: its environment
and Modelfile parameters; vLLM, SGLang, TensorRT-LLM and mlx-lm: their flags.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from rigscope.specs import MemoryEstimate, Offload

DEFAULTS = Offload()  # llama-server's own -ub/-b: not repeated on the line

_REPO = re.compile(r"\b([A-Za-z0-9][\w.-]*/[\w.-]*[\w])\b")


@dataclass(frozen=True)
class Launch:
    engine: str
    command: str  # the line for the estimate's engine
    llama_server: str | None  # llama.cpp engines: llama-server's line
    ollama_env: dict[str, str] | None  # Ollama: its server's environment
    ollama_modelfile: tuple[str, ...] | None  # Ollama: PARAMETER lines
    notes: tuple[str, ...]


def model_file(est: MemoryEstimate) -> str:
    """The GGUF the estimate reads, else the name such a file usually has."""
    src = est.model.source
    m = re.search(r"\S+\.gguf\b", src)
    if m:
        return m.group(0)
    return f"{est.model.id}-{est.quant.name}.gguf"


def model_repo(est: MemoryEstimate) -> str:
    """The Hub repo the model came from, else its id."""
    m = _REPO.search(est.model.source)
    return m.group(1) if m and not m.group(1).endswith(".gguf") else est.model.id


def llama_server_args(est: MemoryEstimate) -> list[str]:
    req, fit = est.request, est.fit
    args = ["llama-server", "-m", model_file(est), "-c", str(req.context * req.batch)]
    if req.batch > 1:
        args += ["-np", str(req.batch)]
    if fit is not None:
        if est.rig.devices and fit.n_gpu_layers < est.model.layers + 1:
            args += ["-ngl", str(fit.n_gpu_layers)]
        if len(est.rig.devices) > 1:
            args += ["-ts", ",".join(map(str, fit.tensor_split))]
        if fit.override_tensors:
            args += ["-ot", ",".join(fit.override_tensors)]
    if req.offload.n_ubatch != DEFAULTS.n_ubatch:
        args += ["-ub", str(req.offload.n_ubatch)]
    if req.offload.n_batch != DEFAULTS.n_batch:
        args += ["-b", str(req.offload.n_batch)]
    args += ["-fa", "on" if req.flash_attn else "off"]
    if req.kv_type != "f16":
        args += ["-ctk", req.kv_type, "-ctv", req.kv_type]
    if not req.repack and not est.rig.devices:
        args.append("--no-repack")
    return args


def launch(est: MemoryEstimate) -> Launch:
    eng, req = est.engine, est.request
    notes: list[str] = []
    server = ollama_env = modelfile = None
    if eng.family == "llama.cpp":
        server = shlex.join(llama_server_args(est))
        command = server
        if eng.name == "ollama":
            fit = est.fit
            ollama_env = {"OLLAMA_CONTEXT_LENGTH": str(req.context),
                          "OLLAMA_FLASH_ATTENTION": "1" if req.flash_attn else "0"}
            if req.kv_type != "f16":
                ollama_env["OLLAMA_KV_CACHE_TYPE"] = req.kv_type
            if req.batch > 1:
                ollama_env["OLLAMA_NUM_PARALLEL"] = str(req.batch)
            modelfile = [f"PARAMETER num_ctx {req.context}"]
            if fit is not None and est.rig.devices and fit.n_gpu_layers < est.model.layers + 1:
                modelfile.append(f"PARAMETER num_gpu {fit.n_gpu_layers}")
            if fit is not None and fit.cpu_expert_layers:
                notes.append("Ollama takes no tensor overrides: run llama-server's line for "
                             "experts in system RAM")
            command = " ".join(f"{k}={v}" for k, v in ollama_env.items()) + \
                f" ollama serve  # then: ollama run {est.model.id}"
        elif eng.name == "llama-cpp-python":
            kw = [f"model_path={model_file(est)!r}", f"n_ctx={req.context * req.batch}"]
            if est.fit is not None and est.rig.devices:
                kw.append(f"n_gpu_layers={est.fit.n_gpu_layers}")
            kw.append(f"flash_attn={req.flash_attn}")
            command = f"llama_cpp.Llama({', '.join(kw)})"
            if est.fit is not None and est.fit.override_tensors:
                notes.append("llama-cpp-python's Llama takes no tensor overrides: "
                             "run llama-server's line for experts in system RAM")
    else:
        command = _hf_engine(est)
    return Launch(eng.name, command, server, ollama_env,
                  tuple(modelfile) if modelfile is not None else None, tuple(notes))


@dataclass(frozen=True)
class ServerFlags:
    """How a Hub-model server spells the settings an estimate carries (None: it has none)."""

    command: tuple[str, ...]  # up to the model, which follows
    context: str
    sequences: str
    tensor_parallel: str
    nodes: str | None
    memory_fraction: str
    fp8_kv: tuple[str, ...] | None  # the flag and value that ask for an FP8 KV cache


SERVERS = {
    "vllm": ServerFlags(("vllm", "serve"), "--max-model-len", "--max-num-seqs",
                        "--tensor-parallel-size", "--pipeline-parallel-size",
                        "--gpu-memory-utilization", ("--kv-cache-dtype", "fp8")),
    "sglang": ServerFlags(("python", "-m", "sglang.launch_server", "--model-path"),
                          "--context-length", "--max-running-requests", "--tp", "--nnodes",
                          "--mem-fraction-static", ("--kv-cache-dtype", "fp8_e5m2")),
    "tensorrt-llm": ServerFlags(("trtllm-serve",), "--max_seq_len", "--max_batch_size",
                                "--tp_size", None, "--kv_cache_free_gpu_memory_fraction",
                                None),
}


def _hf_engine(est: MemoryEstimate) -> str:
    eng, req, rig = est.engine, est.request, est.rig
    repo = model_repo(est)
    f = SERVERS.get(eng.name)
    if f is None:
        if eng.name == "mlx":
            return shlex.join(["mlx_lm.server", "--model", repo])
        return shlex.join(["transformers", "serve", "--force-model", repo])
    args = [*f.command, repo, f.context, str(req.context), f.sequences, str(req.batch)]
    tp = max(rig.per_node, 1)
    if tp > 1:
        args += [f.tensor_parallel, str(tp)]
    if rig.nodes > 1 and f.nodes:
        args += [f.nodes, str(rig.nodes)]
    if req.mem_fraction is not None:
        args += [f.memory_fraction, f"{req.mem_fraction:g}"]
    if req.kv_type == "fp8" and f.fp8_kv:
        args += list(f.fp8_kv)
    return shlex.join(args)
