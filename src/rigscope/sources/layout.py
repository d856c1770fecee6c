"""Generate a model's weight tensors (GGUF names and shapes) from its architecture."""

from __future__ import annotations

from rigscope.specs import ModelSpec, Tensor

ARCHS = ("llama", "qwen2", "gemma2", "phi3")


def build_model(
    id: str,
    arch: str,
    *,
    layers: int,
    hidden: int,
    intermediate: int,
    heads: int,
    kv_heads: int,
    vocab: int,
    max_context: int,
    head_dim: int | None = None,
    tie_embeddings: bool = False,
    experts: int = 0,
    experts_used: int = 0,
    sliding_window: int = 0,
    swa_every: int = 0,
    attn_bias: bool = False,
    rope_freqs: bool = False,
    published_params: int | None = None,
    source: str = "",
) -> ModelSpec:
    """A ModelSpec whose tensors follow llama.cpp's layout for `arch`."""
    d = head_dim or hidden // heads
    E, F, V = hidden, intermediate, vocab
    q, kv = heads * d, kv_heads * d
    t: list[Tensor] = [Tensor("token_embd.weight", (E, V))]
    if rope_freqs:
        t.append(Tensor("rope_freqs.weight", (d // 2,)))
    for i in range(layers):
        p = f"blk.{i}."
        t.append(Tensor(p + "attn_norm.weight", (E,), i))
        if arch == "phi3":
            t.append(Tensor(p + "attn_qkv.weight", (E, q + 2 * kv), i))
        else:
            t += [
                Tensor(p + "attn_q.weight", (E, q), i),
                Tensor(p + "attn_k.weight", (E, kv), i),
                Tensor(p + "attn_v.weight", (E, kv), i),
            ]
        if attn_bias:
            t += [
                Tensor(p + "attn_q.bias", (q,), i),
                Tensor(p + "attn_k.bias", (kv,), i),
                Tensor(p + "attn_v.bias", (kv,), i),
            ]
        t.append(Tensor(p + "attn_output.weight", (q, E), i))
        if arch == "gemma2":
            t.append(Tensor(p + "post_attention_norm.weight", (E,), i))
        t.append(Tensor(p + "ffn_norm.weight", (E,), i))
        if experts:
            t += [
                Tensor(p + "ffn_gate_inp.weight", (E, experts), i),
                Tensor(p + "ffn_gate_exps.weight", (E, F, experts), i),
                Tensor(p + "ffn_up_exps.weight", (E, F, experts), i),
                Tensor(p + "ffn_down_exps.weight", (F, E, experts), i),
            ]
        elif arch == "phi3":
            t += [
                Tensor(p + "ffn_up.weight", (E, 2 * F), i),
                Tensor(p + "ffn_down.weight", (F, E), i),
            ]
        else:
            t += [
                Tensor(p + "ffn_gate.weight", (E, F), i),
                Tensor(p + "ffn_up.weight", (E, F), i),
                Tensor(p + "ffn_down.weight", (F, E), i),
            ]
        if arch == "gemma2":
            t.append(Tensor(p + "post_ffw_norm.weight", (E,), i))
    t.append(Tensor("output_norm.weight", (E,)))
    if not tie_embeddings:
        t.append(Tensor("output.weight", (E, V)))
    return ModelSpec(
        id=id, arch=arch, layers=layers, hidden=hidden, intermediate=intermediate, heads=heads,
        kv_heads=kv_heads, head_dim=d, head_dim_v=d, vocab=vocab, max_context=max_context,
        tensors=tuple(t), tie_embeddings=tie_embeddings, experts=experts,
        experts_used=experts_used, sliding_window=sliding_window, swa_every=swa_every,
        published_params=published_params, source=source,
    )
