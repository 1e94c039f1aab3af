"""x86 AVX2 fast path of the int8 1x1 convs and the stem: vpmaddwd on int16 pairs, bit-exact.

For x86 CPUs without VNNI (e.g. AMD EPYC before Zen 4).  LLVM does not find a dot-product
instruction in Numba's loops (the portable "rows" form multiplies in int16 and widens), so this
file emits vpmaddwd itself through a Numba intrinsic, like `vnni.py` emits vpdpbusd.

vpmaddwd(a, b) multiplies 16 signed int16 lanes of a and b and adds adjacent pairs into 8
int32 lanes.  Activations and weights are int8 sign-extended to int16 (at load time for the
weights, per call for the activations), so every product is exact (|x * w| <= 128 * 128) and so
is the sum of two (<= 2^15, no int32 overflow).  Unlike vpmaddubsw (unsigned bytes times
signed bytes, pairs saturated to int16: 255 * 127 * 2 > 32767) nothing saturates, so no operand
bound and no uint8 shift is needed: the accumulators start from the same folded bias as the
portable kernels (bias - x_zp * sum(w)) and sum the same int32 values (int32 additions wrap
like TFLite's, in any order), so results are identical to `kernels._pointwise`.

Layouts (prepared once at load time by `pack_weights`):
  weights  wp [Cout / 16, Cin / 2, 16, 2] int16: for a block of 16 output channels and a pair
           of input channels, 64 bytes = two 256-bit vectors; Cin and Cout padded with zeros
  inputs   xs [P / 4, 4, Cin2] int16: rows padded to a multiple of 4, channels to Cin2
The micro-kernel computes a tile of 4 pixels x 16 output channels in 8 vector registers (the
same tiles, accumulator rows and requantization passes as `vnni.py`).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .tiles import (TILE_COLS, TILE_ROWS, gather_patches, requantize_rows,
                    tiled_requantization)


def _host_has_avx2() -> bool:
    try:
        import llvmlite.binding as llvm
        features = llvm.get_host_cpu_features()
    except Exception:                       # not x86, or llvmlite cannot tell: no fast path
        return False
    return bool(features.get("avx2"))


AVAILABLE = _host_has_avx2()

# outputs requantized per pass (a multiple of 4 pixels): one long vectorized loop
REQUANT_BLOCK = 1024


def pack_weights(w, bias_eff, mult, left, offset, total):
    """Load-time layout of a 1x1 conv (or a dense conv's patches) for `pointwise_avx2`.

    w [Cout, Cin] int8; bias_eff [Cout] int32 (bias - x_zp * sum(w)); mult, left [Cout]
    int32 and offset, total [Cout] int64 (the requantization, `arith.upward_params`).
    Returns (wp, bias, mult, left, offset, total): wp [Cout16 / 16, Cin2 / 2, 16, 2] int16,
    and the per-channel values repeated for the R pixels that are requantized together
    (R * Cout values each).
    """
    Cout, Cin = w.shape
    Cout16 = -(-Cout // TILE_COLS) * TILE_COLS
    Cin2 = -(-Cin // 2) * 2
    padded = np.zeros((Cout16, Cin2), np.int16)
    padded[:Cout, :Cin] = w
    # [Cout16, Cin2] -> [Cout16 / 16, 16, Cin2 / 2, 2] -> [Cout16 / 16, Cin2 / 2, 16, 2]
    wp = padded.reshape(Cout16 // TILE_COLS, TILE_COLS, Cin2 // 2, 2).transpose(0, 2, 1, 3)
    tiled = tiled_requantization(bias_eff, mult, left, offset, total, REQUANT_BLOCK)
    return (np.ascontiguousarray(wp), *tiled)


def input_shape(P, Cin):
    """Shape of the int16 input workspace for P pixels of Cin channels (fill it with 0)."""
    return (-(-P // TILE_ROWS), TILE_ROWS, -(-Cin // 2) * 2)


@intrinsic
def _tile_4x16(typingctx, xs, row_block, wp, col_block, acc, acc_start, acc_stride):
    """For r < 4 and j < 16: acc[acc_start + r * acc_stride + 16 * col_block + j] (int32) =
    the sum over the input channels of xs[row_block, r] (int16) times output channel
    16 * col_block + j of wp (int16), with vpmaddwd + vpaddd and the 8 accumulators in
    registers.  acc is a flat int32 array; rows are stored in order, 16 values each."""
    sig = types.void(xs, row_block, wp, col_block, acc, acc_start, acc_stride)

    def codegen(context, builder, signature, args):
        xs_arr = context.make_array(signature.args[0])(context, builder, args[0])
        wp_arr = context.make_array(signature.args[2])(context, builder, args[2])
        acc_arr = context.make_array(signature.args[4])(context, builder, args[4])
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        v8 = ir.VectorType(i32, 8)
        v16 = ir.VectorType(ir.IntType(16), 16)
        pmaddwd = builder.module.declare_intrinsic(
            "llvm.x86.avx2.pmadd.wd", fnty=ir.FunctionType(v8, [v16, v16]))
        # xs [P4, 4, Cin2] int16: a row is 2 * Cin2 bytes; pairs of channels G = Cin2 / 2
        x_shape = builder.extract_value(xs_arr.shape, 2)
        row_bytes = builder.mul(x_shape, ir.Constant(i64, 2))
        groups = builder.udiv(x_shape, ir.Constant(i64, 2))
        row_block_64 = context.cast(builder, args[1], signature.args[1], types.int64)
        col_block_64 = context.cast(builder, args[3], signature.args[3], types.int64)
        x_base = builder.gep(builder.bitcast(xs_arr.data, i8.as_pointer()),
                             [builder.mul(row_block_64,
                                          builder.mul(row_bytes, ir.Constant(i64, 4)))])
        w_base = builder.gep(builder.bitcast(wp_arr.data, i8.as_pointer()),
                             [builder.mul(col_block_64, builder.mul(groups, ir.Constant(i64, 64)))])

        entry = builder.block
        loop = builder.append_basic_block("avx2.loop")
        done = builder.append_basic_block("avx2.done")
        zero = ir.Constant(v8, None)
        has_work = builder.icmp_signed(">", groups, ir.Constant(i64, 0))
        builder.cbranch(has_work, loop, done)

        builder.position_at_end(loop)
        g = builder.phi(i64)
        accs = [builder.phi(v8) for _ in range(2 * TILE_ROWS)]
        g.add_incoming(ir.Constant(i64, 0), entry)
        for a in accs:
            a.add_incoming(zero, entry)
        # the 64 weight bytes of this pair: output channels 0-7 and 8-15, 2 int16 each
        w_ptr = builder.gep(w_base, [builder.mul(g, ir.Constant(i64, 64))])
        w_lo = builder.load(builder.bitcast(w_ptr, v16.as_pointer()), align=1)
        w_hi = builder.load(builder.bitcast(builder.gep(w_ptr, [ir.Constant(i64, 32)]),
                                            v16.as_pointer()), align=1)
        new_accs = []
        for r in range(TILE_ROWS):
            # 2 input channels (int16) of pixel r as one int32, broadcast to the 8 lanes
            offset = builder.add(builder.mul(ir.Constant(i64, r), row_bytes),
                                 builder.mul(g, ir.Constant(i64, 4)))
            x2 = builder.load(builder.bitcast(builder.gep(x_base, [offset]), i32.as_pointer()),
                              align=1)
            xv = builder.insert_element(ir.Constant(v8, ir.Undefined), x2, ir.Constant(i32, 0))
            xv = builder.shuffle_vector(xv, ir.Constant(v8, ir.Undefined),
                                        ir.Constant(v8, None))
            xv = builder.bitcast(xv, v16)
            new_accs.append(builder.add(accs[2 * r], builder.call(pmaddwd, [xv, w_lo])))
            new_accs.append(builder.add(accs[2 * r + 1], builder.call(pmaddwd, [xv, w_hi])))
        g_next = builder.add(g, ir.Constant(i64, 1))
        for a, n in zip(accs, new_accs):
            a.add_incoming(n, builder.block)
        g.add_incoming(g_next, builder.block)
        builder.cbranch(builder.icmp_signed("<", g_next, groups), loop, done)

        builder.position_at_end(done)
        results = []
        for k in range(2 * TILE_ROWS):                 # (phis first, then the stores)
            result = builder.phi(v8)
            result.add_incoming(zero, entry)
            result.add_incoming(new_accs[k], loop)
            results.append(result)
        acc_ptr = builder.bitcast(acc_arr.data, i32.as_pointer())
        acc_ptr = builder.gep(acc_ptr, [context.cast(builder, args[5], signature.args[5],
                                                     types.int64)])
        acc_cols = context.cast(builder, args[6], signature.args[6], types.int64)
        col0 = builder.mul(col_block_64, ir.Constant(i64, TILE_COLS))
        for k, result in enumerate(results):
            r, half = divmod(k, 2)
            index = builder.add(builder.add(builder.mul(ir.Constant(i64, r), acc_cols), col0),
                                ir.Constant(i64, 8 * half))
            dst = builder.gep(acc_ptr, [index])
            builder.store(result, builder.bitcast(dst, v8.as_pointer()), align=4)
        return context.get_dummy_value()

    return sig, codegen


def _to_int16(x, xs):
    """x [P, Cin] int8 -> xs [P4 / 4, 4, Cin2] int16 (padding untouched)."""
    P, Cin = x.shape
    Cin2 = xs.shape[2]
    if Cin == Cin2:                            # same row length: one flat loop
        src = x.reshape(P * Cin)
        dst = xs.reshape(xs.size)
        for i in range(P * Cin):
            dst[i] = np.int16(src[i])
        return
    for p in range(P):
        row = xs[p // TILE_ROWS, p % TILE_ROWS]
        for c in range(Cin):
            row[c] = np.int16(x[p, c])


def _im2col_int16(x, kh, kw, stride_h, stride_w, pad_top, pad_left, Wo, xpad, xs):
    """Patches of a dense conv (the stem) straight into the int16 workspace: x [H, W, Cin]
    int8 -> xs[p // 4, p % 4, (dh * kw + dw) * Cin + ci]; cells outside the image read as
    x_zp (they add nothing once x_zp * sum(w) is subtracted).

    The image is first copied as int16 into xpad [Hp, Wp, Cin], whose border holds x_zp
    (written when the workspace was allocated); a patch row dh of output pixel (oh, ow) is then
    the kw * Cin contiguous values of xpad's row oh * stride_h + dh from column ow * stride_w."""
    H, W, Cin = x.shape
    Hp, Wp, _ = xpad.shape
    for h in range(H):
        src = x[h].reshape(W * Cin)
        dst = xpad[h + pad_top].reshape(Wp * Cin)[pad_left * Cin:]
        for i in range(W * Cin):
            dst[i] = np.int16(src[i])
    gather_patches(xpad, kh, kw, stride_h, stride_w, Wo, xs)


def _gemm_avx2(xs, wp, bias, mult, left, offset, total, out_zp, lo, hi, out):
    """out [P, Cout] int8 = requantized (xs @ w + bias); xs [P4 / 4, 4, Cin2] int16; wp and
    the tiled bias and requantization from `pack_weights`.  Accumulator rows, spills and the
    order of the column blocks as `vnni._gemm_vnni`."""
    P, Cout = out.shape
    R = bias.size // Cout                          # pixels per requantization pass
    any_left = left.max() > 0
    out_flat = out.reshape(P * Cout)
    blocks = wp.shape[0]
    for task in prange((P + R - 1) // R):          # the threads' share: passes of R pixels
        p0 = task * R
        rows = min(R, P - p0)
        acc = np.empty(R * Cout + TILE_COLS, np.int32)
        for rb in range(p0 // TILE_ROWS, (p0 + rows + TILE_ROWS - 1) // TILE_ROWS):
            start = (rb * TILE_ROWS - p0) * Cout
            for cb in range(blocks - 1, -1, -1):
                _tile_4x16(xs, rb, wp, cb, acc, start, Cout)
        o = out_flat[p0 * Cout:]
        requantize_rows(acc, bias, mult, left, offset, total, any_left, out_zp, lo, hi, o,
                        rows * Cout)


def _pointwise_avx2(x, xs, wp, bias, mult, left, offset, total, out_zp, lo, hi, out):
    """1x1 conv with AVX2: x [P, Cin] int8 -> out [P, Cout] int8; xs the int16 workspace
    (`input_shape`); other arguments as `_gemm_avx2`."""
    _to_int16(x, xs)
    _gemm_avx2(xs, wp, bias, mult, left, offset, total, out_zp, lo, hi, out)


def _conv_avx2(x, kh, kw, stride_h, stride_w, pad_top, pad_left, Wo, xpad, xs, wp, bias,
               mult, left, offset, total, out_zp, lo, hi, out):
    """Dense kh x kw conv (the stem) with AVX2: patches into xs (through the padded int16
    image xpad [Hp, Wp, Cin], border x_zp), then `_gemm_avx2`."""
    _im2col_int16(x, kh, kw, stride_h, stride_w, pad_top, pad_left, Wo, xpad, xs)
    _gemm_avx2(xs, wp, bias, mult, left, offset, total, out_zp, lo, hi, out)


_to_int16 = njit(cache=True, nogil=True, inline="always")(_to_int16)
_im2col_int16 = njit(cache=True, nogil=True, inline="always")(_im2col_int16)
_gemm_avx2 = njit(cache=True, nogil=True, inline="always")(_gemm_avx2)
pointwise_avx2 = njit(cache=True, nogil=True)(_pointwise_avx2)
conv_avx2 = njit(cache=True, nogil=True)(_conv_avx2)

# the kernels' builds for `kernels.SERIAL` / `kernels.PARALLEL` (the threads split the
# requantization passes of `_gemm_avx2`); the two above are the serial ones, for direct use
SOURCES = {"pointwise_avx2": _pointwise_avx2, "conv_avx2": _conv_avx2}

__all__ = ["AVAILABLE", "SOURCES", "pack_weights", "input_shape", "pointwise_avx2", "conv_avx2"]
