"""`rigscope models`: search the catalog, add your own entries from a config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigscope.cli import main

CONFIGS = Path(__file__).parent / "data" / "configs"


def listed(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    assert main(["models", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["models"]


def test_search_matches_every_word(capsys: pytest.CaptureFixture[str]) -> None:
    rows = listed(capsys, "--search", "qwen3 moe")
    assert rows and all("moe" in r["features"] and "qwen3" in r["id"] for r in rows)
    assert {"qwen3-30b-a3b", "qwen3-235b-a22b"} <= {r["id"] for r in rows}
    mla = listed(capsys, "--search", "MLA")
    assert {r["model_type"] for r in mla} == {"deepseek_v2", "deepseek_v3", "deepseek_v32",
                                             "glm_moe_dsa", "kimi_k2", "kimi_linear"}


def test_search_without_match_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--search", "no-such-family"]) == 1
    assert "no catalog model matches" in capsys.readouterr().err


def test_add_writes_the_user_catalog_and_estimates_from_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "add", str(CONFIGS / "qwen3-8b"), "--id", "my-qwen",
                 "--alias", "me/my-qwen"]) == 0
    assert "my-qwen: written to" in capsys.readouterr().out
    (row,) = [r for r in listed(capsys) if r["id"] == "my-qwen"]
    assert row["aliases"] == ["me/my-qwen"] and row["params"] == 8_190_735_360
    assert "generated tensors" in row["source"]
    assert main(["estimate", "me/my-qwen", "--gpu", "rtx-4090", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["model"]["id"] == "my-qwen" and est["memory"]["fits"]


def test_add_replaces_an_entry_of_the_same_id(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    catalog = tmp_path / "models.toml"
    for params in ("8000000000", "8190000000"):
        assert main(["models", "add", str(CONFIGS / "qwen3-8b"), "--id", "q", "--params",
                     params, "--catalog", str(catalog)]) == 0
    assert catalog.read_text().count("[models.q]") == 1
    assert "params = 8_190_000_000" in catalog.read_text()


def test_add_refuses_what_is_not_a_config(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    assert main(["models", "add", str(tmp_path)]) == 2
    assert "unsupported model_type 'bert'" in capsys.readouterr().err
    assert main(["models", "add", "not a repo"]) == 2
    assert "name a config.json, a model directory or a Hub repo" in capsys.readouterr().err


def test_a_broken_user_catalog_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    from rigscope.catalog import user_catalog

    user_catalog().parent.mkdir(parents=True, exist_ok=True)
    user_catalog().write_text("[models.x]\nparams = 1\n")
    assert main(["models"]) == 2
    assert str(user_catalog()) in capsys.readouterr().err
