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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from rigscope.errors import RigscopeError, unknown
from rigscope.estimator.serving import server_for
from rigscope.estimator.speed_params import (
    DEFAULT,
    LATEST_ERA,
    SpeedParams,
    era_of,
    kernel_family,
)
from rigscope.specs import (
    INTERCONNECTS,
    Accelerator,
    DeviceUse,
    MemoryEstimate,
    ModelSpec,
    SpeedEstimate,
)
from rigscope.units import GB, format_bytes


def pcie_gbs(dev: Accelerator) -> float:
    """Host-to-device copy rate, GB/s: ~80% of the link (PCIe 3: 0.985 GB/s per lane)."""
    m = re.match(r"(\d)\.0 x(\d+)", dev.pcie or "")
    if not m:
        return 0.0
    per_lane = {3: 0.985, 4: 1.969, 5: 3.938}.get(int(m.group(1)), 0.985)
    return per_lane * int(m.group(2)) * 0.8


# GB/s between GPUs by the rig's link class (one direction, spec x 80% as pcie_gbs): PCIe 4.0
# x16 and x8; PCIe 3.0 x1 through the USB risers of a mining board.
LINK_GBS = {"x16": 31.5 * 0.8, "x8/x8": 15.75 * 0.8, "x1": 0.985 * 0.8}


def node_hops(est: MemoryEstimate, tokens: int) -> float:
    """Pipeline parallelism across nodes: each stage hands `tokens` tokens' activations
    (BF16, hidden wide) to the next over the interconnect, a latency plus the transfer."""
    if est.rig.nodes < 2 or est.rig.interconnect is None:
        return 0.0
    gbs, latency = INTERCONNECTS[est.rig.interconnect]
    return (est.rig.nodes - 1) * (latency + tokens * est.model.hidden * 2 / (gbs * GB))


def handoff_seconds(est: MemoryEstimate, tokens: int) -> float:
    """Layer split: the activations of `tokens` tokens (f32, hidden wide) cross each link
    between consecutive GPUs. Counted only when the rig states its links."""
    n = len(est.rig.devices)
    if n < 2 or est.rig.links not in LINK_GBS or est.engine.family == "vllm":
        return 0.0
    return (n - 1) * tokens * est.model.hidden * 4 / (LINK_GBS[est.rig.links] * GB)


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
    if est.quant.kind == "gguf":
        return kernel_family(est.quant.base or "F16")
    return _FORMAT_FAMILY.get(est.quant.name, "f16")


def measured_kernel(dev: Accelerator, est: MemoryEstimate) -> tuple[float, float] | None:
    """(decode bytes/s, prefill FLOP/s) of this CPU's llama.cpp kernels for the estimate's
    main weight type, where `rigscope system` measured them with the build here."""
    if dev.engine is None or est.quant.kind != "gguf":
        return None
    return dev.engine.kernel(est.quant.base or "F16")


def prompt_products(use: DeviceUse, n_tokens: int) -> float:
    """Weights an n-token prompt multiplies on this device, as llama.cpp computes a prompt:
    every layer's for every token, the LM head's for the last token only."""
    return (use.params - use.output_params) * n_tokens + use.output_params


def layer_seconds(dev: Accelerator, p: SpeedParams) -> float:
    """Fixed cost per layer of a decode token: measured on this CPU, else the backend's."""
    return dev.engine.layer_s if dev.engine is not None else p.lookup(p.layer_s, dev, "", 50e-6)


def kv_read_bytes(use: DeviceUse, context: float, window: int) -> float:
    """KV bytes a token reads on this device at `context` tokens of history."""
    swa_ctx = min(context, window) if window else context
    return use.kv_token_bytes * context + use.swa_token_bytes * swa_ctx


def weight_read_bytes(use: DeviceUse, est: MemoryEstimate, batch: int) -> float:
    """Weight bytes one decode step reads here. MoE: each token routes to `used` of the
    `experts`; a batch of tokens reads every expert at least one of them chose (expected
    share 1 - (1 - used/experts)^batch), so a batch costs more weight traffic than a token."""
    moe = est.model.architecture.moe
    if moe is None or not use.routed_bytes:
        return use.read_bytes
    one = use.routed_bytes * moe.used / moe.experts
    covered = 1 - (1 - moe.used / moe.experts) ** max(batch, 1)
    return use.read_bytes - one + use.routed_bytes * covered


def expert_active_params(use: DeviceUse, est: MemoryEstimate) -> float:
    """The routed-expert weights one token multiplies on this device."""
    moe = est.model.architecture.moe
    return use.routed_params * moe.used / moe.experts if moe and use.routed_params else 0.0


def moe_efficiency(est: MemoryEstimate, ubatch: int, backend: str, p: SpeedParams) -> float:
    """How full the expert mat-muls' tiles are in a prefill ubatch: each expert sees
    ubatch x used / experts tokens; below the backend's tile height the rest of a tile is
    computed for nothing."""
    moe = est.model.architecture.moe
    if moe is None:
        return 1.0
    per_expert = ubatch * moe.used / moe.experts
    return min(1.0, per_expert / p.moe_tile.get(backend, 64.0))


def allreduce_seconds(est: MemoryEstimate, p: SpeedParams) -> float:
    """Tensor parallelism: two all-reduces per layer, a ring of 2(n-1) steps each."""
    n = len(est.devices)
    return 2 * est.model.layers * 2 * (n - 1) * p.allreduce_step_s if n > 1 else 0.0


@dataclass(frozen=True)
class Step:
    """One decode step: its seconds, and the seconds the memory alone would need at spec
    bandwidth (their ratio is how close the prediction is to the physical limit)."""

    seconds: float
    roofline_seconds: float


def cpu_share(dev: Accelerator, cpu_threads: float) -> tuple[float, float]:
    """(bandwidth, compute) multipliers for a server computing on a share of the CPU's
    cores: compute scales with the cores; memory bandwidth saturates at about half of them."""
    if dev.backend != "cpu" or cpu_threads >= 1:
        return 1.0, 1.0
    return min(1.0, 2 * cpu_threads), cpu_threads


def decode_step(est: MemoryEstimate, context: float, batch: int = 1,
                p: SpeedParams = DEFAULT, cpu_threads: float = 1.0) -> Step:
    """One decode step of `batch` sequences, each with `context` tokens before.

    Per device: weights (MoE: the experts the batch routes to) at the kernel family's share
    of bandwidth, the KV cache (capped at the window in sliding layers) and Mamba state at
    attention's share, or the mat-muls at the compute peak's share when a batch makes them
    the bound; plus a cost per layer (and per MoE layer, for routing). Layer-split devices
    run one after another; tensor-parallel ones (vLLM) at once, plus all-reduces."""
    family = weights_family(est)
    window = est.model.sliding_window
    tensor_parallel = est.engine.family == "vllm"
    times, floors = [], []
    for part in parts(est):
        bw_share, compute_share = cpu_share(part.dev, cpu_threads)
        bw = p.bandwidth(part.dev, family) * bw_share
        kv_bw = p.kv_bandwidth(part.dev, est.flash_attn) * bw_share
        spec = (part.dev.bandwidth_gbs or 0) * GB
        measured = measured_kernel(part.dev, est)
        if measured is not None:  # this CPU's decode kernels, as llama.cpp ran them here
            bw = measured[0] * bw_share
        if bw <= 0 or kv_bw <= 0:
            return Step(math.inf, 0.0)
        weights = weight_read_bytes(part.use, est, batch)
        cache = batch * (kv_read_bytes(part.use, context, window)
                         + 2 * part.use.state_read_bytes)  # Mamba state: read, written back
        mem_t = weights / bw + cache / kv_bw
        flops = (measured[1] if measured else p.flops(part.dev, family)) * compute_share
        compute_t = 2 * part.use.params * batch / flops if flops > 0 else 0.0
        if measured is not None and batch == 1:
            compute_t = 0.0  # the measured decode rate holds the kernels' compute already
        layer_s = p.vllm_layer_s if tensor_parallel else layer_seconds(part.dev, p)
        times.append(max(mem_t, compute_t) + part.use.layers * layer_s
                     + part.use.moe_layers * p.moe_layer_s)
        floors.append((weights + cache) / spec)
    if tensor_parallel:  # the GPUs work at once on slices of every layer; pipeline stages
        # (nodes) one after another, handing the batch's activations over the interconnect
        pp = est.rig.nodes
        return Step(pp * max(times) + allreduce_seconds(est, p) + node_hops(est, batch),
                    pp * max(floors))
    return Step(sum(times) + max(len(times) - 1, 0) * p.hop_s + handoff_seconds(est, batch),
                sum(floors))


def decode_step_seconds(
    est: MemoryEstimate, context: float, batch: int = 1, p: SpeedParams = DEFAULT
) -> float:
    """Seconds for one decode step of `batch` sequences, each with `context` tokens before."""
    return decode_step(est, context, batch, p).seconds


def attention_pairs(m: ModelSpec, n: int, depth: int = 0) -> float:
    """Query-key pairs a layer scores over n prompt tokens that follow `depth` tokens
    already cached, averaged over the model's layers: n x depth + n^2 / 2 under causal
    attention, about n x window under a sliding window (chunks: half a chunk), none in a
    Mamba or FFN-only layer."""
    a = m.architecture
    total = 0.0
    full = n * depth + n * n / 2
    for kind in a.attention:
        if kind in ("sliding", "chunked") and a.window < n + depth:
            total += min(full, n * a.window if kind == "sliding" else n * a.window / 2)
        elif kind:
            total += full
    return total / max(a.layers, 1)


def prefill_seconds(est: MemoryEstimate, n_tokens: int, p: SpeedParams = DEFAULT,
                    depth: int = 0, ubatch: int | None = None,
                    cpu_threads: float = 1.0) -> float:
    """Seconds to process an n-token prompt (llama.cpp's ppN; after `depth` tokens already
    in the cache: ppN @ dD), in physical batches of `ubatch` tokens.

    Per ubatch and device: the mat-muls at the compute peak's share (expert mat-muls at a
    lower share while their tiles are part empty, moe_efficiency), or reading the weights
    the ubatch touches (every expert some token routes to) when that takes longer; plus
    attention, plus a fixed cost per layer and ubatch. Layer-split GPUs pipeline ubatches
    within a logical batch of 2048."""
    if n_tokens <= 0:
        return 0.0
    family = weights_family(est)
    m = est.model
    ps = parts(est)
    gpu = est.rig.devices[0] if est.rig.devices and not est.rig.shared_memory else None
    if ubatch is None:  # the request's -ub (llama.cpp), else llama.cpp's default
        ubatch = est.request.offload.ubatch
    ub = max(1, min(ubatch, n_tokens))
    n_ub = math.ceil(n_tokens / ub)
    per_dev = []
    for part in ps:
        touched = weight_read_bytes(part.use, est, ub)
        if part.dev.backend == "cpu" and gpu is not None and ub >= 32:
            # llama.cpp runs big batches of CPU-held layers on the GPU, copying their
            # weights over PCIe once per ubatch
            copies = n_ub * touched / (pcie_gbs(gpu) * GB)
            per_dev.append(copies + 2 * part.use.params * n_tokens / p.flops(gpu, family))
            continue
        bw_share, compute_share = cpu_share(part.dev, cpu_threads)
        measured = measured_kernel(part.dev, est)
        flops = (measured[1] if measured else p.flops(part.dev, family)) * compute_share
        attn = p.attention_flops(part.dev, est.flash_attn) * compute_share
        bw = (measured[0] if measured else p.bandwidth(part.dev, family)) * bw_share
        if flops <= 0 or attn <= 0 or bw <= 0:
            return math.inf
        experts = expert_active_params(part.use, est)
        # measured rates count a prompt as llama.cpp computes it (the LM head for its last
        # token); the fitted ones were fitted with the LM head for every token
        dense = (prompt_products(part.use, ub) if measured else part.use.params * ub) \
            - experts * ub
        compute = 2 * (dense / flops + experts * ub / (
            flops * moe_efficiency(est, ub, part.dev.backend, p)))
        linear = n_ub * max(compute, touched / bw)
        attn_flops = (4 * m.heads * m.head_dim * part.use.layers
                      * attention_pairs(m, n_tokens, depth))
        launches = n_ub * part.use.layers * (
            part.dev.engine.pp_layer_s if part.dev.engine is not None
            else p.lookup(p.pp_layer_s, part.dev, "", 0.0))
        per_dev.append(linear + attn_flops / attn + launches)
    if est.engine.family == "vllm":
        return (est.rig.nodes * max(per_dev) + allreduce_seconds(est, p) * n_ub
                + node_hops(est, n_tokens))
    serial = sum(per_dev)
    gpus = [x for x, part in zip(per_dev, ps, strict=True) if part.dev.backend != "cpu"]
    if len(gpus) > 1:
        # ubatches pipelined through the GPUs within each logical batch of 2048
        u = max(1, min(max(est.request.offload.n_batch // ub, 1), n_ub))
        serial += (sum(gpus) + (u - 1) * max(gpus)) / u - sum(gpus)
    return serial + max(len(ps) - 1, 0) * p.hop_s * n_ub + handoff_seconds(est, n_tokens)


# --- request-level times: TTFT, end-to-end, model load, network -------------------------

# Sustained sequential read, GB/s: a PCIe 4.0 NVMe SSD reads 3-7 GB/s, SATA tops out near
# 0.55, a 7200 rpm disk near 0.16, and an NFS/SMB share is bound by its 1 GbE link (0.11).
DISKS = {"nvme": 3.0, "sata-ssd": 0.5, "hdd": 0.16, "network": 0.11}


@dataclass(frozen=True)
class Network:
    connect_s: float  # TCP (+ TLS) handshake and the HTTP request round trip
    rtt_s: float
    gbs: float  # usable bandwidth, GB/s


# Round trips and handshakes typical of each link: a fresh connection over Wi-Fi or a busy
# LAN costs ~200 ms, over 10 GbE ~15 ms (handshake + TLS); bandwidths are usable TCP rates.
NETWORKS = {
    "loopback": Network(connect_s=0.0005, rtt_s=0.00005, gbs=5.0),
    "10gbe": Network(connect_s=0.015, rtt_s=0.0003, gbs=1.1),
    "1gbe": Network(connect_s=0.05, rtt_s=0.001, gbs=0.11),
    "wifi": Network(connect_s=0.2, rtt_s=0.005, gbs=0.03),
}
REQUEST_BYTES_PER_TOKEN = 4  # prompt text, ~4 characters per token, plus JSON framing
CHUNK_BYTES = 150  # one streamed SSE chunk per token


def estimate_speed(
    est: MemoryEstimate, *, prompt_tokens: int = 512, output_tokens: int = 128,
    disk: str = "nvme", network: str = "loopback", p: SpeedParams = DEFAULT,
    engine_version: str | None = None, depth: int = 0,
) -> SpeedEstimate:
    """Decode/prefill rates and request times for a placed model, for a llama.cpp build of
    `engine_version`'s era (a build number or a year; default: today's); `depth` tokens
    already in the cache before the prompt (llama-bench -d, bench --depth)."""
    if disk not in DISKS:
        raise unknown("disk", disk, DISKS)
    if network not in NETWORKS:
        raise unknown("network", network, NETWORKS)
    net = NETWORKS[network]
    batch = est.batch
    try:
        era = era_of(engine_version)
    except ValueError as e:
        raise RigscopeError(str(e)) from None
    slow_decode, slow_prefill = p.era_factor(era, "decode"), p.era_factor(era, "prefill")
    # decode cost is linear in context: the mean over the answer
    mid = depth + prompt_tokens + output_tokens / 2
    decode = decode_step(est, mid, batch, p)
    decode = Step(decode.seconds / slow_decode, decode.roofline_seconds)
    step = decode.seconds
    n_prefill = max(prompt_tokens, 1)
    prefill_s = prefill_seconds(est, n_prefill, p, depth=depth) / slow_prefill
    upload = (prompt_tokens * REQUEST_BYTES_PER_TOKEN + 1024) / (net.gbs * 1e9)
    stream = output_tokens * CHUNK_BYTES / (net.gbs * 1e9)
    net_first = net.connect_s + upload + net.rtt_s / 2
    # without a prompt the first token costs one decode step
    ttft = net_first + (prefill_s if prompt_tokens else decode_step_seconds(est, 0, batch, p))
    e2e = ttft + max(output_tokens - 1, 0) * step + stream
    server = server_for(est.engine.name)
    served_step = served_ttft = None
    if server is not None:
        served_step = (decode_step(est, mid, batch, p, server.cpu_threads).seconds / slow_decode
                       + server.token_seconds(est.model.vocab))
        served_ttft = net_first + server.request_s + server.token_seconds(est.model.vocab) + (
            prefill_seconds(est, n_prefill, p, depth=depth, cpu_threads=server.cpu_threads)
            / slow_prefill
            if prompt_tokens else served_step)
    load, load_basis = _load_seconds(est, disk)
    ps = parts(est)
    bytes_per_token = sum(x.use.read_bytes for x in ps)
    main = est.rig.devices[0] if est.rig.devices else est.rig.host
    category = f"{main.backend} {main.hw_class}"
    decode_band, prefill_band = p.band("decode", main), p.band("prefill", main)
    hops = len(ps) - 1
    family = weights_family(est)
    basis = [
        f"decode: {format_bytes(bytes_per_token)} of weights per token"
        + (f" + KV cache at {mid:.0f} tokens of context" if mid else "")
        + "; " + "; ".join(_counted(_part_basis(x, family, p) for x in ps))
        + (f"; {hops} hand-off(s) x {p.hop_s * 1e3:.2f} ms" if hops and est.engine.family != "vllm"
           else "")
        + (f"; all-reduce {allreduce_seconds(est, p) * 1e3:.1f} ms/token"
           if est.engine.family == "vllm" and len(est.devices) > 1 else ""),
        f"prefill: 2 x {sum(x.use.params for x in ps) / 1e9:.2f} B params x "
        f"{n_prefill} tokens + attention"
        + (f" over {depth:,} tokens already in the cache" if depth else "") + ", at "
        + "; ".join(_counted(f"{x.use.id} {p.flops(x.dev, family) / 1e12:.1f} TFLOPS "
                             "effective" for x in ps)),
        f"TTFT = network {net_first * 1e3:.1f} ms ({network}) + prefill {prefill_s:.3f} s",
        *([f"served through {server.name}: +{server.request_s * 1e3:.0f} ms per request, "
           f"+{server.token_seconds(est.model.vocab) * 1e3:.2f} ms per token"
           + (f", the model on {server.cpu_threads:.0%} of the CPU's cores"
              if server.cpu_threads < 1 and not est.rig.devices else "")
           + f" ({server.source})"] if server else []),
        load_basis,
        f"describes llama.cpp builds of {era if era != LATEST_ERA else '2025-2026'}"
        + (f" (decode at {slow_decode:.0%}, prefill at {slow_prefill:.0%} of today's builds)"
           if era != LATEST_ERA else "; --engine-version for older builds")
        + ("" if est.engine.family == "llama.cpp" else " (llama.cpp's eras; this engine's "
           "are not modelled)"),
        (f"error band: +-{decode_band:.0%} decode, +-{prefill_band:.0%} prefill (90th "
         f"percentile of the cross-validated residuals of {category} rows, each predicted by "
         "a fit that never saw its GPU; benchmarks/fit_speed.py --cv)")
        if main.backend not in ("vulkan", "sycl") else
        (f"error band: +-{decode_band:.0%} decode, +-{prefill_band:.0%} prefill ("
         + ("Vulkan constants per vendor, 90th percentile of leave-one-GPU-out errors; "
            if main.backend == "vulkan" else "SYCL: no measured rows; Vulkan-on-Intel "
            "constants, a wider band; ") + "benchmarks/fit_backends.py)"),
        f"decode at {decode.roofline_seconds / step:.0%} of the memory roofline (the bytes a "
        "token reads over spec bandwidth)" if step > 0 and math.isfinite(step) else
        "decode: no roofline (no bandwidth known)",
    ]
    for x in ps:
        kernel = measured_kernel(x.dev, est)
        if kernel is not None and x.dev.engine is not None:
            basis.append(
                f"{x.use.id}: llama.cpp's {est.quant.base} kernels on this CPU read "
                f"{kernel[0] / GB:.1f} GB/s in decode and reach {kernel[1] / 1e9:.0f} GFLOPS "
                f"in prefill, {x.dev.engine.layer_s * 1e6:.0f} us per layer per token "
                f"({x.dev.engine.source}; rigscope system --refresh measures again)")
    if depth + prompt_tokens + output_tokens > est.context:
        basis.append(f"depth {depth:,} + prompt {prompt_tokens:,} + output {output_tokens:,} "
                     f"tokens exceed the context of {est.context:,}: raise --context")
    if est.offloaded_layers:
        host = [x for x in ps if x.dev.backend == "cpu"]
        if host:
            t_host = (host[0].use.read_bytes / p.bandwidth(host[0].dev, family))
            basis.append(f"swap wall: the {est.offloaded_layers} layers in system RAM take "
                         f"{t_host / step:.0%} of each token's time")
    if est.engine.family not in ("llama.cpp", "vllm"):
        basis.append(f"{est.engine.name}: speed constants are llama.cpp's (not calibrated for "
                     "it)")
    return SpeedEstimate(
        decode_tokens_per_s=1 / step if step > 0 else math.inf,
        aggregate_tokens_per_s=batch / step if step > 0 else math.inf,
        prefill_tokens_per_s=n_prefill / prefill_s if prefill_s > 0 else math.inf,
        ttft_s=ttft, e2e_s=e2e, load_time_s=load, network_s=net_first + stream,
        decode_band=decode_band, prefill_band=prefill_band,
        decode_roofline_fraction=(decode.roofline_seconds / step
                                  if step > 0 and math.isfinite(step) else 0.0),
        server=server.name if server else None,
        served_decode_tokens_per_s=1 / served_step if served_step else None,
        served_ttft_s=served_ttft,
        basis=tuple(basis),
    )


def _counted(lines: Iterable[str]) -> list[str]:
    """Identical lines once, with their count (tensor parallelism: every GPU alike)."""
    counts = Counter(lines)
    return [f"{n} x {line}" if n > 1 else line for line, n in counts.items()]


def _part_basis(part: Part, family: str, p: SpeedParams) -> str:
    bw = p.bandwidth(part.dev, family) / 1e9
    spec = part.dev.bandwidth_gbs or 0
    source = f"; {part.dev.memory_source} RAM bandwidth" if part.dev.backend == "cpu" else ""
    return (f"{part.use.id}: {format_bytes(part.use.read_bytes)} at {bw:.0f} GB/s "
            f"({bw / spec:.0%} of {spec:g} GB/s, {part.dev.backend} {part.dev.hw_class} "
            f"{family}{source})" if spec else f"{part.use.id}: no bandwidth known")


def _load_seconds(est: MemoryEstimate, disk: str) -> tuple[float, str]:
    """Read the file from disk, then copy each GPU's share over its PCIe link."""
    file_bytes = est.weights_bytes - est.repacked_bytes  # a repacked copy is made in RAM
    disk_s = file_bytes / (DISKS[disk] * 1e9)
    copy_s = 0.0
    for use, dev in zip(est.devices, est.rig.devices, strict=False):
        rate = pcie_gbs(dev)
        if rate and dev.native != "metal":
            copy_s += use.weights_bytes / (rate * 1e9)
    return disk_s + copy_s, (
        f"load: {format_bytes(file_bytes)} from {disk} at {DISKS[disk]:g} GB/s "
        f"({disk_s:.1f} s) + PCIe copies ({copy_s:.1f} s); a warm page cache skips the disk"
    )
