"""Read TensorFlow checkpoints ("tensor bundles") with NumPy alone: no TensorFlow, no protobuf.

A TF2 checkpoint with prefix ``ckpt-1`` is an index file ``ckpt-1.index`` plus data shards
``ckpt-1.data-00000-of-00001`` ...  The released MoViNet checkpoints ship as
``movinet_<id>_<base|stream>.tar.gz`` holding such a directory; `CheckpointReader` opens any of:

* a prefix (``.../ckpt-1``), or the ``.index`` / a ``.data-*`` file itself;
* a directory: its ``checkpoint`` file's ``model_checkpoint_path`` if present, else the single
  ``*.index`` in it (or, when it has none, the single checkpoint in its subdirectories);
* a ``.tar.gz`` / ``.tgz`` / ``.tar`` archive, unpacked safely to a temporary directory that is
  removed by `CheckpointReader.close` (or on leaving a ``with`` block).

The format, as written by ``tensorflow/core/util/tensor_bundle``:

* The index is a LevelDB-style sorted table: data blocks of prefix-compressed key/value entries
  closed by an array of restart offsets, each block followed by a 5-byte trailer (compression
  type, masked CRC32C of the block and the type byte); an index block mapping the last key of
  each data block to its (offset, size) handle; a 48-byte footer with the metaindex and index
  block handles and the magic number 0xdb4775248b80fb57.
* The entry with the empty key is a ``BundleHeaderProto`` (num_shards, endianness, version);
  every other entry is a ``BundleEntryProto`` (dtype, shape, shard_id, offset, size, masked
  crc32c of the stored bytes, slices).  Both are decoded here from the protobuf wire format.
* A tensor's bytes are ``size`` bytes at ``offset`` in shard ``shard_id``: the raw elements for
  fixed-size dtypes; for strings, a varint64 length per element, a masked CRC32C of the lengths,
  then the concatenated bytes.  Every tensor's checksum is verified before it is returned.

Dtypes: fixed-size TF dtypes map to the NumPy dtype of the same width and kind (quantized
``qint8``... to the plain integer types).  NumPy has no bfloat16, so ``bfloat16`` tensors are
returned as exactly widened float32 by default (every bfloat16 is a float32 with the low 16 bits
zero, NaN payloads included), or as their raw uint16 bit patterns with ``bfloat16="uint16"``;
`CheckpointReader.tf_dtype` still tells the stored type.  String tensors become object arrays of
``bytes`` (shape ``()`` for a scalar such as ``_CHECKPOINTABLE_OBJECT_GRAPH``).  Every tensor,
scalars included, is returned as an ``np.ndarray`` in native byte order.

Every failure (missing or truncated files, wrong magic, checksum mismatch, partitioned variables,
unsupported dtypes, unknown names, unsafe archives) raises `minimovinet.errors.CheckpointError`
with the file and the problem in its message.
"""
from __future__ import annotations

import difflib
import functools
import os
import re
import shutil
import struct
import tarfile
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import CheckpointError

__all__ = ["CheckpointReader", "read_checkpoint", "crc32c", "mask_crc", "unmask_crc"]

# --------------------------------------------------------------------------------------------
# CRC32C (Castagnoli), table driven and vectorized with NumPy.
# --------------------------------------------------------------------------------------------
_POLY = 0x82F63B78          # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8    # leveldb / TF checksum masking constant
_U32 = 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    """The masked form in which TF stores a CRC32C (rotate right 15, add a constant)."""
    crc &= _U32
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def unmask_crc(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & _U32
    return ((rot >> 17) | (rot << 15)) & _U32


@functools.lru_cache(maxsize=None)
def _byte_table() -> np.ndarray:
    """T[b] = the register after feeding byte b into a zero register."""
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(_POLY), t >> 1).astype(np.uint32)
    return t


# The raw CRC register (no initial value, no final xor) is linear over GF(2) in the register and
# the data.  Z_m, "feed m zero bytes", is a linear map of the 32-bit register; it is stored as
# the images of the 32 unit vectors (columns) and applied through per-byte or 16-bit tables.

def _apply_cols(cols: Sequence[int], v: int) -> int:
    out = 0
    i = 0
    while v:
        if v & 1:
            out ^= cols[i]
        v >>= 1
        i += 1
    return out


@functools.lru_cache(maxsize=None)
def _zeros_cols(log2_bytes: int) -> Tuple[int, ...]:
    """Columns of Z_(2**log2_bytes)."""
    if log2_bytes == 0:
        t = _byte_table()
        return tuple(int(t[(1 << i) & 0xFF]) ^ ((1 << i) >> 8) for i in range(32))
    half = _zeros_cols(log2_bytes - 1)
    return tuple(_apply_cols(half, c) for c in half)


def _byte_tables(cols: Sequence[int]) -> np.ndarray:
    """(4, 256) tables: Z(x) = t[0][x & 255] ^ t[1][x >> 8 & 255] ^ t[2][...] ^ t[3][x >> 24]."""
    tabs = np.zeros((4, 256), dtype=np.uint32)
    for k in range(4):
        for i in range(8):
            n = 1 << i
            tabs[k, n:2 * n] = tabs[k, :n] ^ np.uint32(cols[8 * k + i])
    return tabs


@functools.lru_cache(maxsize=None)
def _zeros_tables16(log2_bytes: int) -> Tuple[np.ndarray, np.ndarray]:
    """Z_(2**log2_bytes) as two 65536-entry tables indexed by the low and high 16 bits."""
    t = _byte_tables(_zeros_cols(log2_bytes))
    lo = (t[1][:, None] ^ t[0][None, :]).ravel()
    hi = (t[3][:, None] ^ t[2][None, :]).ravel()
    return lo, hi


def _apply_zeros(v: np.ndarray, log2_bytes: int) -> np.ndarray:
    lo, hi = _zeros_tables16(log2_bytes)
    return lo[v & np.uint32(0xFFFF)] ^ hi[v >> np.uint32(16)]


def _apply_zeros_count(v: np.ndarray, counts: np.ndarray, unit_log2: int = 0) -> np.ndarray:
    """v[i] <- Z_(counts[i] * 2**unit_log2)(v[i]), vectorized over the binary digits of counts."""
    v = v.copy()
    counts = counts.astype(np.int64)
    b = 0
    while counts.size and (counts >> b).any():
        sel = np.nonzero((counts >> b) & 1)[0]
        if sel.size:
            v[sel] = _apply_zeros(v[sel], b + unit_log2)
        b += 1
    return v


_BIG_CHUNK_LOG2 = 10            # 1 KB chunks (256 vector steps) for a megabyte or more
_SMALL_CHUNK_LOG2 = 6           # 64-byte chunks (16 steps) for small reads
_BATCH_BYTES = 1 << 21          # 2 MB of chunks per (cache-friendly) transposed batch


def _raw_chunk_crcs(rows: np.ndarray) -> np.ndarray:
    """Raw CRC register (from zero) of each row of a C-contiguous (n, chunk) uint8 array."""
    n = rows.shape[0]
    out = np.empty(n, dtype=np.uint32)
    lo_t, hi_t = _zeros_tables16(2)          # feed 4 bytes at a time
    batch = max(1, _BATCH_BYTES // rows.shape[1])
    for start in range(0, n, batch):
        words = rows[start:start + batch].view("<u4")
        words = np.ascontiguousarray(words.T).astype(np.uint32, copy=False)   # (chunk/4, m)
        m = words.shape[1]
        crc = np.zeros(m, dtype=np.uint32)
        x = np.empty(m, dtype=np.uint32)
        idx = np.empty(m, dtype=np.uint32)
        tmp = np.empty(m, dtype=np.uint32)
        for w in words:
            np.bitwise_xor(crc, w, out=x)
            np.bitwise_and(x, np.uint32(0xFFFF), out=idx)
            lo_t.take(idx, out=tmp)
            np.right_shift(x, np.uint32(16), out=idx)
            hi_t.take(idx, out=crc)
            crc ^= tmp
        out[start:start + m] = crc
    return out


def _crc32c_segments(buf: np.ndarray, offsets: Sequence[int], sizes: Sequence[int]) -> np.ndarray:
    """Standard CRC32C of each buf[offset:offset+size], all segments in one vectorized pass.

    Each segment is cut into equal chunks (64 bytes, or 1 KB for a megabyte or more) aligned on
    its end, the first chunk zero-padded in front (leading zeros leave a zero register
    unchanged); the raw CRCs of all chunks are computed together, 4 bytes per vector step; each is
    shifted by the zero-byte operator for the bytes that follow it in its segment, and the chunks
    of a segment are xored together.  The initial value 0xFFFFFFFF contributes
    Z_size(0xFFFFFFFF), and the final xor completes the standard CRC.
    """
    buf = np.asarray(buf, dtype=np.uint8).reshape(-1)
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1)
    nseg = sizes.size
    chunk_log2 = _BIG_CHUNK_LOG2 if sizes.sum() >= 1 << 20 else _SMALL_CHUNK_LOG2
    chunk = 1 << chunk_log2
    nchunks = (sizes + chunk - 1) // chunk
    first_row = np.concatenate([[0], np.cumsum(nchunks)])
    total = int(first_row[-1])
    rows = np.empty((total, chunk), dtype=np.uint8)
    for i in range(nseg):
        k = int(nchunks[i])
        if k == 0:
            continue
        off, size, r0 = int(offsets[i]), int(sizes[i]), int(first_row[i])
        head = size - (k - 1) * chunk             # 1..chunk bytes in the first chunk
        rows[r0, :chunk - head] = 0
        rows[r0, chunk - head:] = buf[off:off + head]
        if k > 1:
            rows[r0 + 1:r0 + k] = buf[off + head:off + size].reshape(k - 1, chunk)
    raw = np.zeros(nseg, dtype=np.uint32)
    if total:
        chunk_crc = _raw_chunk_crcs(rows)
        seg_of_row = np.repeat(np.arange(nseg), nchunks)
        follow = (first_row[seg_of_row + 1] - 1) - np.arange(total)   # chunks after this one
        chunk_crc = _apply_zeros_count(chunk_crc, follow, chunk_log2)
        nonempty = nchunks > 0
        raw[nonempty] = np.bitwise_xor.reduceat(chunk_crc, first_row[:-1][nonempty])
    init = _apply_zeros_count(np.full(nseg, _U32, dtype=np.uint32), sizes)
    return raw ^ init ^ np.uint32(_U32)


def crc32c(data) -> int:
    """CRC32C of a bytes-like object or array's bytes (crc32c(b"123456789") == 0xE3069283)."""
    if isinstance(data, np.ndarray):
        arr = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    else:
        arr = np.frombuffer(data, dtype=np.uint8)
    return int(_crc32c_segments(arr, [0], [arr.size])[0])


# --------------------------------------------------------------------------------------------
# Minimal protobuf wire-format decoding.
# --------------------------------------------------------------------------------------------
class _FormatError(Exception):
    """Internal: malformed bytes; turned into a CheckpointError naming the file."""


def _varint(buf: bytes, pos: int, end: Optional[int] = None) -> Tuple[int, int]:
    end = len(buf) if end is None else end
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise _FormatError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _FormatError("varint longer than 10 bytes")


def _proto_fields(buf: bytes) -> Dict[int, list]:
    """field number -> list of values (ints for varint/fixed, bytes for length-delimited)."""
    fields: Dict[int, list] = {}
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise _FormatError("field number 0")
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise _FormatError("truncated fixed64")
            val = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > end:
                raise _FormatError("truncated length-delimited field")
            val = bytes(buf[pos:pos + n])
            pos += n
        elif wire == 5:
            if pos + 4 > end:
                raise _FormatError("truncated fixed32")
            val = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise _FormatError(f"unsupported wire type {wire}")
        fields.setdefault(num, []).append(val)
    return fields


def _last_int(fields: Dict[int, list], num: int, default: int = 0, signed: bool = True) -> int:
    vals = fields.get(num)
    if not vals:
        return default
    v = vals[-1]
    if not isinstance(v, int):
        raise _FormatError(f"field {num} has the wrong wire type")
    if signed and v >= 1 << 63:
        v -= 1 << 64
    return v


def _packed_or_plain_ints(vals: list) -> List[int]:
    out: List[int] = []
    for v in vals:
        if isinstance(v, int):
            out.append(v)
        else:                                    # packed repeated varints
            pos = 0
            while pos < len(v):
                x, pos = _varint(v, pos)
                out.append(x)
    return out


# --------------------------------------------------------------------------------------------
# The sorted-table (.index) format.
# --------------------------------------------------------------------------------------------
_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_LEN = 48
_BLOCK_TRAILER = 5
_NO_COMPRESSION, _SNAPPY = 0, 1


def _block_handle(buf: bytes, pos: int, end: int) -> Tuple[int, int, int]:
    offset, pos = _varint(buf, pos, end)
    size, pos = _varint(buf, pos, end)
    return offset, size, pos


def _read_block(data: bytes, offset: int, size: int, what: str) -> bytes:
    limit = len(data) - _FOOTER_LEN
    if offset + size + _BLOCK_TRAILER > limit:
        raise _FormatError(f"{what} at bytes {offset}..{offset + size + _BLOCK_TRAILER} "
                           f"extends past the end of the table ({limit} bytes): truncated or "
                           "corrupt")
    kind = data[offset + size]
    stored = struct.unpack_from("<I", data, offset + size + 1)[0]
    actual = crc32c(memoryview(data)[offset:offset + size + 1])
    if unmask_crc(stored) != actual:
        raise _FormatError(f"checksum mismatch in {what} at byte {offset} (stored "
                           f"{unmask_crc(stored):08x}, computed {actual:08x}): the file is "
                           "corrupt")
    if kind == _SNAPPY:
        raise _FormatError(f"{what} is snappy-compressed, which this reader does not support "
                           "(TensorFlow writes checkpoint indexes uncompressed)")
    if kind != _NO_COMPRESSION:
        raise _FormatError(f"{what} has unknown compression type {kind}")
    return data[offset:offset + size]


def _block_entries(block: bytes, what: str) -> Iterator[Tuple[bytes, bytes]]:
    n = len(block)
    if n < 4:
        raise _FormatError(f"{what} is too short ({n} bytes)")
    num_restarts = struct.unpack_from("<I", block, n - 4)[0]
    limit = n - 4 * (1 + num_restarts)
    if num_restarts == 0 or limit < 0:
        raise _FormatError(f"{what} has a bad restart array ({num_restarts} restarts)")
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = _varint(block, pos, limit)
        unshared, pos = _varint(block, pos, limit)
        vlen, pos = _varint(block, pos, limit)
        if shared > len(key) or pos + unshared + vlen > limit:
            raise _FormatError(f"{what} has a malformed entry at byte {pos}")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + vlen]
        pos += vlen


def _table_entries(data: bytes) -> List[Tuple[bytes, bytes]]:
    if len(data) < _FOOTER_LEN:
        raise _FormatError(f"not a TensorFlow checkpoint index: only {len(data)} bytes, shorter "
                           f"than the {_FOOTER_LEN}-byte table footer (truncated or foreign file)")
    footer = data[-_FOOTER_LEN:]
    magic = struct.unpack_from("<Q", footer, 40)[0]
    if magic != _TABLE_MAGIC:
        raise _FormatError("not a TensorFlow checkpoint index: no table magic number at its end "
                           "(the file is truncated or of another format)")
    _, _, pos = _block_handle(footer, 0, 40)             # metaindex: unused by tensor bundles
    idx_off, idx_size, _ = _block_handle(footer, pos, 40)
    index = _read_block(data, idx_off, idx_size, "index block")
    entries: List[Tuple[bytes, bytes]] = []
    for _, handle in _block_entries(index, "index block"):
        off, size, _ = _block_handle(handle, 0, len(handle))
        block = _read_block(data, off, size, "data block")
        entries.extend(_block_entries(block, f"data block at byte {off}"))
    for (a, _), (b, _) in zip(entries, entries[1:]):
        if not a < b:
            raise _FormatError(f"keys out of order ({a!r} before {b!r}): the file is corrupt")
    return entries


# --------------------------------------------------------------------------------------------
# Tensor bundle entries.
# --------------------------------------------------------------------------------------------
# TF DataType enum -> (name, numpy dtype string or None for strings).
_DTYPES: Dict[int, Tuple[str, Optional[str]]] = {
    1: ("float32", "f4"), 2: ("float64", "f8"), 3: ("int32", "i4"), 4: ("uint8", "u1"),
    5: ("int16", "i2"), 6: ("int8", "i1"), 7: ("string", None), 8: ("complex64", "c8"),
    9: ("int64", "i8"), 10: ("bool", "?"), 11: ("qint8", "i1"), 12: ("quint8", "u1"),
    13: ("qint32", "i4"), 14: ("bfloat16", "u2"), 15: ("qint16", "i2"), 16: ("quint16", "u2"),
    17: ("uint16", "u2"), 18: ("complex128", "c16"), 19: ("float16", "f2"),
    22: ("uint32", "u4"), 23: ("uint64", "u8"),
}
_UNSUPPORTED_DTYPES = {
    0: "invalid", 20: "resource", 21: "variant", 24: "float8_e5m2", 25: "float8_e4m3fn",
    26: "float8_e4m3fnuz", 27: "float8_e4m3b11fnuz", 28: "float8_e5m2fnuz", 29: "int4",
    30: "uint4", 31: "int2", 32: "uint2",
}
_DT_STRING, _DT_BFLOAT16 = 7, 14


@dataclass(frozen=True)
class _Entry:
    name: str
    dtype: int
    shape: Tuple[int, ...]
    shard: int
    offset: int
    size: int
    masked_crc: int
    sliced: bool

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


def _parse_shape(buf: bytes) -> Tuple[int, ...]:
    f = _proto_fields(buf)
    if _last_int(f, 3, 0):
        raise _FormatError("shape of unknown rank")
    dims = []
    for dim in f.get(2, []):
        if not isinstance(dim, bytes):
            raise _FormatError("malformed shape dimension")
        size = _last_int(_proto_fields(dim), 1, 0)
        if size < 0:
            raise _FormatError(f"negative or unknown dimension {size}")
        dims.append(size)
    return tuple(dims)


def _parse_entry(name: str, value: bytes) -> _Entry:
    f = _proto_fields(value)
    shape_bytes = f.get(2, [b""])[-1]
    if not isinstance(shape_bytes, bytes):
        raise _FormatError("malformed shape")
    return _Entry(
        name=name,
        dtype=_last_int(f, 1, 0),
        shape=_parse_shape(shape_bytes),
        shard=_last_int(f, 3, 0),
        offset=_last_int(f, 4, 0),
        size=_last_int(f, 5, 0),
        masked_crc=_last_int(f, 6, 0, signed=False) & _U32,
        sliced=bool(f.get(7)),
    )


def _data_filename(prefix: str, shard: int, num_shards: int) -> str:
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


# --------------------------------------------------------------------------------------------
# Locating the checkpoint: prefix, index/data file, directory, tarball.
# --------------------------------------------------------------------------------------------
_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")


def _checkpoint_file_prefix(directory: str) -> Optional[str]:
    """The prefix named by a `checkpoint` state file (text proto), or None."""
    state = os.path.join(directory, "checkpoint")
    if not os.path.isfile(state):
        return None
    try:
        with open(state, "r", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError as exc:
        raise CheckpointError(f"{state}: cannot read the checkpoint state file: {exc}") from None
    m = re.search(r'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"', text, re.M)
    if not m:
        return None
    path = re.sub(r"\\(.)", r"\1", m.group(1))
    return path if os.path.isabs(path) else os.path.join(directory, path)


def _prefix_in_directory(directory: str, shown: str) -> str:
    named = _checkpoint_file_prefix(directory)
    if named is not None:
        if not os.path.isfile(named + ".index"):
            raise CheckpointError(f"{shown}: its 'checkpoint' file names {named!r}, but "
                                  f"{named}.index does not exist")
        return named
    indexes = sorted(n for n in os.listdir(directory)
                     if n.endswith(".index") and os.path.isfile(os.path.join(directory, n)))
    if len(indexes) == 1:
        return os.path.join(directory, indexes[0][:-len(".index")])
    if len(indexes) > 1:
        raise CheckpointError(f"{shown}: several checkpoints ({', '.join(indexes)}) and no "
                              "'checkpoint' file saying which to use; pass a prefix instead")
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        has_ckpt = "checkpoint" in files or any(f.endswith(".index") for f in files)
        if root != directory and has_ckpt:
            found.append(root)
    if len(found) == 1:
        return _prefix_in_directory(found[0], found[0])
    if found:
        rel = ", ".join(os.path.relpath(d, directory) for d in found)
        raise CheckpointError(f"{shown}: several subdirectories hold checkpoints ({rel}); "
                              "pass one of them")
    raise CheckpointError(f"{shown}: no TensorFlow checkpoint (no '*.index' file) in this "
                          "directory")


def _safe_extract(archive: str, dest: str) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name
                parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
                if (name.startswith(("/", "\\")) or os.path.isabs(name)
                        or re.match(r"^[A-Za-z]:", name)):
                    raise CheckpointError(f"{archive}: refusing archive member with an absolute "
                                          f"path: {name!r}")
                if ".." in parts:
                    raise CheckpointError(f"{archive}: refusing archive member outside the "
                                          f"archive: {name!r}")
                if not parts:
                    continue
                target = os.path.join(dest, *parts)
                if member.isdir():
                    os.makedirs(target, exist_ok=True)
                elif member.isfile():
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    src = tar.extractfile(member)
                    with src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                # links, devices and fifos are skipped: a checkpoint has none
    except CheckpointError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{archive}: cannot unpack the archive (truncated or not a tar "
                              f"file): {exc}") from None


# --------------------------------------------------------------------------------------------
# The reader.
# --------------------------------------------------------------------------------------------
class CheckpointReader:
    """Read the tensors of a TensorFlow checkpoint without TensorFlow.

    >>> with CheckpointReader("movinet_a0_stream.tar.gz") as ckpt:
    ...     for name, dtype, shape in ckpt.variables(): ...
    ...     kernel = ckpt.get("model/.../kernel/.ATTRIBUTES/VARIABLE_VALUE")
    ...     everything = ckpt.arrays()

    `bfloat16` chooses how bfloat16 tensors are returned: "float32" (exact widening, the
    default) or "uint16" (raw bit patterns).
    """

    def __init__(self, path, bfloat16: str = "float32"):
        if bfloat16 not in ("float32", "uint16"):
            raise ValueError(f"bfloat16 must be 'float32' or 'uint16', not {bfloat16!r}")
        self._bfloat16 = bfloat16
        self._tmpdir: Optional[str] = None
        self.source = os.fspath(path)
        try:
            try:
                self.prefix = self._resolve(self.source)
            except OSError as exc:
                raise CheckpointError(f"{self.source}: cannot open the checkpoint: "
                                      f"{exc}") from None
            self._open_index()
        except BaseException:
            self.close()
            raise

    # -- locating and opening ----------------------------------------------------------------
    def _resolve(self, path: str) -> str:
        if os.path.isdir(path):
            return _prefix_in_directory(path, path)
        if os.path.isfile(path):
            if path.endswith(".index"):
                return path[:-len(".index")]
            if _DATA_SUFFIX.search(path):
                return _DATA_SUFFIX.sub("", path)
            if path.lower().endswith(_TAR_SUFFIXES) or _looks_like_tar(path):
                self._tmpdir = tempfile.mkdtemp(prefix="minimovinet-ckpt-")
                _safe_extract(path, self._tmpdir)
                return _prefix_in_directory(self._tmpdir, path)
            if os.path.isfile(path + ".index"):
                return path
            raise CheckpointError(f"{path}: not a TensorFlow checkpoint (expected a checkpoint "
                                  "prefix, a directory, an .index file or a .tar.gz archive)")
        if os.path.isfile(path + ".index"):
            return path
        raise CheckpointError(f"{path}: no such checkpoint ({path}.index does not exist)")

    def _open_index(self) -> None:
        self.index_path = self.prefix + ".index"
        try:
            with open(self.index_path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise CheckpointError(f"{self.index_path}: cannot read the checkpoint index: "
                                  f"{exc}") from None
        try:
            entries = _table_entries(data)
        except _FormatError as exc:
            raise CheckpointError(f"{self.index_path}: {exc}") from None
        if not entries or entries[0][0] != b"":
            raise CheckpointError(f"{self.index_path}: not a TensorFlow checkpoint index "
                                  "(no bundle header entry)")
        try:
            header = _proto_fields(entries[0][1])
            self.num_shards = _last_int(header, 1, 0)
            endianness = _last_int(header, 2, 0)
            version = header.get(3, [b""])[-1]
            vf = _proto_fields(version) if isinstance(version, bytes) else {}
        except _FormatError as exc:
            raise CheckpointError(f"{self.index_path}: unreadable bundle header ({exc})") from None
        min_consumer = _last_int(vf, 2, 0)
        bad_consumers = _packed_or_plain_ints(vf.get(3, []))
        if min_consumer > 1 or 1 in bad_consumers:
            raise CheckpointError(f"{self.index_path}: written by a newer TensorFlow in a format "
                                  "version this reader does not know (min_consumer "
                                  f"{min_consumer})")
        if endianness not in (0, 1):
            raise CheckpointError(f"{self.index_path}: unknown endianness {endianness} in the "
                                  "header")
        self._byteorder = "<" if endianness == 0 else ">"
        if self.num_shards < 1:
            raise CheckpointError(f"{self.index_path}: bad shard count {self.num_shards} in "
                                  "the header")

        self._entries: Dict[str, _Entry] = {}
        for key, value in entries[1:]:
            if key.startswith(b"\x00"):
                continue                      # stored slice of a partitioned variable
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                name = key.decode("latin-1")
            try:
                entry = _parse_entry(name, value)
            except _FormatError as exc:
                raise CheckpointError(f"{self.index_path}: entry for {name!r} is corrupt "
                                      f"({exc})") from None
            self._entries[name] = entry
        self._names = sorted(self._entries)

        # Every shard must exist and hold every (non-sliced) entry's bytes.
        self._shard_sizes: Dict[int, int] = {}
        for shard in range(self.num_shards):
            path = _data_filename(self.prefix, shard, self.num_shards)
            try:
                self._shard_sizes[shard] = os.path.getsize(path)
            except OSError:
                raise CheckpointError(f"data shard {shard} of {self.num_shards} missing: "
                                      f"{path}") from None
        for e in self._entries.values():
            if e.sliced:
                continue
            if not 0 <= e.shard < self.num_shards:
                raise CheckpointError(f"{self.index_path}: variable {e.name!r} is in shard "
                                      f"{e.shard}, but the checkpoint has {self.num_shards}")
            have = self._shard_sizes[e.shard]
            if e.offset < 0 or e.size < 0 or e.offset + e.size > have:
                path = _data_filename(self.prefix, e.shard, self.num_shards)
                raise CheckpointError(
                    f"{path}: truncated: variable {e.name!r} needs bytes {e.offset}.."
                    f"{e.offset + e.size} but the file has {have}")

    # -- context management ------------------------------------------------------------------
    def close(self) -> None:
        """Remove the temporary directory of an unpacked archive (no-op otherwise)."""
        tmp, self._tmpdir = getattr(self, "_tmpdir", None), None
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    def __enter__(self) -> "CheckpointReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- metadata ----------------------------------------------------------------------------
    def names(self) -> List[str]:
        """All tensor names (including ``_CHECKPOINTABLE_OBJECT_GRAPH``), sorted."""
        return list(self._names)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._names)

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            near = difflib.get_close_matches(str(name), self._names, n=3)
            hint = f"; close matches: {', '.join(near)}" if near else ""
            raise CheckpointError(f"{self.index_path}: no variable named {name!r} in this "
                                  f"checkpoint ({len(self._names)} variables){hint}") from None

    def tf_dtype(self, name: str) -> str:
        """The stored TensorFlow dtype name ('float32', 'bfloat16', 'string', ...)."""
        e = self._entry(name)
        return _DTYPES.get(e.dtype, (_UNSUPPORTED_DTYPES.get(e.dtype, f"dtype {e.dtype}"),))[0]

    def _numpy_dtype(self, e: _Entry) -> np.dtype:
        if e.dtype in _DTYPES:
            code = _DTYPES[e.dtype][1]
            if code is None:
                return np.dtype(object)
            if e.dtype == _DT_BFLOAT16 and self._bfloat16 == "float32":
                return np.dtype(np.float32)
            return np.dtype(code)
        what = _UNSUPPORTED_DTYPES.get(e.dtype, f"unknown dtype enum {e.dtype}")
        raise CheckpointError(f"{self.index_path}: variable {e.name!r} has dtype {what}, "
                              "which this reader does not support")

    def variables(self) -> List[Tuple[str, Optional[np.dtype], Tuple[int, ...]]]:
        """(name, numpy dtype that `get` returns, shape) of every tensor, sorted by name.

        The dtype is None for a dtype this reader cannot decode (float8, int4, variant...);
        `get` raises a CheckpointError for those.
        """
        out = []
        for n in self._names:
            e = self._entries[n]
            try:
                dt = self._numpy_dtype(e)
            except CheckpointError:
                dt = None
            out.append((n, dt, e.shape))
        return out

    # -- data --------------------------------------------------------------------------------
    def _check_readable(self, e: _Entry) -> None:
        if e.sliced:
            raise CheckpointError(f"{self.index_path}: variable {e.name!r} is partitioned (saved "
                                  "in slices), which this reader does not support")
        self._numpy_dtype(e)

    def _read_shard_bytes(self, shard: int, start: int, stop: int) -> np.ndarray:
        path = _data_filename(self.prefix, shard, self.num_shards)
        try:
            with open(path, "rb") as fh:
                fh.seek(start)
                data = fh.read(stop - start)
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot read data shard {shard} of "
                                  f"{self.num_shards}: {exc}") from None
        if len(data) != stop - start:
            raise CheckpointError(f"{path}: truncated: wanted bytes {start}..{stop}, "
                                  f"got {len(data)}")
        return np.frombuffer(data, dtype=np.uint8)

    def _decode(self, e: _Entry, buf: np.ndarray, start: int, crc: Optional[int]) -> np.ndarray:
        """Entry e's tensor from buf[start:start+e.size], whose CRC32C is crc (None: strings)."""
        shard_path = _data_filename(self.prefix, e.shard, self.num_shards)
        if e.dtype == _DT_STRING:
            return self._decode_strings(e, buf[start:start + e.size].tobytes(), shard_path)
        if crc != unmask_crc(e.masked_crc):
            raise CheckpointError(f"{shard_path}: checksum mismatch for variable {e.name!r} "
                                  f"(stored {unmask_crc(e.masked_crc):08x}, computed {crc:08x}): "
                                  "the data file is corrupt")
        code = _DTYPES[e.dtype][1]
        dt = np.dtype(code).newbyteorder(self._byteorder) if code != "?" else np.dtype("?")
        arr = np.frombuffer(buf, dtype=dt, count=e.num_elements, offset=start)
        arr = arr.astype(dt.newbyteorder("="), copy=True).reshape(e.shape)
        if e.dtype == _DT_BFLOAT16 and self._bfloat16 == "float32":
            arr = (arr.astype(np.uint32) << np.uint32(16)).view(np.float32)
        if e.dtype == 10 and arr.size and arr.view(np.uint8).max() > 1:
            raise CheckpointError(f"{shard_path}: variable {e.name!r} (bool) holds bytes other "
                                  "than 0 and 1: the data file is corrupt")
        return arr

    def _check_size(self, e: _Entry) -> None:
        if e.dtype != _DT_STRING:
            want = e.num_elements * np.dtype(_DTYPES[e.dtype][1]).itemsize
            if e.size != want:
                raise CheckpointError(f"{self.index_path}: variable {e.name!r} of shape {e.shape} "
                                      f"stores {e.size} bytes instead of {want}: the index is "
                                      "corrupt")

    def _decode_strings(self, e: _Entry, raw: bytes, shard_path: str) -> np.ndarray:
        n = e.num_elements
        bad = f"{shard_path}: string variable {e.name!r} is corrupt"
        try:
            pos = 0
            lengths = []
            for _ in range(n):
                length, pos = _varint(raw, pos)
                lengths.append(length)
            if pos + 4 > len(raw):
                raise _FormatError("truncated length checksum")
            length_crc_raw = raw[pos:pos + 4]
            pos += 4
        except _FormatError as exc:
            raise CheckpointError(f"{bad} ({exc})") from None
        packed = b"".join(struct.pack(self._byteorder + ("I" if length <= _U32 else "Q"), length)
                          for length in lengths)
        length_crc = struct.unpack(self._byteorder + "I", length_crc_raw)[0]
        if unmask_crc(length_crc) != crc32c(packed):
            raise CheckpointError(f"{bad} (checksum of the string lengths does not match)")
        if pos + sum(lengths) != len(raw):
            raise CheckpointError(f"{bad} (string lengths add up to {pos + sum(lengths)} bytes, "
                                  f"the entry has {len(raw)})")
        if crc32c(packed + length_crc_raw + raw[pos:]) != unmask_crc(e.masked_crc):
            raise CheckpointError(f"{shard_path}: checksum mismatch for variable {e.name!r}: "
                                  "the data file is corrupt")
        out = np.empty(n, dtype=object)
        for i, length in enumerate(lengths):
            out[i] = raw[pos:pos + length]
            pos += length
        return out.reshape(e.shape)

    def get(self, name: str) -> np.ndarray:
        """The tensor `name` as a NumPy array (checksum verified)."""
        e = self._entry(name)
        self._check_readable(e)
        self._check_size(e)
        buf = self._read_shard_bytes(e.shard, e.offset, e.offset + e.size)
        crc = None if e.dtype == _DT_STRING else int(_crc32c_segments(buf, [0], [e.size])[0])
        return self._decode(e, buf, 0, crc)

    __getitem__ = get

    def arrays(self) -> Dict[str, np.ndarray]:
        """Every tensor, by name, sorted.

        Each shard is read in spans of up to 32 MB (or one larger tensor), whose checksums are
        verified in one vectorized pass: peak memory is about the result plus two spans.
        """
        out: Dict[str, np.ndarray] = {}
        for name in self._names:
            e = self._entries[name]
            self._check_readable(e)
            self._check_size(e)
        for shard in range(self.num_shards):
            entries = sorted((e for e in self._entries.values() if e.shard == shard),
                             key=lambda e: (e.offset, e.name))
            for group in _spans(entries, _READ_SPAN_BYTES):
                start = group[0].offset
                stop = max(e.offset + e.size for e in group)
                buf = self._read_shard_bytes(shard, start, stop)
                fixed = [e for e in group if e.dtype != _DT_STRING]
                crcs = _crc32c_segments(buf, [e.offset - start for e in fixed],
                                        [e.size for e in fixed])
                crc_of = {e.name: int(c) for e, c in zip(fixed, crcs)}
                for e in group:
                    out[e.name] = self._decode(e, buf, e.offset - start, crc_of.get(e.name))
                del buf
        return {n: out[n] for n in self._names}

    def __repr__(self) -> str:
        return (f"CheckpointReader({self.prefix!r}, {len(self._names)} tensors, "
                f"{self.num_shards} shard(s))")


_READ_SPAN_BYTES = 32 << 20


def _spans(entries: Sequence[_Entry], limit: int) -> Iterator[List[_Entry]]:
    """Consecutive entries (sorted by offset) grouped into file spans of at most `limit` bytes."""
    group: List[_Entry] = []
    start = 0
    for e in entries:
        if group and e.offset + e.size - start > limit:
            yield group
            group = []
        if not group:
            start = e.offset
        group.append(e)
    if group:
        yield group


def _looks_like_tar(path: str) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def read_checkpoint(path, bfloat16: str = "float32") -> Dict[str, np.ndarray]:
    """All tensors of the checkpoint at `path` (prefix, directory or archive), by name."""
    with CheckpointReader(path, bfloat16=bfloat16) as reader:
        return reader.arrays()
