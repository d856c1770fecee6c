"""Model specs from catalog ids, HF repo aliases, config.json files and model directories."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from conftest import model
from rigscope.catalog import models
from rigscope.errors import RigscopeError
from rigscope.sources import resolve_model

LLAMA3_8B_CONFIG = {  # values of meta-llama/Meta-Llama-3-8B config.json (reference-facts.md)
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
    "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "rope_theta": 500000.0,
}


@pytest.mark.parametrize("mid", sorted(models()))
def test_generated_layout_matches_published_parameter_count(mid: str) -> None:
    spec = model(mid)
    assert spec.params == pytest.approx(models()[mid].params, rel=0.02)  # published, rounded


def test_moe_active_parameters() -> None:
    spec = model("mixtral-8x7b")
    assert spec.active_params / 1e9 == pytest.approx(12.9, abs=0.1)  # Mistral: 12.9 B active


def test_alias_resolves_to_the_catalog_entry() -> None:
    assert resolve_model("meta-llama/Meta-Llama-3-8B").id == "llama-3-8b"
    assert resolve_model("LLAMA-3-8B").id == "llama-3-8b"


def test_unknown_model_suggests_near_matches() -> None:
    with pytest.raises(RigscopeError, match="did you mean: llama-3-8b"):
        resolve_model("llama3-8b")


def test_config_json_gives_the_same_layout(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA3_8B_CONFIG))
    from_dir = resolve_model(str(tmp_path))
    from_file = resolve_model(str(tmp_path / "config.json"))
    catalog = model("llama-3-8b")
    assert from_dir.tensors == catalog.tensors == from_file.tensors


def _safetensors(path: Path, tensors: dict[str, list[int]]) -> None:
    header = {n: {"dtype": "BF16", "shape": s, "data_offsets": [0, 0]} for n, s in tensors.items()}
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def test_safetensors_headers_give_exact_parameter_counts(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA3_8B_CONFIG))
    _safetensors(tmp_path / "model-00001-of-00002.safetensors",
                 {"model.embed_tokens.weight": [128256, 4096], "model.norm.weight": [4096]})
    _safetensors(tmp_path / "model-00002-of-00002.safetensors", {"lm_head.weight": [128256, 4096]})
    spec = resolve_model(str(tmp_path))
    assert spec.published_params == 2 * 128256 * 4096 + 4096
    assert "2 safetensors" in spec.source


@pytest.mark.parametrize(("text", "match"), [
    ("{not json", "malformed JSON"),
    ('{"model_type": "llama"}', "num_hidden_layers is missing"),
    ('{"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, '
     '"num_attention_heads": 0}', "num_attention_heads must be a positive integer"),
    ('{"model_type": "bert"}', "unsupported model_type 'bert'"),
    ("[1, 2]", "expected a JSON object"),
])
def test_bad_configs_name_the_problem(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(RigscopeError, match=match):
        resolve_model(str(tmp_path / "config.json"))


def test_truncated_safetensors_header(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA3_8B_CONFIG))
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(RigscopeError, match="exceeds the file"):
        resolve_model(str(tmp_path))


def test_missing_files_are_named() -> None:
    with pytest.raises(RigscopeError, match="not found: ./nope.gguf"):
        resolve_model("./nope.gguf")
