"""llama.cpp's weight repacking on the CPU: which tensors get a second, resident copy.

ggml's CPU backend offers "extra" buffer types ahead of plain host memory for the weights of
CPU-held layers: AMX (tile-friendly layout; only when the build has AMX and the kernel grants
tile state) and CPU_REPACK (interleaved rows for AVX2, AVX-512, NEON dot product / i8mm).
llama.cpp loads such a weight into that buffer, converting it, while the memory-mapped file
stays mapped: its pages for those tensors are page cache (reclaimable), the repacked copy is
resident. Rules as in ggml-cpu (amx/amx.cpp supports_op, amx/mmq.cpp get_row_size,
repack.cpp ggml_repack_get_optimal_repack_type) of the llama.cpp tree the project builds.

CPU features use ggml's compile-time names: avx2, avx512, amx, neon, dotprod, i8mm.
"""

from __future__ import annotations

from rigscope.catalog import ggml_types

# AMX: types with packed kernels, and the row alignment each needs in ne[0]
_AMX_ALIGN = {"Q4_0": 32, "Q4_1": 32, "Q8_0": 32, "Q4_K": 256, "Q5_K": 256, "Q6_K": 256,
              "IQ4_XS": 256, "F16": 16}
_AMX_PACKED = {"Q4_0", "Q4_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS"}
# extra bytes per block in AMX's packed rows (compensation terms, K-quant scales)
_AMX_EXTRA = {"Q8_0": 4, "Q4_K": 4, "Q5_K": 4, "IQ4_XS": 2}
AMX_OUT_MULTIPLE = 32  # ne[1] must fill whole 2 x 16-column tiles


def _repack_rows(ggml_type: str, features: frozenset[str]) -> int | None:
    """The row multiple (ne[1]) CPU_REPACK needs for this type, or None: not repacked."""
    avx2, avx512 = "avx2" in features, "avx512" in features
    neon = "neon" in features
    dot, i8mm = neon and "dotprod" in features, neon and "i8mm" in features
    if ggml_type == "Q4_0":
        return 8 if avx2 else (4 if i8mm or dot else None)
    if ggml_type == "Q4_K":
        return 8 if avx2 or i8mm or dot else None
    if ggml_type == "Q2_K":
        return 8 if avx512 else None
    if ggml_type in ("Q5_K", "Q6_K"):
        return 8 if i8mm or dot else None
    if ggml_type in ("IQ4_NL", "MXFP4"):
        return 8 if avx2 else (4 if dot else None)
    if ggml_type == "Q8_0":
        return 4 if i8mm or dot else None
    return None


def repacked(ggml_type: str, shape: tuple[int, ...], features: frozenset[str],
             nbytes: int) -> tuple[str, int] | None:
    """(buffer, bytes of the resident copy) for a matrix-multiply weight, or None.

    shape is ggml's (ne0 = row length, ne1 = rows[, ne2 = experts]); 2-D weights are
    MUL_MAT operands (AMX or CPU_REPACK), 3-D expert stacks MUL_MAT_ID (CPU_REPACK only).
    """
    if len(shape) < 2 or not features:
        return None
    ne0, ne1 = shape[0], shape[1]
    if ("amx" in features and len(shape) == 2 and ggml_type in _AMX_ALIGN
            and ne0 % _AMX_ALIGN[ggml_type] == 0 and ne1 % AMX_OUT_MULTIPLE == 0):
        if ggml_type not in _AMX_PACKED:
            return "AMX", nbytes  # F16 rows are copied, not packed
        gt = ggml_types()[ggml_type]
        blocks = ne0 // gt.block
        return "AMX", ne1 * blocks * (gt.bytes + _AMX_EXTRA.get(ggml_type, 0))
    rows = _repack_rows(ggml_type, features)
    if rows and len(shape) in (2, 3) and ne1 % rows == 0:
        return "CPU_REPACK", nbytes
    return None


def describe(features: frozenset[str]) -> str:
    """The rule in words, for the basis."""
    parts = []
    if "amx" in features:
        parts.append("AMX packs Q4_0/Q4_1/Q8_0/Q4_K/Q5_K/Q6_K/IQ4_XS (and copies F16) matrix "
                     "weights")
    kinds = []
    if "avx2" in features:
        kinds.append("Q4_0/Q4_K/IQ4_NL/MXFP4 (AVX2)")
    if "avx512" in features:
        kinds.append("Q2_K (AVX-512)")
    if "neon" in features and ({"dotprod", "i8mm"} & features):
        kinds.append("Q4_0/Q4_K/Q5_K/Q6_K/Q8_0/IQ4_NL/MXFP4 (NEON)")
    if kinds:
        parts.append("CPU_REPACK interleaves " + ", ".join(kinds))
    return "; ".join(parts) if parts else "no repacking on this CPU"
