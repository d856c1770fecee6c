"""Models from the Hugging Face Hub, against a local fake Hub (tests/fakehub.py): config and
safetensors counts for checkpoint repos, GGUF headers by range request for GGUF repos, gated
repos, the answer cache when the Hub is unreachable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakehub import FakeHub, Repo, qwen3_tensors, safetensors_header, start
from rigscope.cli import main
from rigscope.errors import RigscopeError
from rigscope.sources import catalog_entry, resolve_model
from rigscope.sources.gguf_file import read_gguf
from rigscope.sources.hub import pick_gguf

TINY = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 256,
        "intermediate_size": 768, "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 128, "vocab_size": 1024,
        "max_position_embeddings": 4096, "tie_word_embeddings": False}
QWEN3_8B = json.loads((Path(__file__).parent / "data" / "configs" / "qwen3-8b" /
                       "config.json").read_text())


# a model_type nobody describes, whose checkpoint is a Qwen3's plus a mixer of its own
BRAND_NEW = dict(TINY, model_type="brand_new_lm", architectures=["BrandNewForCausalLM"],
                 num_experts=4)
BRAND_NEW_TENSORS = qwen3_tensors(TINY) | {
    "model.layers.1.self_attn.novel_mixer.weight": [64, 256]}


def split_shards(tensors: dict[str, list[int]], parts: int) -> dict[str, bytes]:
    names = list(tensors)
    files, index = {}, {}
    for p in range(parts):
        fname = f"model-{p + 1:05d}-of-{parts:05d}.safetensors"
        chunk = {n: tensors[n] for n in names[p::parts]}
        files[fname] = safetensors_header(chunk)
        index |= dict.fromkeys(chunk, fname)
    files["model.safetensors.index.json"] = json.dumps({"weight_map": index}).encode()
    return files


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, smollm2_or_none: Path | None) -> Iterator[FakeHub]:
    repos = {
        "acme/tiny-qwen3": Repo({"config.json": json.dumps(TINY).encode(),
                                 "model.safetensors": safetensors_header(qwen3_tensors(TINY)),
                                 "README.md": b"# tiny"}),
        "Qwen/Qwen3-8B-Mirror": Repo({"config.json": json.dumps(QWEN3_8B).encode(),
                                      **split_shards(qwen3_tensors(QWEN3_8B), 3)}),
        "acme/gated": Repo({"config.json": json.dumps(TINY).encode()}, gated_token="hf_ok"),
        "acme/brand-new": Repo({"config.json": json.dumps(BRAND_NEW).encode(),
                                "model.safetensors": safetensors_header(BRAND_NEW_TENSORS)}),
    }
    if smollm2_or_none is not None:
        repos["acme/smol-GGUF"] = Repo({"SmolLM2-135M-Q4_1.gguf": smollm2_or_none,
                                        "SmolLM2-135M-Q8_0.gguf": smollm2_or_none,
                                        "README.md": b"gguf"})
    fake, server = start(repos)
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield fake
    server.shutdown()


@pytest.fixture
def smollm2_or_none() -> Path | None:
    from conftest import smollm2_path

    return smollm2_path()


def test_config_repo_with_exact_safetensors_count(hub: FakeHub) -> None:
    spec = resolve_model("acme/tiny-qwen3")
    assert spec.arch == "qwen3" and spec.layers == 3
    # the checkpoint's own count, from its safetensors header, is the generated layout's
    assert spec.published_params == spec.params == sum(
        _prod(s) for s in qwen3_tensors(TINY).values())
    assert "Hugging Face Hub acme/tiny-qwen3" in spec.source


def test_sharded_checkpoint_counts_every_shard(hub: FakeHub) -> None:
    spec = resolve_model("Qwen/Qwen3-8B-Mirror")
    assert spec.published_params == spec.params == 8_190_735_360
    # the headers were read by range, not whole shards' weights (there are none here)
    assert all(s.status in (200, 206) for s in hub.log if s.name.endswith(".safetensors"))


def test_catalog_aliases_need_no_network(hub: FakeHub) -> None:
    assert resolve_model("Qwen/Qwen3-8B").id == "qwen3-8b"
    assert hub.log == []


def test_gated_repo_names_the_token(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RigscopeError, match="acme/gated is gated.*HF_TOKEN is not set"):
        resolve_model("acme/gated")
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(RigscopeError, match="HF_TOKEN is set"):
        resolve_model("acme/gated")
    monkeypatch.setenv("HF_TOKEN", "hf_ok")
    assert resolve_model("acme/gated").layers == 3


def test_missing_repo_and_file(hub: FakeHub) -> None:
    with pytest.raises(RigscopeError, match="acme/nope: no such model on http://127"):
        resolve_model("acme/nope")
    with pytest.raises(RigscopeError, match="acme/tiny-qwen3 has no file x.gguf"):
        resolve_model("acme/tiny-qwen3:x.gguf")


def test_answers_are_cached_for_offline_use(hub: FakeHub) -> None:
    first = resolve_model("acme/tiny-qwen3")
    requests = len(hub.log)
    hub.down = True
    again = resolve_model("acme/tiny-qwen3")
    assert again.tensors == first.tensors and len(hub.log) == requests
    assert any("could not be reached" in n for n in again.warnings)
    with pytest.raises(RigscopeError, match="nothing is cached"):
        resolve_model("acme/never-seen")


def test_gguf_repo_reads_only_the_header(hub: FakeHub, smollm2: Path) -> None:
    spec = resolve_model("acme/smol-GGUF", quant="Q4_1")
    local = read_gguf(smollm2)
    assert [(t.name, t.ggml_type, t.nbytes) for t in spec.tensors] == [
        (t.name, t.ggml_type, t.nbytes) for t in local.tensors]
    sent = hub.bytes_sent("acme/smol-GGUF", "SmolLM2-135M-Q4_1.gguf")
    assert 0 < sent < 0.05 * smollm2.stat().st_size  # the header, never the weights
    assert hub.bytes_sent("acme/smol-GGUF", "SmolLM2-135M-Q8_0.gguf") == 0
    # an explicit file, and the CLI on top
    assert resolve_model("acme/smol-GGUF:SmolLM2-135M-Q8_0.gguf").layers == 30


def test_gguf_repo_cli_estimate(hub: FakeHub, smollm2: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "acme/smol-GGUF", "--quant", "Q4_1", "--cpu", "--ram", "8gb",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["quant"] == "Q4_1" and doc["model"]["layers"] == 30
    assert main(["estimate", "acme/smol-GGUF", "--cpu", "--ram", "8gb"]) == 2
    assert "has 2 GGUF files; pick one with --quant" in capsys.readouterr().err


def test_pick_gguf_prefers_the_plain_quant_and_first_split() -> None:
    files = ["m-UD-Q4_K_M.gguf", "m-Q4_K_M.gguf", "m-Q8_0-00001-of-00002.gguf",
             "m-Q8_0-00002-of-00002.gguf", "sub/m-IQ4_XS.gguf"]
    assert pick_gguf(files, "Q4_K_M", "r") == "m-Q4_K_M.gguf"
    assert pick_gguf(files, "q8_0", "r") == "m-Q8_0-00001-of-00002.gguf"
    assert pick_gguf(files, "IQ4_XS", "r") == "sub/m-IQ4_XS.gguf"
    with pytest.raises(RigscopeError, match="has no Q2_K GGUF"):
        pick_gguf(files, "Q2_K", "r")


def _prod(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def test_unknown_model_type_is_estimated_from_its_checkpoint_tensors(hub: FakeHub) -> None:
    """A config that names experts rigscope cannot place is refused alone, but with its
    safetensors headers the checkpoint's own tensors are priced: named as llama.cpp's
    converter names them, the KV cache from the config's heads; the tensor no table knows
    is priced at the mix's default type, and the warning says all of it."""
    from rigscope.catalog import gguf_mixes
    from rigscope.estimator.memory import layer_weights, llamacpp_kv_bytes_by_layer

    known, new = resolve_model("acme/tiny-qwen3"), resolve_model("acme/brand-new")
    mix = gguf_mixes()["Q4_K_M"]
    extra = next(t for t in new.tensors if "novel_mixer" in t.name)
    assert extra.layer == 1 and extra.shape == (256, 64)
    assert layer_weights(new, mix).total == layer_weights(known, mix).total + \
        extra.n_elements * 144 // 256  # Q4_K: 144 bytes per 256 weights
    assert llamacpp_kv_bytes_by_layer(new, 4096, 1, "f16") == \
        llamacpp_kv_bytes_by_layer(known, 4096, 1, "f16")
    (warning,) = new.warnings
    assert "'brand_new_lm' is not one rigscope knows" in warning
    assert "1 kind(s) it does not name (model.layers.1.self_attn.novel_mixer.weight)" in warning
    assert "No llama.cpp loader was checked" in warning
    assert new.published_params == sum(_prod(s) for s in BRAND_NEW_TENSORS.values())
    with pytest.raises(RigscopeError, match="no layout a catalog entry can regenerate"):
        catalog_entry("acme/brand-new")
