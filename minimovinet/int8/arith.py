"""TFLite's scalar integer arithmetic: multipliers, fixed-point helpers, lookup-table builders.

Two kinds of functions:

* load time (plain Python): `quantize_multiplier` (TFLite's QuantizeMultiplier: frexp, round
  the mantissa to 31 bits), `upward_params` (the conv requantization as one multiply, add and
  shift), `activation_range`, and the 256-entry tables of HARD_SWISH and LOGISTIC;
* per value (Numba, inlined into the array kernels of `kernels.py` and `vnni.py`): gemmlowp's
  SaturatingRoundingDoublingHighMul (`srdhm`) and RoundingDivideByPOT (`rdbpot`, and
  `rdbpot_as_x86` for the shift by 32 that TFLite's DIV reaches), TFLite's
  MultiplyByQuantizedMultiplier (`mbqm`), the conv requantization (`requant_upward`,
  `requant`), ARM's narrowing and saturating moves, and one element of ADD / MUL as LiteRT's
  SIMD blocks and its reference tail compute it (`add_value`, `mul_value`).

The fixed-point helpers work on int64 values holding int32 quantities.  `reference.py` has
plain NumPy versions of the same arithmetic to read beside these.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


# ---- parameters computed in Python (load time) ---------------------------------------------

def quantize_multiplier(real: float):
    """TFLite QuantizeMultiplier: real = m * 2^(shift - 31), m in [2^30, 2^31) (or 0)."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(_round_half_away(q * float(1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return q_fixed, shift


def quantize_multipliers(reals):
    pairs = [quantize_multiplier(r) for r in np.asarray(reals, np.float64).ravel()]
    return (np.array([m for m, _ in pairs], np.int64), np.array([s for _, s in pairs], np.int64))


def _round_half_away(x: float) -> float:
    return math.floor(abs(x) + 0.5) * (1.0 if x >= 0 else -1.0)


def _wrap16(v: int) -> int:
    return ((v + 32768) % 65536) - 32768


def _srdhm16(a: int, b: int) -> int:
    if a == b == -32768:
        return 32767
    ab = a * b
    s = ab + ((1 << 14) if ab >= 0 else 1 - (1 << 14))
    return s >> 15 if s >= 0 else -((-s) >> 15)


def _sdhm16(a: int, b: int) -> int:
    if a == b == -32768:
        return 32767
    ab = a * b
    return _wrap16(ab >> 15 if ab >= 0 else -((-ab) >> 15))


def _rdbpot_py(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > threshold else 0)


def _downscale_to_int16(m32: int) -> int:
    if m32 >= INT32_MAX - (1 << 15):
        return 32767
    return (m32 + (1 << 15)) >> 16


def hard_swish_lut(in_scale, in_zp, out_scale, out_zp) -> np.ndarray:
    """int8 HARD_SWISH as a table indexed by q + 128, with TFLite's int16 fixed-point formula
    (reference_ops::HardSwish and the parameters of activations.cc HardSwishPrepare)."""
    f32 = np.float32
    hires = f32(f32(1.0) / f32(128.0)) * f32(in_scale)
    reluish_scale = f32(3.0) / f32(32768.0)
    out_m32, out_exp = quantize_multiplier(float(hires / f32(out_scale)))
    out_m16 = _downscale_to_int16(out_m32)
    rel_m32, rel_exp = quantize_multiplier(float(hires / reluish_scale))
    rel_m16 = _downscale_to_int16(rel_m32)
    if out_exp > 0:
        raise ValueError("HARD_SWISH output multiplier exponent > 0 (TFLite refuses it too)")
    lut = np.empty(256, np.int8)
    for q in range(-128, 128):
        v = _wrap16(q - int(in_zp))
        hires_v = _wrap16(v * 128)
        preshift = _srdhm16(hires_v, out_m16)
        r = hires_v
        if rel_exp > 0:
            r = max(min(r * (1 << (rel_exp - 1)), 32767), -32768)
        r = _srdhm16(r, rel_m16)
        if rel_exp > 0:
            r = max(min(r * 2, 32767), -32768)
        if rel_exp < 0:
            r = _rdbpot_py(r, -rel_exp)
        r = (r + (1 << 15)) >> 1
        o = _rdbpot_py(_sdhm16(r, preshift), -out_exp)
        o = _wrap16(o + int(out_zp))
        lut[q + 128] = max(min(o, 127), -128)
    return lut


def logistic_lut(in_scale, in_zp, out_scale, out_zp) -> np.ndarray:
    """int8 LOGISTIC as a table indexed by q + 128 (TFLite LUTPopulate<int8_t> in float32;
    expf is evaluated in float64 and rounded to float32, i.e. correctly rounded)."""
    f32 = np.float32
    inverse_scale = f32(1.0) / f32(out_scale)
    lut = np.empty(256, np.int8)
    for q in range(-128, 128):
        dequantized = f32(in_scale) * f32(q - int(in_zp))
        with np.errstate(over="ignore"):               # exp of a large input: inf -> 0
            e = f32(np.exp(-np.float64(dequantized)))
        transformed = f32(1.0) / (f32(1.0) + e)
        rescaled = f32(_round_half_away(float(transformed * inverse_scale)))
        quantized = int(rescaled + f32(out_zp))
        lut[q + 128] = max(min(quantized, 127), -128)
    return lut


def activation_range(fused: str, out_scale, out_zp):
    """TFLite CalculateActivationRangeQuantized for int8 outputs."""
    lo, hi = -128, 127
    f32 = np.float32
    if fused in ("RELU", "RELU6", "RELU_N1_TO_1"):
        low = {"RELU": 0.0, "RELU6": 0.0, "RELU_N1_TO_1": -1.0}[fused]
        lo = max(lo, int(out_zp) + int(_round_half_away(float(f32(low) / f32(out_scale)))))
    if fused in ("RELU6", "RELU_N1_TO_1"):
        high = 6.0 if fused == "RELU6" else 1.0
        hi = min(hi, int(out_zp) + int(_round_half_away(float(f32(high) / f32(out_scale)))))
    elif fused not in ("NONE", "RELU"):
        raise ValueError(f"unsupported fused activation {fused}")
    return lo, hi


# ---- fixed-point helpers (inlined into the kernels) ------------------------------------------

@njit(inline="always", cache=True)
def srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values held in int64.

    gemmlowp computes trunc((a*b + nudge) / 2^31) with nudge 2^30 (a*b >= 0) or 1 - 2^30
    (a*b < 0); for a negative product that truncation toward zero is the floor of
    (a*b + 2^30) / 2^31, so both cases are one add and one arithmetic shift.  (The saturating
    case, a = b = INT32_MIN, cannot occur: multipliers are positive.)"""
    return (a * b + np.int64(1 << 30)) >> 31


@njit(inline="always", cache=True)
def shift_left32(x, left):
    # x * 2^left in int32 (TFLite's `x * (1 << left_shift)`); wraps like the C code would.
    return np.int64(np.int32(x << left))


@njit(inline="always", cache=True)
def requant_upward(acc, m, left, offset, total):
    """Conv / depthwise requantization: SRDHM(acc << left, m), then a rounding shift right by
    `right` that rounds halves upward, as one multiply, add and shift (see `upward_params`).
    acc: an int32 accumulator (bias included); m, left int32; offset, total int64."""
    p = shift_left32(np.int64(acc), left) * np.int64(m)
    return (p + offset) >> total


@njit(inline="always", cache=True)
def requant(acc, m, left, offset, total, any_left):
    """`requant_upward`, skipping the left shift when no channel has one (multipliers below
    1, the usual case: `any_left` is loop-invariant, so LLVM keeps two loops)."""
    if any_left:
        return requant_upward(acc, m, left, offset, total)
    return (np.int64(acc) * np.int64(m) + offset) >> total


def upward_params(shift):
    """(left, offset, total) of `requant_upward` for TFLite shifts (multiplier exponents).

    gemmlowp's SRDHM(a, m) = trunc((a*m + nudge) / 2^31), nudge = 2^30 or 1 - 2^30 by the
    sign of a*m, equals floor((a*m + 2^30) / 2^31) for every product (for a negative product
    the truncation toward zero is the floor of that sum); and floor((floor(X / 2^31) + c) /
    2^r) = floor((X + c * 2^31) / 2^(31 + r)) for an integer c.  So SRDHM followed by the
    upward-rounding shift by r = max(-shift, 0) is (a*m + 2^30 + [r > 0] 2^(30 + r)) >> (31 + r).
    """
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0).astype(np.int32)
    right = np.maximum(-shift, 0)
    offset = (np.int64(1) << 30) + np.where(right > 0, np.int64(1) << (30 + right), 0)
    return left, offset.astype(np.int64), (31 + right).astype(np.int64)


@njit(inline="always", cache=True)
def rdbpot(x, e):
    """gemmlowp RoundingDivideByPOT (halves away from zero)."""
    mask = (np.int64(1) << e) - 1
    rem = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > threshold)


@njit(inline="always", cache=True)
def mbqm(x, m, shift):
    """TFLite MultiplyByQuantizedMultiplier (double rounding: SRDHM then RDBPOT)."""
    left = max(shift, 0)
    right = max(-shift, 0)
    return rdbpot(srdhm(shift_left32(x, left), m), right)


@njit(inline="always", cache=True)
def clamp(v, lo, hi):
    return min(max(v, lo), hi)


@njit(inline="always", cache=True)
def prod16(x, w):
    """int8 x (int8 held in int16) as an int32, computed in int16: |x * w| <= 128 * 128 fits,
    and on x86 16-bit multiplies (vpmullw) run twice the lanes of 32-bit ones (30% faster
    depthwise loops than int32 products; on AArch64 this becomes mul + saddw instead of smlal,
    one instruction more per 4 lanes)."""
    return np.int32(np.int16(np.int16(x) * w))


# ---- one element of ADD and MUL (LiteRT's SIMD blocks and its reference tail) ---------------

@njit(inline="always", cache=True)
def shift32(x, e):
    """x * 2^e in int32 for e >= 0 (wrapping), else x >> -e (ARM vshl: truncating)."""
    if e >= 0:
        return np.int64(np.int32(x << e))
    return x >> -e


@njit(inline="always", cache=True)
def narrow16(x):
    """int32 -> int16, wrapping (ARM vmovn)."""
    return np.int64(np.int16(x))


@njit(inline="always", cache=True)
def sat16(x):
    """int32 -> int16, saturating (ARM vqmovn)."""
    return min(max(x, np.int64(-32768)), np.int64(32767))


@njit(inline="always", cache=True)
def add_value(a, b, a_zp, b_zp, a_m, a_s, b_m, b_s, o_m, o_s, out_zp, lo, hi, simd):
    """One quantized ADD as LiteRT computes it (left shift 20, both inputs rescaled to twice
    the larger input scale, then to the output scale).

    LiteRT's int8 ADD runs its NEON loop (on x86 too, through NEON_2_SSE) over the full blocks
    of 16 elements and TFLite's reference code over the rest, and the two round differently:
    simd=True, an element of a full block: each input is rescaled with ONE rounding,
    SRDHM((x - zp) << (20 + shift), m), and the result is narrowed through int16 (wrapping)
    before saturating to int8; simd=False, the tail: RDBPOT(SRDHM((x - zp) << 20, m), -shift)
    (two roundings), int32 throughout.  They differ by one in the rescaled sum for about a
    quarter of the inputs, which changes the int8 output only at a rounding boundary of the
    output scale (about once per million elements): rare enough to pass long tests, so the
    position class matters."""
    x1 = np.int64(a) - a_zp
    x2 = np.int64(b) - b_zp
    if simd:
        s1 = srdhm(shift32(x1, 20 + a_s), a_m)
        s2 = srdhm(shift32(x2, 20 + b_s), b_m)
        v = rdbpot(srdhm(wrap32(s1 + s2), o_m), -o_s)
        v = narrow16(narrow16(v) + out_zp)
        return clamp(clamp(v, -128, 127), lo, hi)
    s1 = rdbpot(srdhm(x1 << 20, a_m), -a_s)
    s2 = rdbpot(srdhm(x2 << 20, b_m), -b_s)
    return clamp(rdbpot(srdhm(s1 + s2, o_m), -o_s) + out_zp, lo, hi)


@njit(inline="always", cache=True)
def mul_value(a, b, a_zp, b_zp, m, s, out_zp, lo, hi, simd):
    """One quantized MUL: MultiplyByQuantizedMultiplier((a - a_zp) * (b - b_zp)) + out_zp.
    In LiteRT's NEON loop (simd=True, full blocks of 16) the product is saturated to int16
    before the zero point is added in int16 (wrapping) and the sum saturated to int8; the
    reference tail adds in int32.  They differ only for products beyond about +-32640."""
    prod = (np.int64(a) - a_zp) * (np.int64(b) - b_zp)
    v = mbqm(prod, m, s)
    if simd:
        return clamp(clamp(narrow16(sat16(v) + out_zp), -128, 127), lo, hi)
    return clamp(v + out_zp, lo, hi)


# ---- DIV: gemmlowp's reciprocal and bit counts ------------------------------------------------

@njit(inline="always", cache=True)
def sat_shl(x, e):
    """gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0 on int32 values."""
    threshold = (np.int64(1) << (31 - e)) - 1
    if x > threshold:
        return np.int64(INT32_MAX)
    if x < -threshold:
        return np.int64(INT32_MIN)
    return x << e


@njit(inline="always", cache=True)
def wrap32(x):
    return np.int64(np.int32(x))


@njit(cache=True)
def one_over_one_plus_x(a):
    """gemmlowp one_over_one_plus_x_for_x_in_0_1 on a Q0.31 raw value."""
    s = a + np.int64(INT32_MAX)
    sign = 1 if s >= 0 else -1
    t = s + sign
    half_denominator = t // 2 if t >= 0 else -((-t) // 2)
    x = wrap32(np.int64(1515870810) + srdhm(half_denominator, np.int64(-1010580540)))
    for _ in range(3):
        hdx = srdhm(half_denominator, x)
        one_minus = wrap32(np.int64(1 << 29) - hdx)
        x = wrap32(x + sat_shl(srdhm(x, one_minus), 2))
    return sat_shl(x, 1)


@njit(inline="always", cache=True)
def clz32(x):
    x = x & 0xFFFFFFFF
    n = 0
    if x == 0:
        return 32
    while (x & 0x80000000) == 0:
        x = (x << 1) & 0xFFFFFFFF
        n += 1
    return n


@njit(inline="always", cache=True)
def clrsb32(x):
    if x == 0:
        return 31
    if x > 0:
        return clz32(x) - 1
    return clz32(~x & 0xFFFFFFFF) - 1


@njit(inline="always", cache=True)
def rdbpot_as_x86(x, e):
    """gemmlowp RoundingDivideByPOT(x, e) as LiteRT's x86 build computes it, also for e >= 32,
    which TFLite's int8 DIV reaches (total_shift -32 for a dividend of +-1, headroom 31, and a
    divisor of 128 or more) and C++ leaves undefined: the mask (1ll << e) - 1 truncated to
    int32 is -1, and the int32 shift x >> e takes its count mod 32 (x86 `sar`)."""
    if e < 32:
        return rdbpot(x, e)
    threshold = np.int64(-1) + (x < 0)
    return (x >> (e & 31)) + (x > threshold)
