"""Numba int8 array kernels with TFLite's integer arithmetic (bit-exact with LiteRT's built-in
kernels).  The per-value arithmetic they inline (requantizations, roundings, one element of ADD
and MUL) is in `arith.py`; `reference.py` has plain NumPy versions of these kernels.

Every quantized tensor is `real = scale * (q - zero_point)`, q int8.  The arithmetic below is
what LiteRT 2.3's built-in (non-delegated) x86 kernels do, determined op by op against LiteRT
with all intermediate tensors preserved (tests/test_int8_litert.py::test_every_op_equals_litert).
(LiteRT's x86 build runs TFLite's NEON code paths through NEON_2_SSE, hence the ARM roundings.)

* CONV_2D and DEPTHWISE_CONV_2D: exact int32 accumulation of (x - x_zp) * w + bias, then the
  per-channel requantization `(SRDHM(acc << ls, m) + 2^(rs-1)) >> rs` -- gemmlowp's
  saturating rounding doubling high multiply followed by a rounding right shift that rounds
  halves *upward* (the "kUpward" / ARM `vrshl` rounding), then + output zero point and the
  fused-activation clamp.  (Not TFLite's double-rounding MultiplyByQuantizedMultiplier, whose
  final shift rounds halves away from zero, and not ruy's single rounding.)
* MEAN, DIV: TFLite's default double-rounding MultiplyByQuantizedMultiplier (SRDHM, then
  gemmlowp's RoundingDivideByPOT, halves away from zero).  DIV's final shift can reach 32
  (a dividend of +-1 over a divisor of 128 or more), which C++ leaves undefined; it is done
  as LiteRT's x86 build does it (`arith.rdbpot_as_x86`).
* ADD (left_shift 20 / twice-max-input-scale scheme) and MUL: LiteRT's NEON loop over full
  blocks of 16 elements, TFLite's reference code over the remaining ones, and the two differ:
  ADD rescales its inputs with one rounding in the blocks and two in the tail; both narrow
  through int16 in the blocks (`arith.add_value`, `arith.mul_value`: the `simd` flag).
* AVERAGE_POOL_2D: int32 sum over the valid cells, then (sum +- count/2) / count (truncating
  division: the average rounds half away from zero); padded cells excluded.
* SUM (int8): float32 `round(sum * (s_in/s_out) + (-zp_in * s_in/s_out * n)) + zp_out`.
* QUANTIZE (float -> int8) and DEQUANTIZE (int8 -> float) follow LiteRT's optimized kernels,
  whose NEON code runs on x86 too (through NEON_2_SSE): blocks of 8 elements in float32
  (x * float32(1/scale) rounded half to even; q * scale + (-zero_point * scale)), the n % 8
  remaining elements in double (round(x / scale) halves away from zero; scale * (q - zp)).
* HARD_SWISH and LOGISTIC depend on the int8 input value only: they run as 256-entry lookup
  tables computed at load time (HARD_SWISH with TFLite's int16 fixed-point formula, LOGISTIC
  with TFLite's float formula).  Likewise ADD and MUL of two int8 tensors (and a block's
  ReZero MUL by a constant followed by its residual ADD) are functions of two int8 values: the
  model runs them as 256 x 256 tables filled by the exact kernels `_add` / `_mul` /
  `_mul_add` at load time.

Multipliers come from `arith.quantize_multiplier` (TFLite's QuantizeMultiplier: frexp, round
the mantissa to 31 bits).  The fixed-point helpers work on int64 values holding int32 quantities.

Zero points are folded out of the hot loops: a conv accumulates `sum(x * w)` only, starting
from the precomputed `bias - x_zp * sum(w)` (depthwise convs read an input padded with x_zp,
so that every tap is valid and the same folding holds).  Pointwise convs have two portable
forms here, both bit-exact (the tests run both): `_pointwise`, a plain int8 x int8 -> int32
reduction over the input channels per output (what LLVM turns into sdot on a Cortex-A76; the
classifier's single-pixel convs; AArch64 runs the other 1x1 convs in `neon.py`), and `_pointwise_rows`, outer products over the output channels for groups
of 4 pixels with int16 products, two of them summed in int16 before widening (x86 without
VNNI: LLVM does not emit vpdpbusd from Numba's loops; x86 CPUs with VNNI run `vnni.py`).
The conv requantization is one multiply, add and shift per output (`arith.upward_params`).
Depthwise convs read an input split by column phase, so that each tap over a block of output
columns is one contiguous multiply-add (`_depthwise`).
"""
from __future__ import annotations

import platform

import numpy as np
from numba import njit, prange

from .. import threads
from . import avx2, neon, vnni
from .arith import (add_value, clamp, clrsb32, clz32, mbqm, mul_value, one_over_one_plus_x,
                    prod16, rdbpot_as_x86, requant, srdhm, wrap32)

# x86: int16 operands (vpmaddwd directly); aarch64: int8 operands (sdot / smull+sadalp).
PREFER_INT16 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


# ---- kernels ---------------------------------------------------------------------------------

def _pointwise(x, w, bias, mult, left, offset, total, out_zp, lo, hi, out):
    """1x1 conv as a reduction over input channels (sdot / smull+sadalp on ARM; the single-pixel
    convs in every form, all 1x1 convs in the "reduce" form).

    x [P, Cin] int8; w [Cout, Cin] int8; bias [Cout] int32 = tflite bias - x_zp * sum(w);
    mult, left [Cout] int32 and offset, total [Cout] int64: the requantization
    (`arith.upward_params`); out [P, Cout] int8.
    """
    P, Cin = x.shape
    Cout = w.shape[0]
    any_left = left.max() > 0
    for block in prange((P + 15) // 16):
        acc = np.empty(Cout, np.int32)
        for p in range(block * 16, min(P, block * 16 + 16)):
            for co in range(Cout):
                s = bias[co]
                for ci in range(Cin):
                    s += np.int32(x[p, ci]) * np.int32(w[co, ci])
                acc[co] = s
            for co in range(Cout):
                v = requant(acc[co], mult[co], left[co], offset[co], total[co], any_left) + out_zp
                out[p, co] = clamp(v, lo, hi)


def _pointwise_rows(x, wt, pairs, bias, mult, left, offset, total, out_zp, lo, hi, out):
    """1x1 conv in groups of 4 pixels that share each weight row: outer products vectorized
    over output channels (the form for x86, where LLVM does not use vpdpbusd).

    x [P, Cin] int8; wt [Cin, Cout] int16 holding int8 weights.  Products are exact in int16
    (|x * w| <= 128 * 127); with `pairs` (weights in [-127, 127]) two products are summed in
    int16 (<= 32512) before widening to the int32 accumulator.  Other arguments as
    `_pointwise`.
    """
    P, Cin = x.shape
    Cout = wt.shape[1]
    any_left = left.max() > 0
    groups = (P + 3) // 4
    chunk = 16                                   # groups per task
    half = Cin // 2 if pairs else 0
    for task in prange((groups + chunk - 1) // chunk):
        acc = np.empty((4, Cout), np.int32)
        for group in range(task * chunk, min(groups, task * chunk + chunk)):
            p0 = group * 4
            n = min(4, P - p0)
            for r in range(4):
                for co in range(Cout):
                    acc[r, co] = bias[co]
            if n == 4:
                for cp in range(half):
                    c0 = 2 * cp
                    c1 = c0 + 1
                    a0 = np.int16(x[p0, c0])
                    b0 = np.int16(x[p0, c1])
                    a1 = np.int16(x[p0 + 1, c0])
                    b1 = np.int16(x[p0 + 1, c1])
                    a2 = np.int16(x[p0 + 2, c0])
                    b2 = np.int16(x[p0 + 2, c1])
                    a3 = np.int16(x[p0 + 3, c0])
                    b3 = np.int16(x[p0 + 3, c1])
                    for co in range(Cout):
                        w0 = wt[c0, co]
                        w1 = wt[c1, co]
                        acc[0, co] += np.int32(np.int16(a0 * w0 + b0 * w1))
                        acc[1, co] += np.int32(np.int16(a1 * w0 + b1 * w1))
                        acc[2, co] += np.int32(np.int16(a2 * w0 + b2 * w1))
                        acc[3, co] += np.int32(np.int16(a3 * w0 + b3 * w1))
                for ci in range(2 * half, Cin):
                    a0 = np.int16(x[p0, ci])
                    a1 = np.int16(x[p0 + 1, ci])
                    a2 = np.int16(x[p0 + 2, ci])
                    a3 = np.int16(x[p0 + 3, ci])
                    for co in range(Cout):
                        w0 = wt[ci, co]
                        acc[0, co] += np.int32(np.int16(a0 * w0))
                        acc[1, co] += np.int32(np.int16(a1 * w0))
                        acc[2, co] += np.int32(np.int16(a2 * w0))
                        acc[3, co] += np.int32(np.int16(a3 * w0))
            else:
                for r in range(n):
                    for ci in range(Cin):
                        xv = np.int32(x[p0 + r, ci])
                        for co in range(Cout):
                            acc[r, co] += xv * np.int32(wt[ci, co])
            for r in range(n):
                for co in range(Cout):
                    v = requant(acc[r, co], mult[co], left[co], offset[co], total[co],
                                any_left) + out_zp
                    out[p0 + r, co] = clamp(v, lo, hi)


def _im2col(x, kh, kw, stride_h, stride_w, pad_top, pad_left, x_zp, Wo, out):
    """Patches of a dense conv: x [H, W, Cin] int8 -> out [Ho * Wo, kh * kw * Cin]; cells
    outside the image read as x_zp (they then contribute nothing once x_zp * sum(w) is
    subtracted)."""
    H, W, Cin = x.shape
    P = out.shape[0]
    for p in prange(P):
        oh = p // Wo
        ow = p % Wo
        k = 0
        for dh in range(kh):
            ih = oh * stride_h - pad_top + dh
            for dw in range(kw):
                iw = ow * stride_w - pad_left + dw
                if 0 <= ih < H and 0 <= iw < W:
                    for ci in range(Cin):
                        out[p, k + ci] = x[ih, iw, ci]
                else:
                    for ci in range(Cin):
                        out[p, k + ci] = x_zp
                k += Cin


def _pad_copy(x, pad_top, pad_left, out):
    """Copy x [N, H, W, C] into the interior of the padded, column-phase-split
    out [N, Hp, S, Wq, C]: padded column j goes to phase j % S, position j // S (S = the conv's
    column stride; S = 1 is a plain padded copy).  The border keeps the fill value written when
    `out` was allocated (the input zero point).  Splitting the phases makes every tap of a
    strided depthwise conv read one contiguous run of memory (see `_depthwise`)."""
    N, H, W, C = x.shape
    S = out.shape[2]
    for job in prange(N * H):
        n = job // H
        h = job % H
        for w in range(W):
            j = w + pad_left
            phase = j % S
            q = j // S
            for c in range(C):
                out[n, h + pad_top, phase, q, c] = x[n, h, w, c]


def depthwise_tiles(w, bias_eff, mult, left, offset, total, Wo):
    """Load-time layout of a depthwise conv for `_depthwise`.

    The taps' weights, the bias and the requantization parameters are repeated for a block of
    B output columns (B * C values), so that a tap over a block of columns is one contiguous
    multiply-add of B * C values; the taps are padded with all-zero taps to a multiple of 3
    (a zero tap reads tap 0's inputs and adds nothing).
    w [kh, kw, C] int8 -> wt [taps, B * C] int16; bias_eff, mult, left [C] int32 and offset,
    total [C] int64 -> [B * C] each.  Returns (wt, bias, mult, left, offset, total).
    """
    kh, kw, C = w.shape
    B = max(1, min(int(Wo), DEPTHWISE_BLOCK // C))
    taps = -(-(kh * kw) // 3) * 3
    wt = np.zeros((taps, B * C), np.int16)
    wt[:kh * kw] = np.tile(w.reshape(kh * kw, 1, C), (1, B, 1)).reshape(kh * kw, B * C)
    tiled = [np.tile(np.asarray(v, dtype), B) for v, dtype in
             ((bias_eff, np.int32), (mult, np.int32), (left, np.int32), (offset, np.int64),
              (total, np.int64))]
    return (wt, *tiled)


# about 512 accumulators per block of output columns: a 5x5 kernel's tiled weights stay in L1
DEPTHWISE_BLOCK = 512


def _depthwise(xq, wt, bias, kh, kw, stride_h, mult, left, offset, total, out_zp, lo, hi, out):
    """Depthwise conv (depth multiplier 1) on a padded, phase-split input.

    xq [N, Hp, S, Wq, C] int8 (`_pad_copy`: padded with the input zero point, so every tap is
    valid and x_zp * sum(w) is folded into the bias; S is the column stride); wt [taps, B * C],
    bias, mult, left, offset, total [B * C] from `depthwise_tiles`; out [N, Ho, Wo, C] int8.

    Output columns go in blocks of B.  For tap (dh, dw), the inputs of the block's columns
    ow0 .. ow0 + B - 1 are row oh * stride_h + dh, phase dw % S, positions ow0 + dw // S ...:
    one contiguous run of B * C values, as are the block's outputs.  Each pass over the block
    sums three taps in registers (the loop over the block is the vectorized one); the first
    pass starts from the bias and the last one requantizes, so a 3-tap conv never stores an
    accumulator.
    """
    N, Hp, S, Wq, C = xq.shape
    taps, BC = wt.shape
    B = BC // C
    _, Ho, Wo, _ = out.shape
    any_left = left.max() > 0
    x_flat = xq.reshape(N * Hp * S * Wq * C)
    o_flat = out.reshape(N * Ho, Wo * C)
    row = S * Wq * C                               # one padded input row, all phases
    tap_off = np.zeros(taps, np.int64)             # zero taps (beyond kh * kw) read tap 0
    for t in range(kh * kw):
        dh = t // kw
        dw = t % kw
        tap_off[t] = dh * row + ((dw % S) * Wq + dw // S) * C
    groups = taps // 3
    n_blocks = (Wo + B - 1) // B
    for job in prange(N * Ho * n_blocks):
        n_oh = job // n_blocks
        ow0 = (job % n_blocks) * B
        n = n_oh // Ho
        oh = n_oh % Ho
        L = min(B, Wo - ow0) * C
        base = (n * Hp + oh * stride_h) * row + ow0 * C
        o = o_flat[n_oh, ow0 * C:]
        acc = np.empty(BC, np.int32)
        for g in range(groups):
            t = 3 * g
            # slices, not x_flat[base + j]: an index of unknown sign costs a wraparound check
            # per element and blocks vectorization
            x0 = x_flat[base + tap_off[t]:]
            x1 = x_flat[base + tap_off[t + 1]:]
            x2 = x_flat[base + tap_off[t + 2]:]
            w0 = wt[t]
            w1 = wt[t + 1]
            w2 = wt[t + 2]
            first = g == 0
            last = g == groups - 1
            if first and last:
                for j in range(L):
                    a = (bias[j] + prod16(x0[j], w0[j])
                         + prod16(x1[j], w1[j])
                         + prod16(x2[j], w2[j]))
                    v = requant(np.int32(a), mult[j], left[j], offset[j], total[j],
                                any_left) + out_zp
                    o[j] = clamp(v, lo, hi)
            elif first:
                for j in range(L):
                    acc[j] = (bias[j] + prod16(x0[j], w0[j])
                              + prod16(x1[j], w1[j])
                              + prod16(x2[j], w2[j]))
            elif last:
                for j in range(L):
                    a = (acc[j] + prod16(x0[j], w0[j])
                         + prod16(x1[j], w1[j])
                         + prod16(x2[j], w2[j]))
                    v = requant(np.int32(a), mult[j], left[j], offset[j], total[j],
                                any_left) + out_zp
                    o[j] = clamp(v, lo, hi)
            else:
                for j in range(L):
                    acc[j] += (prod16(x0[j], w0[j])
                               + prod16(x1[j], w1[j])
                               + prod16(x2[j], w2[j]))


@njit(inline="always", cache=True)
def _operand(b, b_mode, r, c):
    """The second operand of a binary op at [r, c]: b [R, C] (b_mode 0), a row [1, C]
    broadcast over rows (1) or a scalar [1, 1] (2)."""
    if b_mode == 0:
        return b[r, c]
    if b_mode == 1:
        return b[0, c]
    return b[0, 0]


@njit(inline="always", cache=True)
def _in_simd_block(r, c, C, n_simd, c_simd):
    """Whether element [r, c] of an [R, C] op lies in one of LiteRT's full 16-element blocks:
    flat index below n_simd and column below c_simd (a row-broadcast op runs a block loop
    per row of C)."""
    return r * C + c < n_simd and c < c_simd


def _add(a, b, b_mode, a_zp, b_zp, a_m, a_s, b_m, b_s, o_m, o_s, out_zp, lo, hi, n_simd,
         c_simd, out):
    """Quantized ADD.  a, out [R, C] int8; b [R, C], [1, C] or [1, 1] (`_operand`); elements
    in LiteRT's SIMD blocks per `_in_simd_block`."""
    R, C = a.shape
    for r in prange(R):
        for c in range(C):
            out[r, c] = add_value(a[r, c], _operand(b, b_mode, r, c), a_zp, b_zp, a_m, a_s,
                                  b_m, b_s, o_m, o_s, out_zp, lo, hi,
                                  _in_simd_block(r, c, C, n_simd, c_simd))


def _mul(a, b, b_mode, a_zp, b_zp, m, s, out_zp, lo, hi, n_simd, c_simd, out):
    """Quantized MUL.  a, out [R, C] int8; b [R, C], [1, C] or [1, 1] (`_operand`)."""
    R, C = a.shape
    for r in prange(R):
        for c in range(C):
            out[r, c] = mul_value(a[r, c], _operand(b, b_mode, r, c), a_zp, b_zp, m, s,
                                  out_zp, lo, hi, _in_simd_block(r, c, C, n_simd, c_simd))


def _mul_add(a, b, b_mode, a_zp, b_zp, m, s, mul_zp, mul_lo, mul_hi, skip, t_zp, skip_zp,
             t_m, t_s, k_m, k_s, o_m, o_s, out_zp, lo, hi, n_simd, out):
    """MUL then ADD in one pass (a block's ReZero scaling and its residual add): the int8
    value t = MUL(a, b) exactly as `_mul` stores it, then added to `skip` exactly as `_add`
    does (t with its own quantization t_zp / t_m, t_s).  Both ops cover the same flat
    elements, so they share the SIMD block class (flat index below n_simd)."""
    R, C = a.shape
    for r in prange(R):
        for c in range(C):
            simd = r * C + c < n_simd
            t = mul_value(a[r, c], _operand(b, b_mode, r, c), a_zp, b_zp, m, s, mul_zp,
                          mul_lo, mul_hi, simd)
            out[r, c] = add_value(t, skip[r, c], t_zp, skip_zp, t_m, t_s, k_m, k_s, o_m, o_s,
                                  out_zp, lo, hi, simd)


def _lut2(a, b, b_row, table, out):
    """out = table[a, b] for int8 a [R, C] and b [R, C] (or [1, C] with b_row): a binary op
    on int8 values, tabulated (all 65536 operand pairs) from its exact integer arithmetic."""
    R, C = a.shape
    keep = np.int64(0) if b_row else np.int64(1)
    for r in prange(R):
        rb = r * keep
        for c in range(C):
            out[r, c] = table[(np.int32(a[r, c]) + 128) * 256 + np.int32(b[rb, c]) + 128]


def _avg_pool(x, k, stride, pad_top, pad_left, lo, hi, out):
    """AVERAGE_POOL_2D on int8 (input and output share scale and zero point)."""
    N, H, W, C = x.shape
    _, Ho, Wo, _ = out.shape
    for job in prange(N * Ho):
        n = job // Ho
        oh = job % Ho
        acc = np.empty(C, np.int32)
        h0 = max(oh * stride - pad_top, 0)
        h1 = min(oh * stride - pad_top + k, H)
        for ow in range(Wo):
            w0 = max(ow * stride - pad_left, 0)
            w1 = min(ow * stride - pad_left + k, W)
            for c in range(C):
                acc[c] = 0
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    for c in range(C):
                        acc[c] += np.int32(x[n, ih, iw, c])
            count = np.int32((h1 - h0) * (w1 - w0))
            half = count // 2
            fcount = np.float32(count)
            for c in range(C):
                a = acc[c]
                # TFLite: (a + count/2) / count for a > 0, else (a - count/2) / count, with C++
                # division (truncation toward zero).  |a +- half| < 2^20 and count <= 2^10 here,
                # so float32 division then truncation is exact: a non-integer quotient is at
                # least 1/count away from an integer, far more than float32's rounding.
                num = a + half if a > 0 else a - half
                v = np.int32(np.float32(num) / fcount)
                out[n, oh, ow, c] = clamp(v, lo, hi)


def _lut(x, table, out):
    """out = table[x + 128] (flat int8 arrays)."""
    n = x.shape[0]
    for i in prange(n):
        out[i] = table[np.int32(x[i]) + 128]


def _mean(x, in_zp, m, s, out_zp, out):
    """int8 MEAN over axis 1 of x [N, P, C] -> out [N, C] (TFLite reference
    QuantizedMeanOrSum, integer multiplier already divided by P)."""
    N, P, C = x.shape
    for n in range(N):
        for c in range(C):
            acc = np.int64(0)
            for p in range(P):
                acc += np.int64(x[n, p, c])
            v = mbqm(np.int64(np.int32(acc - in_zp * P)), m, s) + out_zp
            out[n, c] = clamp(v, -128, 127)


def _sum(x, scale, bias, out_zp, out):
    """int8 SUM over axis 1 of x [N, P, C] -> out [N, C], TFLite's float rescaling:
    round(float(sum) * scale + bias) + out_zp (float32 arithmetic)."""
    N, P, C = x.shape
    for n in range(N):
        for c in range(C):
            acc = np.int32(0)
            for p in range(P):
                acc += np.int32(x[n, p, c])
            f = np.float32(acc) * scale + bias
            r = np.trunc(f)
            if np.abs(f - r) >= np.float32(0.5):
                r += np.float32(1.0) if f > 0 else np.float32(-1.0)
            v = np.int64(np.int32(r)) + out_zp
            out[n, c] = clamp(v, -128, 127)


def _div(a, b_value, a_zp, b_zp, m, s, out_zp, lo, hi, out):
    """int8 DIV of a [n] by one int8 value (TFLite reference DivElementwise)."""
    n = a.shape[0]
    d = np.int64(b_value) - b_zp
    for i in range(n):
        v1 = np.int64(a[i]) - a_zp
        v2 = d
        if v2 < 0:
            v1 = -v1
            v2 = -v2
        head1 = clz32(v2)
        recip_shift = 31 - head1
        shifted = wrap32(((v2 << head1) & 0xFFFFFFFF) - (np.int64(1) << 31))
        inv = one_over_one_plus_x(shifted)
        headroom = clrsb32(v1)
        unscaled = srdhm(wrap32(v1 << headroom), inv)
        total = s - recip_shift - headroom
        v = rdbpot_as_x86(srdhm(unscaled, m), max(-total, 0)) + out_zp
        out[i] = clamp(v, lo, hi)


def _quantize(x, scale, inv_scale, zp, out):
    """float32 -> int8 as LiteRT's optimized AffineQuantize does it: in blocks of 8 (its NEON
    path, also on x86) x * float32(1 / scale) rounded half to even; the remaining n % 8
    elements with the scalar path, round(x / (double)scale) halves away from zero.
    Returns True when the input holds NaN or infinite values (the output is then garbage)."""
    n = x.shape[0]
    n8 = n - n % 8
    for i in prange(n8):
        v = np.int64(np.rint(x[i] * inv_scale)) + zp
        out[i] = clamp(v, -128, 127)
    for i in range(n8, n):
        f = np.float64(x[i]) / scale
        if not np.isfinite(f):
            out[i] = 0
            continue
        r = np.trunc(f)
        if np.abs(f - r) >= 0.5:
            r += 1.0 if f > 0 else -1.0
        v = np.int64(r) + zp
        out[i] = clamp(v, -128, 127)
    finite = True                      # a separate pass: a vectorized compare-and-reduce
    for i in range(n):
        finite &= np.abs(x[i]) <= np.float32(3.4e38)
    return not finite


def _dequantize(x, scale32, neg_zp_times_scale, scale, zp, out):
    """int8 -> float32 as LiteRT's optimized Dequantize: in blocks of 8, float32
    q * scale + (-zp * scale); the remaining n % 8 elements (float)(scale * (q - zp)) with
    the product in double."""
    n = x.shape[0]
    n8 = n - n % 8
    for i in prange(n8):
        out[i] = np.float32(x[i]) * scale32 + neg_zp_times_scale
    for i in range(n8, n):
        out[i] = np.float32(scale * np.float64(np.int64(x[i]) - zp))


_SOURCES = {
    "pointwise": _pointwise,
    "pointwise_rows": _pointwise_rows,
    "im2col": _im2col,
    "pad_copy": _pad_copy,
    "depthwise": _depthwise,
    "add": _add,
    "mul": _mul,
    "mul_add": _mul_add,
    "lut2": _lut2,
    "avg_pool": _avg_pool,
    "lut": _lut,
    "quantize": _quantize,
    "dequantize": _dequantize,
    **vnni.SOURCES,                    # the x86 forms (compiled only when called)
    **avx2.SOURCES,
    **neon.SOURCES,                    # the AArch64 form (plain LLVM IR: runs anywhere)
}
# small kernels that are never worth threads
_SERIAL_ONLY = {"mean": _mean, "sum": _sum, "div": _div}

SERIAL = threads.builds({**_SOURCES, **_SERIAL_ONLY})
# one parallel region at a time per process, else the serial build (threads.guarded)
PARALLEL = threads.guarded_namespace(threads.builds(_SOURCES, parallel=True), SERIAL)
for _name in _SERIAL_ONLY:
    setattr(PARALLEL, _name, getattr(SERIAL, _name))


def impl(parallel_wanted: bool = True):
    """The kernel namespace for the current `minimovinet.set_num_threads` setting.  With
    parallel_wanted=False (a model without ops worth threads) the thread pool is not started:
    numba's pool slows even serial code down on small machines once it runs."""
    if not parallel_wanted or not threads.threads_wanted():
        return SERIAL
    return PARALLEL


__all__ = ["SERIAL", "PARALLEL", "impl", "depthwise_tiles", "DEPTHWISE_BLOCK", "PREFER_INT16"]
