"""A model's weight tensors as llama.cpp lays them out (names and shapes), from its
Architecture. The names and shapes follow llama.cpp's loaders (src/models/*.cpp of the tree
the project builds); tests load random-weight GGUFs written from these layouts into that
llama.cpp, which refuses a missing, extra or misshapen tensor.

Shapes are in ggml order: shape[0] is the row length (the input width of a matrix).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rigscope.specs import Architecture, ModelSpec, Tensor

Add = Callable[..., None]  # add(name, *shape): one tensor of the layer being built


@dataclass(frozen=True)
class Style:
    """How one llama.cpp architecture names and arranges what capabilities leave open."""

    attn_norm: bool = True  # attn_norm before attention (olmo2: none)
    ffn_norm: str = "ffn_norm.weight"  # the norm before the FFN ("": none, cohere)
    attn_post_norm: bool = False  # post_attention_norm after attention (gemma2/3, olmo2, glm4)
    ffn_post_norm: bool = False
    qk_norm: str = "head"  # with qk_norm: "head" {d}, "full" {H*d}, "heads" {d, H} (command-r)
    fused_qkv: bool = False  # attn_qkv instead of attn_q/k/v (phi3)
    fused_up_gate: bool = False  # ffn_up {E, 2F} holds gate and up (phi3, glm4)
    gated_ffn: bool = True  # ffn_gate beside ffn_up (nemotron: relu^2, no gate)
    norm_bias: bool = False  # LayerNorm biases (phimoe)
    ffn_bias: bool = False  # biases on the dense FFN's up and down projections (starcoder2)
    output_bias: bool = False
    shared_gate: bool = False  # qwen2moe: a sigmoid gate on the shared expert
    moe_biases: bool = False  # gpt-oss: router and expert biases
    tied_always: bool = False  # gemma, command-r: the LM head is the embedding matrix
    rope_freqs: bool = False  # one rope_freqs of the full layers' head (gemma4)
    layer_scale: bool = False  # layer_output_scale, one value per layer (gemma4)
    fused_up_gate_exps: bool = False  # ffn_gate_up_exps {E, 2F, X}
    # lfm2's converter names it token_embd_norm; "": none (olmo's LayerNorms have no weights)
    output_norm: str = "output_norm.weight"
    norm_every_layer: bool = False  # nemotron-h: attn_norm before any mixer or FFN
    gate_tensor: bool = False  # an output gate over Q's width in a tensor of its own (afmoe)
    # the latent experts' projections (down, up, a norm of the latent or "")
    latent: tuple[str, str, str] = ("ffn_latent_down", "ffn_latent_up", "")


_NEMOTRON_H = Style(ffn_norm="", gated_ffn=False, norm_every_layer=True)
STYLES: dict[str, Style] = {
    "llama": Style(), "qwen2": Style(), "qwen3": Style(), "exaone": Style(),
    "granite": Style(), "granitemoe": Style(), "qwen2moe": Style(shared_gate=True),
    "qwen3moe": Style(), "llama4": Style(), "deepseek2": Style(),
    "gemma": Style(tied_always=True),
    "gemma2": Style(attn_post_norm=True, ffn_post_norm=True, tied_always=True),
    "gemma3": Style(attn_post_norm=True, ffn_post_norm=True),
    "olmo2": Style(attn_norm=False, ffn_norm="", attn_post_norm=True, ffn_post_norm=True,
                   qk_norm="full"),
    "phi3": Style(fused_qkv=True, fused_up_gate=True),
    "phimoe": Style(norm_bias=True, output_bias=True),
    "glm4": Style(attn_post_norm=True, ffn_post_norm=True, fused_up_gate=True),
    "glm4moe": Style(ffn_norm="post_attention_norm.weight"),
    "command-r": Style(ffn_norm="", qk_norm="heads", tied_always=True),
    "cohere2": Style(ffn_norm="", tied_always=True),
    "gpt-oss": Style(ffn_norm="post_attention_norm.weight", moe_biases=True),
    "nemotron_h": _NEMOTRON_H, "nemotron_h_moe": _NEMOTRON_H,
    "falcon-h1": Style(ffn_norm="ffn_norm"),  # its loader names the tensor without ".weight"
    "mamba2": Style(), "granitehybrid": Style(),
    # Qwen3-Next / Qwen3.5: post_attention_norm is the FFN's norm; a gate on the shared expert
    "qwen3next": Style(ffn_norm="post_attention_norm.weight", shared_gate=True),
    "qwen35": Style(ffn_norm="post_attention_norm.weight"),
    "qwen35moe": Style(ffn_norm="post_attention_norm.weight", shared_gate=True),
    # laid out as llama.cpp's Llama loader does, what capabilities leave open
    **dict.fromkeys(("deci", "deepseek32", "glm-dsa", "qwen3vl", "qwen3vlmoe", "smollm3",
                     "mistral3", "ernie4_5", "hunyuan-dense", "mimo2", "step35",
                     "minimax-m3", "ernie4_5-moe", "hunyuan-moe", "dots1", "exaone-moe",
                     "qwen2vl"),
                    Style()),
    "internlm2": Style(), "xverse": Style(),  # InternLM2's fused wqkv is split on conversion
    "orion": Style(norm_bias=True),
    "olmo": Style(attn_norm=False, ffn_norm="", output_norm=""),  # weightless LayerNorms
    "starcoder2": Style(norm_bias=True, gated_ffn=False, ffn_bias=True),
    "bailingmoe2": Style(fused_qkv=True),  # Ling / Ring 2.0
    "apertus": Style(gated_ffn=False),  # up, xIELU, down
    "nemotron": Style(norm_bias=True, gated_ffn=False),  # LayerNorm1p, relu^2 (Minitron)
    # one LayerNorm before attention and the MLP side by side; biases everywhere
    "phi2": Style(ffn_norm="", norm_bias=True, gated_ffn=False, ffn_bias=True,
                  output_bias=True),
    "stablelm": Style(norm_bias=True, qk_norm="heads"),
    "minicpm": Style(),  # Llama's layout with embedding and residual scales (keys only)
    "gptneox": Style(fused_qkv=True, norm_bias=True, gated_ffn=False, ffn_bias=True),
    "mistral4": Style(fused_up_gate_exps=True),
    "arcee": Style(gated_ffn=False),
    "exaone4": Style(attn_norm=False, ffn_norm="", attn_post_norm=True, ffn_post_norm=True),
    "lfm2": Style(output_norm="token_embd_norm.weight"),
    "lfm2moe": Style(output_norm="token_embd_norm.weight"),
    "afmoe": Style(attn_post_norm=True, ffn_post_norm=True, gate_tensor=True),
    "seed_oss": Style(ffn_norm="post_attention_norm.weight"),
    "olmoe": Style(qk_norm="full"), "minimax-m2": Style(qk_norm="full"),
    "kimi-linear": Style(),
    "kimi-k3": Style(latent=("ffn_routed_down", "ffn_routed_up", "ffn_routed_norm")),
    "gemma4": Style(attn_post_norm=True, ffn_post_norm=True, rope_freqs=True,
                    layer_scale=True, fused_up_gate_exps=True),
}
ARCHS = tuple(sorted(STYLES))
# laid out and loaded by the built llama-server with the weights and caches predicted, but
# the compute buffer not fitted: pending in catalog/architectures.toml, estimates warn
PARTIAL = ("deepseek4",)


def style(arch: str) -> Style:
    return STYLES.get(arch, Style())


def build_tensors(a: Architecture) -> tuple[Tensor, ...]:
    """Every weight tensor of `a`, layer by layer, as llama.cpp's loader expects them."""
    st = style(a.arch)
    E, V = a.hidden, a.vocab
    t: list[Tensor] = [Tensor("token_embd.weight", (E, V))]
    rot = (a.rope_dim or a.head_dim) // 2
    if st.rope_freqs:
        t.append(Tensor("rope_freqs.weight", (a.head_dim // 2,)))
    elif a.rope_factors == "llama3":
        t.append(Tensor("rope_freqs.weight", (rot,)))
    elif a.rope_factors == "longrope":
        t += [Tensor("rope_factors_long.weight", (rot,)),
              Tensor("rope_factors_short.weight", (rot,))]
    for i in range(a.layers):
        t += _dsv4_layer(a, i) if a.csa is not None else _layer(a, st, i)
    if st.output_norm:
        t.append(Tensor(st.output_norm, (E,)))
    if a.csa is not None:  # the hyper-connections' head
        hc = a.csa.hc_mult
        t += [Tensor("output_hc_fn.weight", (hc * E, hc)), Tensor("output_hc_base.weight", (hc,)),
              Tensor("output_hc_scale.weight", (1,))]
    if a.attn_res:
        t.append(Tensor("output_res_score.weight", (E,)))
    if st.norm_bias:
        t.append(Tensor("output_norm.bias", (E,)))
    if not (a.tie_embeddings or st.tied_always):
        t.append(Tensor("output.weight", (E, V)))
        if st.output_bias:
            t.append(Tensor("output.bias", (V,)))
    return tuple(t)


def _layer(a: Architecture, st: Style, i: int) -> list[Tensor]:
    p, E = f"blk.{i}.", a.hidden
    t: list[Tensor] = []

    def add(name: str, *shape: int) -> None:
        t.append(Tensor(p + name, tuple(shape), i))

    attention, mamba, ffn = a.attention[i], a.is_recurrent(i), a.ffn_kinds[i]
    linear = bool(a.attn_linear) and a.attn_linear[i]
    if st.attn_norm and (attention or mamba or linear or (ffn and st.norm_every_layer)):
        add("attn_norm.weight", E)
        if st.norm_bias:
            add("attn_norm.bias", E)
    if mamba:
        MIXERS[a.ssm.kind if a.ssm else "mamba2"](a, add)
    if attention:
        _attention(a, st, add, i)
    elif linear:  # DeciLM: attention replaced by one projection
        add("attn_output.weight", E, E)
    if ffn:
        if st.ffn_norm:
            add(st.ffn_norm, E)
            if st.norm_bias:
                add("ffn_norm.bias", E)
        if ffn == "moe" and a.moe_dense:  # the dense FFN, then the experts (own norms)
            _dense(st, add, E, a.ffn_width(i))
            add("ffn_gate_inp.scale", E)
            for norm in ("pre_ffw_norm_2", "post_ffw_norm_1", "post_ffw_norm_2"):
                add(f"{norm}.weight", E)
            _moe(a, st, add)
            add("ffn_down_exps.scale", a.moe.experts if a.moe else 0)
        elif ffn == "moe":
            _moe(a, st, add)
        else:
            _dense(st, add, E, a.ffn_width(i))
        if st.ffn_post_norm:
            add("post_ffw_norm.weight", E)
    if st.layer_scale:
        add("layer_output_scale.weight", 1)
    if a.attn_res:
        add("attn_res_score.weight", E)
        add("ffn_res_score.weight", E)
    return t


def _dsv4_layer(a: Architecture, i: int) -> list[Tensor]:
    """A DeepSeek-V4 layer (llama.cpp's deepseek4 loader): low-rank Q, one K (= V) head,
    grouped low-rank output, the compressors of its compressed cache and the indexer's,
    hyper-connection mixers, and experts routed by score or, in hash layers, by token id."""
    c, moe = a.csa, a.moe
    assert c is not None and moe is not None
    p, E, H, d = f"blk.{i}.", a.hidden, a.heads, a.head_dim
    t: list[Tensor] = []

    def add(name: str, *shape: int) -> None:
        t.append(Tensor(p + name, tuple(shape), i))

    add("attn_norm.weight", E)
    add("attn_sinks.weight", H)
    add("attn_q_a.weight", E, c.q_lora_rank)
    add("attn_q_a_norm.weight", c.q_lora_rank)
    add("attn_q_b.weight", c.q_lora_rank, H * d)
    add("attn_kv.weight", E, d)
    add("attn_kv_a_norm.weight", d)
    add("attn_output_a.weight", H * d // c.o_groups, c.o_lora_rank, c.o_groups)
    add("attn_output_b.weight", c.o_groups * c.o_lora_rank, E)
    mix = (2 + c.hc_mult) * c.hc_mult
    for part in ("attn", "ffn"):
        add(f"hc_{part}_fn.weight", c.hc_mult * E, mix)
        add(f"hc_{part}_base.weight", mix)
        add(f"hc_{part}_scale.weight", 3)
    ratio = c.ratios[i]
    if ratio:
        width = (2 if ratio == 4 else 1) * d
        add("attn_compressor_kv.weight", E, width)
        add("attn_compressor_gate.weight", E, width)
        add("attn_compressor_ape.weight", width, ratio)
        add("attn_compressor_norm.weight", d)
    if ratio == 4:  # the lightning indexer over the compressed cache
        add("indexer.proj.weight", E, c.index_heads)
        add("indexer.attn_q_b.weight", c.q_lora_rank, c.index_heads * c.index_dim)
        add("indexer_compressor_kv.weight", E, 2 * c.index_dim)
        add("indexer_compressor_gate.weight", E, 2 * c.index_dim)
        add("indexer_compressor_ape.weight", 2 * c.index_dim, ratio)
        add("indexer_compressor_norm.weight", c.index_dim)
    add("ffn_gate_inp.weight", E, moe.experts)
    if i < c.hash_layers:
        add("ffn_gate_tid2eid.weight", moe.used, a.vocab)
    else:
        add("exp_probs_b.bias", moe.experts)
    add("ffn_norm.weight", E)
    add("ffn_gate_exps.weight", E, moe.ffn, moe.experts)
    add("ffn_down_exps.weight", moe.ffn, E, moe.experts)
    add("ffn_up_exps.weight", E, moe.ffn, moe.experts)
    add("ffn_gate_shexp.weight", E, moe.shared_ffn)
    add("ffn_down_shexp.weight", moe.shared_ffn, E)
    add("ffn_up_shexp.weight", E, moe.shared_ffn)
    return t


def _attention(a: Architecture, st: Style, add: Add, il: int) -> None:
    E, H, KV = a.hidden, a.layer_heads(il), a.layer_kv_heads(il)
    if a.mla is not None:
        m = a.mla
        dk = m.nope_dim + m.rope_dim
        if m.q_lora_rank:
            add("attn_q_a_norm.weight", m.q_lora_rank)
        add("attn_kv_a_norm.weight", m.kv_lora_rank)
        if m.q_lora_rank:
            add("attn_q_a.weight", E, m.q_lora_rank)
            add("attn_q_b.weight", m.q_lora_rank, H * dk)
        else:
            add("attn_q.weight", E, H * dk)
        add("attn_kv_a_mqa.weight", E, m.kv_lora_rank + m.rope_dim)
        add("attn_k_b.weight", m.nope_dim, m.kv_lora_rank, H)
        add("attn_v_b.weight", m.kv_lora_rank, m.v_dim, H)
        add("attn_output.weight", H * m.v_dim, E)
        if a.attn_gate:  # an output gate over the heads' values (Kimi K3)
            add("attn_gate.weight", E, H * m.v_dim)
        if m.indexer_heads:  # DeepSeek sparse attention's indexer
            d = m.indexer_dim
            add("indexer.k_norm.weight", d)
            add("indexer.k_norm.bias", d)
            add("indexer.proj.weight", E, m.indexer_heads)
            add("indexer.attn_k.weight", E, d)
            add("indexer.attn_q_b.weight", m.q_lora_rank, m.indexer_heads * d)
        return
    d = a.layer_head_dim(il)
    q, k, v = H * d, KV * d, KV * (d if a.head_dim_swa and a.is_swa(il) else a.head_dim_v)
    if st.fused_qkv:
        add("attn_qkv.weight", E, q + k + v)
    else:
        add("attn_q.weight", E, 2 * q if a.attn_gate else q)
        add("attn_k.weight", E, k)
        if not (a.v_from_k and not a.is_swa(il)):
            add("attn_v.weight", E, v)
    if a.qkv_bias and st.fused_qkv:
        add("attn_qkv.bias", q + k + v)
    elif a.qkv_bias:
        add("attn_q.bias", q)
        add("attn_k.bias", k)
        add("attn_v.bias", v)
    if a.qk_norm:
        if st.qk_norm == "full":
            add("attn_q_norm.weight", q)
            add("attn_k_norm.weight", k)
        elif st.qk_norm == "heads":
            add("attn_q_norm.weight", a.head_dim, H)
            add("attn_k_norm.weight", a.head_dim, KV)
        else:
            add("attn_q_norm.weight", d)
            add("attn_k_norm.weight", d)
    add("attn_output.weight", H * (d if a.head_dim_swa and a.is_swa(il) else a.head_dim_v), E)
    if a.o_bias:
        add("attn_output.bias", E)
    if a.attn_sinks or (a.swa_sinks and a.is_swa(il)):
        add("attn_sinks.weight", H)
    if a.head_gate:
        add("attn_gate.weight", E, H)
    if st.gate_tensor:
        add("attn_gate.weight", E, q)
    if a.msa is not None and a.is_block_sparse(il):  # MiniMax's block-sparse indexer
        add("indexer.q_proj.weight", E, a.msa.heads * a.msa.dim)
        add("indexer.k_proj.weight", E, a.msa.dim)
        add("indexer.q_norm.weight", a.msa.dim)
        add("indexer.k_norm.weight", a.msa.dim)
    if st.attn_post_norm:
        add("post_attention_norm.weight", E)


def _dense(st: Style, add: Add, E: int, width: int, kind: str = "") -> None:
    """A dense FFN; kind "_shexp" names a MoE layer's shared expert."""
    if st.fused_up_gate:
        add(f"ffn_up{kind}.weight", E, 2 * width)
    else:
        if st.gated_ffn:
            add(f"ffn_gate{kind}.weight", E, width)
        add(f"ffn_up{kind}.weight", E, width)
    add(f"ffn_down{kind}.weight", width, E)
    if st.ffn_bias:
        add(f"ffn_up{kind}.bias", width)
        add(f"ffn_down{kind}.bias", E)


def _moe(a: Architecture, st: Style, add: Add) -> None:
    moe = a.moe
    assert moe is not None
    E, X, F = a.hidden, moe.experts, moe.ffn
    D = moe.latent or E  # the routed experts' input and output width
    add("ffn_gate_inp.weight", E, X)
    if moe.latent:  # experts read and write a latent of their own width
        down, up, norm = st.latent
        add(f"{down}.weight", E, D)
        add(f"{up}.weight", D, E)
        if norm:
            add(f"{norm}.weight", D)
    if st.moe_biases:
        add("ffn_gate_inp.bias", X)
    if moe.probs_bias:
        add("exp_probs_b.bias", X)
    if st.fused_up_gate_exps:
        add("ffn_gate_up_exps.weight", D, 2 * F, X)
    else:
        if st.gated_ffn:
            add("ffn_gate_exps.weight", D, F, X)
        add("ffn_up_exps.weight", D, F, X)
    add("ffn_down_exps.weight", F, D, X)
    if st.moe_biases:
        add("ffn_gate_exps.bias", F, X)
        add("ffn_up_exps.bias", F, X)
        add("ffn_down_exps.bias", D, X)
    if moe.shared:
        if st.shared_gate:
            add("ffn_gate_inp_shexp.weight", E)
        _dense(st, add, E, moe.shared_ffn, "_shexp")


def _mamba(a: Architecture, add: Add) -> None:
    s = a.ssm
    assert s is not None
    E = a.hidden
    conv = s.d_inner + 2 * s.n_groups * s.d_state
    add("ssm_in.weight", E, s.d_inner + conv + s.heads)
    add("ssm_conv1d.weight", s.conv_kernel, conv)
    if s.conv_bias:
        add("ssm_conv1d.bias", conv)
    add("ssm_dt.bias", s.heads)
    add("ssm_a", 1, s.heads)
    add("ssm_d", 1, s.heads)
    if s.norm:
        add("ssm_norm.weight", s.d_inner // s.n_groups, s.n_groups)
    add("ssm_out.weight", s.d_inner, E)


def _gated_deltanet(a: Architecture, add: Add) -> None:
    """Gated DeltaNet (llama.cpp's qwen3next/qwen35 loaders): Q, K and V in one projection
    beside the output gate, per-value-head beta and alpha, the decay A and dt bias."""
    s = a.ssm
    assert s is not None
    E = a.hidden
    key = s.d_state * s.n_groups
    conv = 2 * key + s.d_inner
    add("attn_qkv.weight", E, conv)
    add("attn_gate.weight", E, s.d_inner)
    add("ssm_conv1d.weight", s.conv_kernel, conv)
    add("ssm_dt.bias", s.heads)
    add("ssm_a", s.heads)
    if a.arch == "qwen3next":
        add("ssm_ba.weight", E, 2 * s.heads)
    else:
        add("ssm_beta.weight", E, s.heads)
        add("ssm_alpha.weight", E, s.heads)
    add("ssm_norm.weight", s.d_state)
    add("ssm_out.weight", s.d_inner, E)


def _short_conv(a: Architecture, add: Add) -> None:
    """LFM2's gated short convolution: B, C and x in one projection, a depthwise conv."""
    s = a.ssm
    assert s is not None
    add("shortconv.conv.weight", s.conv_kernel, a.hidden)
    add("shortconv.in_proj.weight", a.hidden, 3 * a.hidden)
    add("shortconv.out_proj.weight", a.hidden, a.hidden)


def _kimi_delta(a: Architecture, add: Add) -> None:
    """Kimi Delta Attention (llama.cpp's kimi-linear/kimi-k3 loaders): Q, K and V projected
    and convolved apart, a low-rank decay (f_a, f_b), beta per head, the output gate (K3:
    full rank; Kimi-Linear: low rank) and a norm of a head."""
    s = a.ssm
    assert s is not None
    E, d, hd, H = a.hidden, s.d_inner, s.d_state, s.heads
    for x in "qkv":
        add(f"ssm_conv1d_{x}.weight", s.conv_kernel, 1, d)
    for x in "qkv":
        add(f"attn_{x}.weight", E, d)
    add("ssm_f_a.weight", E, hd)
    add("ssm_f_b.weight", hd, d)
    add("ssm_beta.weight", E, H)
    if a.arch == "kimi-k3":
        add("ssm_a", H)
        add("ssm_dt.bias", d)
        add("ssm_g.weight", E, d)
    else:
        add("ssm_a", 1, H)
        add("ssm_dt.bias", d)
        add("ssm_g_a.weight", E, hd)
        add("ssm_g_b.weight", hd, d)
    add("ssm_norm.weight", hd)
    add("attn_output.weight", d, E)


MIXERS: dict[str, Callable[[Architecture, Add], None]] = {
    "mamba2": _mamba, "gdn": _gated_deltanet, "shortconv": _short_conv, "kda": _kimi_delta}


def build_model(id: str, a: Architecture, *, published_params: int | None = None,
                source: str = "") -> ModelSpec:
    """A ModelSpec whose tensors follow llama.cpp's layout for `a`."""
    return ModelSpec(id=id, architecture=a, tensors=build_tensors(a),
                     published_params=published_params, source=source)
