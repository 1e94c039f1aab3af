"""The protobuf wire format, decoded with the standard library alone (no protobuf package).

A message is a sequence of (field number, wire type, value) records; `fields` splits one
message into field number -> list of values: ints for varint / fixed32 / fixed64 fields, bytes
for length-delimited ones (strings, bytes, nested messages, packed repeated numbers), in the
order they appear.  Nested messages are decoded by calling `fields` again on their bytes.
Malformed or truncated bytes raise `WireFormatError`; callers turn it into an error naming
their file.
"""
from __future__ import annotations

import struct
from typing import Dict, List, Optional, Tuple

__all__ = ["WireFormatError", "varint", "fields", "messages", "strings"]


class WireFormatError(Exception):
    """Malformed protobuf bytes; callers turn it into a minimovinet error naming their file."""


def varint(buf: bytes, pos: int, end: Optional[int] = None) -> Tuple[int, int]:
    """(value, position after it) of the base-128 varint at `pos`."""
    end = len(buf) if end is None else end
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise WireFormatError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireFormatError("varint longer than 10 bytes")


def fields(buf: bytes) -> Dict[int, list]:
    """field number -> list of values (ints for varint/fixed, bytes for length-delimited)."""
    found: Dict[int, list] = {}
    view = memoryview(buf)
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = varint(buf, pos)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise WireFormatError("field number 0")
        if wire == 0:
            val, pos = varint(buf, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise WireFormatError("truncated fixed64")
            val = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            n, pos = varint(buf, pos)
            if pos + n > end:
                raise WireFormatError("truncated length-delimited field")
            val = bytes(view[pos:pos + n])
            pos += n
        elif wire == 5:
            if pos + 4 > end:
                raise WireFormatError("truncated fixed32")
            val = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise WireFormatError(f"unsupported wire type {wire}")
        found.setdefault(num, []).append(val)
    return found


def messages(found: Dict[int, list], num: int) -> List[Dict[int, list]]:
    """The repeated (or single) sub-message field `num`, each decoded with `fields`."""
    out = []
    for value in found.get(num, ()):
        if not isinstance(value, bytes):
            raise WireFormatError(f"field {num} is not a message")
        out.append(fields(value))
    return out


def strings(found: Dict[int, list], num: int, default: str = "") -> str:
    """The last value of string field `num` (UTF-8), or `default` when absent."""
    values = found.get(num)
    if not values:
        return default
    if not isinstance(values[-1], bytes):
        raise WireFormatError(f"field {num} is not a string")
    return values[-1].decode("utf-8", errors="replace")
