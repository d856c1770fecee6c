"""Eval suites (built-in TOML files or a user's JSONL) and how each kind of task is scored."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rigscope.errors import RigscopeError
from rigscope.jsonl import read_objects

SUITES = ("code", "qa", "rag")
CODE_INSTRUCTION = ("Write the Python code for this function. Reply with the complete code "
                    "in one ```python block and nothing else.\n\n")
QA_INSTRUCTION = "Answer with only the answer, no explanation.\n\nQuestion: "
RAG_INSTRUCTION = ("Answer the question using only the document. Answer with only the "
                   "answer.\n\nDocument: {document}\n\nQuestion: {question}")
NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
MAX_ANSWER_WORDS = 12  # a longer first line is not a short answer


@dataclass(frozen=True)
class Task:
    id: str
    kind: str  # "code" | "qa" | "rag"
    category: str
    prompt: str  # what the model is asked
    accept: tuple[str, ...] = ()  # qa/rag: accepted answers
    tests: str = ""  # code: hidden tests, run after the model's code
    reference: str = ""
    wrong: str = ""
    max_tokens: int = 64


@dataclass(frozen=True)
class Suite:
    name: str
    tasks: tuple[Task, ...]


def _task(kind: str, t: dict[str, Any]) -> Task:
    if kind == "code":
        return Task(id=t["id"], kind="code", category=t["category"],
                    prompt=CODE_INSTRUCTION + t["prompt"], tests=t["tests"],
                    reference=t["reference"], wrong=t["wrong"], max_tokens=512)
    if kind == "rag":
        return Task(id=t["id"], kind="rag", category=t["category"],
                    prompt=RAG_INSTRUCTION.format(document=t["document"], question=t["prompt"]),
                    accept=tuple(t["accept"]), max_tokens=48)
    return Task(id=t["id"], kind="qa", category=t["category"], prompt=QA_INSTRUCTION + t["prompt"],
                accept=tuple(t["accept"]), max_tokens=32)


def load_suite(name: str) -> Suite:
    """A built-in suite by name, or a JSONL file of the user's own tasks."""
    if name in SUITES:
        text = resources.files(__package__).joinpath("suites", f"{name}.toml").read_text("utf-8")
        return Suite(name, tuple(_task(name, t) for t in tomllib.loads(text)["task"]))
    path = Path(name)
    if path.suffix != ".jsonl":
        raise RigscopeError(f"unknown suite {name!r}; valid: {', '.join(SUITES)} or a .jsonl file")
    return Suite(path.stem, tuple(_read_jsonl(path)))


def _read_jsonl(path: Path) -> list[Task]:
    """Lines of {"prompt", "expected" | "accept" | "test", "id"?, "category"?}."""
    tasks = []
    for n, t in read_objects(path, "suite"):
        if not isinstance(t.get("prompt"), str):
            raise RigscopeError(f"{path}:{n}: needs a 'prompt'")
        tid, cat = str(t.get("id", f"{path.stem}-{n}")), str(t.get("category", "custom"))
        if "test" in t:
            tasks.append(Task(id=tid, kind="code", category=cat, prompt=t["prompt"],
                              tests=t["test"], max_tokens=int(t.get("max_tokens", 512))))
        elif "expected" in t or "accept" in t:
            accept = t.get("accept") or [t["expected"]]
            tasks.append(Task(id=tid, kind="qa", category=cat, prompt=t["prompt"],
                              accept=tuple(map(str, accept)),
                              max_tokens=int(t.get("max_tokens", 64))))
        else:
            raise RigscopeError(f"{path}:{n}: needs 'expected' (or 'accept') or 'test'")
    return tasks


def normalize(text: str) -> str:
    """Lower case, no punctuation or articles, number words as digits, single spaces."""
    text = text.lower().replace(",", "")
    text = re.sub(r"[^\w\s.]", " ", text)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # keep decimal points only
    words = [NUMBER_WORDS.get(w, w) for w in text.split() if w not in ("a", "an", "the")]
    return " ".join(words)


def first_line(answer: str) -> str:
    for line in answer.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def matches(answer: str, accept: tuple[str, ...]) -> bool:
    """Normalized exact match of the answer's first line, or the accepted answer as whole
    words inside a short first line ("The capital is Tokyo.")."""
    line = normalize(first_line(answer))
    if not line or len(line.split()) > MAX_ANSWER_WORDS:
        return False
    for a in accept:
        want = normalize(a)
        if line == want or re.search(rf"(^| ){re.escape(want)}( |$)", line):
            return True
    return False


def extract_code(answer: str) -> str:
    """The model's code: the first fenced block (```python or ```), else the whole reply."""
    m = re.search(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|$)", answer, re.DOTALL)
    return (m.group(1) if m else answer).strip("\n")
