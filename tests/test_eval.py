"""rigscope eval against scripted fake endpoints: scoring, side by side, agreement, storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigscope.cli import main
from rigscope.evaluation.run import kl_divergence, parse_endpoint, wilson
from rigscope.store import Store

SUITE = [
    {"id": "q1", "prompt": "What is the capital of Japan?", "expected": "Tokyo",
     "category": "facts"},
    {"id": "q2", "prompt": "How many legs does a spider have?", "accept": ["8", "eight"],
     "category": "facts"},
    {"id": "q3", "prompt": "What is 7 times 6?", "expected": "42", "category": "math"},
    {"id": "c1", "prompt": "def double(x): return two times x", "test": "assert double(4) == 8",
     "category": "code"},
]
GOOD = {"capital of Japan": "Tokyo", "spider": "Eight legs.", "7 times 6": "42",
        "def double": "```python\ndef double(x):\n    return 2 * x\n```"}
WORSE = {"capital of Japan": "Kyoto", "spider": "Eight legs.", "7 times 6": "42",
         "def double": "```python\ndef double(x):\n    return x + 2\n```"}


@pytest.fixture
def two_endpoints(fake_server, tmp_path: Path):  # noqa: ANN001, ANN201
    (tmp_path / "good.json").write_text(json.dumps(GOOD))
    (tmp_path / "worse.json").write_text(json.dumps(WORSE))
    a = fake_server(answers=tmp_path / "good.json", ttft=0.002, itl=0.001)
    b = fake_server(answers=tmp_path / "worse.json", ttft=0.002, itl=0.001, logprob_shift=0.5)
    suite = tmp_path / "suite.jsonl"
    suite.write_text("\n".join(json.dumps(t) for t in SUITE) + "\n")
    return a, b, suite


def test_eval_side_by_side(two_endpoints, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    a, b, suite = two_endpoints
    db = tmp_path / "r.db"
    assert main(["eval", "--endpoint", f"q8={a.url}", "--endpoint", f"q4={b.url},model=fake-model",
                 "--suite", str(suite), "--db", str(db), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["suite"] == "suite"
    good, worse = doc["endpoints"]
    assert (good["label"], good["passed"], good["total"]) == ("q8", 4, 4)
    assert (worse["label"], worse["passed"], worse["total"]) == ("q4", 2, 4)
    assert worse["pass_rate"] == 0.5 and worse["ci95"][0] < 0.5 < worse["ci95"][1]
    assert worse["categories"] == {"code": {"passed": 0, "total": 1},
                                   "facts": {"passed": 1, "total": 2},
                                   "math": {"passed": 1, "total": 1}}
    assert good["decode_tokens_per_s"] > 0 and good["ttft_s"] > 0
    assert "rlimits" in good["sandbox"] or good["sandbox"] == "bubblewrap"
    (agree,) = doc["agreement"]
    assert agree["answer_agreement"] == 0.5 and agree["verdict_agreement"] == 0.5
    # compared positions run to the first differing token: Tokyo/Kyoto 0 of 1, the spider 2
    # of 2, 42 1 of 1, the code 6 of 7 (it differs at "2" vs "x")
    assert agree["logprob_positions"] == 11 and agree["top_token_agreement"] == 9 / 11
    assert agree["mean_kl"] > 0
    stored = Store(db).eval(doc["eval_id"])
    assert len(stored["results"]) == 8 and stored["status"] == "done"
    assert {r["endpoint"] for r in stored["results"]} == {"q8", "q4"}


def test_builtin_suite_limit_and_table(fake_server, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    srv = fake_server()
    assert main(["eval", "--endpoint", f"a={srv.url}", "--suite", "code", "--limit", "3",
                 "--db", str(tmp_path / "r.db")]) == 0
    out = capsys.readouterr().out
    assert "0/3" in out and "sandbox" in out  # " tok tok" is not Python


def test_bad_endpoints(capsys) -> None:  # noqa: ANN001
    assert main(["eval", "--endpoint", "nourl", "--suite", "qa"]) == 2
    assert "LABEL=URL" in capsys.readouterr().err
    assert main(["eval", "--endpoint", "a=http://127.0.0.1:9", "--suite", "qa"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_wilson_and_kl() -> None:
    lo, hi = wilson(8, 10)
    assert 0.49 < lo < 0.5 and 0.94 < hi < 0.95
    assert wilson(0, 0) == (0.0, 1.0)
    p = {"a": -0.1, "b": -2.5}
    assert kl_divergence(p, p) == pytest.approx(0.0)
    assert kl_divergence(p, {"a": -2.5, "b": -0.1}) > 1
    assert parse_endpoint("x=http://h:1,model=m").model == "m"


def test_eval_shows_in_the_report(two_endpoints, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    pytest.importorskip("matplotlib")
    a, b, suite = two_endpoints
    db = str(tmp_path / "r.db")
    assert main(["eval", "--endpoint", f"a={a.url}", "--endpoint", f"b={b.url}", "--suite",
                 str(suite), "--db", db, "--json"]) == 0
    eval_id = json.loads(capsys.readouterr().out)["eval_id"]
    out = tmp_path / "report.html"
    assert main(["report", eval_id, "--db", db, "-o", str(out)]) == 0
    page = out.read_text()
    assert "Eval pass rate with 95% interval" in page and "4/4" in page and "2/4" in page
