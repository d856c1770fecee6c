"""Deterministic request generators: synthetic, chat, RAG, code, agent loops, user JSONL.

Prompts are built from common English words (one token each for the usual BPE tokenizers),
seeded, so the same options always send the same text. Multi-step workloads (chat, agent)
carry the server's own answers into the next request.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

from rigscope import validate
from rigscope.bench.clients import Work
from rigscope.errors import RigscopeError
from rigscope.jsonl import read_objects

WORDS = (
    "the of and to in is was for on that with as by at from his it an were are which this "
    "be or has had first one their its new after but who not they have her she two been "
    "other when there all during into school time may years more most only over city some "
    "world would where later up such used many can state about national out known university "
    "united then made under team year while three him also part water system people well "
    "between each best should long through before large work early number life around home "
    "since them then each found day end several family group both east west north south "
    "river road line built play music show game light power field water market local data "
    "report model server memory token speed answer question study table value service plan"
).split()
WORKLOADS = ("synthetic", "chat", "rag", "code", "agent")


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(WORDS, k=max(n, 1)))


TRACE_BLOCK_TOKENS = 512  # Mooncake traces: each hash id names a block of 512 tokens


class WorkloadGenerator:
    """Seeded requests: `make(i)` for independent ones, `next_turn` for conversations.

    Every request's text is its own (keyed by seed, level and index), so a server's prompt
    cache cannot serve one request from another unless asked: `shared_prefix` puts the same
    text of that many tokens before every prompt (one document for RAG, a tool list for an
    agent), and a Mooncake trace shares the blocks its hash ids name. `shaped` gives a
    level its own key, context depth and sizes."""

    def __init__(self, kind: str, prompt_tokens: int = 512, output_tokens: int = 128,
                 seed: int = 0, path: Path | None = None, shared_prefix: int = 0) -> None:
        if kind not in WORKLOADS and path is None:
            raise RigscopeError(f"unknown workload {kind!r}; valid: {', '.join(WORKLOADS)} "
                                "or a .jsonl file")
        self.kind, self.prompt_tokens, self.output_tokens = kind, prompt_tokens, output_tokens
        self.seed = seed
        self.items = _read_jsonl(path) if path is not None else None
        self.trace = bool(self.items) and all("hash_ids" in it for it in self.items or ())
        self.history: dict[int, list[dict[str, str]]] = {}
        self.shared_prefix = shared_prefix
        self.level = 0
        self.depth = 0

    @property
    def times(self) -> list[float] | None:
        """A trace's arrival times in seconds from its first request (None: not a trace)."""
        if not self.trace or not self.items:
            return None
        t0 = min(float(it["timestamp"]) for it in self.items)
        return [(float(it["timestamp"]) - t0) / 1000 for it in self.items]

    def shaped(self, level: int, depth: int = 0, prompt_tokens: int | None = None,
               output_tokens: int | None = None) -> WorkloadGenerator:
        """This workload for one level: its own texts (level `level`), `depth` tokens of
        context before each prompt, and the level's sizes where it sets them."""
        other = copy.copy(self)
        other.history = {}
        other.level, other.depth = level, depth
        other.prompt_tokens = prompt_tokens or self.prompt_tokens
        other.output_tokens = output_tokens or self.output_tokens
        return other

    def _rng(self, *key: object) -> random.Random:
        """The text of one request: its own for every seed, workload, size, depth, level
        and index (two runs of other sizes against one server share no prompt prefix)."""
        return random.Random(":".join(map(str, (self.seed, self.kind, self.prompt_tokens,
                                                self.depth, self.level, *key))))

    def _lead(self, rng: random.Random) -> tuple[str, int]:
        """What comes before the measured part: the shared prefix, then this request's own
        context of `depth` tokens; with their size in tokens."""
        parts, size = [], 0
        if self.shared_prefix:
            label = {"rag": "Document", "agent": "Tools"}.get(self.kind, "Instructions")
            prefix = random.Random(f"{self.seed}:prefix")
            parts.append(f"{label}: {words(prefix, self.shared_prefix)}")
            size += self.shared_prefix
        if self.depth:
            parts.append(f"Context: {words(rng, self.depth)}")
            size += self.depth
        return "".join(p + "\n\n" for p in parts), size

    def make(self, i: int) -> Work:
        n, out = self.prompt_tokens, self.output_tokens
        if self.items is not None:
            item = self.items[i % len(self.items)]
            if self.trace:
                return self._trace_work(i, item)
            return Work(prompt=item["prompt"], output_tokens=int(item.get("output_tokens", out)),
                        messages=tuple(item.get("messages", ())), seed=self.seed + i,
                        prompt_tokens=item.get("prompt_tokens"))
        rng = self._rng(i)
        lead, lead_tokens = self._lead(rng)
        total = n + lead_tokens
        if self.kind == "rag":  # retrieved documents, then a question; short answer
            docs = [f"Document {d + 1}: {words(rng, max(n // 4, 32))}" for d in range(4)]
            q = f"Using only the documents above, answer: what is {words(rng, 6)}?"
            return Work(prompt=lead + "\n\n".join(docs) + "\n\n" + q, output_tokens=out,
                        seed=self.seed + i, prompt_tokens=total)
        if self.kind == "code":
            body = "\n".join(f"def f{k}(x):\n    return x + {k}  # {words(rng, 6)}"
                             for k in range(max(n // 24, 1)))
            return Work(prompt=f"{lead}{body}\n\n# Write a function that combines f0..f3:\n",
                        output_tokens=out, seed=self.seed + i, prompt_tokens=total)
        # synthetic; chat and agent (one turn each when not in a conversation)
        return Work(prompt=lead + words(rng, n), output_tokens=out, seed=self.seed + i,
                    prompt_tokens=total)

    def _trace_work(self, i: int, item: dict[str, Any]) -> Work:
        """A Mooncake trace entry: its hash ids' blocks (the same id, the same text, so a
        prefix cache can reuse them), cut or filled to its input length."""
        n = int(item["input_length"])
        blocks = [words(random.Random(f"{self.seed}:block:{h}"), TRACE_BLOCK_TOKENS)
                  for h in item["hash_ids"]]
        tokens = " ".join(blocks).split()[:n]
        if len(tokens) < n:
            tokens += words(self._rng(i), n - len(tokens)).split()
        return Work(prompt=" ".join(tokens), output_tokens=int(item["output_length"]),
                    seed=self.seed + i, prompt_tokens=n)

    def next_turn(self, conversation: int, turn: int, answer: str | None) -> Work:
        """The next request of a multi-turn conversation (chat) or dependent loop (agent):
        the whole history so far, the server's real answers in it."""
        history = self.history.setdefault(conversation, [])
        rng = self._rng("conversation", conversation, turn)
        if answer is not None:
            history.append({"role": "assistant", "content": answer})
        lead = self._lead(rng)[0] if turn == 0 else ""
        if self.kind == "agent":
            text = (f"Tool result {turn}: {words(rng, self.prompt_tokens // 4)}\n"
                    "Decide the next action.") if turn else words(rng, self.prompt_tokens)
        else:
            text = words(rng, self.prompt_tokens if turn == 0 else self.prompt_tokens // 4)
        history.append({"role": "user", "content": lead + text})
        prompt = "\n".join(m["content"] for m in history)
        return Work(prompt=prompt, output_tokens=self.output_tokens,
                    messages=tuple(history), seed=self.seed + conversation * 1000 + turn)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    items = []
    for n, item in read_objects(path, "workload file"):
        if "hash_ids" in item:  # a Mooncake trace line
            _check_trace_item(path, n, item)
            items.append(item)
            continue
        if not (item.get("prompt") or item.get("messages")):
            raise RigscopeError(f"{path}:{n}: needs a 'prompt' or 'messages' (or, for a "
                                "trace, 'timestamp', 'input_length', 'output_length' and "
                                "'hash_ids')")
        if "prompt" in item and not isinstance(item["prompt"], str):
            raise RigscopeError(f"{path}:{n}: 'prompt' must be a string")
        messages = item.get("messages", [])
        if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("content", ""), str) for m in messages):
            raise RigscopeError(f"{path}:{n}: 'messages' must be a list of "
                                "{\"role\": ..., \"content\": \"...\"} objects")
        if "output_tokens" in item:
            out = item["output_tokens"]
            if isinstance(out, bool) or not isinstance(out, int):
                raise RigscopeError(f"{path}:{n}: 'output_tokens' must be a whole number")
            validate.tokens(out, f"{path}:{n}: output_tokens")
        if "prompt" not in item:
            item["prompt"] = "\n".join(m.get("content", "") for m in item["messages"])
        items.append(item)
    traced = sum(1 for it in items if "hash_ids" in it)
    if 0 < traced < len(items):
        raise RigscopeError(f"{path}: mixes trace lines (hash_ids) with prompt lines; "
                            "use one kind per file")
    if traced:  # replayed in the order of their timestamps
        items.sort(key=lambda it: float(it["timestamp"]))
    return items


def _check_trace_item(path: Path, n: int, item: dict[str, Any]) -> None:
    """A Mooncake trace line: timestamp (ms), input and output length, hash ids of blocks."""
    for key in ("timestamp", "input_length", "output_length"):
        v = item.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise RigscopeError(f"{path}:{n}: trace '{key}' must be a number >= 0, "
                                f"not {v!r}")
    for key in ("input_length", "output_length"):
        if not isinstance(item[key], int) or item[key] < 1:
            raise RigscopeError(f"{path}:{n}: trace '{key}' must be a whole number >= 1")
        validate.tokens(item[key], f"{path}:{n}: {key}")
    ids = item["hash_ids"]
    if not isinstance(ids, list) or not all(isinstance(h, int) and not isinstance(h, bool)
                                            for h in ids):
        raise RigscopeError(f"{path}:{n}: trace 'hash_ids' must be a list of whole numbers")
