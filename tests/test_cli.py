"""The command line: the JSON contract, one-line errors with exit 2, catalog listings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rigscope.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_estimate_json_follows_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["estimate", "llama-3-8b", "--quant", "Q4_K_M", "--context", "8k",
                          "--gpu", "rtx-4090", "--json"], capsys)
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["model"]["id"] == "llama-3-8b" and doc["model"]["layers"] == 32
    assert isinstance(doc["model"]["params"], int)
    assert (doc["quant"], doc["engine"], doc["context"], doc["batch"]) == (
        "Q4_K_M", "llama.cpp", 8192, 1)
    memory = doc["memory"]
    for key in ("weights_bytes", "kv_cache_bytes", "compute_bytes", "overhead_bytes",
                "total_bytes", "offloaded_layers", "offloaded_bytes"):
        assert isinstance(memory[key], int), key
    assert memory["fits"] is True and memory["runs"] is True
    (dev,) = memory["devices"]
    assert set(dev) >= {"id", "capacity_bytes", "used_bytes", "layers"}
    assert dev["id"] == "rtx-4090" and dev["layers"] == 32
    # placement conserves the weights: the GPU's share and the host's (the token embeddings)
    assert dev["weights_bytes"] + memory["host"]["weights_bytes"] == memory["weights_bytes"]
    assert 0.9 * memory["weights_bytes"] < dev["weights_bytes"] < memory["weights_bytes"]
    assert all(isinstance(b, str) for b in doc["basis"]) and doc["basis"]


def test_spill_is_an_answer_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["estimate", "llama-3-70b", "--gpu", "rtx-3090", "--json"], capsys)
    memory = json.loads(out)["memory"]
    assert code == 0 and not memory["fits"] and memory["runs"]
    assert memory["offloaded_layers"] > 0 and memory["offloaded_bytes"] > 0


def test_gpu_counts_and_apple_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    for spec, ids in [("2xrtx-3090", ["rtx-3090"] * 2), ("3*a40", ["a40"] * 3),
                      ("m3-max-40c:64gb", ["m3-max-40c:64gb"])]:
        code, out, _ = run(["estimate", "llama-3-8b", "--gpu", spec, "--json"], capsys)
        assert code == 0
        assert [d["id"] for d in json.loads(out)["memory"]["devices"]] == ids


def test_cpu_rig(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["estimate", "phi-3-mini", "--cpu", "16gb", "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["rig"] == "cpu:16gb" and doc["memory"]["fits"]


@pytest.mark.parametrize(("args", "needle"), [
    (["estimate", "llama-9-8b", "--gpu", "rtx-4090"], "unknown model 'llama-9-8b'"),
    (["estimate", "llama-3-8b", "--gpu", "rtx-4091"], "did you mean: rtx-4090"),
    (["estimate", "llama-3-8b", "--gpu", "rtx-4090", "--quant", "Q4_K_X"], "unknown quant"),
    (["estimate", "llama-3-8b", "--gpu", "rtx-4090", "--context", "0"], "invalid --context"),
    (["estimate", "llama-3-8b", "--gpu", "rtx-4090", "--context", "-5"], "invalid --context"),
    (["estimate", "llama-3-8b", "--gpu", "0xrtx-4090"], "invalid GPU count"),
    (["estimate", "llama-3-8b", "--gpu", "rtx-4090", "--batch", "0"],
     "invalid value for '--batch'"),
    (["estimate", "llama-3-8b", "--gpu", "rtx-4090", "--engine", "tgi"], "unknown engine"),
    (["estimate", "llama-3-8b", "--gpu", "rtx-4090", "--kv-type", "q3"], "kv type 'q3'"),
    (["estimate", "./missing.gguf"], "not found"),
    (["estimate", "llama-3-8b", "--gpu", "m3-max-40c:96gb"], "does not come with 96 GB"),
])
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    code, out, err = run(args, capsys)
    assert code == 2 and out == ""
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_corrupt_gguf_exits_2(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\0\0\0" + b"\xff" * 16)
    code, _, err = run(["estimate", str(bad), "--cpu"], capsys)
    assert code == 2 and "bad.gguf" in err


def test_debug_env_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from rigscope.errors import RigscopeError

    monkeypatch.setenv("RIGSCOPE_DEBUG", "1")
    with pytest.raises(RigscopeError):
        main(["estimate", "nope-model", "--cpu"])


def test_table_output_shows_verdict_and_basis(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["estimate", "llama-3-70b", "--gpu", "rtx-3090"], capsys)
    assert code == 0 and "spills" in out and "basis" in out and "rtx-3090" in out
    assert "llama-3-70b · Q4_K_M · llama.cpp · context 4,096" in out  # names, not reprs


def test_max_context(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["max-context", "llama-3-70b", "--gpu", "2xrtx-3090", "--batch", "1,4",
                        "--json"], capsys)
    rows = json.loads(out)["limits"]
    assert code == 0 and rows[0]["max_context"] == 8192  # the model's trained context fits
    assert 0 < rows[1]["max_context"] < 8192


@pytest.mark.parametrize("cmd", ["gpus", "models", "quants"])
def test_catalog_listings(capsys: pytest.CaptureFixture[str], cmd: str) -> None:
    code, out, _ = run([cmd, "--json"], capsys)
    assert code == 0 and json.loads(out)[cmd]
    code, out, _ = run([cmd], capsys)
    assert code == 0 and out


def test_help_imports_no_heavy_modules() -> None:
    code = ("import sys; from rigscope.cli import main; main(['--help']); "
            "print(sorted(m for m in ('numpy','pydantic','rich','gguf','rigscope.catalog') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
