"""A local stand-in for the Hugging Face Hub, started by the tests (HF_ENDPOINT points at it).

It answers the requests huggingface_hub makes: `GET /api/models/OWNER/REPO[/revision/REV]`
(the repo's listing), `HEAD` and `GET /OWNER/REPO/resolve/REV/FILE` with byte ranges, and the
Hub's error headers (X-Error-Code: RepoNotFound, EntryNotFound, GatedRepo). A gated repo wants
`Authorization: Bearer <token>`. Every file request is logged with the bytes it sent, so a
test can show that a GGUF header was read without the weights.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Repo:
    files: dict[str, bytes | Path]
    gated_token: str | None = None  # the token that opens a gated repo
    sha: str = ""

    def __post_init__(self) -> None:
        if not self.sha:
            self.sha = hashlib.sha1(json.dumps(sorted(self.files)).encode()).hexdigest()


@dataclass
class Sent:
    repo: str
    name: str
    method: str
    status: int
    nbytes: int


@dataclass
class FakeHub:
    repos: dict[str, Repo]
    log: list[Sent] = field(default_factory=list)
    url: str = ""
    down: bool = False  # refuse every connection's request (the Hub is unreachable)

    def bytes_sent(self, repo: str, name: str) -> int:
        return sum(s.nbytes for s in self.log if s.repo == repo and s.name == name)


def start(repos: dict[str, Repo]) -> tuple[FakeHub, ThreadingHTTPServer]:
    hub = FakeHub(repos)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                  head: bool = False) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _error(self, status: int, code: str, message: str, head: bool) -> None:
            self._send(status, json.dumps({"error": message}).encode(),
                       {"X-Error-Code": code, "X-Error-Message": message,
                        "Content-Type": "application/json"}, head)

        def _route(self, head: bool) -> None:
            if hub.down:  # drop the connection without an answer
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            path = self.path.split("?", 1)[0]
            m = re.match(r"^/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?$", path)
            if m:
                repo = hub.repos.get(m.group(1))
                if repo is None:
                    return self._error(404, "RepoNotFound", "Repository not found", head)
                info = {"id": m.group(1), "modelId": m.group(1), "sha": repo.sha,
                        "private": False, "disabled": False,
                        "gated": "manual" if repo.gated_token else False,
                        "siblings": [{"rfilename": n} for n in sorted(repo.files)],
                        "tags": [], "downloads": 0, "likes": 0}
                return self._send(200, json.dumps(info).encode(),
                                  {"Content-Type": "application/json"}, head)
            m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
            if not m:
                return self._error(404, "NotFound", "no such endpoint", head)
            name, repo = m.group(3), hub.repos.get(m.group(1))
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found", head)
            if repo.gated_token and self.headers.get("Authorization") != \
                    f"Bearer {repo.gated_token}":
                hub.log.append(Sent(m.group(1), name, self.command, 401, 0))
                return self._error(401, "GatedRepo", "Access to this model is restricted",
                                   head)
            if name not in repo.files:
                return self._error(404, "EntryNotFound", "Entry not found", head)
            data = repo.files[name]
            body = data.read_bytes() if isinstance(data, Path) else data
            headers = {"X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes",
                       "ETag": '"' + hashlib.sha1(body).hexdigest() + '"',
                       "Content-Type": "application/octet-stream"}
            status = 200
            rng = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
            if rng:
                start = int(rng.group(1))
                end = min(int(rng.group(2)) if rng.group(2) else len(body) - 1, len(body) - 1)
                headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
                body, status = body[start:end + 1], 206
            hub.log.append(Sent(m.group(1), name, self.command, status,
                                0 if head else len(body)))
            self._send(status, body, headers, head)

        def do_GET(self) -> None:  # noqa: N802
            self._route(head=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._route(head=True)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return hub, server


def safetensors_header(tensors: dict[str, list[int]], dtype: str = "BF16") -> bytes:
    """A safetensors file cut after its header (the Hub serves headers by range)."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors.items():
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


def qwen3_tensors(cfg: dict) -> dict[str, list[int]]:
    """The tensor names and shapes of a Qwen3 checkpoint with this config (HF order)."""
    h, i, n = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    hd, heads, kv = cfg["head_dim"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    out = {"model.embed_tokens.weight": [cfg["vocab_size"], h]}
    for il in range(n):
        p = f"model.layers.{il}."
        out |= {p + "self_attn.q_proj.weight": [heads * hd, h],
                p + "self_attn.k_proj.weight": [kv * hd, h],
                p + "self_attn.v_proj.weight": [kv * hd, h],
                p + "self_attn.o_proj.weight": [h, heads * hd],
                p + "self_attn.q_norm.weight": [hd], p + "self_attn.k_norm.weight": [hd],
                p + "mlp.gate_proj.weight": [i, h], p + "mlp.up_proj.weight": [i, h],
                p + "mlp.down_proj.weight": [h, i], p + "input_layernorm.weight": [h],
                p + "post_attention_layernorm.weight": [h]}
    out["model.norm.weight"] = [h]
    if not cfg.get("tie_word_embeddings"):
        out["lm_head.weight"] = [cfg["vocab_size"], h]
    return out
