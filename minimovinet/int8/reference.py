"""The int8 arithmetic in plain Python / NumPy: slow, short, written from TFLite's definitions.

The plain version to read beside the kernels (`kernels.py`, `arith.py`, `vnni.py`), as
`float32/reference.py` is for the float kernels: each function returns what the kernel of the
same op writes, from the int8 operands and the real-valued or TFLite parameters, with no
zero-point folding, no layouts for SIMD and no lookup tables.  Integers are NumPy int64 (or
Python ints), so nothing wraps unless TFLite's code wraps there too.  tests/test_int8_kernels.py
compares every kernel with these on random data, and the int8 tests compare both with LiteRT.

    srdhm, rdbpot, rdbpot_as_x86, mbqm, requant_upward   fixed-point steps
    quantize, dequantize                                  QUANTIZE / DEQUANTIZE
    pointwise_conv, depthwise_conv, dense_conv            CONV_2D, DEPTHWISE_CONV_2D
    add, mul, simd_mask, div                              ADD, MUL (SIMD blocks / tail), DIV
    avg_pool, reduce_sum                                  AVERAGE_POOL_2D, SUM
"""
from __future__ import annotations

import math

import numpy as np

from ..structure import same_padding
from .arith import quantize_multiplier

# ---- fixed-point steps -----------------------------------------------------------------------

def srdhm(a, m):
    """gemmlowp SaturatingRoundingDoublingHighMul, elementwise on int64 arrays:
    (a * m + nudge) / 2^31 truncated toward zero, nudge 2^30 or 1 - 2^30 by the product's sign."""
    ab = a.astype(np.int64) * np.int64(m) if np.isscalar(m) else a.astype(np.int64) * m
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    return np.where(v >= 0, v >> 31, -((-v) >> 31))


def rdbpot(x, e):
    """gemmlowp RoundingDivideByPOT: x / 2^e rounded, halves away from zero."""
    e = np.asarray(e, np.int64)
    mask = (np.int64(1) << e) - 1
    rem = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > threshold)


def rdbpot_as_x86(x: int, e: int) -> int:
    """`rdbpot` as LiteRT's x86 build computes it for a shift of 32 or more (which TFLite's
    int8 DIV reaches and C++ leaves undefined): the int32 mask is -1 and x86 takes the shift
    count mod 32."""
    if e < 32:
        return int(rdbpot(np.int64(x), e))
    threshold = -1 + (x < 0)
    return (x >> (e & 31)) + (x > threshold)


def mbqm(x, m, shift):
    """TFLite MultiplyByQuantizedMultiplier (double rounding: SRDHM, then RDBPOT)."""
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot(srdhm(x * (1 << left), m), right)


def requant_upward(acc, m, shift):
    """The conv / depthwise requantization: SRDHM(acc << left, m), then a rounding shift right
    that rounds halves upward (ARM `vrshl`)."""
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    v = srdhm(acc * (np.int64(1) << left), m)
    return (v + ((np.int64(1) << right) >> 1)) >> right


# ---- QUANTIZE and DEQUANTIZE -----------------------------------------------------------------

def quantize(x, scale, zero_point):
    """float32 -> int8 with LiteRT's optimized QUANTIZE arithmetic: blocks of 8 elements
    x * float32(1/scale) rounded half to even, the n % 8 remaining ones round(x / double(scale))
    halves away from zero."""
    flat = np.asarray(x, np.float32).reshape(-1)
    n8 = flat.size - flat.size % 8
    s = np.float64(np.float32(scale))
    head = np.rint(flat[:n8] * np.float32(1.0 / s)).astype(np.int64)
    f = flat[n8:].astype(np.float64) / s
    r = np.trunc(f)
    tail = (r + np.where(np.abs(f - r) >= 0.5, np.sign(f), 0)).astype(np.int64)
    q = np.concatenate([head, tail]) + int(zero_point)
    return np.clip(q, -128, 127).astype(np.int8).reshape(np.shape(x))


def dequantize(q, scale, zero_point):
    """int8 -> float32 with LiteRT's optimized DEQUANTIZE arithmetic: blocks of 8 in float32
    q * s + (-zp * s), the n % 8 remaining ones (float)(double(s) * (q - zp))."""
    flat = np.asarray(q).reshape(-1).astype(np.int64)
    n8 = flat.size - flat.size % 8
    s = np.float32(scale)
    head = flat[:n8].astype(np.float32) * s + np.float32(-int(zero_point) * np.float64(s))
    tail = (np.float64(s) * (flat[n8:] - int(zero_point))).astype(np.float32)
    return np.concatenate([head, tail]).reshape(np.shape(q))


# ---- convolutions ----------------------------------------------------------------------------
# mult, shift: per output channel, TFLite's multiplier (`arith.quantize_multiplier`) of
# s_in * s_w[c] / s_out; lo, hi: the fused activation's clamp.

def pointwise_conv(x, w, bias, x_zp, mult, shift, out_zp, lo, hi):
    """1x1 CONV_2D: x [P, Cin] int8, w [Cout, Cin] int8, bias [Cout] -> [P, Cout] int8."""
    acc = (x.astype(np.int64) - x_zp) @ w.astype(np.int64).T + bias
    return np.clip(requant_upward(acc, mult[None], shift[None]) + out_zp, lo, hi).astype(np.int8)


def depthwise_conv(x, w, bias, x_zp, stride, padding, mult, shift, out_zp, lo, hi):
    """DEPTHWISE_CONV_2D (depth multiplier 1): x [N, H, W, C], w [kh, kw, C] -> [N, Ho, Wo, C]."""
    N, H, W, C = x.shape
    kh, kw, _ = w.shape
    if padding == "SAME":
        Ho, pt = same_padding(H, kh, stride)
        Wo, pl = same_padding(W, kw, stride)
    else:
        Ho, Wo, pt, pl = (H - kh) // stride + 1, (W - kw) // stride + 1, 0, 0
    xs = np.zeros((N, H + kh + stride * Ho, W + kw + stride * Wo, C), np.int64)
    xs[:, pt:pt + H, pl:pl + W] = x.astype(np.int64) - x_zp     # zero padding in real terms
    acc = np.zeros((N, Ho, Wo, C), np.int64) + bias
    for dh in range(kh):
        for dw in range(kw):
            acc += xs[:, dh:dh + stride * Ho:stride, dw:dw + stride * Wo:stride] * w[dh, dw]
    return np.clip(requant_upward(acc, mult, shift) + out_zp, lo, hi).astype(np.int8)


def dense_conv(x, w, bias, x_zp, stride, mult, shift, out_zp, lo, hi):
    """CONV_2D with a kh x kw kernel and SAME padding (the stem): x [H, W, Cin],
    w [Cout, kh, kw, Cin] -> [Ho, Wo, Cout]."""
    H, W, Cin = x.shape
    _, kh, kw, _ = w.shape
    Ho, pt = same_padding(H, kh, stride)
    Wo, pl = same_padding(W, kw, stride)
    xs = np.zeros((H + 2 * kh, W + 2 * kw, Cin), np.int64)
    xs[pt:pt + H, pl:pl + W] = x.astype(np.int64) - x_zp
    acc = np.zeros((Ho, Wo, w.shape[0]), np.int64) + bias
    for dh in range(kh):
        for dw in range(kw):
            acc += (xs[dh:dh + stride * Ho:stride, dw:dw + stride * Wo:stride]
                    @ w[:, dh, dw, :].astype(np.int64).T)
    return np.clip(requant_upward(acc, mult, shift) + out_zp, lo, hi).astype(np.int8)


# ---- ADD, MUL, DIV ---------------------------------------------------------------------------

def add(a, b, s1, z1, s2, z2, so, zo, simd=False):
    """TFLite's int8 ADD of a and b (same shape) from the real scales.  simd=False: the reference
    code (each input rescaled with two roundings); simd=True: LiteRT's NEON loop over full
    16-element blocks (one rounding: SRDHM((x - zp) << (20 + shift), m); the result narrowed
    through int16)."""
    twice = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    m1, e1 = quantize_multiplier(s1 / twice)
    m2, e2 = quantize_multiplier(s2 / twice)
    mo, eo = quantize_multiplier(twice / ((1 << 20) * so))
    d1, d2 = a.astype(np.int64) - z1, b.astype(np.int64) - z2
    if simd:
        def rescale(d, m, e):
            shifted = d << (20 + e) if 20 + e >= 0 else d >> -(20 + e)
            return srdhm(shifted.astype(np.int32).astype(np.int64), m)
        v = rdbpot(srdhm(rescale(d1, m1, e1) + rescale(d2, m2, e2), mo), -eo)
        v = (v.astype(np.int16).astype(np.int64) + zo).astype(np.int16)
        return np.clip(v, -128, 127).astype(np.int8)
    x1 = rdbpot(srdhm(d1 << 20, m1), -e1)
    x2 = rdbpot(srdhm(d2 << 20, m2), -e2)
    return np.clip(rdbpot(srdhm(x1 + x2, mo), -eo) + zo, -128, 127).astype(np.int8)


def mul(a, b, z1, z2, m, e, zo, simd=False):
    """TFLite's int8 MUL with multiplier (m, e) of s1 * s2 / s_out.  simd=True: LiteRT's NEON
    blocks, where the product is saturated to int16 and the zero point added in int16."""
    prod = (a.astype(np.int64) - z1) * (b.astype(np.int64) - z2)
    v = mbqm(prod, m, e)
    if simd:     # saturate to int16, add the zero point in int16 (wrapping), saturate to int8
        v = (np.clip(v, -32768, 32767) + zo).astype(np.int16).astype(np.int64)
        return np.clip(v, -128, 127).astype(np.int8)
    return np.clip(v + zo, -128, 127).astype(np.int8)


def simd_mask(shape, mode):
    """Which elements of an [R, C] binary op LiteRT computes in its full 16-element blocks:
    flat full blocks (elementwise, scalar broadcast: mode 0 or 2), or the first C - C % 16
    columns of each row (row broadcast: mode 1)."""
    R, C = shape
    flat = np.arange(R * C).reshape(R, C)
    if mode == 1:
        return np.broadcast_to(np.arange(C) < C - C % 16, shape)
    return flat < R * C - (R * C) % 16


def div(a: int, b: int, z1: int, z2: int, m: int, shift: int, zo: int) -> int:
    """TFLite's int8 DivElementwise of one pair, in Python ints: the divisor's reciprocal by
    gemmlowp's Newton-Raphson (`one_over_one_plus_x_for_x_in_0_1`), then the multiplier
    (m, shift) of s1 / (s2 * s_out)."""
    def srdhm1(x, y):
        v = x * y
        v += (1 << 30) if v >= 0 else 1 - (1 << 30)
        return v >> 31 if v >= 0 else -((-v) >> 31)

    def wrap(v):
        return ((v + (1 << 31)) % (1 << 32)) - (1 << 31)

    def sat_shl(v, k):
        t = (1 << (31 - k)) - 1
        return (1 << 31) - 1 if v > t else -(1 << 31) if v < -t else v << k

    def one_over(x):
        s = x + (1 << 31) - 1
        t = s + (1 if s >= 0 else -1)
        hd = t // 2 if t >= 0 else -((-t) // 2)
        v = wrap(1515870810 + srdhm1(hd, -1010580540))
        for _ in range(3):
            v = wrap(v + sat_shl(srdhm1(v, wrap((1 << 29) - srdhm1(hd, v))), 2))
        return sat_shl(v, 1)

    v1, v2 = a - z1, b - z2
    if v2 < 0:
        v1, v2 = -v1, -v2
    hp1 = 32 - v2.bit_length()
    inv = one_over(((v2 << hp1) & 0xFFFFFFFF) - (1 << 31))
    headroom = 31 if v1 == 0 else (32 - (v1 if v1 > 0 else ~v1).bit_length()) - 1
    unscaled = srdhm1(v1 << headroom, inv)
    total = shift - (31 - hp1) - headroom
    r = rdbpot_as_x86(srdhm1(unscaled, m), max(-total, 0)) + zo
    return min(max(r, -128), 127)


# ---- pooling ---------------------------------------------------------------------------------

def avg_pool(x, k, stride, padding="SAME"):
    """AVERAGE_POOL_2D, input and output sharing their quantization: the mean of the valid
    cells (padding excluded), rounded half away from zero, on exact rationals."""
    N, H, W, C = x.shape
    if padding == "SAME":
        Ho, pt = same_padding(H, k, stride)
        Wo, pl = same_padding(W, k, stride)
    else:
        Ho, Wo, pt, pl = (H - k) // stride + 1, (W - k) // stride + 1, 0, 0
    out = np.empty((N, Ho, Wo, C), np.int8)
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                h0, h1 = max(i * stride - pt, 0), min(i * stride - pt + k, H)
                w0, w1 = max(j * stride - pl, 0), min(j * stride - pl + k, W)
                for c in range(C):
                    total = int(x[n, h0:h1, w0:w1, c].astype(np.int64).sum())
                    cells = (h1 - h0) * (w1 - w0)
                    out[n, i, j, c] = math.copysign(math.floor(abs(total) / cells + 0.5), total)
    return out


def reduce_sum(x, scale, bias, out_zp):
    """int8 SUM over axis 1 of x [N, P, C] with TFLite's float32 rescaling:
    round(float32(sum) * scale + bias) + out_zp, halves away from zero."""
    f = x.astype(np.int32).sum(axis=1).astype(np.float32) * scale + bias
    r = np.sign(f) * np.floor(np.abs(f.astype(np.float64)) + 0.5) + out_zp
    return np.clip(r, -128, 127).astype(np.int8)
