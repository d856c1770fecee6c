"""Request-level times from the speed model: TTFT, end-to-end, model load, network."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rigscope.errors import unknown
from rigscope.estimate import speed as sp
from rigscope.specs import MemoryEstimate, SpeedEstimate
from rigscope.units import format_bytes

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
    disk: str = "nvme", network: str = "loopback", p: sp.SpeedParams = sp.DEFAULT,
) -> SpeedEstimate:
    """Decode/prefill rates and request times for a placed model."""
    if disk not in DISKS:
        raise unknown("disk", disk, DISKS)
    if network not in NETWORKS:
        raise unknown("network", network, NETWORKS)
    net = NETWORKS[network]
    batch = est.batch
    mid = prompt_tokens + output_tokens / 2  # decode cost is linear in context: the mean
    step = sp.decode_step_seconds(est, mid, batch, p)
    n_prefill = max(prompt_tokens, 1)
    prefill_s = sp.prefill_seconds(est, n_prefill, p)
    upload = (prompt_tokens * REQUEST_BYTES_PER_TOKEN + 1024) / (net.gbs * 1e9)
    stream = output_tokens * CHUNK_BYTES / (net.gbs * 1e9)
    net_first = net.connect_s + upload + net.rtt_s / 2
    # without a prompt the first token costs one decode step
    ttft = net_first + (prefill_s if prompt_tokens else sp.decode_step_seconds(est, 0, batch, p))
    e2e = ttft + max(output_tokens - 1, 0) * step + stream
    load, load_basis = _load_seconds(est, disk)
    parts = sp.parts(est)
    bytes_per_token = sum(x.use.read_bytes for x in parts)
    hops = len(parts) - 1
    family = sp.weights_family(est)
    basis = [
        f"decode: {format_bytes(bytes_per_token)} of weights per token"
        + (f" + KV cache at {mid:.0f} tokens of context" if mid else "")
        + "; " + "; ".join(_part_basis(x, family, p) for x in parts)
        + (f"; {hops} hand-off(s) x {p.hop_s * 1e3:.2f} ms" if hops and est.engine != "vllm"
           else "")
        + (f"; all-reduce {sp.allreduce_seconds(est, p) * 1e3:.1f} ms/token"
           if est.engine == "vllm" and len(est.devices) > 1 else ""),
        f"prefill: 2 x {sum(x.use.params for x in parts) / 1e9:.2f} B params x "
        f"{n_prefill} tokens + attention, at "
        + "; ".join(f"{x.use.id} {p.flops(x.dev, family) / 1e12:.1f} TFLOPS effective"
                    for x in parts),
        f"TTFT = network {net_first * 1e3:.1f} ms ({network}) + prefill {prefill_s:.3f} s",
        load_basis,
        f"error band: +-{p.decode_band:.0%} decode, +-{p.prefill_band:.0%} prefill (90th "
        "percentile of cross-validated calibration residuals, llama.cpp builds of 2023-2025; "
        "newer builds prefill up to 40% faster)",
    ]
    if est.offloaded_layers:
        host = [x for x in parts if x.dev.backend == "cpu"]
        if host:
            t_host = (host[0].use.read_bytes / p.bandwidth(host[0].dev, family))
            basis.append(f"swap wall: the {est.offloaded_layers} layers in system RAM take "
                         f"{t_host / step:.0%} of each token's time")
    if est.engine not in ("llama.cpp", "ollama", "vllm"):
        basis.append(f"{est.engine}: speed constants are llama.cpp's (not calibrated for it)")
    return SpeedEstimate(
        decode_tokens_per_s=1 / step if step > 0 else math.inf,
        aggregate_tokens_per_s=batch / step if step > 0 else math.inf,
        prefill_tokens_per_s=n_prefill / prefill_s if prefill_s > 0 else math.inf,
        ttft_s=ttft, e2e_s=e2e, load_time_s=load, network_s=net_first + stream,
        decode_band=p.decode_band, prefill_band=p.prefill_band, basis=tuple(basis),
    )


def _part_basis(part: sp.Part, family: str, p: sp.SpeedParams) -> str:
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
        rate = sp.pcie_gbs(dev)
        if rate and dev.backend != "metal":
            copy_s += use.weights_bytes / (rate * 1e9)
    return disk_s + copy_s, (
        f"load: {format_bytes(file_bytes)} from {disk} at {DISKS[disk]:g} GB/s "
        f"({disk_s:.1f} s) + PCIe copies ({copy_s:.1f} s); a warm page cache skips the disk"
    )
