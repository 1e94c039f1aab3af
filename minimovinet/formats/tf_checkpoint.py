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
import os
import re
import shutil
import struct
import tarfile
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import CheckpointError, InputError
from .crc32c import crc32c, mask_crc, unmask_crc
from .protowire import WireFormatError as _FormatError
from .protowire import fields as _proto_fields
from .protowire import varint as _varint

__all__ = ["CheckpointReader", "read_checkpoint", "crc32c", "mask_crc", "unmask_crc"]

# --------------------------------------------------------------------------------------------
# Protobuf fields (the wire format itself is in protowire.py).
# --------------------------------------------------------------------------------------------
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
_DT_BOOL, _DT_STRING, _DT_BFLOAT16 = 10, 7, 14
_U32 = 0xFFFFFFFF


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


def safe_extract(archive: str, dest: str) -> None:
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


def looks_like_tar(path: str) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _locate(path: str) -> Tuple[str, Optional[str]]:
    """(checkpoint prefix, temporary directory or None) for any form `CheckpointReader` takes;
    an archive is unpacked into the temporary directory, which the caller removes."""
    if os.path.isdir(path):
        return _prefix_in_directory(path, path), None
    if os.path.isfile(path):
        if path.endswith(".index"):
            return path[:-len(".index")], None
        if _DATA_SUFFIX.search(path):
            return _DATA_SUFFIX.sub("", path), None
        if path.lower().endswith(_TAR_SUFFIXES) or looks_like_tar(path):
            tmpdir = tempfile.mkdtemp(prefix="minimovinet-ckpt-")
            try:
                safe_extract(path, tmpdir)
                return _prefix_in_directory(tmpdir, path), tmpdir
            except BaseException:
                shutil.rmtree(tmpdir, ignore_errors=True)
                raise
        if os.path.isfile(path + ".index"):
            return path, None
        raise CheckpointError(f"{path}: not a TensorFlow checkpoint (expected a checkpoint "
                              "prefix, a directory, an .index file or a .tar.gz archive)")
    if os.path.isfile(path + ".index"):
        return path, None
    raise CheckpointError(f"{path}: no such checkpoint ({path}.index does not exist)")


# --------------------------------------------------------------------------------------------
# Reading the index: the bundle header, the entries, the shards they point into.
# --------------------------------------------------------------------------------------------
@dataclass
class _BundleIndex:
    path: str                       # the .index file
    num_shards: int
    byteorder: str                  # "<" or ">", for struct and NumPy
    entries: Dict[str, _Entry]      # by name; slices of partitioned variables left out


def _read_index(prefix: str) -> _BundleIndex:
    """The checkpoint's index, checked against its data shards (each exists and holds the bytes
    of every entry that points into it)."""
    path = prefix + ".index"
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint index: {exc}") from None
    try:
        table = _table_entries(data)
    except _FormatError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    if not table or table[0][0] != b"":
        raise CheckpointError(f"{path}: not a TensorFlow checkpoint index (no bundle header "
                              "entry)")
    num_shards, byteorder = _read_header(path, table[0][1])
    index = _BundleIndex(path, num_shards, byteorder, _read_entries(path, table[1:]))
    _check_shards(prefix, index)
    return index


def _read_header(path: str, value: bytes) -> Tuple[int, str]:
    """(num_shards, byte order) of the BundleHeaderProto, refusing versions we cannot read."""
    try:
        header = _proto_fields(value)
        num_shards = _last_int(header, 1, 0)
        endianness = _last_int(header, 2, 0)
        version = header.get(3, [b""])[-1]
        vf = _proto_fields(version) if isinstance(version, bytes) else {}
    except _FormatError as exc:
        raise CheckpointError(f"{path}: unreadable bundle header ({exc})") from None
    min_consumer = _last_int(vf, 2, 0)
    bad_consumers = _packed_or_plain_ints(vf.get(3, []))
    if min_consumer > 1 or 1 in bad_consumers:
        raise CheckpointError(f"{path}: written by a newer TensorFlow in a format version this "
                              f"reader does not know (min_consumer {min_consumer})")
    if endianness not in (0, 1):
        raise CheckpointError(f"{path}: unknown endianness {endianness} in the header")
    if num_shards < 1:
        raise CheckpointError(f"{path}: bad shard count {num_shards} in the header")
    return num_shards, "<" if endianness == 0 else ">"


def _read_entries(path: str, table: Sequence[Tuple[bytes, bytes]]) -> Dict[str, _Entry]:
    entries: Dict[str, _Entry] = {}
    for key, value in table:
        if key.startswith(b"\x00"):
            continue                      # stored slice of a partitioned variable
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError:
            name = key.decode("latin-1")
        try:
            entries[name] = _parse_entry(name, value)
        except _FormatError as exc:
            raise CheckpointError(f"{path}: entry for {name!r} is corrupt ({exc})") from None
    return entries


def _check_shards(prefix: str, index: _BundleIndex) -> None:
    sizes: Dict[int, int] = {}
    for shard in range(index.num_shards):
        path = _data_filename(prefix, shard, index.num_shards)
        try:
            sizes[shard] = os.path.getsize(path)
        except OSError:
            raise CheckpointError(f"data shard {shard} of {index.num_shards} missing: "
                                  f"{path}") from None
    for e in index.entries.values():
        if e.sliced:
            continue
        if not 0 <= e.shard < index.num_shards:
            raise CheckpointError(f"{index.path}: variable {e.name!r} is in shard {e.shard}, "
                                  f"but the checkpoint has {index.num_shards}")
        have = sizes[e.shard]
        if e.offset < 0 or e.size < 0 or e.offset + e.size > have:
            path = _data_filename(prefix, e.shard, index.num_shards)
            raise CheckpointError(f"{path}: truncated: variable {e.name!r} needs bytes "
                                  f"{e.offset}..{e.offset + e.size} but the file has {have}")


# --------------------------------------------------------------------------------------------
# Reading tensors: shard bytes -> checked, decoded arrays.
# --------------------------------------------------------------------------------------------
class _TensorDecoder:
    """Reads entries' bytes from the data shards and turns them into NumPy arrays, verifying
    every checksum."""

    def __init__(self, prefix: str, index: _BundleIndex, bfloat16: str):
        self.prefix, self.index, self.bfloat16 = prefix, index, bfloat16
        self.byteorder = index.byteorder

    def shard_path(self, shard: int) -> str:
        return _data_filename(self.prefix, shard, self.index.num_shards)

    def numpy_dtype(self, e: _Entry) -> np.dtype:
        if e.dtype in _DTYPES:
            code = _DTYPES[e.dtype][1]
            if code is None:
                return np.dtype(object)
            if e.dtype == _DT_BFLOAT16 and self.bfloat16 == "float32":
                return np.dtype(np.float32)
            return np.dtype(code)
        what = _UNSUPPORTED_DTYPES.get(e.dtype, f"unknown dtype enum {e.dtype}")
        raise CheckpointError(f"{self.index.path}: variable {e.name!r} has dtype {what}, "
                              "which this reader does not support")

    def check(self, e: _Entry) -> None:
        """Refuse, before reading anything, what cannot be decoded or has the wrong size."""
        if e.sliced:
            raise CheckpointError(f"{self.index.path}: variable {e.name!r} is partitioned "
                                  "(saved in slices), which this reader does not support")
        self.numpy_dtype(e)
        if e.dtype != _DT_STRING:
            want = e.num_elements * np.dtype(_DTYPES[e.dtype][1]).itemsize
            if e.size != want:
                raise CheckpointError(f"{self.index.path}: variable {e.name!r} of shape "
                                      f"{e.shape} stores {e.size} bytes instead of {want}: "
                                      "the index is corrupt")

    def read(self, shard: int, start: int, stop: int) -> np.ndarray:
        """Bytes start..stop of a data shard."""
        path = self.shard_path(shard)
        try:
            with open(path, "rb") as fh:
                fh.seek(start)
                data = fh.read(stop - start)
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot read data shard {shard} of "
                                  f"{self.index.num_shards}: {exc}") from None
        if len(data) != stop - start:
            raise CheckpointError(f"{path}: truncated: wanted bytes {start}..{stop}, "
                                  f"got {len(data)}")
        return np.frombuffer(data, dtype=np.uint8)

    def decode(self, e: _Entry, buf: np.ndarray, start: int) -> np.ndarray:
        """Entry e's tensor from buf[start:start + e.size]."""
        raw = buf[start:start + e.size]
        if e.dtype == _DT_STRING:
            return self._strings(e, raw.tobytes())
        crc = crc32c(raw)
        if crc != unmask_crc(e.masked_crc):
            raise CheckpointError(f"{self.shard_path(e.shard)}: checksum mismatch for variable "
                                  f"{e.name!r} (stored {unmask_crc(e.masked_crc):08x}, computed "
                                  f"{crc:08x}): the data file is corrupt")
        code = _DTYPES[e.dtype][1]
        dt = np.dtype(code).newbyteorder(self.byteorder) if code != "?" else np.dtype("?")
        arr = np.frombuffer(raw, dtype=dt, count=e.num_elements)
        arr = arr.astype(dt.newbyteorder("="), copy=True).reshape(e.shape)
        if e.dtype == _DT_BFLOAT16 and self.bfloat16 == "float32":
            arr = (arr.astype(np.uint32) << np.uint32(16)).view(np.float32)
        if e.dtype == _DT_BOOL and arr.size and arr.view(np.uint8).max() > 1:
            raise CheckpointError(f"{self.shard_path(e.shard)}: variable {e.name!r} (bool) "
                                  "holds bytes other than 0 and 1: the data file is corrupt")
        return arr

    def _strings(self, e: _Entry, raw: bytes) -> np.ndarray:
        """A string tensor: a varint length per element, a masked CRC32C of the lengths (as
        fixed-width integers), then the bytes; the entry's CRC covers all three."""
        n = e.num_elements
        bad = f"{self.shard_path(e.shard)}: string variable {e.name!r} is corrupt"
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
        packed = b"".join(struct.pack(self.byteorder + ("I" if length <= _U32 else "Q"), length)
                          for length in lengths)
        length_crc = struct.unpack(self.byteorder + "I", length_crc_raw)[0]
        if unmask_crc(length_crc) != crc32c(packed):
            raise CheckpointError(f"{bad} (checksum of the string lengths does not match)")
        if pos + sum(lengths) != len(raw):
            raise CheckpointError(f"{bad} (string lengths add up to {pos + sum(lengths)} bytes, "
                                  f"the entry has {len(raw)})")
        if crc32c(packed + length_crc_raw + raw[pos:]) != unmask_crc(e.masked_crc):
            raise CheckpointError(f"{self.shard_path(e.shard)}: checksum mismatch for variable "
                                  f"{e.name!r}: the data file is corrupt")
        out = np.empty(n, dtype=object)
        for i, length in enumerate(lengths):
            out[i] = raw[pos:pos + length]
            pos += length
        return out.reshape(e.shape)


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
            raise InputError(f"bfloat16 must be 'float32' or 'uint16', not {bfloat16!r}")
        self._tmpdir: Optional[str] = None
        self.source = os.fspath(path)
        try:
            try:
                self.prefix, self._tmpdir = _locate(self.source)
            except OSError as exc:
                raise CheckpointError(f"{self.source}: cannot open the checkpoint: "
                                      f"{exc}") from None
            self._index = _read_index(self.prefix)
        except BaseException:
            self.close()
            raise
        self.index_path = self._index.path
        self.num_shards = self._index.num_shards
        self._entries = self._index.entries
        self._names = sorted(self._entries)
        self._tensors = _TensorDecoder(self.prefix, self._index, bfloat16)

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

    def variables(self) -> List[Tuple[str, Optional[np.dtype], Tuple[int, ...]]]:
        """(name, numpy dtype that `get` returns, shape) of every tensor, sorted by name.

        The dtype is None for a dtype this reader cannot decode (float8, int4, variant...);
        `get` raises a CheckpointError for those.
        """
        out = []
        for n in self._names:
            e = self._entries[n]
            try:
                dt = self._tensors.numpy_dtype(e)
            except CheckpointError:
                dt = None
            out.append((n, dt, e.shape))
        return out

    # -- data --------------------------------------------------------------------------------
    def get(self, name: str) -> np.ndarray:
        """The tensor `name` as a NumPy array (checksum verified)."""
        e = self._entry(name)
        self._tensors.check(e)
        return self._tensors.decode(e, self._tensors.read(e.shard, e.offset, e.offset + e.size),
                                    0)

    __getitem__ = get

    def arrays(self) -> Dict[str, np.ndarray]:
        """Every tensor, by name, sorted.

        Each shard is read in spans of up to 32 MB (or one larger tensor): peak memory is about
        the result plus one span.
        """
        for name in self._names:
            self._tensors.check(self._entries[name])
        out: Dict[str, np.ndarray] = {}
        for shard in range(self.num_shards):
            entries = sorted((e for e in self._entries.values() if e.shard == shard),
                             key=lambda e: (e.offset, e.name))
            for group in _spans(entries, _READ_SPAN_BYTES):
                start = group[0].offset
                buf = self._tensors.read(shard, start, max(e.offset + e.size for e in group))
                for e in group:
                    out[e.name] = self._tensors.decode(e, buf, e.offset - start)
                del buf
        return {n: out[n] for n in self._names}

    def __repr__(self) -> str:
        return (f"CheckpointReader({self.prefix!r}, {len(self._names)} tensors, "
                f"{self.num_shards} shard(s))")


def read_checkpoint(path, bfloat16: str = "float32") -> Dict[str, np.ndarray]:
    """All tensors of the checkpoint at `path` (prefix, directory or archive), by name."""
    with CheckpointReader(path, bfloat16=bfloat16) as reader:
        return reader.arrays()
