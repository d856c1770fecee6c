"""The embedded catalogs: complete, sourced, and consistent with the gguf package."""

from __future__ import annotations

import gguf
import pytest

from rigscope.catalog import (
    apple_accelerator,
    apple_chips,
    formats,
    ggml_types,
    gguf_mixes,
    gpus,
    lookup_quant,
    metal_working_set,
    model_aliases,
    models,
    quant_file,
)
from rigscope.errors import RigscopeError

REQUIRED_GPUS = """rtx-3060-12gb rtx-3070 rtx-3080 rtx-3080-ti rtx-3090 rtx-3090-ti rtx-4060-ti-16gb
rtx-4070-ti rtx-4070-ti-super rtx-4080 rtx-4090 rtx-5090 rtx-a6000 rtx-4000-ada
rtx-5000-ada rtx-6000-ada a40 l40s a100-pcie-40gb a100-pcie-80gb a100-sxm-80gb h100-pcie
h100-sxm h200 rx-7900-xtx mi300x""".split()
REQUIRED_APPLE = """m1-7c m1-8c m1-pro-14c m1-pro-16c m1-max-24c m1-max-32c m1-ultra-48c
m1-ultra-64c m2-8c m2-10c
m2-pro-16c m2-pro-19c m2-max-30c m2-max-38c m2-ultra-60c m2-ultra-76c m3-10c
m3-pro-14c m3-pro-18c m3-max-30c m3-max-40c m3-ultra-60c m3-ultra-80c m4-10c m4-pro-16c
m4-pro-20c m4-max-32c m4-max-40c""".split()
REQUIRED_MODELS = """llama-2-7b llama-2-13b llama-2-70b llama-3-8b llama-3-70b llama-3.1-8b
llama-3.1-70b mistral-7b-v0.3 mixtral-8x7b qwen2.5-7b qwen2.5-14b qwen2.5-32b qwen2.5-72b gemma-2-9b
phi-3-mini""".split()


def test_required_ids_present() -> None:
    assert set(REQUIRED_GPUS) <= set(gpus())
    assert set(REQUIRED_APPLE) <= set(apple_chips())
    assert set(REQUIRED_MODELS) <= set(models())


def test_every_entry_names_its_source() -> None:
    for g in gpus().values():
        assert len(g.source) > 10, g.id
    for chip in apple_chips():
        assert len(apple_accelerator(chip).source) > 10
    for mid, m in models().items():
        assert len(m.source) > 10, mid


def test_ggml_types_match_gguf_package() -> None:
    theirs = {t.name: (t.value, *gguf.GGML_QUANT_SIZES[t]) for t in gguf.GGMLQuantizationType}
    ours = {n: (t.id, t.block, t.bytes) for n, t in ggml_types().items()}
    assert set(ours) <= set(theirs)
    for name, value in ours.items():
        if name != "Q8_1":  # in-memory only; ggml-common.h has 36 bytes, gguf-py says 40
            assert value == theirs[name], name
    missing = set(theirs) - set(ours)
    assert not missing, f"GGUF types without a catalog entry: {missing}"


def test_mix_ftypes_match_gguf_package() -> None:
    for name, mix in quant_file().gguf_mixes.items():
        key = "ALL_F32" if name == "F32" else f"MOSTLY_{name}"
        assert gguf.LlamaFileType[key].value == mix.ftype, name


def test_metal_working_set_matches_measurements() -> None:
    # recommendedMaxWorkingSetSize printed by llama.cpp (reference-facts.md), in MB (1e6)
    gb = 1024**3
    assert metal_working_set(8 * gb) / 1e6 == pytest.approx(5726.63, abs=0.02)
    assert metal_working_set(64 * gb) / 1e6 == pytest.approx(51539.61, abs=0.02)
    assert metal_working_set(192 * gb) / 1e6 == pytest.approx(154618.82, abs=0.02)


def test_driver_memory_sizes() -> None:
    mib = 1024**2
    assert gpus()["rtx-4090"].memory_bytes == 24564 * mib
    assert gpus()["rtx-3090"].memory_bytes == 24576 * mib
    assert gpus()["h100-pcie"].memory_bytes == 81559 * mib


def test_apple_memory_defaults_to_largest_and_rejects_unsold_sizes() -> None:
    assert apple_accelerator("m3-max-40c").memory_bytes == 128 * 1024**3
    assert apple_accelerator("m3-max-40c", 64).id == "m3-max-40c:64gb"
    with pytest.raises(RigscopeError, match="m3-max-40c:128gb"):
        apple_accelerator("m3-max-40c", 96)


def test_aliases_resolve_case_insensitively() -> None:
    assert model_aliases()["meta-llama/meta-llama-3-8b-instruct"] == "llama-3-8b"
    assert model_aliases()["qwen/qwen2.5-72b-instruct"] == "qwen2.5-72b"


def test_quant_names_cover_gguf_and_other_formats() -> None:
    for name in ("Q2_K", "Q4_K_M", "Q8_0", "IQ4_XS", "IQ2_XXS", "F16", "BF16"):
        assert name in gguf_mixes()
    for name in ("FP16", "BF16", "FP8", "INT8", "AWQ", "GPTQ", "NF4", "MLX-4BIT"):
        assert name in formats()


def test_quant_lookup_is_per_engine() -> None:
    assert lookup_quant("bf16", "llama.cpp").kind == "gguf"
    assert lookup_quant("bf16", "vllm").kind == "format"
    assert lookup_quant("fp16", "llama.cpp").name == "F16"
    with pytest.raises(RigscopeError, match="not a GGUF type"):
        lookup_quant("AWQ", "llama.cpp")
    with pytest.raises(RigscopeError, match="does not run on vllm"):
        lookup_quant("Q4_K_M", "vllm")
    with pytest.raises(RigscopeError, match="did you mean: Q4_K_M"):
        lookup_quant("Q4_KM", "llama.cpp")


REQUIRED_MODEL_TYPES = """llama mistral mixtral qwen2 qwen2_moe qwen3 qwen3_moe gemma gemma2 gemma3
gemma3_text phi3 phimoe deepseek_v2 deepseek_v3 gpt_oss llama4 glm4 glm4_moe cohere cohere2
granite granitemoe olmo2 exaone nemotron_h mamba2""".split()  # falcon_h1: no catalog entry


def test_catalog_covers_current_families() -> None:
    from rigscope.sources.layout import PARTIAL, STYLES

    entries = models()
    assert len(entries) >= 60
    types = {m.model_type for m in entries.values()} | {
        m.model_type.removesuffix("_text") for m in entries.values()}
    assert set(REQUIRED_MODEL_TYPES) - {"gemma3_text"} <= types
    assert {m.arch for m in entries.values()} <= set(STYLES) | set(PARTIAL)


def test_aliases_name_one_model_each() -> None:
    seen: dict[str, str] = {}
    for mid, m in models().items():
        for alias in (mid, *m.aliases):
            assert seen.setdefault(alias.lower(), mid) == mid, alias


def test_committed_catalog_is_what_the_configs_generate(tmp_path) -> None:  # noqa: ANN001
    """Every entry is written by `rigscope models add` from data/models (scripts/catalog);
    none is edited by hand."""
    import importlib.machinery
    import importlib.util
    from pathlib import Path

    from rigscope.cli import main

    root = Path(__file__).resolve().parents[1]
    loader = importlib.machinery.SourceFileLoader("catalog_script", str(root / "scripts" /
                                                                       "catalog"))
    spec = importlib.util.spec_from_loader("catalog_script", loader)
    assert spec is not None
    script = importlib.util.module_from_spec(spec)
    loader.exec_module(script)
    out = tmp_path / "models.toml"
    out.write_text(script.PREAMBLE)
    for args in script.add_args(root / "data" / "models" / "index.toml"):
        assert main([*args, "--catalog", str(out)]) == 0
    packaged = (root / "src" / "rigscope" / "catalog" / "models.toml").read_text()
    assert out.read_text() == packaged, "run scripts/catalog"
