"""Decode and prefill speed of a placed model: a roofline with fitted efficiencies.

Decode (one token): every device reads its share of the active weights and of the KV cache;
layer-split devices run one after another, so their times add, plus a hand-off per device
boundary. Time per device = bytes / (spec bandwidth x efficiency) + a per-layer cost
(kernel launches and synchronisation). With several sequences the weights are read once per
step for all of them, until the step becomes compute-bound (roofline).

Prefill (a prompt of n tokens): 2 x active parameters x n FLOPs plus attention
(4 x heads x head_dim x n^2 / 2 per layer) over the device's tensor throughput x efficiency.
With several GPUs llama.cpp pipelines micro-batches of 512 tokens within a batch of 2048.

The efficiencies are per backend, memory class, architecture and kernel family, never per
named GPU. Their values come from benchmarks/fit_speed.py, which fits them to the
measurements in shared/data (llama-bench and Ollama figures, llama.cpp builds of 2023-2025)
and to this project's own CPU measurement; the comment beside each says what it means.
They describe llama.cpp builds of mid-2024 on CUDA (the calibration rows' majority) and late
2023 to 2025 on Metal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rigscope.specs import Accelerator, DeviceUse, MemoryEstimate

GB = 1e9

# Kernel family of a ggml weight type: how the mat-vec kernels decode it.
_FAMILY = {"F32": "f16", "F16": "f16", "BF16": "f16", "Q8_0": "q8", "Q4_0": "legacy",
           "Q4_1": "legacy", "Q5_0": "legacy", "Q5_1": "legacy", "IQ4_NL": "iq", "MXFP4": "legacy"}


def kernel_family(ggml_type: str) -> str:
    """f16, q8, legacy (Q4_0..Q5_1), kquant (Q2_K..Q6_K) or iq (IQ*)."""
    if ggml_type in _FAMILY:
        return _FAMILY[ggml_type]
    if ggml_type.endswith("_K"):
        return "kquant"
    return "iq" if ggml_type.startswith(("IQ", "TQ")) else "legacy"


@dataclass(frozen=True)
class SpeedParams:
    """Efficiency constants of the speed model (fitted by benchmarks/fit_speed.py)."""

    # Share of spec memory bandwidth the K-quant mat-vec kernels reach, by backend and memory
    # class. HBM parts reach a smaller share: at batch 1 llama.cpp's kernels are bound by
    # instruction issue and latency before they saturate 2-3 TB/s.
    bw_eff: dict[str, float]
    # Bandwidth multiplier of other kernel families relative to K-quants, by backend.
    family_bw: dict[str, float]
    # Share of spec bandwidth attention reaches when reading the KV cache, by backend.
    kv_eff: dict[str, float]
    # Fixed cost per layer per token (kernel launches, synchronisation), seconds, by backend.
    layer_s: dict[str, float]
    # Hand-off between two layer-split devices per token (PCIe round trip), seconds.
    hop_s: float
    # Share of the device's dense FP16 tensor peak that prefill mat-muls reach, by backend and
    # kernel family.
    pp_eff: dict[str, float]
    # Share of that peak the attention of prefill reaches (no flash attention in the
    # calibration builds: F32 scores and softmax), by backend.
    attn_eff: dict[str, float]
    # Share of the listed tensor peak reachable without Hopper's wgmma instructions, which
    # llama.cpp's kernels do not issue (the listed peak assumes them).
    hopper_peak: float
    # vLLM (tensor parallel): one ring step of an all-reduce between GPUs over PCIe, and the
    # per-layer cost with CUDA graphs.
    allreduce_step_s: float
    vllm_layer_s: float
    # Relative error band (median absolute residual of the fit), decode and prefill.
    decode_band: float
    prefill_band: float

    def bandwidth(self, dev: Accelerator, family: str) -> float:
        """Effective bytes/s for weight reads with this kernel family."""
        key = f"{dev.backend}:{dev.hw_class}"
        eff = self.bw_eff.get(key, self.bw_eff.get(dev.backend, 0.6))
        mult = self.family_bw.get(f"{dev.backend}:{family}", 1.0)
        return (dev.bandwidth_gbs or 0) * GB * eff * mult

    def flops(self, dev: Accelerator, family: str) -> float:
        """Effective FLOP/s of prefill mat-muls."""
        peak = (dev.fp16_tflops or 0) * 1e12
        if dev.arch == "hopper":
            peak *= self.hopper_peak
        eff = self.pp_eff.get(f"{dev.backend}:{family}", self.pp_eff.get(dev.backend, 0.3))
        return peak * eff


# Fitted by benchmarks/fit_speed.py on 215 llama.cpp rows (shared/data + own CPU measurement);
# rounded. Comments give the physical reading of each value.
DEFAULT = SpeedParams(
    bw_eff={
        "cuda:gddr": 0.86,  # GeForce/workstation GDDR6(X): K-quant mat-vec near 86% of spec
        "cuda:hbm": 0.42,  # A100/H100: small models leave most of 2-3 TB/s unused
        "rocm:gddr": 0.70, "rocm:hbm": 0.35,  # no ROCm rows: CUDA's, discounted (assumption)
        "metal:unified": 1.0,  # M-series single die: spec bandwidth, with a per-layer cost
        "metal:unified-2die": 0.87,  # Ultra (two dies): less of the combined bandwidth
        "cpu:ram": 1.08,  # relative to the one-core read probe; llama.cpp reads on all cores
    },
    family_bw={"cuda:f16": 1.40, "cuda:legacy": 0.94, "cuda:q8": 1.0, "cuda:iq": 0.9,
               "cuda:w4a16": 0.6,  # vLLM's AWQ/GPTQ kernels (2023 rows: ~60% of K-quant's)
               "metal:f16": 0.91, "metal:q8": 0.91, "metal:legacy": 0.89, "metal:iq": 0.8},
    kv_eff={"cuda": 0.18, "rocm": 0.18, "metal": 0.30, "cpu": 0.30},
    # per layer per token; on the CPU fitted from SmolLM2 at two sizes (Q4_1 and Q8_0), which
    # separates thread synchronisation from the bandwidth term: llama-bench of the portable
    # build here (OpenMP threads) shows none
    layer_s={"cuda": 48e-6, "rocm": 60e-6, "metal": 152e-6, "cpu": 0.0},
    hop_s=640e-6,
    pp_eff={"cuda:kquant": 0.32, "cuda:f16": 0.41, "cuda:legacy": 0.50, "cuda:q8": 0.45,
            "cuda:iq": 0.28, "metal:f16": 0.77, "metal:q8": 0.71, "metal:legacy": 0.70,
            "metal:kquant": 0.65, "metal:iq": 0.6, "rocm": 0.25,
            # CPU: relative to the F32 matmul probe; Q8_0's int8 dot products run faster
            "cpu": 0.68, "cpu:q8": 1.34},
    attn_eff={"cuda": 0.073, "rocm": 0.073, "metal": 0.2, "cpu": 0.2},
    hopper_peak=0.54,
    # From mlc-llm's vLLM rows (Llama-2-70B on 2 and 4 A100s over PCIe, 2023): 8 ms and 28 ms
    # of all-reduce per token = 160 all-reduces x 2(n-1) ring steps of ~27 us.
    allreduce_step_s=27e-6,
    vllm_layer_s=10e-6,
    # 90th percentile of the 5-fold cross-validated errors (benchmarks/fit_speed.py --cv):
    # decode 20.4%, prefill 9.5%; builds of different months differ more (prefill up to 40%).
    decode_band=0.20,
    prefill_band=0.10,
)


def pcie_gbs(dev: Accelerator) -> float:
    """Host-to-device copy rate, GB/s: ~80% of the link (PCIe 3: 0.985 GB/s per lane)."""
    m = re.match(r"(\d)\.0 x(\d+)", dev.pcie or "")
    if not m:
        return 0.0
    per_lane = {3: 0.985, 4: 1.969, 5: 3.938}.get(int(m.group(1)), 0.985)
    return per_lane * int(m.group(2)) * 0.8


@dataclass(frozen=True)
class Part:
    """One device's share of a step, with the accelerator that runs it."""

    use: DeviceUse
    dev: Accelerator


def parts(est: MemoryEstimate) -> list[Part]:
    """Devices that hold layers, in the order a token visits them (host RAM first)."""
    out = []
    if est.host.layers or (est.host.read_bytes and est.rig.devices):
        out.append(Part(est.host, est.rig.host))
    if est.rig.devices:
        out += [Part(u, d) for u, d in zip(est.devices, est.rig.devices, strict=True)
                if u.layers or u.read_bytes]
    else:  # CPU only
        out.append(Part(est.devices[0], est.rig.host))
    return out


_FORMAT_FAMILY = {"FP16": "f16", "BF16": "f16", "FP32": "f16", "FP8": "q8", "INT8": "q8",
                  "GPTQ-8": "q8", "AWQ": "w4a16", "GPTQ": "w4a16", "NF4": "w4a16",
                  "MLX-4BIT": "legacy", "MLX-8BIT": "q8"}


def weights_family(est: MemoryEstimate) -> str:
    """The kernel family that reads most of this estimate's weights."""
    if est.engine in ("llama.cpp", "ollama"):
        from rigscope.catalog import gguf_mixes

        mix = gguf_mixes().get(est.quant)
        return kernel_family(mix.base if mix else "F16")
    return _FORMAT_FAMILY.get(est.quant, "f16")


def kv_read_bytes(use: DeviceUse, context: float, window: int) -> float:
    """KV bytes a token reads on this device at `context` tokens of history."""
    swa_ctx = min(context, window) if window else context
    return use.kv_token_bytes * context + use.swa_token_bytes * swa_ctx


def allreduce_seconds(est: MemoryEstimate, p: SpeedParams) -> float:
    """Tensor parallelism: two all-reduces per layer, a ring of 2(n-1) steps each."""
    n = len(est.devices)
    return 2 * est.model.layers * 2 * (n - 1) * p.allreduce_step_s if n > 1 else 0.0


def decode_step_seconds(
    est: MemoryEstimate, context: float, batch: int = 1, p: SpeedParams = DEFAULT
) -> float:
    """Seconds for one decode step of `batch` sequences, each with `context` tokens before."""
    family = weights_family(est)
    window = est.model.sliding_window
    tensor_parallel = est.engine == "vllm"
    times = []
    for part in parts(est):
        bw = p.bandwidth(part.dev, family)
        kv_bw = (part.dev.bandwidth_gbs or 0) * GB * p.kv_eff.get(part.dev.backend, 0.3)
        if bw <= 0 or kv_bw <= 0:
            return math.inf
        mem_t = part.use.read_bytes / bw + batch * kv_read_bytes(part.use, context, window) / kv_bw
        flops = p.flops(part.dev, family)
        compute_t = 2 * part.use.params * batch / flops if flops > 0 else 0.0
        layer_s = p.vllm_layer_s if tensor_parallel else p.layer_s.get(part.dev.backend, 50e-6)
        times.append(max(mem_t, compute_t) + part.use.layers * layer_s)
    if tensor_parallel:  # the GPUs work at once on slices of every layer
        return max(times) + allreduce_seconds(est, p)
    return sum(times) + max(len(times) - 1, 0) * p.hop_s


def prefill_seconds(est: MemoryEstimate, n_tokens: int, p: SpeedParams = DEFAULT) -> float:
    """Seconds to process an n-token prompt (llama.cpp's ppN)."""
    if n_tokens <= 0:
        return 0.0
    family = weights_family(est)
    m = est.model
    ps = parts(est)
    gpu = est.rig.devices[0] if est.rig.devices and not est.rig.unified else None
    per_dev = []
    for part in ps:
        if part.dev.backend == "cpu" and gpu is not None and n_tokens >= 32:
            # llama.cpp runs big batches of CPU-held layers on the GPU, copying their
            # weights over PCIe once per 512-token ubatch
            copies = math.ceil(n_tokens / 512) * part.use.read_bytes / (pcie_gbs(gpu) * GB)
            per_dev.append(copies + 2 * part.use.params * n_tokens / p.flops(gpu, family))
            continue
        flops = p.flops(part.dev, family)
        attn = (part.dev.fp16_tflops or 0) * 1e12 * p.attn_eff.get(part.dev.backend, 0.1)
        if part.dev.arch == "hopper":
            attn *= p.hopper_peak
        if flops <= 0 or attn <= 0:
            return math.inf
        linear = 2 * part.use.params * n_tokens / flops
        attn_flops = 4 * m.heads * m.head_dim * part.use.layers * n_tokens**2 / 2
        per_dev.append(linear + attn_flops / attn)
    if est.engine == "vllm":
        return max(per_dev) + allreduce_seconds(est, p) * math.ceil(n_tokens / 512)
    serial = sum(per_dev)
    gpus = [x for x, part in zip(per_dev, ps, strict=True) if part.dev.backend != "cpu"]
    if len(gpus) > 1:
        # micro-batches of 512 pipelined through the GPUs within each logical batch of 2048
        u = max(1, min(4, math.ceil(n_tokens / 512)))
        serial += (sum(gpus) + (u - 1) * max(gpus)) / u - sum(gpus)
    return serial + max(len(ps) - 1, 0) * p.hop_s * math.ceil(n_tokens / 512)
