"""Deterministic request generators: synthetic, chat, RAG, code, agent loops, user JSONL.

Prompts are built from common English words (one token each for the usual BPE tokenizers),
seeded, so the same options always send the same text. Multi-step workloads (chat, agent)
carry the server's own answers into the next request.
"""

from __future__ import annotations

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


class WorkloadGenerator:
    """Seeded requests: `make(i)` for independent ones, `next_turn` for conversations."""

    def __init__(self, kind: str, prompt_tokens: int = 512, output_tokens: int = 128,
                 seed: int = 0, path: Path | None = None) -> None:
        if kind not in WORKLOADS and path is None:
            raise RigscopeError(f"unknown workload {kind!r}; valid: {', '.join(WORKLOADS)} "
                                "or a .jsonl file")
        self.kind, self.prompt_tokens, self.output_tokens = kind, prompt_tokens, output_tokens
        self.rng = random.Random(seed)
        self.seed = seed
        self.items = _read_jsonl(path) if path is not None else None
        self.history: dict[int, list[dict[str, str]]] = {}

    def make(self, i: int) -> Work:
        n, out = self.prompt_tokens, self.output_tokens
        if self.items is not None:
            item = self.items[i % len(self.items)]
            return Work(prompt=item["prompt"], output_tokens=int(item.get("output_tokens", out)),
                        messages=tuple(item.get("messages", ())), seed=self.seed + i,
                        prompt_tokens=item.get("prompt_tokens"))
        rng = random.Random(f"{self.seed}:{i}")
        if self.kind == "synthetic":
            return Work(prompt=words(rng, n), output_tokens=out, seed=self.seed + i,
                        prompt_tokens=n)
        if self.kind == "rag":  # retrieved documents, then a question; short answer
            docs = [f"Document {d + 1}: {words(rng, max(n // 4, 32))}" for d in range(4)]
            q = f"Using only the documents above, answer: what is {words(rng, 6)}?"
            return Work(prompt="\n\n".join(docs) + "\n\n" + q, output_tokens=out,
                        seed=self.seed + i, prompt_tokens=n)
        if self.kind == "code":
            body = "\n".join(f"def f{k}(x):\n    return x + {k}  # {words(rng, 6)}"
                             for k in range(max(n // 24, 1)))
            return Work(prompt=f"{body}\n\n# Write a function that combines f0..f3:\n",
                        output_tokens=out, seed=self.seed + i, prompt_tokens=n)
        # chat and agent: a conversation whose context grows with every turn
        return Work(prompt=words(rng, n), output_tokens=out, seed=self.seed + i,
                    prompt_tokens=n)

    def next_turn(self, conversation: int, turn: int, answer: str | None) -> Work:
        """The next request of a multi-turn conversation (chat) or dependent loop (agent)."""
        history = self.history.setdefault(conversation, [])
        rng = random.Random(f"{self.seed}:{conversation}:{turn}")
        if answer is not None:
            history.append({"role": "assistant", "content": answer})
        if self.kind == "agent":
            text = (f"Tool result {turn}: {words(rng, self.prompt_tokens // 4)}\n"
                    "Decide the next action.") if turn else words(rng, self.prompt_tokens)
        else:
            text = words(rng, self.prompt_tokens if turn == 0 else self.prompt_tokens // 4)
        history.append({"role": "user", "content": text})
        prompt = "\n".join(m["content"] for m in history)
        return Work(prompt=prompt, output_tokens=self.output_tokens,
                    messages=tuple(history), seed=self.seed + conversation * 1000 + turn)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    items = []
    for n, item in read_objects(path, "workload file"):
        if not (item.get("prompt") or item.get("messages")):
            raise RigscopeError(f"{path}:{n}: needs a 'prompt' or 'messages'")
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
    return items
