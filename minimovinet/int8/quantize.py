"""LiteRT's QUANTIZE and DEQUANTIZE applied to whole arrays outside the program.

The model uses these for what surrounds the file's graph: int8 frames quantized from float
frames, int8 output states brought back to their input's quantization, dequantized logits and
features.  They run the same kernels as the graph's own QUANTIZE / DEQUANTIZE ops
(`kernels._quantize`, `kernels._dequantize`: blocks of 8 in float32, the rest in double), so
the values are LiteRT's.
"""
from __future__ import annotations

import numpy as np

from . import kernels as K


def dequantize(q, scale, zero_point) -> np.ndarray:
    """int8 -> float32, any shape."""
    flat = np.ascontiguousarray(q).reshape(-1)
    out = np.empty(flat.size, np.float32)
    s = float(np.float32(scale))
    K.SERIAL.dequantize(flat, np.float32(s), np.float32(-int(zero_point) * s), s,
                        int(zero_point), out)
    return out.reshape(np.shape(q))


def quantize(x, scale, zero_point) -> np.ndarray:
    """float32 -> int8, any shape (NaN and infinities are not reported: the caller checks)."""
    flat = np.ascontiguousarray(x, np.float32).reshape(-1)
    out = np.empty(flat.size, np.int8)
    s = float(np.float32(scale))
    K.SERIAL.quantize(flat, s, np.float32(1.0 / s), int(zero_point), out)
    return out.reshape(np.shape(x))


def requantize(q, out_scale, out_zero_point, in_scale, in_zero_point) -> np.ndarray:
    """An int8 output state in its input's quantization: DEQUANTIZE, then QUANTIZE (what a
    LiteRT user feeding the outputs back must do)."""
    return quantize(dequantize(q, out_scale, out_zero_point), in_scale, in_zero_point)
