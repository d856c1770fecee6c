"""Bad input everywhere: every command and option answers generated bad values with one line on
stderr naming the value, exit 2, no traceback, nothing written; hostile files likewise."""

from __future__ import annotations

import contextlib
import io
import json
import math
import sqlite3
import struct
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rigscope.cli import cli, main
from rigscope.validate import MAX_TOKENS

BENCH = ["bench", "--url", "http://127.0.0.1:9", "--model", "m"]
EVAL = ["eval", "--endpoint", "a=http://127.0.0.1:9", "--suite", "qa"]

_junk = st.text(alphabet="abcxyz!@#%&*()[]{};:<>?/\\|~` ", min_size=1, max_size=12)
_not_finite = st.sampled_from(["nan", "inf", "-inf", "1e309", "NaN", "-1e400"])


def _unparsable_number() -> st.SearchStrategy[str]:
    return st.one_of(_junk, _not_finite, st.sampled_from(["", "1e", "0x1g", "1,5", "--1"]))


def positive() -> st.SearchStrategy[str]:  # must be > 0
    return st.one_of(_unparsable_number(),
                     st.floats(max_value=0, allow_nan=False).map(repr),
                     st.floats(min_value=1e12, max_value=1e300).map(repr))


def count(low: int) -> st.SearchStrategy[str]:  # whole numbers >= low
    return st.one_of(_unparsable_number(), st.integers(max_value=low - 1).map(str),
                     st.sampled_from(["1.5", "2.25", "0.5"]))


def tokens() -> st.SearchStrategy[str]:
    return st.one_of(_junk, st.integers(max_value=0).map(str),
                     st.integers(min_value=MAX_TOKENS + 1, max_value=10**15).map(str),
                     st.sampled_from(["1.5k", "8kk", "-8k", "k", "8 g"]))


def url() -> st.SearchStrategy[str]:
    return st.one_of(_junk, st.sampled_from(["ftp://x", "http://", "localhost:8080",
                                             "http://h:99999", "http://h:0", "//h"]))


def number_list() -> st.SearchStrategy[str]:
    return st.one_of(_junk, st.sampled_from(["0", "-1", "1,-2", "nan", "inf", ",", "1,,x"]))


def choice(valid: set[str]) -> st.SearchStrategy[str]:
    return _junk.filter(lambda s: s.strip().lower() not in valid)


# (command line before the option, option, bad values)
CASES: list[tuple[list[str], str, st.SearchStrategy[str]]] = [
    (["estimate", "llama-3-8b"], "--context", tokens()),
    (["estimate", "llama-3-8b"], "--batch", count(1)),
    (["estimate", "llama-3-8b"], "--prompt-tokens", count(0)),
    (["estimate", "llama-3-8b"], "--output-tokens", count(1)),
    (["estimate", "llama-3-8b"], "--gpu", _junk),
    (["estimate", "llama-3-8b", "--gpu", "rtx-3090"], "--ram", _junk),
    (["estimate", "llama-3-8b"], "--quant", _junk),
    (["estimate", "llama-3-8b"], "--engine", _junk),
    (["estimate", "llama-3-8b"], "--kv-type", _junk),
    (["estimate", "llama-3-8b"], "--engine-version", _junk),
    (["estimate", "llama-3-8b"], "--disk", choice({"nvme", "sata-ssd", "hdd", "network"})),
    (["max-context", "llama-3-8b"], "--batch", number_list()),
    (["plan", "llama-3-8b"], "--context", tokens()),
    (["plan", "llama-3-8b"], "--users", count(1)),
    (["plan", "llama-3-8b"], "--min-tps", st.one_of(_unparsable_number(),
                                                    st.floats(max_value=-1e-9).map(repr))),
    (["plan", "llama-3-8b"], "--max-ttft", positive()),
    (["plan", "llama-3-8b"], "--budget", positive()),
    (["plan", "llama-3-8b"], "--max-watts", positive()),
    (["plan", "llama-3-8b"], "--max-gpus", count(1)),
    (["plan", "llama-3-8b"], "--price-kind", choice({"used", "street", "msrp"})),
    (["plan", "llama-3-8b"], "--kwh-price", st.one_of(_unparsable_number(),
                                                      st.sampled_from(["-0.1", "11"]))),
    (["plan", "llama-3-8b"], "--hours", st.one_of(_unparsable_number(),
                                                  st.sampled_from(["-1", "25"]))),
    (["plan", "llama-3-8b"], "--price", st.one_of(_junk, st.sampled_from(
        ["rtx-3090=", "=5", "rtx-3090=-1", "rtx-3090=nan", "rtx-3090=inf"]))),
    (["plan", "llama-3-8b"], "--top", count(1)),
    (["plan"], "--min-params", positive()),
    (["plan", "llama-3-8b"], "--min-quant", _junk),
    (["plan", "llama-3-8b"], "--engine", _junk),
    (BENCH[:2], "--url", url()),
    (BENCH, "--concurrency", number_list()),
    (BENCH, "--rate", number_list()),
    (BENCH, "--requests", count(1)),
    (BENCH, "--duration", positive()),
    (BENCH, "--warmup", count(0)),
    (BENCH, "--timeout", positive()),
    (BENCH, "--slo", _junk),
    (EVAL, "--limit", count(1)),
    (EVAL, "--samples", count(1)),
    (EVAL, "--concurrency", count(1)),
    (EVAL, "--timeout", positive()),
    (["eval", "--suite", "qa"], "--endpoint", _junk),
    (["eval", "--endpoint", "a=http://127.0.0.1:9"], "--suite", _junk),
    (["runs"], "show", _junk),
    (["report"], "-o", st.just("/nonexistent-dir/x/report.html")),
]


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def stored(db: Path) -> int:
    """Runs and evals in the store (none when it was never created)."""
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return sum(con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                   for t in ("runs", "evals"))


def assert_one_line_error(code: int, err: str, argv: list[str]) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (argv, code, err)
    assert len(lines) == 1 and lines[0].startswith("rigscope: error: "), (argv, err)
    assert "internal error" not in err and "Traceback" not in err, (argv, err)


@pytest.mark.parametrize(("prefix", "option", "values"), CASES,
                         ids=[f"{c[0][0]} {c[1]}" for c in CASES])
def test_every_option_rejects_bad_values_in_one_line(
        prefix: list[str], option: str, values: st.SearchStrategy[str],
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("RIGSCOPE_DATA_DIR", str(data))

    @settings(max_examples=25, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(values)
    def check(value: str) -> None:
        argv = [*prefix, option, value] if option.startswith("-") else [*prefix, value]
        if prefix[0] == "report":
            argv = ["report", "nope", option, value]
        code, _, err = run(argv)
        assert_one_line_error(code, err, argv)
        assert stored(data / "runs.db") == 0, argv

    check()


# --- hostile files ------------------------------------------------------------------------

def _gguf(*, version: int = 3, tensors: int = 0, kvs: int = 1, body: bytes = b"") -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, kvs) + body


def _kv_string(key: str, value: bytes, type_id: int = 8) -> bytes:
    k = key.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<I", type_id) + \
        struct.pack("<Q", len(value)) + value


HOSTILE = {
    "truncated.gguf": _gguf()[:10],
    "huge-count.gguf": _gguf(tensors=2**62, kvs=2**62),
    "huge-string.gguf": _gguf(body=struct.pack("<Q", 2**60) + b"x"),
    "wrong-type.gguf": _gguf(body=_kv_string("general.architecture", b"llama", type_id=99)),
    "not-gguf.gguf": b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
    "empty.gguf": b"",
    "config.json": json.dumps({"model_type": "llama", "num_hidden_layers": "many",
                               "hidden_size": 4096}).encode(),
    "nan-config/config.json": b'{"model_type": "llama", "num_hidden_layers": NaN, '
                              b'"hidden_size": 1e308, "num_attention_heads": 32}',
    "list-config/config.json": b"[1, 2, 3]",
    "binary-config/config.json": b"\xff\xfe\x00garbage",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_model_files_are_rejected_in_one_line(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(HOSTILE[name])
    target = str(path.parent if name.endswith("/config.json") else path)
    for argv in (["estimate", target, "--gpu", "rtx-3090"], ["max-context", target]):
        code, _, err = run(argv)
        assert_one_line_error(code, err, argv)
        assert str(tmp_path) not in err or name in err  # names the file, nothing else


WORKLOADS = {
    "broken-line.jsonl": b'{"prompt": "hi", "output_tokens": 8}\n{"prompt": \n',
    "non-utf8.jsonl": b'{"prompt": "\xff\xfe"}\n',
    "wrong-types.jsonl": b'{"prompt": 5, "output_tokens": "many"}\n',
    "nan.jsonl": b'{"prompt": "hi", "output_tokens": NaN}\n',
    "empty.jsonl": b"",
    "long-line.jsonl": b'{"prompt": "' + b"a" * (8 * 1024 * 1024) + b'"',
}


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_hostile_workload_and_suite_files_are_rejected_in_one_line(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGSCOPE_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / name
    path.write_bytes(WORKLOADS[name])
    for argv in ([*BENCH, "--workload", str(path)], [*EVAL[:3], "--suite", str(path)]):
        code, _, err = run(argv)
        assert_one_line_error(code, err, argv)
    assert stored(tmp_path / "data" / "runs.db") == 0


def test_the_issue_cases() -> None:
    for argv, words in ((["bench", "--url", "notaurl", "--model", "x"], "notaurl"),
                        (["plan", "llama-3-8b", "--budget", "-5"], "--budget"),
                        (["estimate", "llama-3-8b", "--context", "99999999999"], "--context"),
                        (["plan", "llama-3-8b", "--users", "0"], "--users")):
        code, _, err = run(argv)
        assert_one_line_error(code, err, argv)
        assert words in err
    assert math.isfinite(float(MAX_TOKENS))


# --- every option of every command, with values a shell can pass -------------------------

HOSTILE_VALUES = ["", " ", "-1", "0", "nan", "1e309", "abc", "../../etc/passwd",
                  "/nonexistent/dir/x", "9" * 40, "ü/ß", "x=y=z", ",", "%s%n"]
SKIP = {("demo",), ("serve",)}  # they start engines or servers
# (their own tests cover their input: test_demo, test_web)


def _commands() -> list[tuple[tuple[str, ...], click.Command]]:
    out = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        elif path not in SKIP:
            out.append((path, cmd))
    walk(cli, ())
    return out


def _base(path: tuple[str, ...], tmp: Path) -> list[str]:
    """A command line that runs quickly and touches nothing outside tmp."""
    return {
        ("estimate",): ["estimate", "llama-3-8b", "--gpu", "rtx-3090"],
        ("max-context",): ["max-context", "llama-3-8b", "--gpu", "rtx-3090"],
        ("plan",): ["plan", "llama-3-8b", "--gpu", "rtx-3090"],
        ("bench",): BENCH, ("eval",): [*EVAL, "--limit", "1"],
        ("runs", "show"): ["runs", "show", "nope"], ("runs", "export"): ["runs", "export", "x"],
        ("calibrate",): ["calibrate", "nope", "--rig", "r"], ("compare",): ["compare", "nope"],
        ("report",): ["report", "nope", "-o", str(tmp / "r.html")],
        ("models", "add"): ["models", "add", str(tmp / "cfg")],
    }.get(path, list(path))


@pytest.mark.parametrize(("path", "cmd"), _commands(), ids=lambda v: " ".join(v)
                         if isinstance(v, tuple) else "")
def test_every_option_of_every_command_answers_hostile_values_cleanly(
        path: tuple[str, ...], cmd: click.Command, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGSCOPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # relative paths among the values land here
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text(json.dumps(
        {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64,
         "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 1000}))
    base = _base(path, tmp_path)
    for param in cmd.params:
        if isinstance(param, click.Option) and (param.is_flag or param.count):
            continue
        for value in HOSTILE_VALUES:
            if isinstance(param, click.Argument):
                argv = [*path, value, *base[len(path) + 1:]]
            else:
                argv = [*base, param.opts[0], value]
            code, _, err = run(argv)
            lines = [ln for ln in err.splitlines() if ln.strip()]
            assert code in (0, 1, 2), (argv, code, err)
            assert "internal error" not in err and "Traceback" not in err, (argv, err)
            if code:
                assert len(lines) == 1 and lines[0].startswith("rigscope: error: "), (argv, err)
    assert not (tmp_path / "r.html").exists()  # no half report
