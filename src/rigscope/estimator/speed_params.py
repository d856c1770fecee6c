"""The speed model's fitted efficiencies: data with a physical reading, kept apart from the
arithmetic that uses them (estimate/speed.py). benchmarks/fit_speed.py fits them."""

from __future__ import annotations

from dataclasses import dataclass

from rigscope.specs import Accelerator
from rigscope.units import GB

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
