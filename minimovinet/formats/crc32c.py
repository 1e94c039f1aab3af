"""CRC32C (Castagnoli), the checksum of TensorFlow checkpoints, and TF's masked form of it.

    crc32c(b"123456789") == 0xE3069283
    crc32c(b"456789", crc32c(b"123"))  == crc32c(b"123456789")     # continue a running CRC

A table-driven Numba loop, slicing-by-8: eight bytes per step through eight 256-entry tables
(table k advances a byte by k further zero bytes), the bytes before and after the 8-byte body
one at a time.  Measured against the alternatives in benchmarks/bench_crc32c.py.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["crc32c", "mask_crc", "unmask_crc"]

_POLY = 0x82F63B78          # the Castagnoli polynomial, bit-reversed (the CRC is reflected)
_MASK_DELTA = 0xA282EAD8    # leveldb / TF checksum masking constant
_U32 = 0xFFFFFFFF


def _tables() -> np.ndarray:
    """(8, 256) uint32: [0] the classic byte table; [k][b] = [0][b] followed by k zero bytes."""
    t = np.zeros((8, 256), dtype=np.uint32)
    for b in range(256):
        r = b
        for _ in range(8):
            r = (r >> 1) ^ _POLY if r & 1 else r >> 1
        t[0, b] = r
    for k in range(1, 8):
        prev = t[k - 1]
        t[k] = (prev >> np.uint32(8)) ^ t[0][prev & np.uint32(0xFF)]
    return t


_TABLES = _tables()


@njit(cache=True, nogil=True)
def _update(crc, data, tables):
    """The CRC register after feeding `data` (uint8 [n]) into `crc` (pre-inverted)."""
    t0, t1, t2, t3 = tables[0], tables[1], tables[2], tables[3]
    t4, t5, t6, t7 = tables[4], tables[5], tables[6], tables[7]
    n = data.shape[0]
    body = n - n % 8
    i = 0
    while i < body:
        # the first four bytes meet the register, the last four only enter it
        lo = crc ^ (np.uint32(data[i]) | (np.uint32(data[i + 1]) << 8)
                    | (np.uint32(data[i + 2]) << 16) | (np.uint32(data[i + 3]) << 24))
        crc = (t7[lo & 0xFF] ^ t6[(lo >> 8) & 0xFF] ^ t5[(lo >> 16) & 0xFF] ^ t4[lo >> 24]
               ^ t3[data[i + 4]] ^ t2[data[i + 5]] ^ t1[data[i + 6]] ^ t0[data[i + 7]])
        i += 8
    while i < n:
        crc = t0[(crc ^ data[i]) & 0xFF] ^ (crc >> 8)
        i += 1
    return crc


def _as_bytes(data) -> np.ndarray:
    """A read-only uint8 view: read-only always, so that Numba compiles one signature."""
    if isinstance(data, np.ndarray):
        view = np.ascontiguousarray(data).reshape(-1).view(np.uint8)[:]
    else:
        view = np.frombuffer(data, dtype=np.uint8)
    view.flags.writeable = False
    return view


def crc32c(data, crc: int = 0) -> int:
    """CRC32C of a bytes-like object or an array's bytes; `crc`: the CRC of the data before
    (to checksum a stream in pieces)."""
    register = np.uint32((crc & _U32) ^ _U32)
    return int(_update(register, _as_bytes(data), _TABLES)) ^ _U32


def mask_crc(crc: int) -> int:
    """The masked form in which TF stores a CRC32C (rotate right 15, add a constant)."""
    crc &= _U32
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def unmask_crc(masked: int) -> int:
    """The CRC32C that `mask_crc` turned into `masked`."""
    rot = (masked - _MASK_DELTA) & _U32
    return ((rot >> 17) | (rot << 15)) & _U32
