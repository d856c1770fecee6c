"""Typed values shared by every layer: models, quantizations, hardware, estimates."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class Tensor:
    """One weight tensor. shape is in ggml order: shape[0] is the row length."""

    name: str
    shape: tuple[int, ...]
    layer: int | None = None
    ggml_type: str | None = None  # exact type when read from a GGUF file
    nbytes: int | None = None  # exact size when read from a GGUF file
    offset: int | None = None  # where its data starts in the GGUF file
    # set once at creation (placement reads them for every tensor, many times)
    n_elements: int = field(init=False, repr=False, compare=False)
    # llama-quantize quantizes it (tensor_allows_quantization): 2-D and 3-D weights, not
    # norms, MoE routers, Mamba's convolution or MiniMax's indexer projections, which stay
    # F32 as converters write them
    quantizable: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = 1
        for d in self.shape:
            n *= d
        name = self.name
        object.__setattr__(self, "n_elements", n)
        object.__setattr__(self, "quantizable", (
            len(self.shape) >= 2 and name.endswith("weight") and "_norm.weight" not in name
            and "ffn_gate_inp.weight" not in name and "ssm_conv1d" not in name
            and "shortconv.conv" not in name and "indexer.k_proj" not in name
            and "indexer.q_proj" not in name and "tid2eid" not in name))


@dataclass(frozen=True)
class MoE:
    """Mixture of experts: routed experts, the ones a token uses, shared experts."""

    experts: int
    used: int  # experts each token is routed to
    ffn: int  # one expert's FFN width
    shared: int = 0  # shared experts every token also runs
    shared_ffn: int = 0  # their FFN width, all shared experts together
    probs_bias: bool = False  # a learned per-expert routing bias (DeepSeek-V3's noaux_tc)
    latent: int = 0  # routed experts work in a smaller latent width (Nemotron 3 Super/Ultra)


@dataclass(frozen=True)
class MLA:
    """Multi-head latent attention (DeepSeek): the cache holds a compressed latent per token."""

    kv_lora_rank: int  # the latent's width, cached
    rope_dim: int  # qk_rope_head_dim: the positional part of K, cached beside the latent
    nope_dim: int  # qk_nope_head_dim
    v_dim: int  # v_head_dim
    q_lora_rank: int = 0  # 0: queries are not compressed
    # DeepSeek sparse attention's lightning indexer: its heads and key size (one key per token
    # and layer is cached beside the latent), and the tokens each query attends to
    indexer_heads: int = 0
    indexer_dim: int = 0
    indexer_top_k: int = 0


@dataclass(frozen=True)
class BlockSparse:
    """MiniMax's block-sparse attention (MSA): an indexer of `heads` heads of `dim` scores
    blocks of `block` cached tokens and each query attends to `top_blocks` of them (the
    `local_blocks` nearest always); the indexer's key and value (one head of `dim` each)
    are cached per token in every sparse layer."""

    heads: int
    dim: int
    block: int
    top_blocks: int
    local_blocks: int = 1


@dataclass(frozen=True)
class CompressedAttention:
    """DeepSeek-V4's attention: one 512-wide K (= V) head per token in a sliding window,
    plus, per layer, a compressed cache of every `ratio`-th position (4: with a lightning
    indexer over it, 128: without; 0: the window only); queries through a low-rank
    projection, outputs through `o_groups` low-rank groups; the residual stream kept as
    `hc_mult` hyper-connections; the first `hash_layers` MoE layers route by a token-id
    table instead of scores."""

    ratios: tuple[int, ...]  # per layer: 0, 4 or 128
    q_lora_rank: int
    o_lora_rank: int
    o_groups: int
    hc_mult: int
    hash_layers: int
    index_heads: int
    index_dim: int
    index_top_k: int


@dataclass(frozen=True)
class SSM:
    """A recurrent mixer: a fixed-size state per sequence instead of a KV cache.

    kind "mamba2": Mamba-2 (ssm_in, the scan's A and D). kind "gdn": Gated DeltaNet
    (Qwen3-Next, Qwen3.5), in llama.cpp's terms: d_inner is the value width (value heads x
    head size), d_state a key head's size, n_groups the key heads, heads the value heads.
    Both keep a convolution window and a d_state x d_inner state per sequence (so does
    kind "kda", Kimi Delta Attention: d_inner = heads x head size, d_state the head size,
    n_groups the heads, Q, K and V convolved apart). kind
    "shortconv": LFM2's gated short convolution over the hidden width (d_inner), a window
    only (d_state 0).
    """

    d_inner: int
    d_state: int
    n_groups: int
    conv_kernel: int
    heads: int
    state_dtype_bytes: int = 4  # the SSM state's dtype where a config names one (vLLM);
    # llama.cpp keeps every recurrent state in F32
    norm: bool = True  # a gated RMS norm before the output projection
    conv_bias: bool = True
    kind: str = "mamba2"

    @property
    def label(self) -> str:
        return {"gdn": "Gated DeltaNet", "shortconv": "short-convolution",
                "kda": "Kimi Delta Attention"}.get(self.kind, "Mamba-2")


@dataclass(frozen=True)
class Architecture:
    """What a model is, by capability: enough to lay out its tensors and size its caches.

    Per layer: `attention` is "full", "sliding" (a window of `window` tokens), "chunked"
    (attention within blocks of `window` tokens, Llama 4) or "" (no attention: a Mamba or an
    FFN-only block); `mamba` marks Mamba-2 mixers; `ffn` is "dense", "moe" or "".
    """

    model_type: str  # as config.json names it
    arch: str  # llama.cpp's architecture name (how its tensors are laid out)
    layers: int
    hidden: int
    vocab: int
    max_context: int
    heads: int
    kv_heads: int
    head_dim: int  # K (and Q) per head
    head_dim_v: int
    ffn: int  # dense FFN width (the widest, where layers differ)
    attention: tuple[str, ...]
    ffn_kinds: tuple[str, ...]
    mamba: tuple[bool, ...] = ()
    window: int = 0
    moe: MoE | None = None
    mla: MLA | None = None
    ssm: SSM | None = None
    msa: BlockSparse | None = None  # block-sparse attention in the MoE layers (MiniMax-M3)
    csa: CompressedAttention | None = None  # DeepSeek-V4's compressed attention
    tie_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    attn_sinks: bool = False  # a learned sink logit per head in every attention layer
    swa_sinks: bool = False  # ... in the sliding layers only (MiMo-V2)
    attn_gate: bool = False  # an output gate computed beside Q (attn_q twice as wide)
    # sliding layers' head size, KV heads and query heads where they differ from the full
    # layers' (Gemma 4, MiMo-V2, Step 3.5)
    head_dim_swa: int = 0
    kv_heads_swa: int = 0
    heads_swa: int = 0
    head_gate: bool = False  # a sigmoid gate per head on the attention output (Step 3.5)
    attn_res: bool = False  # attention residuals across layers: a score vector per
    # sublayer and one before the LM head (Kimi K3)
    v_from_k: bool = False  # full-attention layers have no V projection: V is K (Gemma 4)
    moe_dense: bool = False  # MoE layers run a dense FFN beside the experts (Gemma 4)
    kv_heads_per_layer: tuple[int, ...] = ()  # where KV heads vary by layer (DeciLM)
    attn_linear: tuple[bool, ...] = ()  # attention replaced by one projection (DeciLM)
    # rope scaling that ships factor tensors: "llama3" (rope_freqs, Llama 3.1+), "longrope"
    # (rope_factors_long/short, Phi-3.5/4); rope_dim: rotated dims per head (0: all)
    rope_factors: str = ""
    rope_dim: int = 0
    dense_ffn: tuple[int, ...] = ()  # per-layer dense FFN width where it varies
    nextn_layers: int = 0  # multi-token-prediction layers a GGUF carries (never loaded)
    vision_params: int = 0  # vision tower in the checkpoint (llama.cpp: a separate mmproj)
    native_experts: str = ""  # "MXFP4": experts ship quantized and GGUF mixes keep them

    def is_swa(self, il: int) -> bool:
        return self.attention[il] in ("sliding", "chunked")

    def layer_head_dim(self, il: int) -> int:
        return self.head_dim_swa if self.head_dim_swa and self.is_swa(il) else self.head_dim

    def is_block_sparse(self, il: int) -> bool:
        """A layer with MiniMax's block-sparse attention: every layer from the first MoE one
        (llama.cpp: past the leading dense blocks)."""
        return self.msa is not None and "moe" in self.ffn_kinds and \
            il >= self.ffn_kinds.index("moe")

    def layer_heads(self, il: int) -> int:
        return self.heads_swa if self.heads_swa and self.is_swa(il) else self.heads

    @property
    def max_heads(self) -> int:
        return max(self.heads, self.heads_swa)

    def layer_kv_heads(self, il: int) -> int:
        if self.kv_heads_per_layer:
            return self.kv_heads_per_layer[il]
        return self.kv_heads_swa if self.kv_heads_swa and self.is_swa(il) else self.kv_heads

    def has_kv(self, il: int) -> bool:
        return bool(self.attention[il])

    def is_recurrent(self, il: int) -> bool:
        return bool(self.mamba) and self.mamba[il]

    def ffn_width(self, il: int) -> int:
        return self.dense_ffn[il] if self.dense_ffn else self.ffn

    def active_ffn(self) -> int:
        """The widest FFN activation a token produces at once: a dense layer's width, or a
        MoE layer's routed experts together (top-k x expert width) or its shared experts,
        which run one after the other."""
        widths = [0]
        for il, kind in enumerate(self.ffn_kinds):
            if kind == "dense":
                widths.append(self.ffn_width(il))
            elif kind == "moe" and self.moe is not None:
                widths.append(max(self.moe.used * self.moe.ffn, self.moe.shared_ffn))
        return max(widths)


@dataclass(frozen=True)
class ModelSpec:
    """A model: its architecture and its weight tensors (as llama.cpp lays them out)."""

    id: str
    architecture: Architecture
    tensors: tuple[Tensor, ...]
    file_type: str | None = None  # the GGUF's quant mix when read from a file
    published_params: int | None = None
    source: str = ""
    checkpoint_format: str | None = None  # FP8, MXFP4, AWQ, ... as the checkpoint ships
    notes: tuple[str, ...] = ()  # what reading it found, for the basis
    warnings: tuple[str, ...] = ()  # what reading it had to assume (also in the basis)

    @property
    def arch(self) -> str:
        return self.architecture.arch

    @property
    def layers(self) -> int:
        return self.architecture.layers

    @property
    def hidden(self) -> int:
        return self.architecture.hidden

    @property
    def intermediate(self) -> int:
        return self.architecture.ffn

    @property
    def heads(self) -> int:
        return self.architecture.heads

    @property
    def kv_heads(self) -> int:
        return self.architecture.kv_heads

    @property
    def head_dim(self) -> int:
        return self.architecture.head_dim

    @property
    def head_dim_v(self) -> int:
        return self.architecture.head_dim_v

    @property
    def vocab(self) -> int:
        return self.architecture.vocab

    @property
    def max_context(self) -> int:
        return self.architecture.max_context

    @property
    def tie_embeddings(self) -> bool:
        return self.architecture.tie_embeddings

    @property
    def experts(self) -> int:
        return self.architecture.moe.experts if self.architecture.moe else 0

    @property
    def experts_used(self) -> int:
        return self.architecture.moe.used if self.architecture.moe else 0

    @property
    def sliding_window(self) -> int:
        return self.architecture.window

    def is_swa_layer(self, il: int) -> bool:
        return self.architecture.is_swa(il)

    @cached_property
    def params(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @cached_property
    def exact_sizes(self) -> bool:
        """True when the tensors carry their byte sizes (read from a GGUF file)."""
        return any(t.nbytes is not None for t in self.tensors)

    @cached_property
    def active_params(self) -> int:
        """Parameters read per token: MoE models use `used` of their routed experts."""
        moe = self.architecture.moe
        if moe is None:
            return self.params
        return sum(t.n_elements * moe.used // moe.experts if "_exps." in t.name
                   else t.n_elements for t in self.tensors)


@dataclass(frozen=True)
class GgmlType:
    name: str
    id: int
    block: int
    bytes: int

    def row_bytes(self, n: int) -> int:
        """Bytes of n values (n a multiple of the block size)."""
        return n // self.block * self.bytes


@dataclass(frozen=True)
class Quant:
    """A weight format: a llama.cpp GGUF mix (kind 'gguf') or a non-GGUF format."""

    name: str
    kind: str  # "gguf" | "format"
    about: str
    base: str = ""  # gguf: the type most weights get
    bits: float = 16  # format: bits per quantized weight
    group: int = 0
    scale_bytes: float = 0.0
    embeddings: str = "quant"
    engines: tuple[str, ...] = ("llama.cpp",)
    rank: int = 0  # quality order (higher is closer to the original weights)
    scope: str = "linear"  # format: "experts" when only MoE experts take it (others BF16)
    asked: str = ""  # the producer's name the user gave, mapped to this mix, and why


@dataclass(frozen=True)
class Engine:
    name: str
    family: str  # the engine whose memory rules apply (Ollama runs llama.cpp)
    backends: frozenset[str]  # cpu | cuda | rocm | metal: where it runs
    default_quant: str  # what it loads when --quant is not given
    about: str


@dataclass(frozen=True)
class Accelerator:
    """A compute device: a GPU, an Apple chip at one memory size, or the CPU with its RAM."""

    id: str
    name: str
    backend: str  # cuda | rocm | metal | vulkan | sycl | cpu: the llama.cpp backend it runs
    memory_bytes: int
    usable_bytes: int  # what the backend lets one process allocate (Metal working set)
    bandwidth_gbs: float | None
    fp16_tflops: float | None
    hw_class: str  # gddr | hbm | unified | ram
    memory_source: str = "spec"
    fp16_accumulate: str = ""
    tdp_w: float | None = None
    price_usd: float | None = None
    price_kind: str = ""
    price_date: str = ""
    pcie: str = ""
    nvlink_gbs: float = 0.0
    source: str = ""
    arch: str = ""
    cores: int = 0  # Apple GPU cores
    native_backend: str = ""  # the vendor's own backend when `backend` is another (Vulkan)
    # CPU only: ggml's compile-time CPU features of the llama.cpp build that runs here (avx2,
    # avx512, amx, neon, dotprod, i8mm); they decide which weights llama.cpp repacks
    cpu_features: tuple[str, ...] = ()
    cpu_features_source: str = ""
    # CPU only: llama.cpp's own speed on this CPU, measured with the build here (rigscope
    # system): the fixed cost per layer of a decode token and of a prefill ubatch, and per
    # weight type the bytes/s decode reads and the FLOP/s prefill mat-muls reach
    engine: EngineCpu | None = None

    @property
    def native(self) -> str:
        """The vendor's own backend (cuda, rocm, metal, sycl, cpu), whatever runs it."""
        return self.native_backend or self.backend

    @property
    def speed_key(self) -> str:
        """The backend as the speed constants know it: Vulkan per vendor (vulkan-cuda,
        vulkan-rocm, vulkan-sycl, vulkan-metal), which run it at different efficiencies."""
        return self.backend if self.backend == self.native else f"{self.backend}-{self.native}"

    @classmethod
    def cpu(cls, memory_bytes: int, bandwidth_gbs: float | None = None,
            tflops: float | None = None, features: tuple[str, ...] | None = None,
            features_source: str = "", engine: EngineCpu | None = None) -> Accelerator:
        """The CPU with its RAM. Unmeasured bandwidth, FLOPS and features take typical values
        (CPU_DEFAULTS), and say so."""
        return cls(
            id="cpu", name="CPU (system RAM)", backend="cpu", memory_bytes=memory_bytes,
            usable_bytes=memory_bytes,
            bandwidth_gbs=bandwidth_gbs or CPU_DEFAULTS.ram_gbs,
            fp16_tflops=tflops or CPU_DEFAULTS.tflops, hw_class="ram",
            memory_source="measured" if bandwidth_gbs else "assumed",
            cpu_features=CPU_DEFAULTS.features if features is None else features,
            cpu_features_source=features_source or (
                CPU_DEFAULTS.features_source if features is None else "given"),
            engine=engine,
        )


@dataclass(frozen=True)
class EngineCpu:
    """llama.cpp's speed on one CPU as the build there measured it on random-weight models
    (system.measure_engine_cpu): what small models' speed depends on beyond bandwidth."""

    layer_s: float  # fixed cost per layer per decode token (graph nodes, thread barriers)
    pp_layer_s: float  # ... per layer per prefill ubatch
    # (weight type, decode bytes/s, prefill mat-mul FLOP/s), by the mix's main type
    kernels: tuple[tuple[str, float, float], ...]
    source: str

    def kernel(self, weight_type: str) -> tuple[float, float] | None:
        """(decode bytes/s, prefill FLOP/s) for weights mostly of this type, if measured."""
        return next(((d, f) for t, d, f in self.kernels if t == weight_type), None)


@dataclass(frozen=True)
class CpuDefaults:
    ram_gbs: float  # host RAM bandwidth when not measured
    tflops: float  # CPU matmul throughput when not measured
    features: tuple[str, ...]  # ggml CPU features of the llama.cpp build
    features_source: str


CPU_DEFAULTS = CpuDefaults(
    ram_gbs=64.0,  # dual-channel DDR5
    tflops=1.0,  # 8-16 AVX2 cores
    features=("avx2",),  # a typical x86-64 desktop or server CPU
    features_source="assumed: an x86-64 CPU with AVX2; --cpu-isa sets it",
)


# Links between nodes: (GB/s one way, seconds of latency per message). Bandwidths are the
# links' line rates (NVLink: the NVLink Switch between nodes of a GB200 NVL72 rack);
# latencies are typical figures for NCCL point-to-point over each (assumed).
INTERCONNECTS = {"nvlink": (900.0, 2e-6), "ib-400g": (50.0, 5e-6), "eth-100g": (12.5, 2e-5),
                 "eth-25g": (3.125, 3e-5), "eth-10g": (1.25, 5e-5)}


@dataclass(frozen=True)
class Rig:
    """Accelerators plus the host's system RAM. CPU-only rigs have no accelerators."""

    devices: tuple[Accelerator, ...]
    host: Accelerator
    host_default: bool = False  # the RAM size was assumed, not given
    local: bool = False  # this machine (plans price it as owned)
    links: str | None = None  # how the GPUs connect: x16, x8/x8, x1 (risers); None: unknown
    nodes: int = 1  # machines; `devices` are all of their GPUs, node by node
    interconnect: str | None = None  # between nodes (hardware.INTERCONNECTS)

    @property
    def unified(self) -> bool:
        """An Apple machine: one memory, priced and powered as a whole."""
        return any(d.native == "metal" for d in self.devices)

    @property
    def shared_memory(self) -> bool:
        """The GPU shares the CPU's memory (Apple, an APU, DGX Spark, Jetson): what the GPU
        holds comes out of the host's RAM, and nothing crosses a PCIe link."""
        return self.unified or any(d.hw_class == "lpddr" for d in self.devices)

    @property
    def per_node(self) -> int:
        return len(self.devices) // max(self.nodes, 1)

    @property
    def id(self) -> str:
        if self.local:
            return f"local:{self.spec}"
        if self.nodes > 1:
            return f"{self.nodes} nodes x {self.spec} ({self.interconnect})"
        other = next((d.backend for d in self.devices if d.backend != d.native), None)
        return self.spec + (" (x1 risers)" if self.links == "x1" else "") + (
            f" ({other})" if other else "")

    @property
    def spec(self) -> str:
        """The --gpu/--cpu spelling of this rig (of one node)."""
        if not self.devices:
            return f"cpu:{round(self.host.memory_bytes / 1024**3)}gb"
        ids = [d.id for d in self.devices[:self.per_node]]
        if len(set(ids)) == 1:
            return ids[0] if len(ids) == 1 else f"{len(ids)}x{ids[0]}"
        return "+".join(ids)


@dataclass(frozen=True)
class DeviceUse:
    """Memory one device (or the host) holds, by part."""

    id: str
    capacity_bytes: int
    weights_bytes: int = 0
    kv_bytes: int = 0
    compute_bytes: int = 0
    overhead_bytes: int = 0
    layers: int = 0
    # of weights_bytes: mapped file pages whose tensors were repacked into a resident copy
    # (page cache the kernel may reclaim), and the repacked copies themselves
    reclaimable_bytes: int = 0
    repacked_bytes: int = 0
    # what one decoded token touches here, for the speed model
    read_bytes: int = 0  # weight bytes read per token (MoE: active experts; no embedding rows)
    routed_bytes: int = 0  # MoE: all routed experts here (a batch reads more of them)
    routed_params: int = 0  # their weights
    moe_layers: int = 0  # layers here that route to experts
    params: int = 0  # weights multiplied per token (2 FLOPs each)
    output_params: int = 0  # of them, the LM head's (a prompt needs its last token's only)
    kv_token_bytes: int = 0  # KV bytes per token of context in full-attention layers
    swa_token_bytes: int = 0  # the same in sliding-window layers (read up to the window)
    state_read_bytes: int = 0  # recurrent state a token reads and writes (Mamba layers)
    split_layers: int = 0  # layers whose tensors this part shares with another device

    @property
    def used_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.overhead_bytes

    @property
    def resident_bytes(self) -> int:
        """What must stay in memory: used minus page cache the kernel may drop."""
        return self.used_bytes - self.reclaimable_bytes

    @property
    def fits(self) -> bool:
        return self.resident_bytes <= self.capacity_bytes


@dataclass(frozen=True)
class Offload:
    """llama.cpp's placement knobs, as llama-server takes them (defaults: its own)."""

    fit: bool = True  # --fit (on by default since late 2025)
    fit_target_mib: int = 1024  # --fit-target: free memory fit leaves on each device
    fit_ctx: int = 4096  # --fit-ctx: the least context fit reduces to
    n_gpu_layers: int | None = None  # -ngl (None: auto, all layers unless fit moves them)
    tensor_split: tuple[float, ...] = ()  # -ts (empty: in proportion to free memory)
    n_cpu_moe: int = 0  # --n-cpu-moe: experts of the first N layers in host memory
    cpu_moe: bool = False  # --cpu-moe: every layer's experts in host memory
    overrides: tuple[tuple[str, str], ...] = ()  # -ot PATTERN=BUFFER, in order
    n_ubatch: int = 512  # -ub: physical batch (compute buffers, prefill steps)
    n_batch: int = 2048  # -b: logical batch (caps the physical one)

    @property
    def ubatch(self) -> int:
        return min(self.n_ubatch, self.n_batch)

    @property
    def user_set(self) -> bool:
        """Whether the user placed weights themselves (fit then only reduces context)."""
        return bool(self.n_gpu_layers is not None or self.tensor_split or self.n_cpu_moe
                    or self.cpu_moe or self.overrides)


@dataclass(frozen=True)
class FitInfo:
    """Where llama.cpp puts each layer, and the context it runs with."""

    context: int
    context_reduced_from: int | None  # the trained context fit reduced (None: not reduced)
    n_gpu_layers: int
    tensor_split: tuple[int, ...]  # layers per GPU, as fit writes -ts
    full_gpu_layers: tuple[int, ...]  # every tensor on a GPU
    dense_only_gpu_layers: tuple[int, ...]  # attention and dense weights on a GPU, some
    # expert tensors in host memory
    cpu_layers: tuple[int, ...]  # wholly in host memory (below -ngl)
    cpu_expert_layers: tuple[int, ...]  # layers with expert tensors in host memory
    override_tensors: tuple[str, ...]  # -ot PATTERN=BUFFER that realize it
    method: str  # "fit", "fit: context only", "user", "all layers"


@dataclass(frozen=True)
class Request:
    """What to place: the model, its format, the engine and the workload shape."""

    model: ModelSpec
    quant: Quant
    engine: Engine
    context: int
    batch: int
    kv_type: str
    flash_attn: bool
    repack: bool = True  # llama.cpp on the CPU: repack weights where the build does
    outputs: str = "sequences"  # llama.cpp: logits rows reserved (see memory.logits_rows)
    mem_fraction: float | None = None  # the engine's own memory knob (None: its default)
    engine_version: str | None = None  # vLLM: 0.7.1 (V0) or later (V1)
    offload: Offload = field(default_factory=Offload)  # llama.cpp's placement knobs
    context_auto: bool = False  # no context given: the engine chooses (llama.cpp: trained)


@dataclass(frozen=True)
class MemoryEstimate:
    request: Request  # what was placed: model, format, engine, workload shape
    rig: Rig
    devices: tuple[DeviceUse, ...]  # accelerators, or the CPU for CPU-only rigs
    host: DeviceUse  # what sits in system RAM beside them (spilled layers, embeddings)
    fits: bool
    runs: bool
    offloaded_layers: int
    offloaded_bytes: int
    weights_bytes: int
    kv_cache_bytes: int
    max_sequences: int | None = None  # paged engines: sequences of `context` the pool holds
    kv_capacity_tokens: int | None = None  # paged engines: the pool in tokens, as printed
    basis: tuple[str, ...] = field(default=())
    fit: FitInfo | None = None  # llama.cpp: the placement and the context it chose

    @property
    def model(self) -> ModelSpec:
        return self.request.model

    @property
    def quant(self) -> Quant:
        return self.request.quant

    @property
    def engine(self) -> Engine:
        return self.request.engine

    @property
    def context(self) -> int:
        return self.request.context

    @property
    def batch(self) -> int:
        return self.request.batch

    @property
    def kv_type(self) -> str:
        return self.request.kv_type

    @property
    def flash_attn(self) -> bool:
        return self.request.flash_attn

    @property
    def parts(self) -> tuple[DeviceUse, ...]:
        return (*self.devices, self.host)

    @property
    def compute_bytes(self) -> int:
        return sum(p.compute_bytes for p in self.parts)

    @property
    def overhead_bytes(self) -> int:
        return sum(p.overhead_bytes for p in self.parts)

    @property
    def total_bytes(self) -> int:
        return sum(p.used_bytes for p in self.parts)

    @property
    def repacked_bytes(self) -> int:
        return sum(p.repacked_bytes for p in self.parts)

    @property
    def reclaimable_bytes(self) -> int:
        return sum(p.reclaimable_bytes for p in self.parts)


@dataclass(frozen=True)
class SpeedEstimate:
    """Predicted speed of one configuration; rates per second, times in seconds."""

    decode_tokens_per_s: float  # each sequence, while `batch` sequences decode together
    aggregate_tokens_per_s: float  # all sequences together
    prefill_tokens_per_s: float
    ttft_s: float
    e2e_s: float
    load_time_s: float
    network_s: float  # what the network adds to one request's e2e
    decode_band: float  # relative error band (calibration residuals), e.g. 0.15 = +-15%
    prefill_band: float
    # the decode step's memory time at spec bandwidth over its predicted time: <= 1, and how
    # close the prediction is to what the hardware physically allows
    decode_roofline_fraction: float
    # as a client of the engine's usual server measures them (None: no server modelled)
    server: str | None = None
    served_decode_tokens_per_s: float | None = None
    served_ttft_s: float | None = None
    basis: tuple[str, ...] = field(default=())
