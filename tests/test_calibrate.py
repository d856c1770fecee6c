"""Calibration recovers known constants from runs the model itself generated, plus noise."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from rigscope import calibration as calibrate
from rigscope.cli import main
from rigscope.errors import RigscopeError
from rigscope.estimator import estimate
from rigscope.estimator.speed import estimate_speed
from rigscope.estimator.speed_params import DEFAULT
from rigscope.hardware import parse_rig
from rigscope.records import Level, LevelSummary, Run, Stats
from rigscope.sources import resolve_model
from rigscope.store import Store


def synthetic_run(run_id: str, true, prompt: int, output: int, rng: random.Random,  # noqa: ANN001
                  noise: float = 0.03) -> Run:
    """A stored run whose concurrency-1 level the speed model produced."""
    est = estimate(resolve_model("llama-3-8b"), parse_rig(["rtx-4090"]), quant="Q4_K_M",
                   context=prompt + output, flash_attn=True)
    s = estimate_speed(est, prompt_tokens=prompt, output_tokens=output, p=true)
    itl = 1 / s.decode_tokens_per_s * (1 + rng.gauss(0, noise))
    ttft = prompt / s.prefill_tokens_per_s * (1 + rng.gauss(0, noise))
    config = {"hardware": "rtx-4090", "model_spec": "llama-3-8b", "quant": "Q4_K_M",
              "flash_attn": True, "prompt_tokens": prompt, "output_tokens": output}
    level = Level(1, 0, 1, None, LevelSummary(requests_ok=8, itl_s=Stats(p50=itl),
                                              ttft_s=Stats(p50=ttft)))
    return Run(run_id=run_id, started_at="", finished_at=None, status="done", label=None,
               url="", model="", api="openai", config=config, levels=(level,), requests=())


def test_recovers_known_constants() -> None:
    true = calibrate.apply(DEFAULT, {"bw_eff": {"cuda:gddr": 0.55}, "pp_eff": {"cuda:kquant": 0.2}})
    rng = random.Random(1)
    runs = [synthetic_run(f"r{i}", true, p, 128, rng) for i, p in enumerate((256, 1024, 4096))]
    obs = [o for r in runs for o in calibrate.observations(r)]
    fitted, changed = calibrate.fit(obs)
    assert changed["bw_eff"]["cuda:gddr"] == pytest.approx(0.55, rel=0.05)
    assert changed["pp_eff"]["cuda:kquant"] == pytest.approx(0.2, rel=0.05)
    before, after = calibrate.errors(obs, DEFAULT), calibrate.errors(obs, fitted)
    assert after["decode"] < 0.05 < before["decode"]
    assert after["prefill"] < 0.05 < before["prefill"]


def test_held_out_run_improves() -> None:
    true = calibrate.apply(DEFAULT, {"bw_eff": {"cuda:gddr": 0.6}, "pp_eff": {"cuda:kquant": 0.25}})
    rng = random.Random(2)
    train = [synthetic_run(f"r{i}", true, p, 128, rng) for i, p in enumerate((512, 2048))]
    test = calibrate.observations(synthetic_run("t", true, 1024, 256, rng))
    fitted, _ = calibrate.fit([o for r in train for o in calibrate.observations(r)])
    for kind in ("decode", "prefill"):
        assert calibrate.errors(test, fitted)[kind] < calibrate.errors(test, DEFAULT)[kind]


def test_refuses_too_little_data() -> None:
    run = synthetic_run("r", DEFAULT, 512, 64, random.Random(0))
    with pytest.raises(RigscopeError, match="too little data"):
        calibrate.fit(calibrate.observations(run))
    assert calibrate.observations(dataclasses.replace(run, config={"prompt_tokens": 1})) == []


def test_calibrate_command_stores_a_profile_estimate_uses(tmp_path, capsys) -> None:  # noqa: ANN001
    true = calibrate.apply(DEFAULT, {"bw_eff": {"cuda:gddr": 0.5}})
    store = Store(tmp_path / "r.db")
    ids = []
    for i, prompt in enumerate((256, 2048, 1024)):
        run = synthetic_run("x", true, prompt, 128, random.Random(i))
        run_id = store.new_run("http://x", "m", "openai", run.config, None)
        level = store.new_level(run_id, 0, 1, None)
        summary = run.levels[0].summary
        assert summary is not None
        store.set_summary(level, summary)
        ids.append(run_id)
    assert main(["calibrate", *ids[:2], "--rig", "mine", "--holdout", ids[2], "--db",
                 str(tmp_path / "r.db"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["holdout_error_after"]["decode"] < doc["holdout_error_before"]["decode"]
    assert doc["params"]["bw_eff"]["cuda:gddr"] == pytest.approx(0.5, rel=0.05)
    assert doc["error_after"]["decode"] < doc["error_before"]["decode"]
    assert main(["estimate", "llama-3-8b", "--rig", "mine", "--json"]) == 0
    calibrated = json.loads(capsys.readouterr().out)
    assert calibrated["rig"] == "rtx-4090"  # the profile's hardware
    assert main(["estimate", "llama-3-8b", "--gpu", "rtx-4090", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    ratio = calibrated["speed"]["decode_tokens_per_s"] / plain["speed"]["decode_tokens_per_s"]
    assert ratio < 0.75  # 0.5 instead of 0.86 of spec bandwidth
    assert main(["estimate", "llama-3-8b", "--rig", "nope"]) == 2
    assert "no rig profile 'nope'" in capsys.readouterr().err
