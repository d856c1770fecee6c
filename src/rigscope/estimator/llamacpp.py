"""llama.cpp's placement (and Ollama's, which runs it): its --fit, -ngl, -ts and -ot.

A placement assigns every weight tensor to a buffer (a GPU or host memory) and every layer's
KV cache to the layer's device. llama-server's default `--fit` (common/fit.cpp of the built
tree) chooses it: the trained context reduced toward --fit-ctx when no -c is given, then
layers filled back to front with a MoE model's expert tensors in host memory, then those
layers made whole front to back while every device keeps --fit-target MiB free.
`Placer.fit` follows those steps with rigscope's memory model in place of llama.cpp's test
allocations; llama.cpp's false-position search stops at the most layers that fit, which a
bisection finds too.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rigscope.errors import RigscopeError
from rigscope.estimator import memory as mem
from rigscope.estimator.common import RUNTIME_OVERHEAD, result, weights_basis
from rigscope.estimator.memo import by_model
from rigscope.estimator.repack import describe
from rigscope.specs import DeviceUse, FitInfo, MemoryEstimate, ModelSpec, Quant, Request, Rig
from rigscope.units import MIB, format_bytes

HOST = -1  # the buffer index of host memory

# What fit moves to the next buffer for a layer, by "fraction" (common/fit.cpp): "moe" the
# expert tensors; for the first partial layer of a device also "attn" (every FFN tensor),
# "up" (all but ffn_up*) or "gate" (ffn_down* only).
FRACTIONS = {
    "moe": r"ffn_(up|down|gate_up|gate)_(ch|)exps",
    "attn": r"ffn_(gate|up|gate_up|down)",
    "up": r"ffn_(gate|gate_up|down)",
    "gate": r"ffn_down",
}
_FRACTION_RE = {k: re.compile(v) for k, v in FRACTIONS.items()}
EXPS_REGEX = r"\.ffn_(up|down|gate|gate_up)_(ch|)exps"  # --cpu-moe, --n-cpu-moe (common.h)
OP_OFFLOAD_MIN_BATCH = 32  # GPU backends run host-weight ops of batches this large
OP_OFFLOAD_COPIES = 2  # host weight copies the GPU compute buffer holds at once


@dataclass(frozen=True)
class Config:
    """One placement: layers per GPU (front to back, the last holds the output layer) and
    tensor overrides: fit's per-layer ones, then the user's regexes."""

    ngl: int
    split: tuple[float, ...]  # -ts weights per GPU (layer counts when fit chose them)
    partial: tuple[tuple[int, str, int], ...] = ()  # (layer, fraction, buffer)


@dataclass(frozen=True)
class Layout:
    config: Config
    context: int
    assign: list[int]  # device per layer 0..L (L: the output layer); HOST below -ngl
    buffers: list[int]  # buffer per bucket
    devices: list[DeviceUse]
    host: DeviceUse

    @property
    def ok(self) -> bool:
        return all(d.fits for d in self.devices) and self.host.fits


class Placer:
    """llama.cpp's placement of one request on one rig."""

    def __init__(self, req: Request, rig: Rig) -> None:
        self.req, self.rig = req, rig
        self.model = m = req.model
        self.L = m.layers
        self.lw = mem.layer_weights(m, req.quant)
        self.gpus = list(rig.devices)
        self.caps = [g.usable_bytes for g in self.gpus]
        self.margin = req.offload.fit_target_mib * MIB
        self.patterns = self._compile()  # the user's -ot, --cpu-moe, --n-cpu-moe
        users = tuple(self._user_buffer(n) for n in mem.part_names(m)) if self.patterns \
            else None
        self.buckets = buckets(m, req.quant, users)
        a, kv = m.architecture, req.kv_type
        cell = [mem.kv_cell_bytes(m, kv, il) for il in range(self.L)]
        self.kv_full = [0 if a.is_swa(il) else c for il, c in enumerate(cell)]
        self.kv_swa = [c if a.is_swa(il) else 0 for il, c in enumerate(cell)]
        self.state = [mem.recurrent_state_bytes(m, 1, il) for il in range(self.L)]
        self._kv: dict[int, list[int]] = {}
        self._kv_cols: dict[int, np.ndarray] = {}
        self._compute: dict[tuple[int, bool, bool, bool, bool], int] = {}

    # --- the user's knobs ------------------------------------------------------------------

    def user_overrides(self) -> list[tuple[str, str]]:
        o = self.req.offload
        out = list(o.overrides)
        if o.cpu_moe:
            out.append((EXPS_REGEX, "CPU"))
        out += [(f"blk\\.{i}{EXPS_REGEX}", "CPU") for i in range(min(o.n_cpu_moe, self.L))]
        return out

    def _user_buffer(self, name: str) -> int | None:
        for pattern, buf in self.patterns:
            if pattern.search(name):
                return buf
        return None

    def _compile(self) -> list[tuple[re.Pattern[str], int]]:
        out = []
        for pattern, buf in self.user_overrides():
            try:
                rx = re.compile(pattern)
            except re.error as e:
                raise RigscopeError(f"invalid --override-tensor pattern {pattern!r}: {e}"
                                    ) from None
            out.append((rx, self._buffer_index(buf)))
        return out

    def _buffer_index(self, name: str) -> int:
        """-ot's buffer: CPU, or a GPU by its backend name and index (CUDA0, ROCm1, ...)."""
        if name.upper() == "CPU":
            return HOST
        m = re.fullmatch(r"([A-Za-z]+)(\d+)", name)
        valid = ["CPU", *(f"{self._backend_name()}{i}" for i in range(len(self.gpus)))]
        if m and int(m.group(2)) < len(self.gpus):
            return int(m.group(2))
        raise RigscopeError(f"unknown buffer {name!r} in --override-tensor; valid here: "
                            + ", ".join(valid))

    def _backend_name(self) -> str:
        b = self.gpus[0].backend if self.gpus else "cpu"
        return {"cuda": "CUDA", "rocm": "ROCm", "metal": "MTL", "vulkan": "Vulkan",
                "sycl": "SYCL"}.get(b, b.upper())

    # --- one placement's memory ---------------------------------------------------------------

    def default_config(self) -> Config:
        o = self.req.offload
        ngl = self.L + 1 if o.n_gpu_layers is None or o.n_gpu_layers < 0 else o.n_gpu_layers
        split = o.tensor_split or tuple(float(c) for c in self.caps)
        if o.tensor_split and len(o.tensor_split) != len(self.gpus):
            raise RigscopeError(f"--tensor-split has {len(o.tensor_split)} values for "
                                f"{len(self.gpus)} GPUs; give one per GPU")
        return Config(min(ngl, self.L + 1), split)

    def kv_layers(self, context: int) -> list[int]:
        """Each layer's cache at this context (memoized: fit tries few contexts, often)."""
        if context not in self._kv:
            r = self.req
            self._kv[context] = mem.llamacpp_kv_bytes_by_layer(
                self.model, context, r.batch, r.kv_type, r.offload.ubatch, r.flash_attn)
        return self._kv[context]

    def _kv_matrix(self, context: int) -> np.ndarray:
        """Per layer: its cache, full-attention and sliding cache per token, state."""
        if context not in self._kv_cols:
            self._kv_cols[context] = np.array(
                [self.kv_layers(context), self.kv_full, self.kv_swa, self.state],
                dtype=np.float64).reshape(4, self.L).T
        return self._kv_cols[context]

    def _compute_bytes(self, context: int, has_output: bool, has_layers: bool,
                       pipeline: bool, host_only: bool = False) -> int:
        key = (context, has_output, has_layers, pipeline, host_only)
        if key not in self._compute:
            r, ub = self.req, self.req.offload.ubatch
            self._compute[key] = mem.llamacpp_host_compute_bytes(
                self.model, context, r.batch, pipeline, ub) if host_only else \
                mem.llamacpp_compute_bytes(self.model, context, r.batch, r.flash_attn,
                                           has_output=has_output, has_layers=has_layers,
                                           pipeline=pipeline, outputs=r.outputs, ub=ub)
        return self._compute[key]

    def layout(self, cfg: Config, context: int) -> Layout:
        req, m, L, c = self.req, self.model, self.L, self.buckets
        assign = layer_devices(L, cfg.split, cfg.ngl)
        n = len(self.gpus)
        assigned = np.array(assign)
        block = np.clip(c.layer, 0, L)
        buf = assigned[block]
        if cfg.partial:  # fit's overrides: a layer's tensors of one fraction elsewhere
            code, where = np.full(L + 1, -1), np.zeros(L + 1, dtype=np.int64)
            for il, frac, b in cfg.partial:
                code[il], where[il] = FRACTION_BIT[frac], b
            bit = code[block]
            moved = (bit >= 0) & (((c.fraction_bits >> np.maximum(bit, 0)) & 1) == 1)
            buf = np.where(moved, where[block], buf)
        if c.any_user:
            buf = np.where(c.has_user, c.user, buf)
        buf = np.where(c.layer == -1, HOST, buf)  # token embeddings stay in host memory
        buf = np.where(c.layer == -2, 0 if n and assign[0] == 0 else HOST, buf)
        pipeline = n > 1 and assign[0] >= 0 and not self.patterns and not cfg.partial
        # GPU backends compute big batches of host-held weights themselves (op offload):
        # the first GPU's compute buffer holds copies of the largest ones
        host_w = int(c.largest_matmul[(buf == HOST) & (c.layer >= 0)].max(initial=0))
        offload = (OP_OFFLOAD_COPIES * host_w
                   if host_w and n and not self.rig.shared_memory
                   and mem.ubatch(context, req.batch, req.offload.ubatch)
                   >= OP_OFFLOAD_MIN_BATCH else 0)
        uses = self._uses(buf, assigned, context)
        held = set(assign[:L])
        devices = []
        for d, g in enumerate(self.gpus):
            has_layers, has_output = d in held, assign[L] == d
            compute = self._compute_bytes(context, has_output, has_layers, pipeline) \
                if has_layers or has_output else 0
            if d == 0:
                compute += offload
            devices.append(DeviceUse(id=g.id, capacity_bytes=self.caps[d],
                                     compute_bytes=compute,
                                     overhead_bytes=RUNTIME_OVERHEAD[g.backend], **uses[d]))
        cpu_layers = HOST in held
        if cpu_layers or assign[L] == HOST:
            host_compute = self._compute_bytes(context, assign[L] == HOST, cpu_layers, False)
        else:
            host_compute = self._compute_bytes(context, False, False, pipeline, True)
        host_cap = self.rig.host.memory_bytes
        if self.rig.shared_memory:  # one pool: the host part gets what the GPU part leaves
            host_cap = max(host_cap - sum(x.used_bytes for x in devices), 0)
        # CPU-held weights of a GPU rig go to the GPU backend's host buffer or the plain CPU
        # one, neither of which repacks (--no-host would change that): no copy
        host = DeviceUse(id="host", capacity_bytes=host_cap, compute_bytes=host_compute,
                         overhead_bytes=mem.output_buffer_bytes(m, req.batch), **uses[HOST])
        return Layout(cfg, context, assign, buf.tolist(), devices, host)

    def _uses(self, buf: np.ndarray, assigned: np.ndarray, context: int
              ) -> dict[int, dict[str, int]]:
        """Each buffer's weights, caches and what a token reads there (DeviceUse fields)."""
        L, n, c = self.L, len(self.gpus) + 1, self.buckets  # index b + 1: HOST is 0
        at = buf + 1
        sums = (at == np.arange(n)[:, None]).astype(np.float64) @ c.sums
        # the layers each buffer holds tensors of, and those it shares with another
        holds = np.zeros((L, n), dtype=bool)
        holds[c.block_layer, at[c.in_block]] = True
        layers = holds.sum(axis=0)
        split = holds[holds.sum(axis=1) > 1].sum(axis=0)
        experts = np.zeros((L + 3, n), dtype=bool)
        experts[c.routed_row, at[c.routed]] = True
        moe = experts.sum(axis=0)
        kv = (assigned[:L] + 1 == np.arange(n)[:, None]).astype(np.float64) \
            @ self._kv_matrix(context)
        return {i - 1: dict(
            weights_bytes=int(sums[i, 0]), kv_bytes=int(kv[i, 0]), layers=int(layers[i]),
            read_bytes=int(sums[i, 4]), routed_bytes=int(sums[i, 2]),
            routed_params=int(sums[i, 3]), moe_layers=int(moe[i]), params=int(sums[i, 1]),
            output_params=int(sums[i, 5]), kv_token_bytes=int(kv[i, 1]),
            swa_token_bytes=int(kv[i, 2]), state_read_bytes=int(kv[i, 3]),
            split_layers=int(split[i]),
        ) for i in range(n)}

    # --- llama.cpp's --fit --------------------------------------------------------------------

    def used(self, lay: Layout) -> list[int]:
        """What llama.cpp projects per GPU: its buffers, not the runtime's own memory."""
        return [d.used_bytes - d.overhead_bytes for d in lay.devices]

    def free(self) -> list[int]:
        """Free memory per GPU as the driver reports it once the runtime is up."""
        return [c - RUNTIME_OVERHEAD[g.backend] for c, g in zip(self.caps, self.gpus,
                                                                strict=True)]

    def fit(self) -> tuple[Layout, str, int | None]:
        """The placement and context llama-server would run with: (layout, method, the
        context it was reduced from)."""
        req, o = self.req, self.req.offload
        cfg = self.default_config()
        ctx = req.context
        lay = self.layout(cfg, ctx)
        unchanged = "user" if o.user_set else "fit: no changes"
        if not o.fit:
            return lay, "user" if o.user_set else "all layers", None
        nd = len(self.gpus)
        if nd == 0:
            cap = self.rig.host.memory_bytes
            if cap - lay.host.resident_bytes >= self.margin or not req.context_auto:
                return lay, unchanged, None
        else:
            free, used = self.free(), self.used(lay)
            if all(f - u >= self.margin for f, u in zip(free, used, strict=True)):
                return lay, unchanged, None
        reduced_from = None
        # step 2: a smaller context, when none was given and the total falls short
        if req.context_auto and ctx > o.fit_ctx and self._short(lay):
            new, enough = self._reduce_context(cfg, ctx)
            reduced_from = ctx if new < ctx else None
            ctx = new
            lay = self.layout(cfg, ctx)
            if nd <= 1 and enough:
                return lay, "fit: context", reduced_from
        if nd == 0 or o.user_set:
            return lay, "fit: context only" if reduced_from else "user", reduced_from
        return self._fill(ctx), "fit", reduced_from

    def _short(self, lay: Layout) -> bool:
        """Whether all devices together lack memory for their targets."""
        if not self.gpus:
            return self.rig.host.memory_bytes - lay.host.resident_bytes < self.margin
        return sum(self.free()) - sum(self.used(lay)) < len(self.gpus) * self.margin

    def _reduce_context(self, cfg: Config, ctx_max: int) -> tuple[int, bool]:
        """Step 2 of fit: interpolate linearly between the least and the full context;
        whether the interpolation says it is enough."""
        o, nd = self.req.offload, len(self.gpus)
        ctx_min = o.fit_ctx

        def total(ctx: int) -> tuple[int, int]:
            lay = self.layout(cfg, ctx)
            if nd == 0:
                return lay.host.resident_bytes, self.rig.host.memory_bytes - self.margin
            return sum(self.used(lay)), sum(self.free()) - nd * self.margin

        used_max, target = total(ctx_max)
        if nd > 1:  # whole layers (or tensors) per device waste about half of one each
            model = sum(d.weights_bytes for d in self.layout(cfg, ctx_max).devices)
            per_layer = model // self.L
            target -= (nd + 1) * per_layer // (6 if self.model.experts else 2)
        used_min, _ = total(ctx_min)
        if target <= used_min or used_max <= used_min:
            return ctx_min, False
        ctx = ctx_min + (ctx_max - ctx_min) * (target - used_min) // (used_max - used_min)
        return max(ctx - ctx % 256, ctx_min), True

    def _fill(self, ctx: int) -> Layout:
        """Steps 3 and 4 of fit: dense(-only) layers back to front, then, for a MoE model
        whose dense weights all fit, whole layers front to back."""
        nd, hp = len(self.gpus), self.L
        moe = self.model.experts > 0
        targets = [f - self.margin for f in self.free()]
        n_layer, n_part = [0] * nd, [0] * nd
        over_type = ["moe"] * nd
        over_buf = [HOST] * nd

        def config(nl: list[int], npart: list[int], types: list[str], bufs: list[int]
                   ) -> Config:
            ngl = sum(nl)
            il0 = hp + 1 - ngl
            partial = []
            for d in range(nd):
                il0 += nl[d] - npart[d]
                for il in range(il0, il0 + npart[d]):
                    first = il == il0
                    partial.append((il, types[d] if first else "moe",
                                    bufs[d] if first else HOST))
                il0 += npart[d]
            return Config(ngl, tuple(float(x) for x in nl), tuple(partial))

        def memory(nl: list[int], npart: list[int], types: list[str], bufs: list[int]
                   ) -> list[int]:
            return self.used(self.layout(config(nl, npart, types, bufs), ctx))

        surplus_dense = 0
        if moe:  # every expert tensor in host memory
            cpu_moe = Config(hp + 1, tuple(float(c) for c in self.caps),
                             tuple((il, "moe", HOST) for il in range(hp)))
            used = self.used(self.layout(cpu_moe, ctx))
            surplus_dense = sum(f - u - self.margin
                                for f, u in zip(self.free(), used, strict=True))
        def trial(d: int, k: int, nl: list[int], npart: list[int]
                  ) -> tuple[list[int], list[int]]:
            """Device d given k layers, the ones below it unchanged."""
            nl, npart = list(nl), list(npart)
            nl[d] = k
            if moe:
                npart[d] = k if d < nd - 1 else max(k - 1, 0)
            return nl, npart

        def convert(d: int, k: int, nl: list[int], npart: list[int], s: int
                    ) -> tuple[list[int], list[int], int]:
            """k partial layers, from device s on, made whole layers of device d."""
            nl, npart, done = list(nl), list(npart), 0
            while s < nd:
                c = min(k - done, npart[s])
                nl[s] -= c
                npart[s] -= c
                nl[d] += c
                done += c
                if npart[s] > 0:
                    break
                s += 1
            return nl, npart, min(s, nd - 1)

        def meets(d: int, nl: list[int], npart: list[int], types: list[str],
                  bufs: list[int]) -> bool:
            used = memory(nl, npart, types, bufs)
            return used[d] < targets[d] and (d + 1 == nd or used[d + 1] < targets[d + 1])

        # step 3: back to front
        for d in range(nd - 1, -1, -1):
            unassigned = hp + 1 - sum(n_layer[d + 1:])
            k = self._most(lambda k, d=d, nl=n_layer, npart=n_part:  # type: ignore[misc]
                           memory(*trial(d, k, nl, npart), over_type, over_buf)[d]
                           <= targets[d], unassigned)
            n_layer, n_part = trial(d, k, n_layer, n_part)
        if not moe or surplus_dense <= 0:
            return self.layout(config(n_layer, n_part, over_type, over_buf), ctx)
        # step 4: front to back, partial layers made whole
        start = next((d for d in range(nd) if n_layer[d] > 0), nd)
        for d in range(nd):
            if start >= nd or d > start:
                break
            k = self._most(
                lambda k, d=d, nl=n_layer, npart=n_part, s=start,  # type: ignore[misc]
                t=over_type, b=over_buf:
                memory(*convert(d, k, nl, npart, s)[:2], t, b)[d] <= targets[d],
                sum(n_part[start:]))
            n_layer, n_part, start = convert(d, k, n_layer, n_part, start)
            # try to fit part of one more layer: its attention and up (then gate) on this
            # device, the rest on the next device (host memory after the last)
            if n_layer[start] > (0 if d < nd - 1 else 1) and n_part[start] > 0:
                nl, npart = list(n_layer), list(n_part)
                nl[start] -= 1
                npart[start] -= 1
                nl[d] += 1
                npart[d] += 1
                s2 = start + 1 if npart[start] == 0 and start < nd - 1 else start
                bufs = list(over_buf)
                if d < nd - 1:
                    bufs[d] = d + 1
                up = [*over_type[:d], "up", *over_type[d + 1:]]
                gate = [*over_type[:d], "gate", *over_type[d + 1:]]
                attn = [*over_type[:d], "attn", *over_type[d + 1:]]
                chosen = None
                if meets(d, nl, npart, up, bufs):
                    chosen = gate if meets(d, nl, npart, gate, bufs) else up
                elif meets(d, nl, npart, attn, bufs):
                    chosen = attn
                if chosen is not None:
                    n_layer, n_part, start = nl, npart, s2
                    over_type, over_buf = chosen, bufs
        return self.layout(config(n_layer, n_part, over_type, over_buf), ctx)

    @staticmethod
    def _most(fits: Callable[[int], bool], high: int) -> int:
        """The largest k in 0..high with fits(k) (fits(0) assumed; monotone)."""
        if fits(high):
            return high
        lo, hi = 0, high
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid
        return lo

    def fit_info(self, lay: Layout, method: str, reduced_from: int | None) -> FitInfo:
        L, bk = self.L, self.buckets
        host = np.array(lay.buffers) == HOST
        on_host = set(bk.layer[bk.in_block & host].tolist())
        on_gpu = set(bk.layer[bk.in_block & ~host].tolist())
        host_experts = set(bk.layer[bk.in_block & host & bk.routed].tolist())
        full = tuple(il for il in range(L) if il not in on_host)
        cpu = tuple(il for il in range(L) if il not in on_gpu)
        dense_only = tuple(il for il in range(L) if il in on_host and il in on_gpu)
        experts = tuple(il for il in range(L) if il in host_experts)
        return FitInfo(
            context=lay.context, context_reduced_from=reduced_from,
            n_gpu_layers=lay.config.ngl if self.gpus else 0,
            tensor_split=tuple(sum(1 for il in range(L + 1) if lay.assign[il] == d)
                               for d in range(len(self.gpus))),
            full_gpu_layers=full if self.gpus else (), dense_only_gpu_layers=dense_only,
            cpu_layers=cpu if self.gpus else tuple(range(L)), cpu_expert_layers=experts,
            override_tensors=tuple(self.override_strings(lay.config)), method=method)

    def override_strings(self, cfg: Config) -> list[str]:
        """-ot arguments that realize a placement: the user's, else fit's, merged by
        fraction and buffer (llama-server takes a comma-separated list)."""
        out = [f"{p}={b}" for p, b in self.user_overrides()]
        groups: dict[tuple[str, int], list[int]] = {}
        for il, frac, buf in cfg.partial:
            if il < self.L:
                groups.setdefault((frac, buf), []).append(il)
        for (frac, buf), layers in groups.items():
            bk = self.buckets
            if (np.isin(bk.layer, layers) & (bk.fraction_bits >> FRACTION_BIT[frac] & 1 == 1)
                    ).any():
                name = "CPU" if buf == HOST else f"{self._backend_name()}{buf}"
                out.append(f"blk\\.({'|'.join(map(str, layers))})\\.{FRACTIONS[frac]}={name}")
        return out


FRACTION_BIT = {name: i for i, name in enumerate(FRACTIONS)}


@dataclass(frozen=True)
class Buckets:
    """The tensors of a model in buckets that every placement keeps together (the same fit
    fractions match them and the same user override, if any, names them), as arrays: one
    entry per bucket."""

    layer: np.ndarray  # as memory.part_layers numbers blocks
    fraction_bits: np.ndarray  # bit FRACTION_BIT[f] set for each fraction matching
    user: np.ndarray  # the buffer a user override names (where has_user)
    has_user: np.ndarray
    any_user: bool
    in_block: np.ndarray  # a repeating layer's (0 <= layer < L)
    block_layer: np.ndarray  # the layer of those
    routed: np.ndarray  # holds routed experts
    routed_row: np.ndarray  # the layer of those, + 2 (a row from 0)
    # weights, params, routed bytes, routed params, bytes a token reads (layers and the
    # output layer), the output layer's params: what placements sum per buffer
    sums: np.ndarray
    largest_matmul: np.ndarray  # the largest matrix among them (op offload copies it)


@by_model
def buckets(model: ModelSpec, quant: Quant, users: tuple[int | None, ...] | None
            ) -> Buckets:
    """The tensors of `model` at `quant` in buckets (memoized: a plan places a model many
    times); `users`: the buffer a user override names, per tensor part."""
    g = _groups(model, users)
    used = mem.routed_share(model)
    part = mem.tensor_sizes(model, quant).nbytes[g.part_tensor]
    pb = part.astype(np.float64)  # sums of integers below 2**53: exact
    n = len(g.layer)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(g.part_group, weights=values, minlength=n)

    active = total(np.where(g.part_routed, np.trunc(pb * used), pb))
    largest = np.zeros(n, dtype=np.int64)
    np.maximum.at(largest, g.part_group[g.part_matmul], part[g.part_matmul])
    sums = np.column_stack([
        total(pb), g.params, total(np.where(g.part_routed, pb, 0.0)), g.routed_params,
        np.where(g.layer >= 0, active, 0.0), np.where(g.layer == model.layers, g.params, 0.0)])
    return dataclasses.replace(_bucket_keys(model, users), sums=sums, largest_matmul=largest)


@by_model
def _bucket_keys(model: ModelSpec, users: tuple[int | None, ...] | None) -> Buckets:
    """What does not depend on the quantization (the sizes left empty)."""
    g = _groups(model, users)
    layer = g.layer
    user = np.array([HOST if u is None else u for _, u in g.keys], dtype=np.int64)
    has_user = np.array([u is not None for _, u in g.keys], dtype=bool) & (layer >= 0)
    bits = np.array([sum(1 << FRACTION_BIT[f] for f in fr) for fr, _ in g.keys],
                    dtype=np.int64)
    in_block = (layer >= 0) & (layer < model.layers)
    empty = np.zeros(0)
    return Buckets(layer=layer, fraction_bits=bits, user=user, has_user=has_user,
                   any_user=bool(has_user.any()), in_block=in_block,
                   block_layer=layer[in_block], routed=g.routed,
                   routed_row=layer[g.routed] + 2, sums=empty, largest_matmul=empty)


@by_model
def _groups(model: ModelSpec, users: tuple[int | None, ...] | None) -> mem.PartGroups:
    """The buckets' members, which do not depend on the quantization."""
    classes = [_classify(name) for name in mem.part_names(model)]
    keys = [(c[0], users[i] if users else None) for i, c in enumerate(classes)]
    return mem.group_parts(model, keys, [c[1] for c in classes])


_BLOCK = re.compile(r"^blk\.\d+\.")


@functools.cache  # names repeat across models: cached whole
def _classify(name: str) -> tuple[frozenset[str], bool]:
    return _by_suffix(_BLOCK.sub("blk.N.", name))


@functools.cache
def _by_suffix(suffix: str) -> tuple[frozenset[str], bool]:
    return (frozenset(k for k, r in _FRACTION_RE.items() if r.search(suffix)),
            mem.is_matmul_weight(suffix))



def _state_basis(req: Request) -> str:
    """The recurrent layers' share of the cache line (their state does not grow)."""
    a, m = req.model.architecture, req.model
    if a.ssm is None:
        return ""
    state = sum(mem.recurrent_state_bytes(m, req.batch, il) for il in range(a.layers))
    return (f"; included: {sum(a.mamba)} {a.ssm.label} layers' fixed state, "
            f"{format_bytes(state)} for {req.batch} sequence(s) at F32, whatever the context")


def place(req: Request, rig: Rig) -> MemoryEstimate:
    m, L = req.model, req.model.layers
    if req.kv_type not in mem.KV_TYPES or req.kv_type == "fp8":
        valid = ", ".join(k for k in mem.KV_TYPES if k != "fp8")
        raise RigscopeError(f"kv type {req.kv_type!r} is not one llama.cpp has; valid: {valid}")
    if req.kv_type not in ("f16", "bf16", "f32") and not req.flash_attn:
        raise RigscopeError(
            f"a quantized KV cache ({req.kv_type}) needs flash attention in llama.cpp; "
            "use --flash-attn on or --kv-type f16"
        )
    placer = Placer(req, rig)
    lay, method, reduced_from = placer.fit()
    req = dataclasses.replace(req, context=lay.context)
    info = placer.fit_info(lay, method, reduced_from)
    lw = placer.lw
    ub = req.offload.ubatch
    kv_total = sum(placer.kv_layers(lay.context))
    basis = [
        weights_basis(req, lw),
        f"KV cache: {req.batch} x {mem.pad(req.context, mem.KV_PAD)} cells (context padded to "
        f"{mem.KV_PAD}) x {sum(map(m.architecture.has_kv, range(L)))} layers x {m.kv_heads} "
        f"KV heads x {m.head_dim} dims x K+V at {req.kv_type} = {format_bytes(kv_total)}"
        + (f"; sliding-window layers keep {m.sliding_window}+{ub} cells"
           if m.sliding_window else "") + _state_basis(req),
    ]
    basis += fit_basis(req, rig, info)
    if not rig.devices:
        return _llamacpp_cpu_only(req, rig, placer, lay, kv_total, basis, info)
    gpus = rig.devices
    bk = placer.buckets
    host_layer_bytes = int(bk.sums[(np.array(lay.buffers) == HOST) & (bk.layer >= 0)
                                   & (bk.layer <= L), 0].sum())
    offloaded = L - len(info.full_gpu_layers)
    fits = all(d.fits for d in lay.devices) and offloaded == 0 and lay.assign[L] != HOST
    runs = lay.ok
    T = mem.ubatch(req.context, req.batch, ub)
    basis.append(
        f"compute buffer: peak of {'FFN (flash attention)' if req.flash_attn else 'KQ scores'} "
        f"or logits ({m.vocab} x {T} x F32) per device over a {T}-token ubatch"
        + ("; pipeline parallelism keeps 4 copies of split inputs"
           if len(gpus) > 1 and not offloaded and not placer.patterns else ""))
    if host_layer_bytes and T >= OP_OFFLOAD_MIN_BATCH:
        basis.append(f"op offload: the first GPU computes ubatches of {OP_OFFLOAD_MIN_BATCH}+ "
                     "tokens with host-held weights, its compute buffer holding "
                     f"{OP_OFFLOAD_COPIES} copies of the largest")
    basis.append(
        "token embeddings stay in host memory (llama.cpp); "
        f"runtime overhead {format_bytes(RUNTIME_OVERHEAD[gpus[0].backend])} per "
        f"{gpus[0].backend} device"
    )
    if rig.unified:
        basis.append(
            f"Metal may use {format_bytes(gpus[0].usable_bytes)} of "
            f"{format_bytes(gpus[0].memory_bytes)} unified memory (recommendedMaxWorkingSetSize)"
        )
    if offloaded and runs:
        basis.append(f"{offloaded} of {L} layers keep tensors in system RAM "
                     f"({format_bytes(host_layer_bytes)}); those run at RAM speed")
    elif not runs:
        if not lay.host.fits:
            basis.append(f"cannot run: host memory needs {format_bytes(lay.host.used_bytes)} "
                         f"of {format_bytes(lay.host.capacity_bytes)}")
        else:
            over = [d.id for d in lay.devices if not d.fits]
            basis.append(f"cannot run: {', '.join(over)} out of memory with this placement"
                         + (" (--fit off: every layer on the GPUs)" if method == "all layers"
                            else ""))
    if rig.host_default:
        basis.append(f"host RAM assumed {format_bytes(rig.host.memory_bytes)} (set --ram)")
    return dataclasses.replace(result(
        req, rig, lay.devices, lay.host, fits=fits, runs=runs,
        offloaded_layers=offloaded, offloaded_bytes=host_layer_bytes if offloaded else 0,
        weights=lw.total, kv=kv_total, basis=basis,
    ), fit=info)


def fit_basis(req: Request, rig: Rig, info: FitInfo) -> list[str]:
    """What the placement decided, in words."""
    o, out = req.offload, []
    if info.context_reduced_from:
        out.append(f"context: fit reduced the trained {info.context_reduced_from} to "
                   f"{info.context} (no -c given; --fit-ctx {o.fit_ctx} the least)")
    elif req.context_auto:
        out.append(f"context: the model's trained {info.context} (llama-server's default "
                   "with no -c)")
    if not rig.devices:
        return out
    margin = f"{o.fit_target_mib} MiB free per GPU (--fit-target)"
    if info.method == "fit" and info.cpu_expert_layers:
        out.append(f"fit: dense weights of every layer on the GPUs, expert tensors of "
                   f"{len(info.cpu_expert_layers)} layers ({_ranges(info.cpu_expert_layers)}) "
                   f"in host memory, {len(info.full_gpu_layers)} layers whole on the GPUs; "
                   f"leaves {margin}")
    elif info.method == "fit" and info.cpu_layers:
        out.append(f"fit: -ngl {info.n_gpu_layers}: {len(info.cpu_layers)} layers "
                   f"({_ranges(info.cpu_layers)}) in host memory; leaves {margin}")
    elif info.method.startswith("fit"):
        out.append(f"fit: every layer on the GPUs with {margin}")
    elif info.method == "user":
        out.append("placement as given (-ngl/-ts/-ot/--n-cpu-moe): fit changes only the "
                   "context")
    if len(rig.devices) > 1:
        out.append("layers split across GPUs: " + ", ".join(
            f"{g.id} {n}" for g, n in zip(rig.devices, info.tensor_split, strict=True)))
    return out


def _ranges(layers: Sequence[int]) -> str:
    out, run = [], [layers[0]] if layers else []
    for il in layers[1:]:
        if il == run[-1] + 1:
            run.append(il)
        else:
            out.append(run)
            run = [il]
    if run:
        out.append(run)
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in out)


def layer_devices(n_layers: int, capacities: Sequence[float], n_gpu_layers: int) -> list[int]:
    """Device index for layers 0..n_layers (the last is the output layer); -1 is the CPU.

    llama.cpp's rule: the last n_gpu_layers layers (output layer included) go to the GPUs,
    split in proportion to -ts (default: the GPUs' free memory).
    """
    start = max(n_layers + 1 - n_gpu_layers, 0)
    active = n_layers + 1 - start
    total = sum(capacities)
    if not capacities or total <= 0 or active <= 0:
        return [HOST] * (n_layers + 1)
    splits, acc = [], 0.0
    for c in capacities:
        acc += c
        splits.append(acc / total)
    out = []
    for il in range(n_layers + 1):
        if il < start:
            out.append(HOST)
        else:
            out.append(min(bisect_right(splits, (il - start) / active), len(capacities) - 1))
    return out


def host_features(req: Request, rig: Rig) -> frozenset[str]:
    """The CPU features that decide repacking, or none when repacking is off."""
    return frozenset(rig.host.cpu_features) if req.repack else frozenset()


def repack_basis(rp: mem.Repack, features: frozenset[str], mapped: int, copies: int,
                 reclaimable: int, rig: Rig) -> str:
    source = rig.host.cpu_features_source or "assumed"
    return (f"weights twice on this CPU ({source}): llama.cpp maps the file "
            f"({format_bytes(mapped)}, of which {format_bytes(reclaimable)} are pages of "
            f"repacked tensors, reclaimable page cache) and keeps a resident repacked copy "
            f"({format_bytes(copies)}, {'+'.join(rp.buffers)}): {describe(features)}; "
            "--repack off for builds or runs without it (--no-repack)")


def _llamacpp_cpu_only(
    req: Request, rig: Rig, placer: Placer, lay: Layout, kv_total: int, basis: list[str],
    info: FitInfo,
) -> MemoryEstimate:
    m, lw = req.model, placer.lw
    features = host_features(req, rig)
    # -ot ...=CPU changes nothing here: the CPU still repacks what it would (measured with
    # the built llama-server, tests/test_architectures_real.py)
    rp = mem.repack(m, req.quant, features)
    copies, moved = rp.copies, rp.moved
    mapped = (mem.mapped_file_range(m, req.quant, features) if copies else None) or lw.total
    # memory-mapped: a tied LM head shares the embedding's pages; the pages of repacked
    # tensors are page cache once their copies are made
    reclaimable = max(mapped - (lw.total - moved), 0)
    cpu = DeviceUse(
        id=rig.id, capacity_bytes=rig.host.memory_bytes, weights_bytes=mapped + copies,
        repacked_bytes=copies, reclaimable_bytes=reclaimable, kv_bytes=kv_total,
        compute_bytes=mem.llamacpp_compute_bytes(
            m, req.context, req.batch, req.flash_attn, has_output=True, outputs=req.outputs,
            ub=req.offload.ubatch),
        overhead_bytes=mem.output_buffer_bytes(m, req.batch), layers=m.layers,
        **mem.speed_fields(m, lw, range(m.layers), True, req.kv_type),
    )
    host = DeviceUse(id="host", capacity_bytes=0)
    basis.append("CPU only: weights, KV cache and compute buffer in system RAM")
    if copies:
        basis.append(repack_basis(rp, features, mapped, copies, reclaimable, rig))
    return dataclasses.replace(result(
        req, rig, [cpu], host, fits=cpu.fits, runs=cpu.fits, offloaded_layers=0,
        offloaded_bytes=0, weights=cpu.weights_bytes, kv=kv_total, basis=basis,
    ), fit=info)
