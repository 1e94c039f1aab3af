"""x86 fast path of the int8 1x1 convs: VNNI dot products (vpdpbusd), bit-exact.

LLVM does not turn Numba's int8 loops into VNNI instructions on x86 (on AArch64 the plain
reduction in `kernels._pointwise` already becomes `sdot`), so this file emits the one
instruction itself through a Numba intrinsic.  It is used only when the CPU has AVX-VNNI or
AVX-512 VNNI (`AVAILABLE`); elsewhere the portable kernels run.  The arithmetic is the same
int32 sum as `kernels._pointwise`, so results are identical.

vpdpbusd(acc, a, b) adds to each of 8 int32 lanes the sum of 4 products of an unsigned byte of
`a` and a signed byte of `b`.  The activations are int8, so they are shifted to uint8
(x + 128, an XOR of the sign bit) and the shift is folded into the bias:
sum((x + 128) * w) = sum(x * w) + 128 * sum(w).  int32 sums wrap like TFLite's, and the final
sum is the same int32 value.

Layouts (prepared once at load time by `pack_weights`):
  weights  wp [Cout / 16, Cin / 4, 16, 4] int8: for a block of 16 output channels and a group
           of 4 input channels, 64 bytes = two 256-bit vectors; Cin and Cout padded with zeros
  inputs   xu [P / 4, 4, Cin4] uint8: rows padded to a multiple of 4, channels to Cin4
The micro-kernel computes a tile of 4 pixels x 16 output channels in 8 vector registers.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .tiles import (TILE_COLS, TILE_ROWS, gather_patches, requantize_rows,
                    tiled_requantization)


def _host_has_vnni() -> bool:
    try:
        import llvmlite.binding as llvm
        features = llvm.get_host_cpu_features()
    except Exception:                       # not x86, or llvmlite cannot tell: no fast path
        return False
    return bool(features.get("avxvnni") or (features.get("avx512vnni")
                                            and features.get("avx512vl")))


AVAILABLE = _host_has_vnni()



def pack_weights(w, bias_eff, mult, left, offset, total):
    """Load-time layout of a 1x1 conv (or a dense conv's patches) for `pointwise_vnni`.

    w [Cout, Cin] int8; bias_eff [Cout] int32 (bias - x_zp * sum(w)); mult, left [Cout]
    int32 and offset, total [Cout] int64 (the requantization, `arith.upward_params`).
    Returns (wp, bias, mult, left, offset, total): wp [Cout16 / 16, Cin4 / 4, 16, 4] int8, and
    the per-channel values repeated for the R pixels that are requantized together (R * Cout
    values each), the bias with the uint8 shift folded in: bias_eff - 128 * sum(w).
    """
    Cout, Cin = w.shape
    Cout16 = -(-Cout // TILE_COLS) * TILE_COLS
    Cin4 = -(-Cin // 4) * 4
    padded = np.zeros((Cout16, Cin4), np.int8)
    padded[:Cout, :Cin] = w
    # [Cout16, Cin4] -> [Cout16 / 16, 16, Cin4 / 4, 4] -> [Cout16 / 16, Cin4 / 4, 16, 4]
    wp = padded.reshape(Cout16 // TILE_COLS, TILE_COLS, Cin4 // 4, 4).transpose(0, 2, 1, 3)
    shifted = np.asarray(bias_eff, np.int64) - 128 * w.astype(np.int64).sum(axis=1)
    bias = ((shifted + 2**31) % 2**32 - 2**31).astype(np.int32)      # int32 wraparound
    tiled = tiled_requantization(bias, mult, left, offset, total, REQUANT_BLOCK)
    return (np.ascontiguousarray(wp), *tiled)


# outputs requantized per pass (a multiple of 4 pixels): one long vectorized loop
REQUANT_BLOCK = 1024


def input_shape(P, Cin):
    """Shape of the uint8 input workspace for P pixels of Cin channels."""
    return (-(-P // TILE_ROWS), TILE_ROWS, -(-Cin // 4) * 4)


@intrinsic
def _tile_4x16(typingctx, xu, row_block, wp, col_block, acc, acc_start, acc_stride):
    """For r < 4 and j < 16: acc[acc_start + r * acc_stride + 16 * col_block + j] (int32) =
    the sum over the input channels of xu[row_block, r] (uint8) times output channel
    16 * col_block + j of wp (int8), with vpdpbusd and the 8 accumulators in registers.
    acc is a flat int32 array; rows are stored in order, 16 values each."""
    sig = types.void(xu, row_block, wp, col_block, acc, acc_start, acc_stride)

    def codegen(context, builder, signature, args):
        xu_arr = context.make_array(signature.args[0])(context, builder, args[0])
        wp_arr = context.make_array(signature.args[2])(context, builder, args[2])
        acc_arr = context.make_array(signature.args[4])(context, builder, args[4])
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        v8 = ir.VectorType(i32, 8)
        dpbusd = builder.module.declare_intrinsic(
            "llvm.x86.avx512.vpdpbusd.256", fnty=ir.FunctionType(v8, [v8, v8, v8]))
        # shapes: xu [P4, 4, Cin4] uint8 -> bytes per row Cin4; groups of 4 channels G = Cin4/4
        x_shape = builder.extract_value(xu_arr.shape, 2)
        groups = builder.udiv(x_shape, ir.Constant(i64, 4))
        row_block_64 = context.cast(builder, args[1], signature.args[1], types.int64)
        col_block_64 = context.cast(builder, args[3], signature.args[3], types.int64)
        x_base = builder.gep(builder.bitcast(xu_arr.data, i8.as_pointer()),
                             [builder.mul(row_block_64, builder.mul(x_shape, ir.Constant(i64, 4)))])
        w_base = builder.gep(builder.bitcast(wp_arr.data, i8.as_pointer()),
                             [builder.mul(col_block_64, builder.mul(groups, ir.Constant(i64, 64)))])

        entry = builder.block
        loop = builder.append_basic_block("vnni.loop")
        done = builder.append_basic_block("vnni.done")
        zero = ir.Constant(v8, None)
        has_work = builder.icmp_signed(">", groups, ir.Constant(i64, 0))
        builder.cbranch(has_work, loop, done)

        builder.position_at_end(loop)
        g = builder.phi(i64)
        accs = [builder.phi(v8) for _ in range(2 * TILE_ROWS)]
        g.add_incoming(ir.Constant(i64, 0), entry)
        for a in accs:
            a.add_incoming(zero, entry)
        # the 64 weight bytes of this group: output channels 0-7 and 8-15, 4 bytes each
        w_ptr = builder.gep(w_base, [builder.mul(g, ir.Constant(i64, 64))])
        w_lo = builder.load(builder.bitcast(w_ptr, v8.as_pointer()), align=1)
        w_hi = builder.load(builder.bitcast(builder.gep(w_ptr, [ir.Constant(i64, 32)]),
                                            v8.as_pointer()), align=1)
        new_accs = []
        for r in range(TILE_ROWS):
            # 4 input channels of pixel r as one int32, broadcast to the 8 lanes
            offset = builder.add(builder.mul(ir.Constant(i64, r), x_shape),
                                 builder.mul(g, ir.Constant(i64, 4)))
            x4 = builder.load(builder.bitcast(builder.gep(x_base, [offset]), i32.as_pointer()),
                              align=1)
            xv = builder.insert_element(ir.Constant(v8, ir.Undefined), x4, ir.Constant(i32, 0))
            xv = builder.shuffle_vector(xv, ir.Constant(v8, ir.Undefined),
                                        ir.Constant(v8, None))
            new_accs.append(builder.call(dpbusd, [accs[2 * r], xv, w_lo]))
            new_accs.append(builder.call(dpbusd, [accs[2 * r + 1], xv, w_hi]))
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


def _to_uint8(x, xu):
    """x [P, Cin] int8 -> xu [P4 / 4, 4, Cin4] uint8 holding x + 128 (padding untouched)."""
    P, Cin = x.shape
    Cin4 = xu.shape[2]
    if Cin == Cin4:                            # same row length: one flat loop
        src = x.reshape(P * Cin)
        dst = xu.reshape(xu.size)
        for i in range(P * Cin):
            dst[i] = np.uint8(src[i] ^ np.int8(-128))
        return
    for p in range(P):
        row = xu[p // TILE_ROWS, p % TILE_ROWS]
        for c in range(Cin):
            row[c] = np.uint8(x[p, c] ^ np.int8(-128))


def _im2col_uint8(x, kh, kw, stride_h, stride_w, pad_top, pad_left, x_zp, Wo, xpad, xu):
    """Patches of a dense conv (the stem) straight into the uint8 workspace: x [H, W, Cin]
    int8 -> xu[p // 4, p % 4, (dh * kw + dw) * Cin + ci] = x + 128; cells outside the image
    read as x_zp (they add nothing once x_zp * sum(w) is subtracted).

    The image is first copied as uint8 into xpad [Hp, Wp, Cin], whose border holds x_zp + 128
    (written when the workspace was allocated); a patch row dh of output pixel (oh, ow) is then
    the kw * Cin contiguous bytes of xpad's row oh * stride_h + dh from column ow * stride_w."""
    H, W, Cin = x.shape
    Hp, Wp, _ = xpad.shape
    for h in range(H):
        src = x[h].reshape(W * Cin)
        dst = xpad[h + pad_top].reshape(Wp * Cin)[pad_left * Cin:]
        for i in range(W * Cin):
            dst[i] = np.uint8(src[i] ^ np.int8(-128))
    gather_patches(xpad, kh, kw, stride_h, stride_w, Wo, xu)


def _gemm_vnni(xu, wp, bias, mult, left, offset, total, out_zp, lo, hi, out):
    """out [P, Cout] int8 = requantized (xu @ w + bias); xu [P4 / 4, 4, Cin4] uint8 (x + 128);
    wp and the tiled bias and requantization from `pack_weights`.

    The accumulators of R pixels are kept as R rows of Cout values, back to back, so that the
    requantization is one flat loop over R * Cout values (short loops over a few output
    channels would cost more than the dot products).  A tile stores 16 channels per row: for
    the last column block the values past Cout spill into the next row's first channels, so
    the column blocks run last to first and block 0 overwrites the spill with the right values
    (rows are stored in order within a tile; the last row spills into 16 spare values).
    """
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
                _tile_4x16(xu, rb, wp, cb, acc, start, Cout)
        o = out_flat[p0 * Cout:]
        requantize_rows(acc, bias, mult, left, offset, total, any_left, out_zp, lo, hi, o,
                        rows * Cout)


def _pointwise_vnni(x, xu, wp, bias, mult, left, offset, total, out_zp, lo, hi, out):
    """1x1 conv with VNNI: x [P, Cin] int8 -> out [P, Cout] int8; xu the uint8 workspace
    (`input_shape`); other arguments as `_gemm_vnni`."""
    _to_uint8(x, xu)
    _gemm_vnni(xu, wp, bias, mult, left, offset, total, out_zp, lo, hi, out)


def _conv_vnni(x, kh, kw, stride_h, stride_w, pad_top, pad_left, x_zp, Wo, xpad, xu, wp, bias,
               mult, left, offset, total, out_zp, lo, hi, out):
    """Dense kh x kw conv (the stem) with VNNI: patches into xu (through the padded uint8 image
    xpad [Hp, Wp, Cin], border x_zp + 128), then `_gemm_vnni`."""
    _im2col_uint8(x, kh, kw, stride_h, stride_w, pad_top, pad_left, x_zp, Wo, xpad, xu)
    _gemm_vnni(xu, wp, bias, mult, left, offset, total, out_zp, lo, hi, out)


_to_uint8 = njit(cache=True, nogil=True, inline="always")(_to_uint8)
_im2col_uint8 = njit(cache=True, nogil=True, inline="always")(_im2col_uint8)
_gemm_vnni = njit(cache=True, nogil=True, inline="always")(_gemm_vnni)
pointwise_vnni = njit(cache=True, nogil=True)(_pointwise_vnni)
conv_vnni = njit(cache=True, nogil=True)(_conv_vnni)

# the kernels' builds for `kernels.SERIAL` / `kernels.PARALLEL` (the threads split the
# requantization passes of `_gemm_vnni`); the two above are the serial ones, for direct use
SOURCES = {"pointwise_vnni": _pointwise_vnni, "conv_vnni": _conv_vnni}

__all__ = ["AVAILABLE", "SOURCES", "pack_weights", "input_shape", "pointwise_vnni", "conv_vnni"]
