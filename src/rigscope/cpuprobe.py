"""llama.cpp's own speed on this CPU, measured with the build here on random-weight models.

The RAM probe and an F32 matrix product say what the machine can do; how much of it
llama.cpp's kernels reach differs from one CPU to the next (on a 2-vCPU AMD EPYC VM decode
read 11-18 GB/s of a 28-44 GB/s RAM probe, and Q4_1 prefill ran at half of Q4_0's; on an
Intel VM both came close to the probe). For small models a fixed cost per layer weighs as
much as the bytes. So `rigscope system` asks the engine, once a week:

- one 512-wide F16 model at 2 and 10 layers: what one more layer costs (its weights, and a
  fixed cost per layer of a decode token and of a prefill ubatch: norms, rope, softmax and
  thread barriers, which tiny 64-wide layers understate fourfold);
- one small model (768 wide, 8 layers) in each common mix: per weight type, the bytes/s
  decode reads (the bytes rigscope's estimate says a token reads, over the measured time
  less the fixed costs) and the FLOP/s prefill mat-muls reach.

The tokenizer comes from a real GGUF (the SmolLM2 file the project installs); the models are
written by llamacpp.synth, quantized by the built llama-quantize and timed by llama-bench.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rigscope.estimator import estimate
from rigscope.estimator.speed import prompt_products
from rigscope.hardware import parse_rig
from rigscope.llamacpp.probe import probe_speed, quantize
from rigscope.llamacpp.synth import write_gguf
from rigscope.sources import resolve_model
from rigscope.specs import DeviceUse, EngineCpu, ModelSpec

MIXES = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_1", "Q4_0")
LAYERS = (2, 10)  # two depths of one 512-wide F16 model: the cost of one more layer
PP_TOKENS = 256  # prefill test size
TG_TOKENS = 64
REPS = 3  # the best of three: a shared machine only ever slows a run down


def _llama(directory: Path, hidden: int, heads: int, kv_heads: int, ffn: int, layers: int,
           vocab: int) -> ModelSpec:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": hidden,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "intermediate_size": ffn, "num_hidden_layers": layers, "vocab_size": vocab,
        "max_position_embeddings": 2048, "tie_word_embeddings": True, "rms_norm_eps": 1e-5}))
    return resolve_model(str(directory))


def measure(tokenizer: Path, vocab: int, threads: int | None = None) -> EngineCpu:
    """Run the probe models through the built llama-bench (about a minute on 2 cores).

    One layer more of the 512-wide model costs its weights at the F16 rate plus a fixed
    cost; the 768-wide model in F16 costs its weights at that rate plus the fixed cost of
    each of its layers: the two give the F16 rate and the fixed cost per layer, and each
    other mix's rate follows from its own time less the fixed costs."""
    cpu = parse_rig([], "64gb", None)

    def bench(spec: ModelSpec, path: Path, mix: str
              ) -> tuple[dict[str, float], DeviceUse, str]:
        """llama-bench's speeds, the device use rigscope estimates, the mix's main type."""
        got = probe_speed(path, pp=PP_TOKENS, tg=TG_TOKENS, threads=threads, reps=REPS,
                          best=True)
        est = estimate(spec, cpu, quant=mix, context=512)
        (dev,) = est.devices
        return got, dev, est.quant.base

    with tempfile.TemporaryDirectory(prefix="rigscope-cpuprobe-") as tmp:
        work = Path(tmp)
        runs = []
        for n in LAYERS:
            spec = _llama(work / f"narrow{n}", 512, 8, 4, 1536, n, vocab)
            runs.append(bench(spec, write_gguf(spec, work / f"narrow{n}.gguf", tokenizer),
                              "F16"))
        (a, da, _), (b, db, _) = runs
        extra = LAYERS[1] - LAYERS[0]
        layer_bytes = (db.read_bytes - da.read_bytes) / extra
        layer_mm = (db.params - db.output_params - da.params + da.output_params) / extra
        slope = (1 / b["tg"] - 1 / a["tg"]) / extra  # seconds per token of one more layer
        slope_pp = (PP_TOKENS / b["pp"] - PP_TOKENS / a["pp"]) / extra
        spec = _llama(work / "small", 768, 12, 4, 2048, 8, vocab)
        f16 = write_gguf(spec, work / "small-F16.gguf", tokenizer)
        f16_run = got, dev, _ = bench(spec, f16, "F16")
        L = spec.layers
        rate = (dev.read_bytes - L * layer_bytes) / (1 / got["tg"] - L * slope)
        layer_s = max(slope - layer_bytes / rate, 0.0)
        flops = 2 * (prompt_products(dev, PP_TOKENS) - L * layer_mm * PP_TOKENS) / (
            PP_TOKENS / got["pp"] - L * slope_pp)
        pp_layer_s = max(slope_pp - 2 * layer_mm * PP_TOKENS / flops, 0.0)
        kernels = []
        for mix in MIXES:
            path = f16 if mix == "F16" else quantize(f16, work / f"small-{mix}.gguf", mix)
            got, dev, base = f16_run if mix == "F16" else bench(spec, path, mix)
            decode_s = 1 / got["tg"] - L * layer_s
            prefill_s = PP_TOKENS / got["pp"] - L * pp_layer_s
            if decode_s <= 0 or prefill_s <= 0:
                continue
            kernels.append((base, dev.read_bytes / decode_s,
                            2 * prompt_products(dev, PP_TOKENS) / prefill_s))
            if mix != "F16":
                path.unlink()
    day = datetime.now(UTC).date().isoformat()
    return EngineCpu(layer_s=layer_s, pp_layer_s=pp_layer_s, kernels=tuple(kernels),
                     source=f"measured with the llama.cpp built here, {day}")


def to_json(e: EngineCpu) -> dict[str, object]:
    return {"layer_s": e.layer_s, "pp_layer_s": e.pp_layer_s, "source": e.source,
            "kernels": [{"type": t, "decode_bytes_per_s": d, "prefill_flops": f}
                        for t, d, f in e.kernels]}


def from_json(d: dict[str, object]) -> EngineCpu:
    kernels = d["kernels"]
    assert isinstance(kernels, list)
    return EngineCpu(layer_s=float(d["layer_s"]),  # type: ignore[arg-type]
                     pp_layer_s=float(d["pp_layer_s"]),  # type: ignore[arg-type]
                     kernels=tuple((str(k["type"]), float(k["decode_bytes_per_s"]),
                                    float(k["prefill_flops"])) for k in kernels),
                     source=str(d["source"]))
