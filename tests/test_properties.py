"""Property tests: memory grows with context and batch; the parts sum to the total."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rigscope.api import estimate
from rigscope.catalog import gguf_mixes, models
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
def test_parts_sum_to_the_total(mid, gpus, quant, ctx, batch, engine) -> None:  # noqa: ANN001
    rig = parse_rig([gpus])
    if engine == "vllm" and rig.unified:
        return
    q = quant if engine == "llama.cpp" else "BF16"
    e = estimate(SPECS[mid], rig, quant=q, context=ctx, batch=batch, engine=engine)
    parts = e.weights_bytes if engine == "vllm" else sum(p.weights_bytes for p in e.parts)
    if engine == "llama.cpp":
        tied_copy = sum(t.n_elements for t in SPECS[mid].tensors) and SPECS[mid].tie_embeddings
        assert parts >= e.weights_bytes and (parts == e.weights_bytes or tied_copy)
        assert sum(p.kv_bytes for p in e.parts) == e.kv_cache_bytes
    assert e.total_bytes == sum(p.used_bytes for p in e.parts)
    assert e.compute_bytes + e.overhead_bytes + sum(
        p.weights_bytes + p.kv_bytes for p in e.parts) == e.total_bytes
    assert e.runs or not e.fits
    if e.fits:
        assert e.offloaded_layers == 0 and all(p.fits for p in e.devices)
