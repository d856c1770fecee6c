"""rigscope serve: the API answers exactly what the CLI prints, refuses bad input with the
CLI's words, guards files, tokens and origins; a real server process takes 64 concurrent
estimates; the page, in Debian's Chromium, renders a shared link and follows a change."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rigscope.cli import main
from rigscope.llamacpp.server import free_port
from rigscope.web.app import Settings, create_app

QUESTION = {"model": "llama-3-8b", "quant": "Q4_K_M", "gpu": "rtx-3090", "context": "8192"}


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("RIGSCOPE_DATA_DIR", str(tmp_path / "data"))
    return TestClient(create_app())


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:  # type: ignore[type-arg]
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The CLI's one line, less its prefix and its pointer to --help."""
    assert main(list(argv)) == 2
    line = capsys.readouterr().err.strip().removeprefix("rigscope: error: ")
    return re.sub(r" \(rigscope [a-z-]+ --help\)$", "", line)


def test_api_answers_what_the_cli_prints(client: TestClient,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    api = client.get("/api/estimate", params=QUESTION)
    assert api.status_code == 200
    assert api.json() == cli_json(capsys, "estimate", "llama-3-8b", "--quant", "Q4_K_M",
                                  "--gpu", "rtx-3090", "--context", "8192")
    two = client.get("/api/estimate", params=[("model", "llama-3-70b"), ("gpu", "rtx-3090"),
                                              ("gpu", "rtx-3090")]).json()
    assert two == cli_json(capsys, "estimate", "llama-3-70b", "--gpu", "rtx-3090",
                           "--gpu", "rtx-3090")
    body = {"models": ["llama-3-70b"], "quant": "Q4_K_M", "context": "8k", "users": 2,
            "gpu": ["2xrtx-3090", "rtx-a6000"]}
    assert client.post("/api/plan", json=body).json() == cli_json(
        capsys, "plan", "llama-3-70b", "--quant", "Q4_K_M", "--context", "8k", "--users", "2",
        "--gpu", "2xrtx-3090", "--gpu", "rtx-a6000")
    assert client.get("/api/max-context", params={"model": "llama-3-8b", "gpu": "rtx-4090",
                                                  "batch": "1,4"}).json() == cli_json(
        capsys, "max-context", "llama-3-8b", "--gpu", "rtx-4090", "--batch", "1,4")
    for path, argv in (("/api/gpus", ["gpus"]), ("/api/quants", ["quants"]),
                       ("/api/models?search=qwen3", ["models", "--search", "qwen3"])):
        assert client.get(path).json() == cli_json(capsys, *argv)
    assert client.get("/api/runs").json() == cli_json(capsys, "runs", "list")
    assert client.get("/api/pick", params={"use": "code", "gpu": "rtx-3090"}).json() == \
        cli_json(capsys, "pick", "--use", "code", "--gpu", "rtx-3090")
    assert client.get("/api/pick", params={"gpu": "rtx-3090", "evidence": "x.csv"}
                      ).status_code == 400  # a file on the server
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/estimate", "/api/plan", "/api/max-context", "/api/runs/{run_id}/report",
            "/api/system", "/api/pick"} <= set(paths)
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(("params", "argv"), [
    ({"context": "-5"}, ["--context", "-5"]),
    ({"context": "99999999999"}, ["--context", "99999999999"]),
    ({"batch": "0"}, ["--batch", "0"]),
    ({"gpu": "rtx-4091"}, ["--gpu", "rtx-4091"]),
    ({"quant": "Q4_K_X"}, ["--quant", "Q4_K_X"]),
    ({"engine": "tgi"}, ["--engine", "tgi"]),
    ({"kv_type": "q3"}, ["--kv-type", "q3"]),
])
def test_bad_input_is_a_400_with_the_clis_words(
        client: TestClient, capsys: pytest.CaptureFixture[str], params: dict[str, str],
        argv: list[str]) -> None:
    r = client.get("/api/estimate", params={"model": "llama-3-8b", "gpu": "rtx-4090"} | params)
    assert r.status_code == 400
    assert r.json()["error"] == cli_error(capsys, "estimate", "llama-3-8b", "--gpu",
                                          "rtx-4090", *argv)


def test_more_bad_input_never_a_500(client: TestClient) -> None:
    cases = [("get", "/api/estimate", {"params": {"gpu": "rtx-3090"}}),
             ("get", "/api/estimate", {"params": {"model": "nope-model"}}),
             ("get", "/api/estimate", {"params": {"model": "llama-3-8b", "x": "1"}}),
             ("get", "/api/max-context", {"params": {"model": "llama-3-8b", "batch": "a"}}),
             ("post", "/api/plan", {"json": {"models": ["llama-3-8b"], "budget": -5}}),
             ("post", "/api/plan", {"json": {"models": ["llama-3-8b"], "users": "many"}}),
             ("post", "/api/plan", {"json": {"models": ["llama-3-8b"], "prices": "x.toml"}}),
             ("post", "/api/plan", {"content": b"{not json", "headers": {
                 "content-type": "application/json"}}),
             ("post", "/api/plan", {"json": []})]
    for method, path, kw in cases:
        r = getattr(client, method)(path, **kw)
        assert r.status_code == 400, (path, kw, r.text)
        assert set(r.json()) == {"error"} and r.json()["error"]
    missing = client.get("/api/runs/nope")
    assert missing.status_code == 404 and "/" not in missing.json()["error"]  # no paths


def test_local_files_only_when_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    monkeypatch.setenv("RIGSCOPE_DATA_DIR", str(tmp_path / "data"))
    cfg = tmp_path / "m" / "config.json"
    cfg.parent.mkdir()
    cfg.write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 4,
                               "hidden_size": 512, "num_attention_heads": 8,
                               "intermediate_size": 1024, "vocab_size": 32000}))
    params = {"model": str(cfg), "gpu": "rtx-3090"}
    refused = TestClient(create_app()).get("/api/estimate", params=params)
    assert refused.status_code == 400 and "reads no local files" in refused.json()["error"]
    assert str(tmp_path) not in refused.json()["error"]
    allowed = TestClient(create_app(Settings(allow_local_files=True)))
    assert allowed.get("/api/estimate", params=params).status_code == 200


def test_token_and_cors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGSCOPE_DATA_DIR", str(tmp_path / "data"))
    guarded = TestClient(create_app(Settings(token="s3cret")))
    for path in ("/api/gpus", "/api/runs", "/api/estimate?model=llama-3-8b"):
        assert guarded.get(path).status_code == 401
        assert guarded.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/api/gpus", headers={"Authorization": "Bearer s3cret"}).status_code \
        == 200
    origin = {"Origin": "http://elsewhere.example"}
    plain = TestClient(create_app()).get("/api/gpus", headers=origin)
    assert "access-control-allow-origin" not in plain.headers
    cors = TestClient(create_app(Settings(cors=("http://elsewhere.example",))))
    assert cors.get("/api/gpus", headers=origin).headers[
        "access-control-allow-origin"] == "http://elsewhere.example"


def test_other_addresses_need_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    for host in ("0.0.0.0", "::", "192.168.1.5"):
        assert main(["serve", "--host", host, "--port", "1"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("rigscope: error: --host") and "--token" in err[-1]


# --- a real server process -----------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = os.environ | {"RIGSCOPE_DATA_DIR": str(tmp_path_factory.mktemp("data"))}
    exe = str(Path(sys.executable).with_name("rigscope"))
    proc = subprocess.Popen([exe, "serve", "--port", str(port)], env=env,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/api/quants", timeout=2).read()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(10)


def test_64_concurrent_estimates_all_succeed(server: str) -> None:
    gpus = ["rtx-3090", "rtx-4090", "2xrtx-3090", "m3-max-40c:64gb"]

    def one(i: int) -> tuple[int, str]:
        q = f"model=llama-3-8b&context={1024 * (1 + i % 8)}&gpu={gpus[i % 4]}"
        with urllib.request.urlopen(f"{server}/api/estimate?{q}", timeout=60) as r:
            return r.status, json.loads(r.read())["rig"]

    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(one, range(64)))
    assert all(status == 200 for status, _ in results)
    assert [rig for _, rig in results] == [gpus[i % 4] for i in range(64)]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
        pytest.skip("no chromium on this machine")
    return path


def test_the_page_renders_a_shared_link_and_follows_changes(server: str,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    from playwright.sync_api import sync_playwright

    def decode_of(gpu: str, context: str) -> str:
        doc = cli_json(capsys, "estimate", "llama-3-8b", "--quant", "Q4_K_M", "--gpu", gpu,
                       "--context", context)
        return f"{doc['speed']['decode_tokens_per_s']:,.1f}"

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        external: list[str] = []
        page.on("request", lambda r: external.append(r.url)
                if not r.url.startswith(server) else None)
        page.goto(f"{server}/?model=llama-3-8b&quant=Q4_K_M&gpu=rtx-3090&context=8192")
        decode = page.locator("[data-figure=decode]")
        decode.wait_for()
        assert decode.inner_text().startswith(decode_of("rtx-3090", "8192"))  # the CLI's
        assert "fits" in page.locator("#verdict").inner_text()
        assert page.locator("#memory tbody tr").count() == 2  # the GPU and host RAM
        same = cli_json(capsys, "estimate", "llama-3-8b", "--quant", "Q4_K_M", "--gpu",
                        "rtx-3090", "--context", "8192")
        assert page.locator("#launch").inner_text() == same["launch"]["command"]
        page.fill("#context", "65536")
        page.locator("#context").dispatch_event("change")
        page.wait_for_function("() => document.querySelector('#verdict').textContent"
                               ".includes('65,536')")
        assert "context=65536" in page.url  # the state is in the link
        page.select_option("#gpu", "rtx-4090")
        page.wait_for_function("() => document.querySelector('#verdict').textContent"
                               ".includes('rtx-4090')")
        assert page.locator("[data-figure=decode]").inner_text().startswith(
            decode_of("rtx-4090", "65536"))
        deep = cli_json(capsys, "estimate", "llama-3-8b", "--quant", "Q4_K_M", "--gpu",
                        "rtx-4090", "--context", "65536", "--depth", "16384")
        page.fill("#depth", "16384")
        page.locator("#depth").dispatch_event("change")
        want = f"{deep['speed']['decode_tokens_per_s']:,.1f}"
        page.wait_for_function(
            "w => document.querySelector('[data-figure=decode]').textContent.startsWith(w)",
            arg=want)
        assert "depth=16384" in page.url
        page.click("#mode-plan")
        page.locator("#plan-table tbody tr").first.wait_for()
        assert page.locator("#plan-chart circle").count() >= 1
        page.click("#mode-pick")
        page.select_option("#use", "code")
        page.wait_for_function("() => document.querySelector('#pick-note').textContent"
                               ".startsWith('code on rtx-4090')")
        # the server's REST answer (which is the CLI's, test_api_answers_what_the_cli_prints;
        # asked of the server itself, whose machine is not this process's recorded one)
        import urllib.request

        with urllib.request.urlopen(f"{server}/api/pick?use=code&context=65536&users=1"
                                    "&gpu=rtx-4090", timeout=60) as resp:
            picks = json.loads(resp.read())
        shown = page.locator("#pick-table tbody tr td:nth-child(2)").all_inner_texts()
        assert shown == [r["model"] for r in picks["rows"][:25]]
        assert "use=code" in page.url
        page.click("#mode-runs")
        page.wait_for_function("() => document.querySelector('#status').textContent"
                               ".includes('stored runs')")
        browser.close()
    assert errors == []
    assert external == []  # offline: nothing but rigscope itself
