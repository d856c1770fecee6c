"""Property tests: memory grows with context and batch; the parts sum to the total."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rigscope.catalog import gguf_mixes, lookup_quant, models
from rigscope.estimator import estimate
from rigscope.estimator.memory import vision_bytes
from rigscope.estimator.quantize import tensor_bytes
from rigscope.hardware import parse_rig
from rigscope.sources import catalog_model

MODEL_IDS = sorted(models())
RIGS = ["rtx-3090", "2xrtx-4090", "rtx-4060-ti-16gb", "m2-ultra-76c", "4xa100-sxm-80gb"]
QUANTS = ["Q4_K_M", "Q8_0", "F16", "IQ4_XS", "Q2_K", "Q5_K_S"]
SPECS = {m: catalog_model(m) for m in MODEL_IDS}


@settings(max_examples=60, deadline=None)
@given(mid=st.sampled_from(MODEL_IDS), gpus=st.sampled_from(RIGS), quant=st.sampled_from(QUANTS),
       ctx=st.integers(1, 65536), extra=st.integers(1, 65536), batch=st.integers(1, 8),
       fa=st.booleans())
def test_memory_grows_with_context_and_batch(mid, gpus, quant, ctx, extra, batch, fa) -> None:  # noqa: ANN001
    rig = parse_rig([gpus])
    kw = dict(quant=quant, flash_attn=fa)
    a = estimate(SPECS[mid], rig, context=ctx, batch=batch, **kw)
    b = estimate(SPECS[mid], rig, context=ctx + extra, batch=batch, **kw)
    c = estimate(SPECS[mid], rig, context=ctx, batch=batch + 1, **kw)
    assert b.kv_cache_bytes >= a.kv_cache_bytes and c.kv_cache_bytes > a.kv_cache_bytes
    # totals compare within one placement (a spill adds the CPU's own compute buffer)
    for more in (b, c):
        if (more.fits, more.runs, more.offloaded_layers) == (a.fits, a.runs, a.offloaded_layers):
            assert more.total_bytes >= a.total_bytes
    assert a.weights_bytes == b.weights_bytes
    if b.fits:
        assert a.fits  # fitting more context implies fitting less


@settings(max_examples=60, deadline=None)
@given(mid=st.sampled_from(MODEL_IDS), gpus=st.sampled_from(RIGS),
       quant=st.sampled_from(sorted(gguf_mixes())), ctx=st.integers(1, 131072),
       batch=st.integers(1, 4), engine=st.sampled_from(["llama.cpp", "vllm"]))
def test_placement_conserves_weights_layers_and_kv(mid, gpus, quant, ctx, batch, engine) -> None:  # noqa: ANN001
    """Whatever the split, every tensor is placed once (llama.cpp loads a tied LM head again
    for the output layer), every layer once, and the devices' KV adds up to the cache."""
    rig = parse_rig([gpus])
    if engine == "vllm" and rig.unified:
        return
    spec = SPECS[mid]
    q = lookup_quant(quant if engine == "llama.cpp" else "BF16", "llama.cpp" if
                     engine == "llama.cpp" else "vllm")
    e = estimate(spec, rig, quant=q, context=ctx, batch=batch, engine=engine)
    file_bytes = sum(tensor_bytes(spec, q, t)[0] for t in spec.tensors)  # tensor by tensor
    if engine == "vllm":  # every GPU holds 1/tp of every tensor, and of a vision tower
        tp = len(e.devices)
        total = file_bytes + vision_bytes(spec)
        assert all(abs(d.weights_bytes * tp - total) < tp for d in e.devices)
        return
    placed = sum(p.weights_bytes for p in e.parts)
    embd = next(t for t in spec.tensors if t.name == "token_embd.weight")
    tied = tensor_bytes(spec, q, embd)[0] if spec.tie_embeddings else 0
    assert placed in (file_bytes, file_bytes + tied)
    # a layer split by --fit (dense weights on a GPU, experts in RAM) is counted by both
    # parts that hold its tensors, and each says so in split_layers
    assert sum(p.layers for p in e.parts) - sum(p.split_layers for p in e.parts) // 2 \
        == spec.layers
    assert sum(p.kv_bytes for p in e.parts) == e.kv_cache_bytes
    assert e.runs or not e.fits
    if e.fits:
        assert e.offloaded_layers == 0 and e.host.layers == 0
    else:
        assert e.offloaded_layers == e.host.layers or not e.runs
