"""Parse a GGUF header (metadata and tensor table) from bytes. No I/O: the caller hands over
the first bytes of a file (from disk, or fetched by HTTP range requests) and, when they do not
reach the end of the header, is told how many it needs.

Every count and length is checked against what the file can hold before anything is
allocated, so a hostile or truncated header is refused quickly with one line.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from rigscope.catalog import ggml_types
from rigscope.errors import RigscopeError

MAX_STRING = 1 << 24  # 16 MiB: longer than any key, value or tensor name in a real file
MAX_DIMS = 4
# the smallest a tensor-table entry and a metadata pair can be, in bytes
MIN_TENSOR_INFO = 8 + 4 + 8 + 4 + 8
MIN_KV = 8 + 4 + 1
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
            11: "<q", 12: "<d"}
_GGML_IDS: dict[int, str] = {}


class NeedMore(Exception):
    """The buffer ends inside the header; `needed` bytes (at least) would do."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # ggml order
    ggml_type: str
    nbytes: int
    offset: int  # from the start of the file


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    fields: dict[str, Any]  # arrays of strings are kept as their length only (tokens, merges)
    tensors: tuple[TensorInfo, ...]
    header_bytes: int  # where tensor data starts


class _Reader:
    def __init__(self, buf: bytes, where: str, file_size: int | None) -> None:
        self.buf, self.pos, self.where = buf, 0, where
        self.limit = file_size if file_size is not None else None

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if self.limit is not None and end > self.limit:
            raise RigscopeError(f"{self.where}: GGUF header runs past the end of the file "
                                "(corrupt or truncated)")
        if end > len(self.buf):
            raise NeedMore(max(end, 2 * len(self.buf)))
        out = self.buf[self.pos:end]
        self.pos = end
        return out

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("<Q")
        if n > MAX_STRING:
            raise RigscopeError(f"{self.where}: a GGUF string claims {n} bytes (corrupt)")
        return self.take(n).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        for _ in range(count):
            n = self.scalar("<Q")
            if n > MAX_STRING:
                raise RigscopeError(f"{self.where}: a GGUF string claims {n} bytes (corrupt)")
            self.take(n)


def _type_name(type_id: int) -> str:
    if not _GGML_IDS:
        _GGML_IDS.update({t.id: name for name, t in ggml_types().items()})
    name = _GGML_IDS.get(type_id)
    if name is None:
        raise KeyError(type_id)
    return name


def _value(r: _Reader, vtype: int, remaining: int) -> Any:
    if vtype in _SCALARS:
        return r.scalar(_SCALARS[vtype])
    if vtype == 8:
        return r.string()
    if vtype == 9:
        etype, count = r.scalar("<I"), r.scalar("<Q")
        if count > remaining:  # each element takes at least one byte
            raise RigscopeError(f"{r.where}: a GGUF array claims {count} elements, more than "
                                "the file holds (corrupt)")
        if etype == 8:
            r.skip_strings(count)
            return count  # token and merge lists: their length is what matters here
        if etype in _SCALARS:
            fmt = _SCALARS[etype]
            size = struct.calcsize(fmt)
            raw = r.take(size * count)
            return list(struct.unpack("<" + fmt[1:] * count, raw)) if count else []
        raise RigscopeError(f"{r.where}: GGUF array of unsupported type {etype}")
    raise RigscopeError(f"{r.where}: GGUF value of unknown type {vtype}")


def parse_header(buf: bytes, where: str, file_size: int | None = None) -> GGUFHeader:
    """The header of a GGUF file whose first bytes are `buf` (raises NeedMore if too few)."""
    if file_size is not None and file_size < 24:
        raise RigscopeError(f"{where} is not a GGUF file ({file_size} bytes)")
    r = _Reader(buf, where, file_size)
    if r.take(4) != b"GGUF":
        raise RigscopeError(f"{where} is not a GGUF file (bad magic)")
    version = r.scalar("<I")
    if version not in (2, 3):
        raise RigscopeError(f"{where}: unsupported GGUF version {version}; valid: 2, 3")
    n_tensors, n_kv = r.scalar("<Q"), r.scalar("<Q")
    room = (file_size if file_size is not None else 1 << 62) - 24
    if n_tensors * MIN_TENSOR_INFO + n_kv * MIN_KV > room:
        raise RigscopeError(f"{where}: header claims {n_tensors} tensors and {n_kv} metadata "
                            f"keys, more than a {file_size}-byte file can hold (corrupt or "
                            "truncated)")
    fields: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string()
        fields[key] = _value(r, r.scalar("<I"), room)
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.scalar("<I")
        if not 1 <= n_dims <= MAX_DIMS:
            raise RigscopeError(f"{where}: tensor {name!r} has {n_dims} dimensions (corrupt)")
        shape = tuple(r.scalar("<Q") for _ in range(n_dims))
        type_id, offset = r.scalar("<I"), r.scalar("<Q")
        try:
            tname = _type_name(type_id)
        except KeyError:
            raise RigscopeError(f"{where}: tensor {name!r} has unknown ggml type {type_id}") \
                from None
        gt = ggml_types()[tname]
        if shape[0] % gt.block:
            raise RigscopeError(f"{where}: tensor {name!r} rows of {shape[0]} do not fill "
                                f"{tname} blocks of {gt.block} (corrupt)")
        rows = 1
        for d in shape[1:]:
            rows *= d
        infos.append((name, shape, tname, gt.row_bytes(shape[0]) * rows, offset))
    alignment = fields.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise RigscopeError(f"{where}: invalid general.alignment {alignment!r}")
    start = (r.pos + alignment - 1) // alignment * alignment
    tensors = tuple(TensorInfo(n, s, t, b, start + o) for n, s, t, b, o in infos)
    if file_size is not None:
        for t in tensors:
            if t.offset + t.nbytes > file_size:
                raise RigscopeError(f"{where}: tensor {t.name!r} ends past the end of the file "
                                    "(corrupt or truncated)")
    return GGUFHeader(version=version, fields=fields, tensors=tensors, header_bytes=start)
