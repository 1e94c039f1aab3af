"""Write a FlatBuffer with nothing but Python and NumPy (the writing half of `tflite.py`).

The object tree is described with three kinds of values, then `encode` lays it out:

    Table({slot: (kind, value), ...})   a table; kind is a scalar kind ('u8', 'i8', 'bool',
                                        'i16', 'u16', 'i32', 'u32', 'f32', 'i64', 'u64') or
                                        'ref' for a string, vector or sub-table
    Vector(array, align)                a vector of scalars (a NumPy array, written as its
                                        little-endian bytes; `align`: the data's alignment)
    [Table, ...]                        a vector of tables
    str                                 a string

`encode(root, identifier)` writes the buffer front to back: the root offset and the file
identifier, then every object after the one that refers to it (a FlatBuffers `uoffset` is
unsigned: it always points forward), breadth first.  A table is preceded by its vtable (the
table's `soffset` is then positive: the vtable sits below it); identical vtables are shared.
Every scalar lands at a position aligned to its size and every vector's data at
max(4, element size, `align`), as the FlatBuffers verifier checks.
"""
from __future__ import annotations

import struct
from collections import deque
from typing import Any, Dict, List, Tuple, Union

import numpy as np

__all__ = ["Table", "Vector", "encode"]

_SCALARS = {"u8": "<B", "i8": "<b", "bool": "<B", "i16": "<h", "u16": "<H", "i32": "<i",
            "u32": "<I", "f32": "<f", "i64": "<q", "u64": "<Q"}


class Table:
    """A table: vtable slot -> (kind, value); absent slots take the schema's default."""
    __slots__ = ("fields",)

    def __init__(self, fields: Dict[int, Tuple[str, Any]]):
        for slot, (kind, _) in fields.items():
            if kind != "ref" and kind not in _SCALARS:
                raise ValueError(f"unknown field kind {kind!r} in slot {slot}")
        self.fields = fields


class Vector:
    """A vector of scalars: `array`'s elements, little-endian."""
    __slots__ = ("array", "align")

    def __init__(self, array, dtype=None, align: int = 0):
        a = np.asarray(array, dtype=dtype)
        self.array = np.ascontiguousarray(a.reshape(-1), dtype=a.dtype.newbyteorder("<"))
        self.align = align


Obj = Union[Table, Vector, List[Table], str]


def _align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


class _Writer:
    def __init__(self, identifier: bytes):
        if len(identifier) != 4:
            raise ValueError("a FlatBuffers file identifier has 4 bytes")
        self.out = bytearray(8)
        self.out[4:8] = identifier
        self.queue: deque = deque()
        self.vtables: Dict[bytes, int] = {}

    def pad_to(self, align: int, extra: int = 0) -> None:
        """Pad so that the next `extra` bytes end where an `align`-aligned item starts."""
        n = len(self.out) + extra
        self.out += bytes(_align_up(n, align) - n)

    def run(self, root: Table) -> bytes:
        self.queue.append((0, root))
        while self.queue:
            fixup, obj = self.queue.popleft()
            pos = self.write(obj)
            struct.pack_into("<I", self.out, fixup, pos - fixup)
        return bytes(self.out)

    def write(self, obj: Obj) -> int:
        if isinstance(obj, Table):
            return self.table(obj)
        if isinstance(obj, Vector):
            return self.vector(obj)
        if isinstance(obj, str):
            return self.string(obj)
        if isinstance(obj, list):
            return self.table_vector(obj)
        raise TypeError(f"cannot encode {type(obj).__name__} in a FlatBuffer")

    def table(self, t: Table) -> int:
        # fields largest first, each at an offset aligned to its size (the table itself is
        # aligned to the largest); offset 0 holds the soffset to the vtable
        sized = [(slot, kind, value, 4 if kind == "ref" else struct.calcsize(_SCALARS[kind]))
                 for slot, (kind, value) in sorted(t.fields.items())]
        sized.sort(key=lambda f: -f[3])
        table_align = max([4] + [f[3] for f in sized])
        offsets, off = {}, 4
        for slot, _, _, size in sized:
            off = _align_up(off, size)
            offsets[slot] = off
            off += size
        n_slots = max(t.fields, default=-1) + 1
        vtable = struct.pack(f"<{2 + n_slots}H", 4 + 2 * n_slots, off,
                             *(offsets.get(s, 0) for s in range(n_slots)))
        vt_pos = self.vtables.get(vtable)
        if vt_pos is None:
            self.pad_to(2)
            vt_pos = len(self.out)
            self.out += vtable
            self.vtables[vtable] = vt_pos
        self.pad_to(table_align)
        pos = len(self.out)
        self.out += bytes(off)
        struct.pack_into("<i", self.out, pos, pos - vt_pos)
        for slot, kind, value, _ in sized:
            p = pos + offsets[slot]
            if kind == "ref":
                self.queue.append((p, value))
            else:
                struct.pack_into(_SCALARS[kind], self.out, p, value)
        return pos

    def vector(self, v: Vector) -> int:
        data = v.array
        self.pad_to(max(4, data.dtype.itemsize, v.align), extra=4)
        pos = len(self.out)
        self.out += struct.pack("<I", data.size)
        self.out += data.tobytes()
        return pos

    def string(self, s: str) -> int:
        raw = s.encode("utf-8")
        self.pad_to(4)
        pos = len(self.out)
        self.out += struct.pack("<I", len(raw)) + raw + b"\0"
        return pos

    def table_vector(self, tables: List[Table]) -> int:
        self.pad_to(4)
        pos = len(self.out)
        self.out += struct.pack("<I", len(tables)) + bytes(4 * len(tables))
        for i, t in enumerate(tables):
            self.queue.append((pos + 4 + 4 * i, t))
        return pos


def encode(root: Table, identifier: bytes) -> bytes:
    """The FlatBuffer of `root` with its 4-byte file identifier."""
    return _Writer(identifier).run(root)
