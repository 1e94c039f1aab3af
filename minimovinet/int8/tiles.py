"""What the x86 dot-product forms of the 1x1 convs (`vnni.py`, `avx2.py`) share: the tile
sizes, the per-channel requantization values repeated for a pass of R pixels, the gather of a
dense conv's patches, and the requantization pass over R rows of accumulators.  Only the
micro-kernel (the intrinsic) and the operand type (uint8 or int16) differ between the forms.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .arith import clamp, requant

TILE_ROWS = 4          # pixels per micro-kernel tile
TILE_COLS = 16         # output channels per tile: two vectors of 8 int32 lanes


def tiled_requantization(bias, mult, left, offset, total, requant_block: int):
    """(bias, mult, left, offset, total) each repeated for the R pixels requantized together
    (R * Cout values; R a multiple of TILE_ROWS, about `requant_block` outputs per pass)."""
    Cout = len(bias)
    rows = TILE_ROWS * max(1, requant_block // (TILE_ROWS * Cout))
    return [np.tile(np.asarray(v, dtype), rows) for v, dtype in
            ((bias, np.int32), (mult, np.int32), (left, np.int32), (offset, np.int64),
             (total, np.int64))]


@njit(cache=True, nogil=True, inline="always")
def gather_patches(xpad, kh, kw, stride_h, stride_w, Wo, cols):
    """The patches of a dense conv from its padded input xpad [Hp, Wp, Cin] (already in the
    operand type): cols[p // 4, p % 4, (dh * kw + dw) * Cin + ci] for output pixel p.  A patch
    row dh of output pixel (oh, ow) is the kw * Cin contiguous values of xpad's row
    oh * stride_h + dh from column ow * stride_w."""
    Hp, Wp, Cin = xpad.shape
    P = cols.shape[0] * TILE_ROWS
    Ho = (P + Wo - 1) // Wo
    flat = xpad.reshape(Hp * Wp * Cin)
    run = kw * Cin
    for p in range(min(P, Ho * Wo)):
        oh = p // Wo
        ow = p % Wo
        row = cols[p // TILE_ROWS, p % TILE_ROWS]
        for dh in range(kh):
            src = flat[((oh * stride_h + dh) * Wp + ow * stride_w) * Cin:]
            dst = row[dh * run:]
            for i in range(run):
                dst[i] = src[i]


@njit(cache=True, nogil=True, inline="always")
def requantize_rows(acc, bias, mult, left, offset, total, any_left, out_zp, lo, hi, o, n):
    """o[j] = clamp(requant(acc[j] + bias[j]) + out_zp) for j < n: one flat vectorized loop
    over a pass of rows (the tiled per-channel values line up with the rows)."""
    for j in range(n):
        v = requant(np.int32(acc[j] + bias[j]), mult[j], left[j], offset[j], total[j],
                    any_left) + out_zp
        o[j] = clamp(v, lo, hi)
