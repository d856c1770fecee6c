"""The speed model's fitted constants: data with a physical reading, kept apart from the
arithmetic that uses them (estimator/speed.py). benchmarks/fit_speed.py fits them.

Every efficiency is a share, in (0, 1], of a spec figure of the device: its memory
bandwidth, its dense FP16 (or INT8) tensor peak. A prediction therefore never reads weights
faster than the memory allows (tests/test_speed_physics.py checks that over the catalog).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rigscope.specs import Accelerator
from rigscope.units import GB

# Kernel family of a ggml weight type: how the mat-vec kernels decode it.
_FAMILY = {"F32": "f16", "F16": "f16", "BF16": "f16", "Q8_0": "q8", "Q4_0": "legacy",
           "Q4_1": "legacy", "Q5_0": "legacy", "Q5_1": "legacy", "IQ4_NL": "iq",
           "MXFP4": "legacy"}
# families whose prefill mat-muls run on integer dot products (llama.cpp's MMQ on CUDA, the
# q8_K activations on the CPU): their peak is the device's INT8 rate, twice its FP16 rate
INT8_FAMILIES = frozenset({"q8", "legacy", "kquant", "iq"})
INT8_BACKENDS = frozenset({"cuda", "cpu"})


# Dense tensor FLOP per clock per SM (CU, Apple GPU core) at the accumulate precision of the
# catalog's fp16_tflops, by architecture: spec TFLOPS over this is SM x GHz, the rate at
# which a GPU issues instructions (its SM count times its clock). Whitepaper figures: V100 80
# SMs x 1.37 GHz x 1024 = 112 TFLOPS; A100 (GA100) 108 x 1.41 x 2048 = 312; RTX 3090 (GA102)
# 82 x 1.70 x 1024 = 142; RTX 4090 128 x 2.52 x 1024 = 330; H100 SXM 132 x 1.83 x 4096 = 989;
# RTX 5090 170 x 2.41 x 1024 = 419; RX 7900 XTX 96 x 2.5 x 512 = 123; RX 6900 XT 80 x 2.25 x
# 256 = 46; MI300X 304 x 2.1 x 2048 = 1307; Apple M1 (per core) 1.28 GHz x 256 = 0.33.
FLOP_PER_CLOCK = {"volta": 1024, "turing": 1024, "ampere": 1024, "ampere-hbm": 2048,
                  "ada": 1024, "hopper": 4096, "blackwell": 1024, "rdna2": 256, "rdna3": 512,
                  "rdna4": 1024, "cdna3": 2048, "apple": 256}


def issue_units(dev: Accelerator) -> float:
    """SM x GHz (CU x GHz, Apple GPU cores x GHz): how fast the device issues instructions."""
    arch = "apple" if dev.arch.startswith("apple") else dev.arch
    if arch == "ampere" and dev.hw_class == "hbm":
        arch = "ampere-hbm"  # GA100 (A100, A30): twice GA10x's tensor rate per SM
    rate = FLOP_PER_CLOCK.get(arch)
    return (dev.fp16_tflops or 0) * 1e3 / rate if rate else 0.0


ERAS = ("2023", "2024", "2025+")
LATEST_ERA = "2025+"


def _version(version: str | int) -> tuple[int, bool]:
    """(number, is a year) of a llama.cpp build number (b2800, 2800) or a year (2024)."""
    text = str(version).strip().lower().removeprefix("b")
    if not text.isdigit():
        raise ValueError(f"engine version {version!r}: give a llama.cpp build (b2800) or a year")
    n = int(text)
    return n, 2020 <= n <= 2100


def era_of(version: str | int | None) -> str:
    """The era of a llama.cpp build: its number (b2800, 2800) or a year (2024); none: today."""
    if version is None or version == "":
        return LATEST_ERA
    n, year = _version(version)
    if year:
        return "2023" if n <= 2023 else "2024" if n == 2024 else LATEST_ERA
    # builds: b1700 was tagged in January 2024, b4400 in January 2025
    return "2023" if n < 1700 else "2024" if n < 4400 else LATEST_ERA


FLASH_DEFAULT_BUILD = 6200  # "-fa auto" by default since about b6200 (August 2025)


def flash_attn_default(version: str | int | None) -> bool:
    """Whether a build of this version turns flash attention on by default."""
    if version is None or version == "":
        return True
    n, year = _version(version)
    return n >= 2026 if year else n >= FLASH_DEFAULT_BUILD


def kernel_family(ggml_type: str) -> str:
    """f16, q8, legacy (Q4_0..Q5_1, MXFP4), kquant (Q2_K..Q6_K) or iq (IQ*)."""
    if ggml_type in _FAMILY:
        return _FAMILY[ggml_type]
    if ggml_type.endswith("_K"):
        return "kquant"
    return "iq" if ggml_type.startswith(("IQ", "TQ")) else "legacy"


@dataclass(frozen=True)
class SpeedParams:
    """Efficiency constants of the speed model (fitted by benchmarks/fit_speed.py)."""

    # Share of spec memory bandwidth that weight reads reach, by backend and memory class.
    bw_eff: dict[str, float]
    # Bytes of weights a mat-vec kernel family consumes per SM per GHz (GB/s per SM x GHz,
    # issue_units): its loads, dequantization and FMAs take instruction slots. Weight reads
    # take bytes over the memory term plus bytes over this one, so a part with much memory
    # bandwidth but few SMs (A100, H100) reads less of its spec than a GeForce card.
    issue_gbs: dict[str, float]
    # How the two limits combine: time = (memory time^k + issue time^k)^(1/k); 1 adds them
    # (no overlap), large k takes the larger (full overlap).
    overlap: float
    # Apple Ultra chips (two dies joined by UltraFusion): the share of the combined memory
    # bandwidth one GPU reaches.
    apple_2die: float
    # Share of spec bandwidth attention reaches reading the KV cache, by backend, with flash
    # attention ("cuda:fa") and without ("cuda").
    kv_eff: dict[str, float]
    # Fixed cost per layer per token (kernel launches, synchronisation), seconds, by backend.
    layer_s: dict[str, float]
    # Extra cost per MoE layer per token: routing (softmax, top-k) and the indirect mat-vecs.
    moe_layer_s: float
    # Hand-off between two layer-split devices per token (PCIe round trip), seconds.
    hop_s: float
    # Share of the device's dense tensor peak (INT8 for integer-kernel families, else FP16)
    # that prefill mat-muls reach, by backend and kernel family.
    pp_eff: dict[str, float]
    # Fixed cost per layer per prefill ubatch (kernel launches, synchronisation), seconds,
    # by backend: it dominates small models' prompts.
    pp_layer_s: dict[str, float]
    # Share of the FP16 peak that prefill attention reaches, with and without flash attention.
    attn_eff: dict[str, float]
    # Share of the listed Hopper tensor peak reachable without its wgmma instructions, which
    # llama.cpp's kernels do not issue (the listed peak assumes them).
    hopper_peak: float
    # Expert mat-muls of a prefill batch: tokens per expert at which they run as efficiently
    # as a dense mat-mul (kernel tiles hold this many rows; fewer leave the tile part
    # empty), by backend.
    moe_tile: dict[str, float]
    # vLLM (tensor parallel): one ring step of an all-reduce between GPUs over PCIe, and the
    # per-layer cost with CUDA graphs.
    allreduce_step_s: float
    vllm_layer_s: float
    # llama.cpp builds of earlier years, as a share of today's speed: {"2023": (decode,
    # prefill), "2024": ...}; the latest era ("2025+") is 1
    eras: dict[str, tuple[float, float]]
    # Relative error bands (90th percentile of cross-validated residuals) by kind and
    # category ("decode:cuda:gddr"); "decode" and "prefill" cover categories without one.
    bands: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def lookup(table: dict[str, float], dev: Accelerator, suffix: str, default: float
               ) -> float:
        """table[backend + suffix], the backend as the device's speed key (vulkan-cuda),
        else as its plain backend, else `default`."""
        for key in (dev.speed_key, dev.backend):
            if key + suffix in table:
                return table[key + suffix]
        return default

    def memory_bandwidth(self, dev: Accelerator) -> float:
        """Bytes/s the memory delivers to weight reads: spec x efficiency."""
        spec = (dev.bandwidth_gbs or 0) * GB
        if dev.hw_class == "unified-2die":
            spec *= self.apple_2die
        eff = self.lookup(self.bw_eff, dev, f":{dev.hw_class.removesuffix('-2die')}",
                          self.lookup(self.bw_eff, dev, "", 0.6))
        return spec * eff

    def issue_bandwidth(self, dev: Accelerator, family: str) -> float:
        """Bytes/s the SMs can consume with this kernel family (inf where not modelled)."""
        units = issue_units(dev)
        rate = self.lookup(self.issue_gbs, dev, f":{family}", 0.0)
        return units * rate * GB if units and rate else math.inf

    def bandwidth(self, dev: Accelerator, family: str) -> float:
        """Effective bytes/s for weight reads with this kernel family: the memory and the
        instruction issue, partly overlapped (never above either)."""
        mem, issue = self.memory_bandwidth(dev), self.issue_bandwidth(dev, family)
        if mem <= 0:
            return 0.0
        k = self.overlap
        return float((mem ** -k + issue ** -k) ** (-1 / k))

    def kv_bandwidth(self, dev: Accelerator, flash_attn: bool) -> float:
        return (dev.bandwidth_gbs or 0) * GB * self.lookup(
            self.kv_eff, dev, ":fa" if flash_attn else "", 0.3)

    def peak(self, dev: Accelerator, family: str) -> float:
        """The spec FLOP/s prefill mat-muls of this family run against."""
        peak = (dev.fp16_tflops or 0) * 1e12
        if dev.arch == "hopper":
            peak *= self.hopper_peak
        if family in INT8_FAMILIES and dev.backend in INT8_BACKENDS:
            peak *= 2
        return peak

    def flops(self, dev: Accelerator, family: str) -> float:
        """Effective FLOP/s of prefill mat-muls."""
        eff = self.lookup(self.pp_eff, dev, f":{family}", self.lookup(self.pp_eff, dev, "", 0.3))
        return self.peak(dev, family) * eff

    def attention_flops(self, dev: Accelerator, flash_attn: bool) -> float:
        return self.peak(dev, "f16") * self.lookup(self.attn_eff, dev,
                                                   ":fa" if flash_attn else "", 0.1)

    def era_factor(self, era: str, kind: str) -> float:
        """Speed of a build of `era` relative to today's (decode or prefill)."""
        decode, prefill = self.eras.get(era, (1.0, 1.0))
        return decode if kind == "decode" else prefill

    def band(self, kind: str, dev: Accelerator) -> float:
        for key in (f"{kind}:{dev.speed_key}:{dev.hw_class}", f"{kind}:{dev.speed_key}",
                    f"{kind}:{dev.backend}:{dev.hw_class}", kind):
            if key in self.bands:
                return self.bands[key]
        return 0.3


# Fitted by benchmarks/fit_speed.py to 213 decode and 216 prefill llama-bench rows (CUDA,
# ROCm, Metal, CPU; builds of 2023-2026; benchmarks/data/published and own_measurements);
# rounded. Cross-validated with no GPU in both the fit and the scored fold: decode median
# 5.8%, 90th percentile 23%, 93% of rows within 30%; prefill median 14.5%. (ROCm's MoE
# tile has one row behind it and stays at a neutral 64.)
DEFAULT = SpeedParams(
    # GDDR and HBM cards read weights at ~75% of spec bandwidth where instruction issue does
    # not bind; Apple's unified memory at ~95%; LPDDR5X (DGX Spark) ~82%; the CPU the whole
    # of what all its cores read together (the probe's figure)
    bw_eff={"cuda:gddr": 0.767, "cuda:hbm": 0.742, "cuda:lpddr": 0.817, "rocm:gddr": 0.788,
            "rocm:hbm": 0.6, "metal:unified": 0.949, "cpu:ram": 1.0,
            # Vulkan per vendor (benchmarks/fit_backends.py; 19 tg rows of 16 GPUs): NVIDIA
            # reads 86% of spec, AMD 64% (its APUs' LPDDR5X 84%), Intel at the 0.95 bound
            # with a large cost per layer instead. SYCL (no rows): Vulkan-on-Intel's figures;
            # ROCm on an APU (no rows): Vulkan's on it
            "vulkan-cuda:gddr": 0.864, "vulkan-rocm:gddr": 0.64, "vulkan-rocm:lpddr": 0.842,
            "vulkan-sycl:gddr": 0.95, "sycl:gddr": 0.95, "rocm:lpddr": 0.842},
    # GB/s per SM x GHz: F16 (no dequantization) 6.9, K-quants 4.3, Q4_0/Q8_0 5.6 on CUDA:
    # an A100 (152 SM x GHz) reads F16 at ~1 TB/s of its 1.9, an RTX 3090 (139) is bound by
    # its memory. Apple GPU cores ~12; ROCm's rows never bind on issue (large values)
    issue_gbs={"cuda:f16": 6.89, "cuda:iq": 5.55, "cuda:kquant": 4.35, "cuda:legacy": 5.65,
               "cuda:q8": 5.55, "metal:f16": 11.9, "metal:kquant": 11.5, "metal:legacy": 11.2,
               "metal:q8": 11.9, "rocm:kquant": 52.3, "rocm:legacy": 52.3, "rocm:q8": 52.3},
    overlap=5.08,  # the two limits mostly overlap: close to the larger of the two times
    apple_2die=0.836,  # an Ultra's GPU reaches 84% of the two dies' combined bandwidth
    # attention reading the cache: ~89% of spec with flash attention, ~11% without (F32
    # scores and softmax written out and read back)
    kv_eff={"cuda": 0.113, "cuda:fa": 0.889, "rocm": 0.18, "rocm:fa": 0.895,
            "metal": 0.113, "metal:fa": 0.898, "cpu": 0.3, "cpu:fa": 0.104},
    # per layer per token: CUDA graphs keep launches at ~12 us; Metal's command buffers
    # ~140 us; the CPU's thread barriers ~64 us (fitted from two SmolLM2 sizes here)
    layer_s={"cuda": 11.8e-6, "rocm": 84.9e-6, "metal": 141e-6, "cpu": 63.8e-6,
             "vulkan-cuda": 37.9e-6, "vulkan-rocm": 25.7e-6, "vulkan-sycl": 287e-6,
             "sycl": 287e-6},
    moe_layer_s=53.4e-6,  # router softmax, top-k and the indirect mat-vec launches
    hop_s=277e-6,  # one hand-off between layer-split GPUs (activations over PCIe)
    # prefill mat-muls: CUDA F16 (cuBLAS) at 42% of the FP16 peak, quantized MMQ at 18-25%
    # of the INT8 peak; Metal at 83-98% of its FP16 rate; the CPU 36-51% of twice its F32
    # probe (integer dot products)
    pp_eff={"cuda:f16": 0.415, "cuda:kquant": 0.216, "cuda:legacy": 0.252, "cuda:q8": 0.182,
            "cuda": 0.2, "metal:f16": 0.921, "metal:kquant": 0.978, "metal:legacy": 0.826,
            "metal:q8": 0.834, "metal": 0.8, "rocm": 0.464, "cpu:legacy": 0.365,
            "cpu:q8": 0.537, "cpu": 0.34,
            # Vulkan per vendor (21 pp rows of 16 GPUs): NVIDIA 43% of the tensor peak (its
            # cooperative-matrix path), AMD 24%, Intel 8%; SYCL: as Vulkan on Intel
            "vulkan-cuda": 0.428, "vulkan-rocm": 0.244, "vulkan-sycl": 0.0805, "sycl": 0.0805},
    pp_layer_s={"cuda": 0.0, "rocm": 703e-6, "metal": 444e-6, "cpu": 303e-6,
                "vulkan-cuda": 198e-6, "vulkan-rocm": 148e-6, "vulkan-sycl": 0.0, "sycl": 0.0},
    # prefill attention: 31-40% of the FP16 peak with flash attention, 4% without
    attn_eff={"cuda": 0.0442, "cuda:fa": 0.31, "rocm": 0.073, "rocm:fa": 0.35,
              "metal": 0.0431, "metal:fa": 0.396, "cpu": 0.2, "cpu:fa": 1.0},
    hopper_peak=0.499,  # llama.cpp without wgmma reaches half of Hopper's listed peak
    # expert mat-muls fill their tiles at this many tokens per expert
    moe_tile={"cuda": 258.0, "metal": 81.8, "rocm": 64.0, "cpu": 8.0},
    # From mlc-llm's vLLM rows (Llama-2-70B on 2 and 4 A100s over PCIe, 2023): 8 ms and 28 ms
    # of all-reduce per token = 160 all-reduces x 2(n-1) ring steps of ~27 us.
    allreduce_step_s=27e-6,
    vllm_layer_s=10e-6,
    # fitted at 1: at the same flash-attention setting the rows show no slower era (what
    # changed is the default: builds before b6200, August 2025, run without it)
    eras={"2023": (1.0, 1.0), "2024": (1.0, 1.0)},
    # 90th percentiles of the GPU-grouped cross-validated errors, by category
    bands={"decode": 0.23, "decode:cuda:gddr": 0.23, "decode:cuda:hbm": 0.41,
           "decode:cuda:lpddr": 0.19, "decode:metal:unified": 0.06,
           "decode:metal:unified-2die": 0.17, "decode:rocm:gddr": 0.47,
           "prefill": 0.7, "prefill:cpu:ram": 0.47, "prefill:cuda:gddr": 0.38,
           "prefill:cuda:hbm": 1.01, "prefill:cuda:lpddr": 1.59,
           "prefill:metal:unified": 0.09, "prefill:metal:unified-2die": 0.44,
           "prefill:rocm:gddr": 0.79,
           # Vulkan and SYCL: the leave-one-GPU-out 90th percentiles of fit_backends.py
           "decode:vulkan-cuda": 0.33, "decode:vulkan-rocm": 0.33, "decode:vulkan-sycl": 0.33,
           "prefill:vulkan-cuda": 0.86, "prefill:vulkan-rocm": 0.86,
           "prefill:vulkan-sycl": 0.86, "decode:sycl": 0.5, "prefill:sycl": 1.0},
)
