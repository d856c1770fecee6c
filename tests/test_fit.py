"""llama.cpp's placement as the built llama-server's --fit makes it (common/fit.cpp): the
trained context reduced when no -c is given, MoE experts in host memory before whole
layers, --fit-target MiB left free per device; and the user's -ngl/-ts/-ot/--n-cpu-moe."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import model, rig
from rigscope.cli import cli
from rigscope.errors import RigscopeError
from rigscope.estimator import estimate
from rigscope.estimator.launch import launch, llama_server_args
from rigscope.specs import Accelerator, MemoryEstimate, Offload, Rig

MIB = 2**20


def with_free(r: Rig, free_mib: int) -> Rig:
    """A rig whose first GPU reports `free_mib` free once the CUDA runtime is up."""
    g = r.devices[0]
    return dataclasses.replace(r, devices=(dataclasses.replace(
        g, usable_bytes=(free_mib + 400) * MIB), *r.devices[1:]))


def projected(e: MemoryEstimate) -> list[float]:
    """MiB per GPU as llama.cpp projects it (its buffers, not the runtime's memory)."""
    return [(d.used_bytes - d.overhead_bytes) / MIB for d in e.devices]


def test_fit_params_readme_case() -> None:
    # llama.cpp tools/fit-params/README.md: Qwen3-30B-A3B F16 on an RTX 4090 with 20,386
    # MiB free (19,187 used + 1,199 free in its projection), no -c: context 40960 -> 4096,
    # the experts of layers 14-47 in host memory, 19,187 MiB on the GPU
    e = estimate(model("qwen3-30b-a3b"), with_free(rig("rtx-4090", ram="128gb"), 20386),
                 quant="F16")
    f = e.fit
    assert f is not None and f.method == "fit"
    assert (f.context, f.context_reduced_from) == (4096, 40960)
    whole_on_cpu = [il for il in f.cpu_expert_layers if il not in f.full_gpu_layers]
    assert set(range(14, 48)) <= set(whole_on_cpu)
    # this build also fits part of one more layer (its ffn_down goes to host memory)
    assert len(f.cpu_expert_layers) in (34, 35) and not f.cpu_layers
    assert projected(e)[0] == pytest.approx(19187, rel=0.02)
    assert e.runs and not e.fits and e.context == 4096


GRID = [("qwen3-30b-a3b", "Q4_K_M"), ("llama-3-8b", "F16"), ("llama-3-70b", "Q4_K_M"),
        ("gpt-oss-20b", "MXFP4_MOE"), ("mixtral-8x7b", "Q4_K_M")]
GPUS = [("rtx-4060-ti-16gb",), ("rtx-3090",), ("2xrtx-3090",), ("rtx-4090", "rtx-3060-12gb")]


@pytest.mark.parametrize("name,quant", GRID)
@pytest.mark.parametrize("gpus", GPUS)
@pytest.mark.parametrize("context", [None, 32768])
def test_fit_invariants(name: str, quant: str, gpus: tuple[str, ...],
                        context: int | None) -> None:
    try:
        m = model(name)
    except RigscopeError:
        pytest.skip(f"{name} not in this catalog")
    r = rig(*gpus, ram="256gb")
    try:
        e = estimate(m, r, quant=quant, context=context)
    except RigscopeError as err:  # a quant this model has no mix for
        pytest.skip(str(err))
    f = e.fit
    assert f is not None
    if context is not None:  # an explicit -c is never reduced
        assert e.context == context and f.context_reduced_from is None
    else:
        assert e.context <= (m.max_context or 4096)
        assert f.context_reduced_from is None or e.context >= 4096
    if f.method == "fit":  # nothing above a device's free memory less the margin
        for d, used in zip(e.devices, projected(e), strict=True):
            assert used <= (d.capacity_bytes - d.overhead_bytes) / MIB - 1024 + 1, d.id
    # every layer's tensors are somewhere, each once
    gpu_w = sum(d.weights_bytes for d in e.devices)
    assert gpu_w + e.host.weights_bytes >= e.weights_bytes
    if m.experts and f.cpu_layers and f.method == "fit":
        # dense before experts: whole layers leave the GPUs only when the dense weights of
        # every layer did not fit with all experts in host memory
        all_moe = estimate(m, r, quant=quant, context=e.context,
                           offload=Offload(fit=False, cpu_moe=True))
        assert any(u > (d.capacity_bytes - d.overhead_bytes) / MIB - 1024
                   for d, u in zip(all_moe.devices, projected(all_moe), strict=True))
    if m.experts and f.cpu_expert_layers and not f.cpu_layers:
        # experts leave from the back: the layers kept whole are the first ones
        assert f.full_gpu_layers == tuple(range(len(f.full_gpu_layers)))


def test_margin_moves_a_layer_that_would_fill_the_card() -> None:
    # 15 GiB of F16 weights and 8k of context on a 16 GiB card: everything fits, but about
    # 500 MiB stay free, so fit moves layer 0 to host memory; --fit off or a smaller
    # --fit-target keep it on the GPU
    m, r = model("llama-3-8b"), rig("rtx-4080")
    default = estimate(m, r, quant="F16", context=8192)
    # (moving a layer also makes room on the GPU for op offload's copies of its weights)
    assert default.fit is not None and default.fit.cpu_layers in ((0,), (0, 1))
    assert default.runs and not default.fits
    assert estimate(m, r, quant="F16", context=8192, offload=Offload(fit=False)).fits
    assert estimate(m, r, quant="F16", context=8192, offload=Offload(fit_target_mib=256)).fits


def test_context_reduced_only_as_far_as_needed() -> None:
    m, r = model("qwen3-8b"), rig("rtx-3060-12gb")
    e = estimate(m, r, quant="Q8_0")
    f = e.fit
    assert f is not None and f.context_reduced_from == m.max_context
    assert 4096 < e.context < m.max_context and e.context % 256 == 0
    assert e.fits and f.method == "fit: context"
    # what llama.cpp projects stays near the target (its interpolation is linear)
    free = (r.devices[0].usable_bytes - e.devices[0].overhead_bytes) / MIB
    assert free - 1024 - 300 < projected(e)[0] <= free - 1024 + 1


def test_user_placements() -> None:
    m, r = model("qwen3-30b-a3b"), rig("rtx-4090")
    e = estimate(m, r, quant="Q4_K_M", context=8192, offload=Offload(n_cpu_moe=5))
    assert e.fit is not None and e.fit.cpu_expert_layers == (0, 1, 2, 3, 4)
    assert e.fit.method == "user"
    allx = estimate(m, r, quant="Q4_K_M", context=8192, offload=Offload(cpu_moe=True))
    assert allx.fit is not None and allx.fit.cpu_expert_layers == tuple(range(48))
    assert allx.fit.full_gpu_layers == ()
    one = estimate(m, r, quant="Q4_K_M", context=8192,
                   offload=Offload(overrides=((r"blk\.7\.ffn_up_exps", "CPU"),)))
    assert one.fit is not None and one.fit.cpu_expert_layers == (7,)
    whole = estimate(m, r, quant="Q4_K_M", context=8192)
    moved = one.host.weights_bytes - whole.host.weights_bytes
    assert 0 < moved < (whole.weights_bytes / 48) / 2  # one of the layer's three
    ngl = estimate(m, r, quant="Q4_K_M", context=8192, offload=Offload(n_gpu_layers=40))
    assert ngl.fit is not None and ngl.fit.cpu_layers == tuple(range(9))
    with pytest.raises(RigscopeError, match="valid here: CPU, CUDA0"):
        estimate(m, r, quant="Q4_K_M", offload=Offload(overrides=(("exps", "CUDA3"),)))


def test_fit_off_puts_every_layer_on_the_gpus() -> None:
    e = estimate(model("llama-3-70b"), rig("rtx-3090"), quant="Q4_K_M", context=4096,
                 offload=Offload(fit=False))
    assert not e.runs and e.fit is not None and e.fit.method == "all layers"
    assert any("out of memory" in b for b in e.basis)


def test_two_gpus_fill_back_to_front_with_split_written() -> None:
    m = model("qwen3-30b-a3b")
    e = estimate(m, rig("2xrtx-3090", ram="128gb"), quant="F16", context=32768)
    f = e.fit
    assert f is not None and f.method == "fit" and sum(f.tensor_split) == m.layers + 1
    assert f.cpu_expert_layers and not f.cpu_layers
    args = llama_server_args(e)
    assert args[args.index("-ts") + 1] == ",".join(map(str, f.tensor_split))


def test_launch_line_realizes_the_estimate() -> None:
    # the -ot/-ngl/-ts of the launch line, given back as the user's flags, give the same
    # placement: the line starts the server the estimate describes
    for gpus, quant in ((("rtx-4060-ti-16gb",), "Q4_K_M"), (("2xrtx-3090",), "Q8_0")):
        m, r = model("qwen3-30b-a3b"), rig(*gpus, ram="128gb")
        e = estimate(m, r, quant=quant)
        args = llama_server_args(e)
        assert args[:2] == ["llama-server", "-m"] and args[args.index("-c") + 1] == str(
            e.context)
        ot = args[args.index("-ot") + 1].split(",") if "-ot" in args else []
        overrides = tuple(tuple(x.rsplit("=", 1)) for x in ot)
        again = estimate(m, r, quant=quant, context=e.context, offload=Offload(
            overrides=overrides,  # type: ignore[arg-type]
            n_gpu_layers=int(args[args.index("-ngl") + 1]) if "-ngl" in args else None,
            tensor_split=tuple(float(x) for x in args[args.index("-ts") + 1].split(","))
            if "-ts" in args else ()))
        assert [d.weights_bytes for d in again.devices] == [d.weights_bytes for d in e.devices]
        assert again.host.weights_bytes == e.host.weights_bytes


def test_front_end_defaults() -> None:
    m = model("qwen3-8b")
    # Ollama: 4k under 24 GiB of VRAM, 32k up to 48, 256k (capped at the trained) above
    assert estimate(m, rig("rtx-4060-ti-16gb"), engine="ollama").context == 4096
    assert estimate(m, rig("rtx-3090"), engine="ollama").context == 32768
    assert estimate(m, rig("2xrtx-3090"), engine="ollama").context == m.max_context
    # llama-cpp-python: no fit, its server's n_ctx 2048, logits for a whole ubatch
    e = estimate(m, rig("rtx-3090"), engine="llama-cpp-python")
    assert e.context == 2048 and e.request.outputs == "ubatch"
    assert e.request.offload.fit is False
    assert launch(e).command.startswith("llama_cpp.Llama(")
    o = launch(estimate(m, rig("rtx-3090"), engine="ollama"))
    assert o.ollama_env is not None and o.ollama_env["OLLAMA_CONTEXT_LENGTH"] == "32768"


def test_smollm2_llama_cpp_python_compute_buffer(smollm2: Path) -> None:
    # llama-cpp-python's Llama reserves logits for the whole ubatch: 98.2 MiB of compute
    # buffer for SmolLM2 as llama.cpp reports it (issue 22)
    cpu = Rig(devices=(), host=Accelerator.cpu(8 * 2**30))
    e = estimate(model(str(smollm2)), cpu, engine="llama-cpp-python")
    assert e.compute_bytes / MIB == pytest.approx(98.2, rel=0.05)


def test_cli_flags_json_and_launch_line() -> None:
    r = CliRunner().invoke(cli, ["estimate", "qwen3-30b-a3b", "--quant", "Q4_K_M", "--gpu",
                                 "rtx-4060-ti-16gb", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    fit = doc["memory"]["fit"]
    assert fit["context_reduced_from"] == 40960 and fit["context"] == doc["context"]
    assert fit["cpu_expert_layers"] and fit["dense_only_gpu_layers"]
    assert doc["launch"]["command"].startswith("llama-server -m ")
    assert "-ot" in doc["launch"]["command"]
    r = CliRunner().invoke(cli, ["estimate", "qwen3-30b-a3b", "--quant", "Q4_K_M", "--gpu",
                                 "rtx-4090", "--context", "8k", "--n-cpu-moe", "3", "--json"])
    assert json.loads(r.output)["memory"]["fit"]["cpu_expert_layers"] == [0, 1, 2]
    r = CliRunner().invoke(cli, ["estimate", "qwen3-30b-a3b", "--quant", "Q4_K_M", "--gpu",
                                 "rtx-4090", "-ot", r"blk\.(0|1)\.ffn_.*_exps=CPU", "--json"])
    assert json.loads(r.output)["memory"]["fit"]["cpu_expert_layers"] == [0, 1]
    r = CliRunner().invoke(cli, ["estimate", "qwen3-30b-a3b", "--gpu", "rtx-4090",
                                 "-ot", "noequals"])
    assert r.exit_code != 0 and "PATTERN=BUFFER" in str(r.exception)
    table = CliRunner().invoke(cli, ["estimate", "qwen3-30b-a3b", "--quant", "Q4_K_M",
                                     "--gpu", "rtx-4060-ti-16gb"])
    last = table.output.strip().splitlines()[-1]
    assert re.match(r"launch: llama-server -m \S+ -c 4096 ", last), last


def test_ubatch_and_ram_bandwidth_change_split_placements_as_in_llama_cpp() -> None:
    from rigscope.estimator.speed import estimate_speed
    from rigscope.hardware import with_ram_bandwidth

    m, r = model("qwen3-30b-a3b"), rig("rtx-4060-ti-16gb")
    small = estimate(m, r, quant="Q4_K_M", context=16384)
    big = estimate(m, r, quant="Q4_K_M", context=16384, offload=Offload(n_ubatch=2048))
    assert big.compute_bytes > small.compute_bytes  # a 2048-token graph
    assert "-ub" in llama_server_args(big) and "-ub" not in llama_server_args(small)
    # host-held experts cross PCIe once per ubatch: bigger ubatches prefill faster
    pp = [estimate_speed(e, prompt_tokens=8192).prefill_tokens_per_s for e in (small, big)]
    assert pp[1] > 1.5 * pp[0]
    # decode reads the host-held experts at the RAM's bandwidth
    slow = estimate(m, with_ram_bandwidth(r, 20), quant="Q4_K_M", context=16384)
    assert slow.fit is not None and slow.fit.cpu_expert_layers
    tg = [estimate_speed(e, prompt_tokens=0).decode_tokens_per_s for e in (small, slow)]
    assert tg[1] < 0.8 * tg[0]
    assert any("given (--ram-bandwidth)" in b for b in estimate_speed(slow).basis)
    whole = rig("rtx-3090")  # everything on the GPU: the RAM does not matter
    a = estimate_speed(estimate(m, whole, quant="Q4_K_M", context=16384))
    b = estimate_speed(estimate(m, with_ram_bandwidth(whole, 20), quant="Q4_K_M",
                                context=16384))
    assert a.decode_tokens_per_s == b.decode_tokens_per_s
