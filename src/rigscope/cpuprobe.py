"""llama.cpp's own speed on this CPU, measured with the build here on random-weight models.

The RAM probe and an F32 matrix product say what the machine can do; how much of it
llama.cpp's kernels reach differs from one CPU to the next (on a 2-vCPU AMD EPYC VM decode
read 11-18 GB/s of a 28-44 GB/s RAM probe, and Q4_1 prefill ran at half of Q4_0's; on an
Intel VM both came close to the probe). For small models a fixed cost per layer weighs as
much as the bytes. So `rigscope system` asks the engine, once a week:

- two tiny models (64 wide, 2 and 18 layers): the difference is the fixed cost per layer of
  a decode token and of a prefill ubatch;
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
from rigscope.hardware import parse_rig
from rigscope.llamacpp.probe import probe_speed, quantize
from rigscope.llamacpp.synth import write_gguf
from rigscope.sources import resolve_model
from rigscope.specs import EngineCpu, ModelSpec

MIXES = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_1", "Q4_0")
TINY_LAYERS = (2, 18)
PP_TOKENS = 256  # prefill test size (half a default ubatch; each mix ~1 s here)
TG_TOKENS = 16


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
    """Run the probe models through the built llama-bench (about 20 s on 2 cores)."""
    with tempfile.TemporaryDirectory(prefix="rigscope-cpuprobe-") as tmp:
        work = Path(tmp)
        tiny = []
        for n in TINY_LAYERS:
            spec = _llama(work / f"tiny{n}", 64, 1, 1, 64, n, vocab)
            path = write_gguf(spec, work / f"tiny{n}.gguf", tokenizer)
            tiny.append(probe_speed(path, pp=16, tg=32, threads=threads, reps=3, best=True))
        extra = TINY_LAYERS[1] - TINY_LAYERS[0]
        layer_s = max((1 / tiny[1]["tg"] - 1 / tiny[0]["tg"]) / extra, 0.0)
        pp_layer_s = max((16 / tiny[1]["pp"] - 16 / tiny[0]["pp"]) / extra, 0.0)
        spec = _llama(work / "small", 768, 12, 4, 2048, 8, vocab)
        f16 = write_gguf(spec, work / "small-F16.gguf", tokenizer)
        cpu = parse_rig([], "64gb", None)
        kernels = []
        for mix in MIXES:
            path = f16 if mix == "F16" else quantize(f16, work / f"small-{mix}.gguf", mix)
            got = probe_speed(path, pp=PP_TOKENS, tg=TG_TOKENS, threads=threads, reps=2,
                              best=True)
            est = estimate(spec, cpu, quant=mix, context=512)
            (dev,) = est.devices
            decode_s = 1 / got["tg"] - spec.layers * layer_s
            prefill_s = PP_TOKENS / got["pp"] - spec.layers * pp_layer_s
            if decode_s <= 0 or prefill_s <= 0:
                continue
            # a prompt's mat-muls: every layer for every token, the LM head for the last
            matmul = (dev.params - dev.output_params) * PP_TOKENS + dev.output_params
            kernels.append((est.quant.base, dev.read_bytes / decode_s,
                            2 * matmul / prefill_s))
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
