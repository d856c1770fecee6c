"""Models on the Hugging Face Hub, through huggingface_hub: a repo's config.json and the
parameter count its safetensors headers declare, or for a GGUF repo only the header bytes of
the chosen file, fetched by HTTP range requests (never the weights).

HF_ENDPOINT and HF_TOKEN are honoured at call time. Every answer is kept in the user data
dir (hub/), so a repo looked up once estimates again without the network; a lookup that
cannot reach the Hub falls back to that copy and says so.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from rigscope.errors import RigscopeError
from rigscope.paths import data_dir
from rigscope.sources.gguf_file import spec_from_header
from rigscope.sources.gguf_header import GGUFHeader, NeedMore, parse_header
from rigscope.sources.hf import knows, model_from_checkpoint, model_from_config
from rigscope.specs import ModelSpec

_REPO = r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}"
_REF = re.compile(rf"^({_REPO})(?::([^\s:]+\.gguf))?$")
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")
FIRST_RANGE = 1 << 20
MAX_HEADER = 256 << 20  # a GGUF header this long is not one


def is_hub_ref(text: str) -> bool:
    return _REF.match(text) is not None


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _token() -> str | None:
    return os.environ.get("HF_TOKEN") or None


@dataclass(frozen=True)
class Answer:
    """What the Hub said about a repo (or the cached copy of it)."""

    repo: str
    revision: str
    files: tuple[str, ...]
    cached_at: float
    offline: bool = False  # read from the cache because the Hub could not be reached


def hub_model(ref: str, quant: str | None = None) -> ModelSpec:
    """The model an `owner/repo` or `owner/repo:file.gguf` reference names. A repo with
    GGUF files (and no config.json, or a file or GGUF quant asked for) is read from one
    file's header; otherwise from config.json and the safetensors headers."""
    m = _REF.match(ref)
    if m is None:
        raise RigscopeError(f"{ref!r} is not a Hub reference; expected owner/repo or "
                            "owner/repo:file.gguf")
    repo, wanted = m.group(1), m.group(2)
    hub = _Hub(repo)
    answer = hub.listing()
    ggufs = sorted(f for f in answer.files if f.lower().endswith(".gguf"))
    if wanted or (ggufs and ("config.json" not in answer.files or _is_gguf_quant(quant))):
        name = wanted or pick_gguf(ggufs, quant, repo)
        if name not in answer.files:
            raise RigscopeError(f"{repo} has no file {name}; GGUF files: "
                                f"{', '.join(ggufs) or 'none'}")
        spec = hub.gguf_model(name, answer)
    elif "config.json" in answer.files:
        spec = hub.config_model(answer)
    else:
        raise RigscopeError(f"{repo} has neither a config.json nor GGUF files")
    if answer.offline:
        when = time.strftime("%Y-%m-%d", time.gmtime(answer.cached_at))
        spec = replace(spec, warnings=(*spec.warnings, f"{endpoint()} could not be reached: "
                                                       f"{repo} as cached on {when}"))
    return spec


def _is_gguf_quant(quant: str | None) -> bool:
    if not quant:
        return False
    from rigscope.catalog import gguf_mixes

    return quant.upper() in gguf_mixes()


def pick_gguf(files: list[str], quant: str | None, repo: str) -> str:
    """The GGUF file of a quantization (its first part when split); without a quant, the
    only file there is."""
    firsts = [f for f in files if (m := _SPLIT.search(f)) is None or m.group(1) == "00001"]
    if quant:
        token = re.compile(rf"(^|[^A-Za-z0-9]){re.escape(quant)}([^A-Za-z0-9_]|$)", re.I)
        hits = [f for f in firsts if token.search(f.rsplit("/", 1)[-1])]
        if len(hits) > 1:  # prefer a plain name over variants (UD-Q4_K_M, Q4_K_M-imat)
            plain = [f for f in hits if re.search(rf"(^|[-_.]){re.escape(quant)}[-.]", f, re.I)]
            hits = plain or hits
        if hits:
            return sorted(hits, key=len)[0]
        raise RigscopeError(f"{repo} has no {quant} GGUF; its files: {', '.join(firsts)}")
    if len(firsts) == 1:
        return firsts[0]
    raise RigscopeError(f"{repo} has {len(firsts)} GGUF files; pick one with --quant or "
                        f"{repo}:FILE.gguf: {', '.join(firsts)}")


class _Hub:
    """One repo on the Hub, with the answer cache beside it."""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        host = re.sub(r"[^\w.-]", "_", endpoint().split("://", 1)[-1])
        self.cache = data_dir() / "hub" / host / repo

    # -- the cache ---------------------------------------------------------------------
    def _read(self, name: str) -> Any:
        path = self.cache / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _write(self, name: str, value: Any) -> None:
        path = self.cache / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value), encoding="utf-8")
        tmp.replace(path)

    def _offline(self, what: str, error: Exception) -> RigscopeError:
        return RigscopeError(f"cannot reach {endpoint()} for {self.repo} ({what}: "
                             f"{_reason(error)}) and nothing is cached for it; connect, or "
                             "set HF_ENDPOINT to a reachable mirror")

    # -- the Hub -----------------------------------------------------------------------
    def listing(self) -> Answer:
        from huggingface_hub import HfApi

        try:
            if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "TRUE"):
                raise ConnectionError("HF_HUB_OFFLINE is set")
            info = HfApi(endpoint=endpoint(), token=_token()).model_info(self.repo)
        except Exception as e:  # noqa: BLE001 - mapped to one user-facing error
            if not _unreachable(e):
                raise _hub_error(e, self.repo) from e
            cached = self._read("listing.json")
            if cached is None:
                raise self._offline("listing", e) from e
            return Answer(self.repo, cached["revision"], tuple(cached["files"]),
                          cached["cached_at"], offline=True)
        files = tuple(s.rfilename for s in (info.siblings or []))
        answer = Answer(self.repo, info.sha or "main", files, time.time())
        self._write("listing.json", {"revision": answer.revision, "files": list(files),
                                     "cached_at": answer.cached_at})
        return answer

    def config_model(self, answer: Answer) -> ModelSpec:
        cached = self._read(f"config@{answer.revision}.json")
        if cached is None:
            if answer.offline:
                raise self._offline("config.json", ConnectionError("offline"))
            cfg = json.loads(self._get("config.json", answer.revision))
            meta = self._safetensors(answer)
            # the checkpoint's own count (scales of quantized checkpoints included)
            params = int(sum(meta.parameter_count.values())) if meta else None
            cached = {"config": cfg, "params": params}
            if meta is not None and not knows(cfg):  # no layout for it: its own tensors
                cached["shapes"] = {name: list(t.shape) for f in meta.files_metadata.values()
                                    for name, t in f.tensors.items()}
            self._write(f"config@{answer.revision}.json", cached)
        if cached.get("shapes"):
            return model_from_checkpoint(
                cached["config"], cached["shapes"], where=f"{self.repo}/config.json",
                id=self.repo, source=f"Hugging Face Hub {self.repo}@{answer.revision[:12]}, "
                "its safetensors tensors")
        return model_from_config(
            cached["config"], where=f"{self.repo}/config.json", id=self.repo,
            checkpoint_params=cached["params"],
            source=f"Hugging Face Hub {self.repo}@{answer.revision[:12]}")

    def _safetensors(self, answer: Answer) -> Any:
        """The repo's safetensors headers (huggingface_hub's metadata), None without any."""
        if not any(f.endswith(".safetensors") for f in answer.files):
            return None
        from huggingface_hub import HfApi

        try:
            return HfApi(endpoint=endpoint(), token=_token()).get_safetensors_metadata(
                self.repo, revision=answer.revision)
        except Exception as e:  # noqa: BLE001
            raise _hub_error(e, self.repo) from e

    def gguf_model(self, name: str, answer: Answer) -> ModelSpec:
        m = _SPLIT.search(name)
        parts = [name] if m is None else [
            name[: m.start()] + f"-{i:05d}-of-{m.group(2)}.gguf"
            for i in range(1, int(m.group(2)) + 1)]
        headers = [self._gguf_header(part, answer) for part in parts]
        header = headers[0] if len(headers) == 1 else _merge(headers)
        spec = spec_from_header(header, name.rsplit("/", 1)[-1],
                                f"Hugging Face Hub {self.repo}:{name}")
        if len(headers) > 1:  # offsets point into different files: no mapped range
            spec = replace(spec, tensors=tuple(replace(t, offset=None) for t in spec.tensors))
        return spec

    def _gguf_header(self, name: str, answer: Answer) -> GGUFHeader:
        path = self.cache / "gguf" / answer.revision / (name + ".header")
        size_path = path.with_suffix(".size")
        where = f"{self.repo}:{name}"
        if path.exists():
            size = int(size_path.read_text()) if size_path.exists() else None
            return parse_header(path.read_bytes(), where, size)
        if answer.offline:
            raise self._offline(name, ConnectionError("offline"))
        buf, size = self._range(name, answer.revision, 0, FIRST_RANGE)
        while True:
            try:
                header = parse_header(buf, where, size)
                break
            except NeedMore as more:
                if len(buf) >= (size or MAX_HEADER) or more.needed > MAX_HEADER:
                    raise RigscopeError(f"{where}: GGUF header is truncated or too long") \
                        from None
                extra, size = self._range(name, answer.revision, len(buf),
                                          max(more.needed, 2 * len(buf)))
                if not extra:
                    raise RigscopeError(f"{where}: GGUF header is truncated") from None
                buf += extra
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf[: header.header_bytes])
        if size is not None:
            size_path.write_text(str(size))
        return header

    def _url(self, name: str, revision: str) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.repo, name, revision=revision, endpoint=endpoint())

    def _headers(self) -> dict[str, str]:
        from huggingface_hub.utils import build_hf_headers

        return build_hf_headers(token=_token())

    def _get(self, name: str, revision: str) -> bytes:
        from huggingface_hub import get_session
        from huggingface_hub.utils import hf_raise_for_status

        try:
            r = get_session().get(self._url(name, revision), headers=self._headers(),
                                  follow_redirects=True, timeout=30)
            hf_raise_for_status(r)
        except Exception as e:  # noqa: BLE001
            raise _hub_error(e, self.repo, name) from e
        return bytes(r.content)

    def _range(self, name: str, revision: str, start: int, end: int) -> tuple[bytes, int | None]:
        """Bytes [start, end) of a file and the file's size (from Content-Range)."""
        from huggingface_hub import get_session
        from huggingface_hub.utils import hf_raise_for_status

        headers = {**self._headers(), "Range": f"bytes={start}-{end - 1}"}
        try:
            r = get_session().get(self._url(name, revision), headers=headers,
                                  follow_redirects=True, timeout=30)
            hf_raise_for_status(r)
        except Exception as e:  # noqa: BLE001
            raise _hub_error(e, self.repo, name) from e
        if r.status_code != 206:
            raise RigscopeError(f"{endpoint()} ignored a range request for {self.repo}:{name} "
                                "(it would have sent the whole file); refusing to download it")
        total = r.headers.get("Content-Range", "").rsplit("/", 1)[-1]
        return bytes(r.content), int(total) if total.isdigit() else None


def _merge(headers: list[GGUFHeader]) -> GGUFHeader:
    """A split GGUF's parts as one header: the first part's metadata, every part's tensors."""
    tensors = tuple(t for h in headers for t in h.tensors)
    return GGUFHeader(version=headers[0].version, fields=headers[0].fields, tensors=tensors,
                      header_bytes=headers[0].header_bytes)


def _reason(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def _unreachable(e: Exception) -> bool:
    """The Hub could not be reached (as opposed to answering with an error)."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(e, OfflineModeIsEnabled | ConnectionError | TimeoutError | OSError):
        return not isinstance(e, HfHubHTTPError)
    name = type(e).__name__
    return name in ("ConnectError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError")


def _hub_error(e: Exception, repo: str, name: str = "") -> RigscopeError:
    """huggingface_hub's errors as one line that says what to do."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
    )

    token = "HF_TOKEN is set" if _token() else "HF_TOKEN is not set"
    if isinstance(e, GatedRepoError):
        return RigscopeError(f"{repo} is gated: accept its terms on the Hub with your account, "
                             f"then set HF_TOKEN to a read token of that account ({token})")
    if isinstance(e, RepositoryNotFoundError):
        return RigscopeError(f"{repo}: no such model on {endpoint()} (a private repo needs "
                             f"HF_TOKEN; {token})")
    if isinstance(e, EntryNotFoundError):
        return RigscopeError(f"{repo} has no file {name or '(unknown)'}")
    if isinstance(e, HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", "?")
        if status == 401:
            return RigscopeError(f"{endpoint()} refused the token for {repo} (401; {token})")
        return RigscopeError(f"{endpoint()} answered {status} for {repo}: {_reason(e)}")
    if _unreachable(e):
        return RigscopeError(f"cannot reach {endpoint()} for {repo}: {_reason(e)}")
    if isinstance(e, RigscopeError):
        return e
    return RigscopeError(f"{repo}: {_reason(e)}")
