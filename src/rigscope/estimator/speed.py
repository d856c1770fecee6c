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

from rigscope.errors import unknown
from rigscope.estimator.speed_params import DEFAULT, SpeedParams, kernel_family
from rigscope.specs import Accelerator, DeviceUse, MemoryEstimate, ModelSpec, SpeedEstimate
from rigscope.units import GB, format_bytes


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
    if est.quant.kind == "gguf":
        return kernel_family(est.quant.base or "F16")
    return _FORMAT_FAMILY.get(est.quant.name, "f16")


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
    tensor_parallel = est.engine.family == "vllm"
    times = []
    for part in parts(est):
        bw = p.bandwidth(part.dev, family)
        kv_bw = (part.dev.bandwidth_gbs or 0) * GB * p.kv_eff.get(part.dev.backend, 0.3)
        if bw <= 0 or kv_bw <= 0:
            return math.inf
        # weights, the KV cache read back, and Mamba layers' state read and written again
        mem_t = (weight_read_bytes(part.use, est, batch) / bw
                 + batch * (kv_read_bytes(part.use, context, window)
                            + 2 * part.use.state_read_bytes) / kv_bw)
        flops = p.flops(part.dev, family)
        compute_t = 2 * part.use.params * batch / flops if flops > 0 else 0.0
        layer_s = p.vllm_layer_s if tensor_parallel else p.layer_s.get(part.dev.backend, 50e-6)
        times.append(max(mem_t, compute_t) + part.use.layers * layer_s)
    if tensor_parallel:  # the GPUs work at once on slices of every layer
        return max(times) + allreduce_seconds(est, p)
    return sum(times) + max(len(times) - 1, 0) * p.hop_s


def attention_pairs(m: ModelSpec, n: int) -> float:
    """Query-key pairs a layer scores over an n-token prompt, averaged over the model's
    layers: n^2 / 2 under causal attention, about n x window under a sliding window or
    chunks (Llama 4), none in a Mamba or FFN-only layer."""
    a = m.architecture
    total = 0.0
    for kind in a.attention:
        if kind in ("sliding", "chunked") and a.window < n:
            w = a.window
            total += n * w - w * w / 2 if kind == "sliding" else n * w / 2
        elif kind:
            total += n * n / 2
    return total / max(a.layers, 1)


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
            copies = math.ceil(n_tokens / 512) * weight_read_bytes(
                part.use, est, min(n_tokens, 512)) / (pcie_gbs(gpu) * GB)
            per_dev.append(copies + 2 * part.use.params * n_tokens / p.flops(gpu, family))
            continue
        flops = p.flops(part.dev, family)
        attn = (part.dev.fp16_tflops or 0) * 1e12 * p.attn_eff.get(part.dev.backend, 0.1)
        if part.dev.arch == "hopper":
            attn *= p.hopper_peak
        if flops <= 0 or attn <= 0:
            return math.inf
        linear = 2 * part.use.params * n_tokens / flops
        attn_flops = 4 * m.heads * m.head_dim * part.use.layers * attention_pairs(m, n_tokens)
        per_dev.append(linear + attn_flops / attn)
    if est.engine.family == "vllm":
        return max(per_dev) + allreduce_seconds(est, p) * math.ceil(n_tokens / 512)
    serial = sum(per_dev)
    gpus = [x for x, part in zip(per_dev, ps, strict=True) if part.dev.backend != "cpu"]
    if len(gpus) > 1:
        # micro-batches of 512 pipelined through the GPUs within each logical batch of 2048
        u = max(1, min(4, math.ceil(n_tokens / 512)))
        serial += (sum(gpus) + (u - 1) * max(gpus)) / u - sum(gpus)
    return serial + max(len(ps) - 1, 0) * p.hop_s * math.ceil(n_tokens / 512)


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
) -> SpeedEstimate:
    """Decode/prefill rates and request times for a placed model."""
    if disk not in DISKS:
        raise unknown("disk", disk, DISKS)
    if network not in NETWORKS:
        raise unknown("network", network, NETWORKS)
    net = NETWORKS[network]
    batch = est.batch
    mid = prompt_tokens + output_tokens / 2  # decode cost is linear in context: the mean
    step = decode_step_seconds(est, mid, batch, p)
    n_prefill = max(prompt_tokens, 1)
    prefill_s = prefill_seconds(est, n_prefill, p)
    upload = (prompt_tokens * REQUEST_BYTES_PER_TOKEN + 1024) / (net.gbs * 1e9)
    stream = output_tokens * CHUNK_BYTES / (net.gbs * 1e9)
    net_first = net.connect_s + upload + net.rtt_s / 2
    # without a prompt the first token costs one decode step
    ttft = net_first + (prefill_s if prompt_tokens else decode_step_seconds(est, 0, batch, p))
    e2e = ttft + max(output_tokens - 1, 0) * step + stream
    load, load_basis = _load_seconds(est, disk)
    ps = parts(est)
    bytes_per_token = sum(x.use.read_bytes for x in ps)
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
        f"{n_prefill} tokens + attention, at "
        + "; ".join(_counted(f"{x.use.id} {p.flops(x.dev, family) / 1e12:.1f} TFLOPS "
                             "effective" for x in ps)),
        f"TTFT = network {net_first * 1e3:.1f} ms ({network}) + prefill {prefill_s:.3f} s",
        load_basis,
        f"error band: +-{p.decode_band:.0%} decode, +-{p.prefill_band:.0%} prefill (90th "
        "percentile of cross-validated calibration residuals, llama.cpp builds of 2023-2025; "
        "newer builds prefill up to 40% faster)",
    ]
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
        decode_band=p.decode_band, prefill_band=p.prefill_band, basis=tuple(basis),
    )


def _counted(lines: Iterable[str]) -> list[str]:
    """Identical lines once, with their count (tensor parallelism: every GPU alike)."""
    counts = Counter(lines)
    return [f"{n} x {line}" if n > 1 else line for line, n in counts.items()]


def _part_basis(part: Part, family: str, p: SpeedParams) -> str:
    bw = p.bandwidth(part.dev, family) / 1e9
    spec = part.dev.bandwidth_gbs or 0
    return (f"{part.use.id}: {format_bytes(part.use.read_bytes)} at {bw:.0f} GB/s "
            f"({bw / spec:.0%} of {spec:g} GB/s, {part.dev.backend} {part.dev.hw_class} "
            f"{family})" if spec else f"{part.use.id}: no bandwidth known")


def _load_seconds(est: MemoryEstimate, disk: str) -> tuple[float, str]:
    """Read the file from disk, then copy each GPU's share over its PCIe link."""
    file_bytes = est.weights_bytes - est.repacked_bytes  # a repacked copy is made in RAM
    disk_s = file_bytes / (DISKS[disk] * 1e9)
    copy_s = 0.0
    for use, dev in zip(est.devices, est.rig.devices, strict=False):
        rate = pcie_gbs(dev)
        if rate and dev.backend != "metal":
            copy_s += use.weights_bytes / (rate * 1e9)
    return disk_s + copy_s, (
        f"load: {format_bytes(file_bytes)} from {disk} at {DISKS[disk]:g} GB/s "
        f"({disk_s:.1f} s) + PCIe copies ({copy_s:.1f} s); a warm page cache skips the disk"
    )
