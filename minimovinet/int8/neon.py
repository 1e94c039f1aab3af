"""AArch64 (Raspberry Pi 4 / Pi 5) fast path of the int8 1x1 convs and the stem: register tiles
of 4 pixels x 4 output channels, bit-exact with `kernels._pointwise`.

The portable reduction (`kernels._pointwise`) loads every input row once per output channel
and sums one output at a time; here a tile keeps 16 accumulators in NEON registers while it
reads 4 pixel rows and 4 weight rows once.  Plain Numba loops of that shape do not work: LLVM
widens the 16 sums to int64 (Numba's int32 * int32 is int64) or gives up vectorizing (measured
with tools/aarch64_asm.py on LLVM 22), so the micro-kernel is written in LLVM IR through a
Numba intrinsic -- target-independent IR, no AArch64 intrinsic, so it runs (bit-exactly) on x86
too and the x86 tests run it.  The step is `llvm.vector.partial.reduce.add`, which adds the
16 products of 16 bytes into 4 int32 lanes:

  "dot"    int8 x int8 products in int32, 4 per lane: SDOT on ARMv8.2 dotprod CPUs (Pi 5,
           Cortex-A76); smull / smull2 + saddw on others.
  "pairs"  int8 x int8 products in int16 and two of them summed in int16 before widening
           (smull + smlal2, then saddw / saddw2: 4 instructions per 16 bytes instead of 6 on a
           Cortex-A72, Pi 4).  Exact only when every weight is >= -127 (|x * w| <= 128 * 127,
           two <= 32512); `variant()` checks that.

Which lanes hold which products does not matter: a tile's 4 lanes are summed at the end
(pairwise adds), and int32 sums wrap like TFLite's in any order, so every accumulator is the
same int32 as the portable kernels'.  The accumulators start at 0 and the folded bias
(bias - x_zp * sum(w)) is added in the requantization, as in `vnni.py`.

Layouts (prepared once at load time by `pack_weights`):
  weights  wp [Cout4, Cin8] int8: rows of output channels, padded with zeros to a multiple of
           4 channels and of 8 input channels
  inputs   [P, Cin8] int8 rows: the conv's input itself when Cin is a multiple of 8 (no copy),
           else a zero-padded copy; a last tile of fewer than 4 pixels goes through a small
           zero-filled copy.  The stem's patches are gathered into [P4 / 4, 4, K8] (`tiles`).
The inputs are read 16 channels per step, then 8 (Cin8 % 16) with the upper half zero.
"""
from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .tiles import TILE_ROWS, gather_patches, requantize_rows, tiled_requantization

TILE_CHANNELS = 4      # output channels per tile (4 pixels x 4 channels: 16 accumulators)
CHANNEL_ALIGN = 8      # input channels padded to a multiple of this
VARIANTS = ("dot", "pairs")

# outputs requantized per pass (a multiple of 4 pixels): one long vectorized loop
REQUANT_BLOCK = 1024

# LLVM CPU names with the dot-product extension that llvmlite reports without "dotprod" in the
# feature list (the feature comes with the CPU name)
_DOTPROD_CPUS = ("cortex-a55", "cortex-a65", "cortex-a75", "cortex-a76", "cortex-a77",
                 "cortex-a78", "cortex-a710", "cortex-a715", "cortex-a720", "cortex-x",
                 "neoverse", "apple-", "a64fx", "ampere")
IS_AARCH64 = platform.machine().lower() in ("aarch64", "arm64")


def has_sdot() -> bool:
    """True on an AArch64 CPU with the ARMv8.2 dot-product extension (SDOT), as LLVM sees it:
    the "dotprod" feature, a CPU name that implies it, or `asimddp` in /proc/cpuinfo."""
    if not IS_AARCH64:
        return False
    try:
        import llvmlite.binding as llvm
        if llvm.get_host_cpu_features().get("dotprod"):
            return True
        if llvm.get_host_cpu_name().lower().startswith(_DOTPROD_CPUS):
            return True
    except Exception:                        # llvmlite cannot tell: ask the kernel
        pass
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("Features") and "asimddp" in line.split() for line in f)
    except OSError:
        return False


SDOT = has_sdot()


def variant(w) -> str:
    """The micro-kernel for weights w: "dot" on CPUs with SDOT, else "pairs" unless a weight is
    -128 (two products of 128 * 128 would overflow int16)."""
    return "dot" if SDOT or int(np.min(w, initial=0)) < -127 else "pairs"


def pack_weights(w, bias_eff, mult, left, offset, total):
    """Load-time layout of a 1x1 conv (or a dense conv's patches) for `pointwise_neon`.

    w [Cout, Cin] int8; bias_eff [Cout] int32 (bias - x_zp * sum(w)); mult, left [Cout] int32
    and offset, total [Cout] int64 (the requantization, `arith.upward_params`).  Returns
    (wp, bias, mult, left, offset, total): wp [Cout4, Cin8] int8 and the per-channel values
    repeated for the R pixels requantized together (R * Cout values each).
    """
    Cout, Cin = w.shape
    wp = np.zeros((-(-Cout // TILE_CHANNELS) * TILE_CHANNELS, padded_channels(Cin)), np.int8)
    wp[:Cout, :Cin] = w
    tiled = tiled_requantization(bias_eff, mult, left, offset, total, REQUANT_BLOCK)
    return (wp, *tiled)


def padded_channels(Cin: int) -> int:
    return -(-Cin // CHANNEL_ALIGN) * CHANNEL_ALIGN


def input_shape(P, Cin):
    """Shape of the int8 input workspace of a 1x1 conv whose Cin is not a multiple of 8 (fill
    it with 0), or of a dense conv's patches: [P4, Cin8]."""
    return (-(-P // TILE_ROWS) * TILE_ROWS, padded_channels(Cin))


def _make_tile(pairs: bool):
    """The 4 x 4 micro-kernel intrinsic for one variant (see the module docstring)."""

    @intrinsic
    def tile(typingctx, xa, row0, wp, col_block, acc, acc_start, acc_stride):
        """For r < 4 and j < 4: acc[acc_start + r * acc_stride + 4 * col_block + j] (int32) =
        sum over k of xa[row0 + r, k] * wp[4 * col_block + j, k] (int8, int32 wraparound);
        xa [rows, K8] and wp [Cout4, K8] C-contiguous, K8 a multiple of 8."""
        sig = types.void(xa, row0, wp, col_block, acc, acc_start, acc_stride)

        def codegen(context, builder, signature, args):
            xa_arr = context.make_array(signature.args[0])(context, builder, args[0])
            wp_arr = context.make_array(signature.args[2])(context, builder, args[2])
            acc_arr = context.make_array(signature.args[4])(context, builder, args[4])
            i8, i16, i32, i64 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
            v16i8, v4i32 = ir.VectorType(i8, 16), ir.VectorType(i32, 4)
            v8i8 = ir.VectorType(i8, 8)
            if pairs:
                v8i32 = ir.VectorType(i32, 8)
                reduce = builder.module.declare_intrinsic(
                    "llvm.vector.partial.reduce.add.v4i32.v8i32",
                    fnty=ir.FunctionType(v4i32, [v4i32, v8i32]))
            else:
                v16i32 = ir.VectorType(i32, 16)
                reduce = builder.module.declare_intrinsic(
                    "llvm.vector.partial.reduce.add.v4i32.v16i32",
                    fnty=ir.FunctionType(v4i32, [v4i32, v16i32]))

            def const(v):
                return ir.Constant(i64, v)

            def step(accum, xv, wv):
                """accum + the 16 products of xv and wv (v16i8 each), as 4 int32 lanes."""
                if pairs:
                    v16i16 = ir.VectorType(i16, 16)
                    prod = builder.mul(builder.sext(xv, v16i16), builder.sext(wv, v16i16))
                    lo = builder.shuffle_vector(prod, ir.Constant(v16i16, ir.Undefined),
                                                ir.Constant(ir.VectorType(i32, 8),
                                                            list(range(8))))
                    hi = builder.shuffle_vector(prod, ir.Constant(v16i16, ir.Undefined),
                                                ir.Constant(ir.VectorType(i32, 8),
                                                            list(range(8, 16))))
                    both = builder.add(lo, hi)               # exact: weights >= -127
                    return builder.call(reduce, [accum, builder.sext(both, v8i32)])
                prod = builder.mul(builder.sext(xv, v16i32), builder.sext(wv, v16i32))
                return builder.call(reduce, [accum, prod])

            K8 = builder.extract_value(xa_arr.shape, 1)
            row0_64 = context.cast(builder, args[1], signature.args[1], types.int64)
            cb_64 = context.cast(builder, args[3], signature.args[3], types.int64)
            x_base = builder.gep(builder.bitcast(xa_arr.data, i8.as_pointer()),
                                 [builder.mul(row0_64, K8)])
            w_base = builder.gep(builder.bitcast(wp_arr.data, i8.as_pointer()),
                                 [builder.mul(cb_64, builder.mul(K8, const(TILE_CHANNELS)))])
            x_rows = [builder.gep(x_base, [builder.mul(const(r), K8)]) for r in range(TILE_ROWS)]
            w_rows = [builder.gep(w_base, [builder.mul(const(j), K8)])
                      for j in range(TILE_CHANNELS)]
            n_acc = TILE_ROWS * TILE_CHANNELS
            steps16 = builder.udiv(K8, const(16))
            zero = ir.Constant(v4i32, None)

            # ---- the loop over 16-channel steps
            entry = builder.block
            loop = builder.append_basic_block("neon.loop")
            after = builder.append_basic_block("neon.after")
            builder.cbranch(builder.icmp_signed(">", steps16, const(0)), loop, after)
            builder.position_at_end(loop)
            g = builder.phi(i64)
            accs = [builder.phi(v4i32) for _ in range(n_acc)]
            g.add_incoming(const(0), entry)
            for a in accs:
                a.add_incoming(zero, entry)
            off = builder.mul(g, const(16))

            def load16(row):
                return builder.load(builder.bitcast(builder.gep(row, [off]),
                                                    v16i8.as_pointer()), align=1)
            xs = [load16(row) for row in x_rows]
            ws = [load16(row) for row in w_rows]
            new = [step(accs[r * TILE_CHANNELS + j], xs[r], ws[j])
                   for r in range(TILE_ROWS) for j in range(TILE_CHANNELS)]
            g_next = builder.add(g, const(1))
            loop_end = builder.block
            for a, n in zip(accs, new):
                a.add_incoming(n, loop_end)
            g.add_incoming(g_next, loop_end)
            builder.cbranch(builder.icmp_signed("<", g_next, steps16), loop, after)

            builder.position_at_end(after)
            accs = []
            for k in range(n_acc):
                phi = builder.phi(v4i32)
                phi.add_incoming(zero, entry)
                phi.add_incoming(new[k], loop_end)
                accs.append(phi)

            # ---- the last 8 channels (K8 % 16 == 8): 8 bytes, the upper half zero
            tail = builder.append_basic_block("neon.tail")
            done = builder.append_basic_block("neon.done")
            after_end = builder.block
            has_tail = builder.icmp_signed("!=", builder.mul(steps16, const(16)), K8)
            builder.cbranch(has_tail, tail, done)
            builder.position_at_end(tail)
            off8 = builder.mul(steps16, const(16))
            widen = ir.Constant(ir.VectorType(i32, 16), list(range(16)))

            def load8(row):
                v = builder.load(builder.bitcast(builder.gep(row, [off8]), v8i8.as_pointer()),
                                 align=1)
                return builder.shuffle_vector(v, ir.Constant(v8i8, None), widen)
            xs = [load8(row) for row in x_rows]
            ws = [load8(row) for row in w_rows]
            tailed = [step(accs[r * TILE_CHANNELS + j], xs[r], ws[j])
                      for r in range(TILE_ROWS) for j in range(TILE_CHANNELS)]
            tail_end = builder.block
            builder.branch(done)
            builder.position_at_end(done)
            final = []
            for k in range(n_acc):
                phi = builder.phi(v4i32)
                phi.add_incoming(accs[k], after_end)
                phi.add_incoming(tailed[k], tail_end)
                final.append(phi)

            # ---- each pixel's 4 accumulators -> its 4 channel sums (pairwise adds), stored
            even = ir.Constant(ir.VectorType(i32, 4), [0, 2, 4, 6])
            odd = ir.Constant(ir.VectorType(i32, 4), [1, 3, 5, 7])

            def pairwise(a, b):
                """[a0 + a1, a2 + a3, b0 + b1, b2 + b3]"""
                return builder.add(builder.shuffle_vector(a, b, even),
                                   builder.shuffle_vector(a, b, odd))
            acc_ptr = builder.gep(builder.bitcast(acc_arr.data, i32.as_pointer()),
                                  [context.cast(builder, args[5], signature.args[5],
                                                types.int64)])
            stride = context.cast(builder, args[6], signature.args[6], types.int64)
            col0 = builder.mul(cb_64, const(TILE_CHANNELS))
            for r in range(TILE_ROWS):
                a = final[r * TILE_CHANNELS:(r + 1) * TILE_CHANNELS]
                sums = pairwise(pairwise(a[0], a[1]), pairwise(a[2], a[3]))
                dst = builder.gep(acc_ptr, [builder.add(builder.mul(const(r), stride), col0)])
                builder.store(sums, builder.bitcast(dst, v4i32.as_pointer()), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_tile_dot = _make_tile(pairs=False)
_tile_pairs = _make_tile(pairs=True)


@njit(cache=True, nogil=True, inline="always")
def _tile(xa, row0, wp, cb, acc, start, stride, pairs):
    if pairs:
        _tile_pairs(xa, row0, wp, cb, acc, start, stride)
    else:
        _tile_dot(xa, row0, wp, cb, acc, start, stride)


def _gemm_neon(xa, wp, pairs, bias, mult, left, offset, total, out_zp, lo, hi, out):
    """out [P, Cout] int8 = requantized (xa @ w.T + bias); xa [rows, K8] int8 (rows >= P; a
    last tile past `rows` is copied into a zero-filled [4, K8]); wp and the tiled bias and
    requantization from `pack_weights`; pairs: the "pairs" micro-kernel (weights >= -127).

    As in `vnni._gemm_vnni`, the accumulators of R pixels are R rows of Cout values, so the
    requantization is one flat vectorized loop; a tile stores 4 channels per row, so for the
    last column block the values past Cout spill into the next row's first channels: the
    column blocks run last to first and block 0 overwrites the spill.
    """
    P, Cout = out.shape
    K8 = wp.shape[1]
    R = bias.size // Cout                          # pixels per requantization pass
    any_left = left.max() > 0
    out_flat = out.reshape(P * Cout)
    blocks = wp.shape[0] // TILE_CHANNELS
    full_tiles = xa.shape[0] // TILE_ROWS          # tiles readable from xa itself
    for task in prange((P + R - 1) // R):          # the threads' share: passes of R pixels
        p0 = task * R
        rows = min(R, P - p0)
        acc = np.empty(R * Cout + TILE_CHANNELS, np.int32)
        for rb in range(p0 // TILE_ROWS, (p0 + rows + TILE_ROWS - 1) // TILE_ROWS):
            start = (rb * TILE_ROWS - p0) * Cout
            if rb < full_tiles:
                for cb in range(blocks - 1, -1, -1):
                    _tile(xa, rb * TILE_ROWS, wp, cb, acc, start, Cout, pairs)
            else:                                  # the last pixels: fewer than 4 rows
                last = np.zeros((TILE_ROWS, K8), np.int8)
                for r in range(P - rb * TILE_ROWS):
                    for k in range(K8):
                        last[r, k] = xa[rb * TILE_ROWS + r, k]
                for cb in range(blocks - 1, -1, -1):
                    _tile(last, 0, wp, cb, acc, start, Cout, pairs)
        o = out_flat[p0 * Cout:]
        requantize_rows(acc, bias, mult, left, offset, total, any_left, out_zp, lo, hi, o,
                        rows * Cout)


def _pointwise_neon(x, xw, wp, pairs, bias, mult, left, offset, total, out_zp, lo, hi, out):
    """1x1 conv: x [P, Cin] int8 -> out [P, Cout] int8.  When Cin is a multiple of 8 the
    tiles read x itself (xw unused); else x is copied into xw (`input_shape`, zero-filled:
    the padding channels stay 0).  Other arguments as `_gemm_neon`."""
    P, Cin = x.shape
    if Cin == wp.shape[1]:
        _gemm_neon(x, wp, pairs, bias, mult, left, offset, total, out_zp, lo, hi, out)
        return
    for p in range(P):
        for c in range(Cin):
            xw[p, c] = x[p, c]
    _gemm_neon(xw, wp, pairs, bias, mult, left, offset, total, out_zp, lo, hi, out)


def _conv_neon(x, kh, kw, stride_h, stride_w, pad_top, pad_left, Wo, xpad, cols, wp, pairs,
               bias, mult, left, offset, total, out_zp, lo, hi, out):
    """Dense kh x kw conv (the stem): x [H, W, Cin] int8 copied into the padded xpad
    [Hp, Wp, Cin] (border x_zp, written when the workspace was made), its patches gathered
    into cols [P4 / 4, 4, K8] (padding channels 0), then `_gemm_neon`."""
    H, W, Cin = x.shape
    Hp, Wp, _ = xpad.shape
    for h in range(H):
        src = x[h].reshape(W * Cin)
        dst = xpad[h + pad_top].reshape(Wp * Cin)[pad_left * Cin:]
        for i in range(W * Cin):
            dst[i] = src[i]
    gather_patches(xpad, kh, kw, stride_h, stride_w, Wo, cols)
    n4, _, K8 = cols.shape
    _gemm_neon(cols.reshape(n4 * TILE_ROWS, K8), wp, pairs, bias, mult, left, offset, total,
               out_zp, lo, hi, out)


_gemm_neon = njit(cache=True, nogil=True, inline="always")(_gemm_neon)
pointwise_neon = njit(cache=True, nogil=True)(_pointwise_neon)
conv_neon = njit(cache=True, nogil=True)(_conv_neon)

# the kernels' builds for `kernels.SERIAL` / `kernels.PARALLEL` (the threads split the
# requantization passes of `_gemm_neon`); the two above are the serial ones, for direct use
SOURCES = {"pointwise_neon": _pointwise_neon, "conv_neon": _conv_neon}

__all__ = ["SDOT", "SOURCES", "VARIANTS", "has_sdot", "variant", "pack_weights",
           "input_shape", "padded_channels", "pointwise_neon", "conv_neon"]
