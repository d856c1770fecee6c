"""GGUF files generated with the gguf package are read byte-exactly; bad files fail fast."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rigscope.errors import RigscopeError
from rigscope.estimator import estimate
from rigscope.hardware import parse_rig
from rigscope.sources import resolve_model
from rigscope.sources.gguf_file import read_gguf

Q = GGMLQuantizationType


def write_model(path: Path, *, layers: int, hidden: int, ff: int, heads: int, kv_heads: int,
                vocab: int, types: dict[str, Q], file_type: int | None = None) -> dict[str, int]:
    """A llama-architecture GGUF with zeroed weights; returns the bytes written per tensor."""
    w = GGUFWriter(str(path), "llama")
    w.add_block_count(layers)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_context_length(4096)
    w.add_name("test-model")
    if file_type is not None:
        w.add_file_type(file_type)
    d = hidden // heads
    shapes = {"token_embd.weight": (vocab, hidden), "output_norm.weight": (hidden,),
              "output.weight": (vocab, hidden)}
    for i in range(layers):
        shapes |= {
            f"blk.{i}.attn_norm.weight": (hidden,), f"blk.{i}.attn_q.weight": (hidden, hidden),
            f"blk.{i}.attn_k.weight": (kv_heads * d, hidden),
            f"blk.{i}.attn_v.weight": (kv_heads * d, hidden),
            f"blk.{i}.attn_output.weight": (hidden, hidden),
            f"blk.{i}.ffn_norm.weight": (hidden,), f"blk.{i}.ffn_gate.weight": (ff, hidden),
            f"blk.{i}.ffn_up.weight": (ff, hidden), f"blk.{i}.ffn_down.weight": (hidden, ff),
        }
    written = {}
    for name, shape in shapes.items():  # numpy order: the last dimension is the row
        kind = next((t for key, t in types.items() if key in name), Q.F32)
        if len(shape) == 1:
            kind = Q.F32
        if kind == Q.F32:
            arr = np.zeros(shape, dtype=np.float32)
            w.add_tensor(name, arr)
        elif kind == Q.F16:
            arr = np.zeros(shape, dtype=np.float16)
            w.add_tensor(name, arr)
        else:
            block, size = GGML_QUANT_SIZES[kind]
            arr = np.zeros((*shape[:-1], shape[-1] // block * size), dtype=np.uint8)
            w.add_tensor(name, arr, raw_dtype=kind)
        written[name] = arr.nbytes
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return written


SHAPES = [
    dict(layers=2, hidden=256, ff=512, heads=4, kv_heads=2, vocab=1000),
    dict(layers=3, hidden=512, ff=1024, heads=8, kv_heads=8, vocab=320),
    dict(layers=1, hidden=128, ff=384, heads=2, kv_heads=1, vocab=64),
]
TYPE_SETS = [
    {"token_embd": Q.F16, "attn": Q.Q4_K, "ffn": Q.Q8_0, "output.weight": Q.Q6_K},
    {"token_embd": Q.Q4_0, "attn_q": Q.Q5_1, "attn": Q.IQ4_NL, "ffn": Q.Q2_K, "output": Q.BF16},
    {"token_embd": Q.F32, "attn": Q.Q3_K, "ffn_down": Q.Q5_K, "ffn": Q.IQ4_XS, "output": Q.F16},
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("types", TYPE_SETS)
def test_generated_files_are_read_byte_exactly(tmp_path: Path, shape: dict, types: dict) -> None:
    path = tmp_path / "m.gguf"
    written = write_model(path, types=types, **shape)
    spec = read_gguf(path)
    assert {t.name: t.nbytes for t in spec.tensors} == written
    assert spec.layers == shape["layers"] and spec.hidden == shape["hidden"]
    assert spec.kv_heads == shape["kv_heads"] and spec.vocab == shape["vocab"]
    assert spec.intermediate == shape["ff"] and not spec.tie_embeddings
    est = estimate(spec, parse_rig([], "8gb"), repack=False)  # one copy: the file's
    assert est.quant.name == "GGUF"  # no general.file_type: the file's own sizes
    assert est.weights_bytes == sum(written.values())


def test_file_type_names_the_mix_and_sizes_stay_exact(tmp_path: Path) -> None:
    path = tmp_path / "q.gguf"
    written = write_model(path, types={"": Q.Q8_0}, file_type=7, **SHAPES[0])
    spec = resolve_model(str(path))
    assert spec.file_type == "Q8_0"
    est = estimate(spec, parse_rig([], "8gb"))
    assert est.quant.name == "Q8_0" and est.weights_bytes == sum(written.values())
    # asking for another mix estimates it from the shapes instead
    f16 = estimate(spec, parse_rig([], "8gb"), quant="F16")
    assert f16.weights_bytes > est.weights_bytes


def test_smollm2_file(smollm2: Path) -> None:
    spec = read_gguf(smollm2)
    assert (spec.arch, spec.layers, spec.hidden, spec.heads, spec.kv_heads) == (
        "llama", 30, 576, 9, 3)
    assert spec.file_type == "Q4_1" and spec.tie_embeddings and spec.vocab == 49152
    data = sum(t.nbytes or 0 for t in spec.tensors)
    assert data / 2**20 == pytest.approx(92.10, abs=0.01)  # llama.cpp: "file size = 92.10 MiB"
    assert spec.params == 134_515_008


def _header(n_tensors: int, n_kv: int, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)


@pytest.mark.parametrize(("blob", "match"), [
    (b"", "not a GGUF"),
    (b"GGML" + b"\0" * 40, "not a GGUF"),
    (_header(2**62, 0), "more than"),
    (_header(0, 2**60), "more than"),
    (_header(1, 1, version=99), "unsupported GGUF version 99"),
    (_header(0, 1) + struct.pack("<Q", 2**40) + b"ab", "claims"),
])
def test_corrupt_headers_fail_fast(tmp_path: Path, blob: bytes, match: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(blob)
    with pytest.raises(RigscopeError, match=match):
        read_gguf(path)


@pytest.fixture(scope="module")
def valid_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("g") / "ok.gguf"
    write_model(path, types={"": Q.Q8_0}, file_type=7, **SHAPES[2])
    return path.read_bytes()


@settings(max_examples=150, deadline=2000,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_and_truncated_bytes_never_crash(tmp_path: Path, valid_bytes: bytes, data) -> None:  # noqa: ANN001
    choice = data.draw(st.sampled_from(["truncate", "flip", "random"]))
    if choice == "truncate":
        blob = valid_bytes[: data.draw(st.integers(0, len(valid_bytes) - 1))]
    elif choice == "flip":
        b = bytearray(valid_bytes)
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, min(len(b) - 1, 4096)))
            b[i] = data.draw(st.integers(0, 255))
        blob = bytes(b)
    else:
        blob = b"GGUF" + data.draw(st.binary(max_size=512))
    path = tmp_path / "fuzz.gguf"
    path.write_bytes(blob)
    try:
        spec = read_gguf(path)
    except RigscopeError:
        return
    assert spec.layers > 0  # whatever parses must make sense
