"""Every suite task is valid: reference solutions pass, wrong ones fail; scoring rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigscope.errors import RigscopeError
from rigscope.evaluation import sandbox
from rigscope.evaluation.suites import extract_code, load_suite, matches, normalize

CODE = load_suite("code")


def test_suite_sizes() -> None:
    assert len(CODE.tasks) >= 40 and len(load_suite("qa").tasks) >= 60
    assert len(load_suite("rag").tasks) >= 20
    assert {t.category for t in CODE.tasks} == {"strings", "math", "parsing",
                                                 "data structures", "algorithms"}
    ids = [t.id for s in ("code", "qa", "rag") for t in load_suite(s).tasks]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("task", CODE.tasks, ids=[t.id for t in CODE.tasks])
def test_reference_passes_and_wrong_fails(task) -> None:  # noqa: ANN001
    assert sandbox.run(task.reference + "\n\n" + task.tests).passed
    assert not sandbox.run(task.wrong + "\n\n" + task.tests).passed


def test_rag_answers_are_only_in_their_document() -> None:
    for t in load_suite("rag").tasks:
        assert any(a in t.prompt for a in t.accept)  # the document states it
        assert "Document:" in t.prompt


@pytest.mark.parametrize(("answer", "accept", "ok"), [
    ("Tokyo", ("Tokyo",), True),
    ("The capital of Japan is Tokyo.", ("Tokyo",), True),
    ("tokyo\nIt has 14 million people.", ("Tokyo",), True),
    ("Kyoto", ("Tokyo",), False),
    ("Six.", ("6", "six"), True),
    ("1,234", ("1234",), True),
    ("The answer is 12.5", ("12.5",), True),
    ("125", ("12.5",), False),
    ("It is not Tokyo but something much longer than a short answer would be", ("Tokyo",),
     False),
    ("", ("x",), False),
])
def test_normalized_matching(answer: str, accept: tuple[str, ...], ok: bool) -> None:
    assert matches(answer, accept) is ok


def test_normalize() -> None:
    assert normalize("The  Pacific Ocean!") == "pacific ocean"
    assert normalize("Twelve") == "12"


def test_extract_code() -> None:
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone.") == (
        "def f():\n    return 1")
    assert extract_code("def f():\n    return 1") == "def f():\n    return 1"
    assert extract_code("```\nx = 1\n") == "x = 1"


def test_user_jsonl_suite(tmp_path: Path) -> None:
    f = tmp_path / "mine.jsonl"
    f.write_text('{"prompt": "2+2?", "expected": "4"}\n'
                 '{"id": "sq", "prompt": "def sq(x): ...", "test": "assert sq(3) == 9"}\n')
    s = load_suite(str(f))
    assert [t.kind for t in s.tasks] == ["qa", "code"] and s.tasks[1].id == "sq"
    (tmp_path / "bad.jsonl").write_text('{"prompt": "x"}\n')
    with pytest.raises(RigscopeError, match="needs 'expected'"):
        load_suite(str(tmp_path / "bad.jsonl"))
    with pytest.raises(RigscopeError, match="unknown suite"):
        load_suite("poetry")
