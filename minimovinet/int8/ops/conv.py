"""Compilers of CONV_2D and DEPTHWISE_CONV_2D: weights in the kernels' layouts, the folded
bias, the per-channel requantization, and which kernel form runs the 1x1 convs.

Forms of the 1x1 convs (and of the stem's dense conv, through patches): "vnni" (`vnni.py`:
vpdpbusd, x86 CPUs with AVX-VNNI / AVX-512 VNNI), "avx2" (`avx2.py`: vpmaddwd on int16, other
x86 CPUs with AVX2), "neon" (`neon.py`: 4 x 4 register tiles, SDOT on ARMv8.2 dotprod CPUs,
widening multiplies before: AArch64), "rows" (outer products over output channels with int16
products, portable: x86 without AVX2) or "reduce" (int8 x int8 -> int32 reductions over input
channels; the classifier's single-pixel convs in every form).  All
are bit-exact; the tests run each.  The choice follows the CPU's features, read when this
module is imported; the environment variable MINIMOVINET_INT8_FORM overrides it (read when a
model is loaded).
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from ...errors import SettingError, UnsupportedModelError
from ...structure import same_padding
from .. import avx2 as X
from .. import kernels as K
from .. import neon as N
from .. import vnni as V
from ..arith import activation_range, quantize_multipliers, upward_params
from ..program import OpSpec
from ..tiles import TILE_ROWS
from .common import CompileContext, Runner, quantization

FORMS = ("vnni", "avx2", "neon", "rows", "reduce")
POINTWISE_FORM = ("vnni" if V.AVAILABLE else "avx2" if X.AVAILABLE else
                  "neon" if N.IS_AARCH64 else "rows" if K.PREFER_INT16 else "reduce")
# the CPU feature each x86 form needs: (available, what to say when it is not)
_NEEDS = {"vnni": (V.AVAILABLE, "AVX-VNNI / AVX-512 VNNI"), "avx2": (X.AVAILABLE, "AVX2")}


def pointwise_form() -> str:
    """The 1x1-conv form for this machine, or MINIMOVINET_INT8_FORM's."""
    form = os.environ.get("MINIMOVINET_INT8_FORM", "").strip().lower() or POINTWISE_FORM
    if form not in FORMS:
        raise SettingError(f"MINIMOVINET_INT8_FORM={form!r}: expected one of {', '.join(FORMS)}")
    if form in _NEEDS and not _NEEDS[form][0]:
        raise SettingError(f"MINIMOVINET_INT8_FORM={form}: this CPU has no {_NEEDS[form][1]}")
    return form


@dataclasses.dataclass(frozen=True)
class ConvGeometry:
    """Sizes of one conv: input [1, H, W, Cin] -> output [1, Ho, Wo, Cout], kernel kh x kw,
    strides, the padding before (top, left), and the padded input size Hp x Wp that every
    output's taps fit in (SAME pads the bottom / right with what is left)."""
    H: int
    W: int
    Cin: int
    Ho: int
    Wo: int
    Cout: int
    kh: int
    kw: int
    sh: int
    sw: int
    pad_top: int
    pad_left: int

    @property
    def Hp(self) -> int:
        return max(self.H + self.pad_top, (self.Ho - 1) * self.sh + self.kh)

    @property
    def Wp(self) -> int:
        return max(self.W + self.pad_left, (self.Wo - 1) * self.sw + self.kw)


def _geometry(op: OpSpec, T, kh: int, kw: int) -> ConvGeometry:
    a = op.attrs
    _, H, W, Cin = T[op.inputs[0]].shape
    _, Ho, Wo, Cout = T[op.outputs[0]].shape
    sh, sw = a["stride_h"], a["stride_w"]
    if a["padding"] == "VALID":
        pad_top = pad_left = 0
    else:
        pad_top, pad_left = same_padding(H, kh, sh)[1], same_padding(W, kw, sw)[1]
    return ConvGeometry(H, W, Cin, Ho, Wo, Cout, kh, kw, sh, sw, pad_top, pad_left)


@dataclasses.dataclass(frozen=True)
class Requantization:
    """Per output channel: the multiplier as `arith.requant` takes it (mult, left, offset,
    total), then the output zero point and the fused activation's clamp."""
    mult: np.ndarray
    left: np.ndarray
    offset: np.ndarray
    total: np.ndarray
    out_zp: int
    lo: int
    hi: int


def _requantization(op: OpSpec, T) -> Requantization:
    x, wt, bt = op.inputs[:3]
    si, _ = quantization(T[x])
    so, zo = quantization(T[op.outputs[0]])
    scales = T[wt].channel_scales
    if scales is None:
        scales = np.full(T[bt].data.shape, T[wt].scale, np.float32)
    mult, shift = quantize_multipliers(np.float64(si) * scales.astype(np.float64)
                                       / np.float64(so))
    left, offset, total = upward_params(shift)
    lo, hi = activation_range(op.attrs["activation"], so, zo)
    return Requantization(mult.astype(np.int32), left, offset, total, zo, lo, hi)


def _folded_bias(op: OpSpec, T, weight_sums) -> np.ndarray:
    """bias - x_zp * sum(w) per output channel: the int32 the accumulators start from (the
    kernels then sum x * w only)."""
    _, zi = quantization(T[op.inputs[0]])
    folded = T[op.inputs[2]].data.astype(np.int64) - zi * weight_sums
    if np.abs(folded).max(initial=0) >= 2**31:
        raise UnsupportedModelError(f"{op.layer}: folded bias overflows int32")
    return folded.astype(np.int32)


# ---- DEPTHWISE_CONV_2D -----------------------------------------------------------------------

def compile_depthwise(op: OpSpec, ctx: CompileContext) -> Runner:
    """Depth multiplier 1, on an input padded with x_zp and split by column phase
    (`kernels._pad_copy`); a VALID conv of stride 1 (the temporal convs) reads its input as
    it is."""
    T = ctx.tensors
    x, o = op.inputs[0], op.outputs[0]
    w = T[op.inputs[1]].data                          # [1, kh, kw, C]
    kh, kw, C = w.shape[1:]
    g = _geometry(op, T, kh, kw)
    rq = _requantization(op, T)
    bias = _folded_bias(op, T, w[0].astype(np.int64).sum(axis=(0, 1)))
    wt, bt, mt, lt, ot, tt = K.depthwise_tiles(w[0], bias, rq.mult, rq.left, rq.offset,
                                               rq.total, g.Wo)
    H, W, sh, zo, lo, hi = g.H, g.W, g.sh, rq.out_zp, rq.lo, rq.hi
    if (g.Hp, g.Wp, g.sw) == (H, W, 1):              # VALID (the temporal convs): no copy

        def run(ws, ki):
            xq = ws[x].reshape(1, H, 1, W, C)        # [N, Hp, S=1, Wq, C]
            ki.depthwise(xq, wt, bt, kh, kw, sh, mt, lt, ot, tt, zo, lo, hi, ws[o])
        return run
    Wq = -(-g.Wp // g.sw)
    # [N, Hp, S, Wq, C]: padded and split by column phase; the border is filled with x_zp
    # once, when the workspace is made, and never written again
    padded = ctx.scratch_slot((1, g.Hp, g.sw, Wq, C), np.int8, quantization(T[x])[1])
    pad_top, pad_left = g.pad_top, g.pad_left

    def run(ws, ki):
        xq = ws[padded]
        ki.pad_copy(ws[x], pad_top, pad_left, xq)
        ki.depthwise(xq, wt, bt, kh, kw, sh, mt, lt, ot, tt, zo, lo, hi, ws[o])
    return run


# ---- CONV_2D -----------------------------------------------------------------------------------

def compile_conv(op: OpSpec, ctx: CompileContext) -> Runner:
    """1x1 convs run a pointwise kernel on [P, Cin] pixels; the dense kh x kw conv (the stem)
    the same kernels on its patches."""
    T = ctx.tensors
    w = T[op.inputs[1]].data                          # [Cout, kh, kw, Cin]
    Cout, kh, kw, _ = w.shape
    g = _geometry(op, T, kh, kw)
    rq = _requantization(op, T)
    bias = _folded_bias(op, T, w.astype(np.int64).reshape(Cout, -1).sum(axis=1))
    w_rows = w.reshape(Cout, -1)                      # [Cout, kh * kw * Cin]: patch order
    form = ctx.pointwise_form or pointwise_form()
    if (kh, kw, g.sh, g.sw) == (1, 1, 1, 1):
        return _pointwise(op, ctx, g, w_rows, bias, rq, form)
    return _dense(op, ctx, g, w_rows, bias, rq, form)


def _pointwise(op, ctx, g: ConvGeometry, w_rows, bias, rq: Requantization, form) -> Runner:
    x, o = op.inputs[0], op.outputs[0]
    P, Cin, Cout = g.H * g.W, g.Cin, g.Cout
    m, left, offset, total, zo, lo, hi = (rq.mult, rq.left, rq.offset, rq.total, rq.out_zp,
                                          rq.lo, rq.hi)
    if form == "vnni" and P >= 4:                     # x86 with VNNI: vnni.py
        packed = V.pack_weights(w_rows, bias, m, left, offset, total)
        xu = ctx.scratch_slot(V.input_shape(P, Cin), np.uint8, 128)

        def run(ws, ki):
            ki.pointwise_vnni(ws[x].reshape(P, Cin), ws[xu], *packed, zo, lo, hi,
                             ws[o].reshape(P, Cout))
        return run
    if form == "avx2" and P >= 4:                     # x86 with AVX2: avx2.py
        packed = X.pack_weights(w_rows, bias, m, left, offset, total)
        xs = ctx.scratch_slot(X.input_shape(P, Cin), np.int16, 0)

        def run(ws, ki):
            ki.pointwise_avx2(ws[x].reshape(P, Cin), ws[xs], *packed, zo, lo, hi,
                             ws[o].reshape(P, Cout))
        return run
    if form == "neon" and P >= 4:                     # AArch64: neon.py
        packed = N.pack_weights(w_rows, bias, m, left, offset, total)
        pairs = N.variant(w_rows) == "pairs"
        if Cin % N.CHANNEL_ALIGN:                     # rows padded to 8 channels: a copy
            xw = ctx.scratch_slot(N.input_shape(P, Cin), np.int8, 0)

            def run(ws, ki):
                ki.pointwise_neon(ws[x].reshape(P, Cin), ws[xw], packed[0], pairs, *packed[1:],
                                  zo, lo, hi, ws[o].reshape(P, Cout))
            return run
        unused = np.zeros((TILE_ROWS, Cin), np.int8)  # the tiles read the input itself

        def run(ws, ki):
            ki.pointwise_neon(ws[x].reshape(P, Cin), unused, packed[0], pairs, *packed[1:],
                              zo, lo, hi, ws[o].reshape(P, Cout))
        return run
    if form == "rows" and P >= 4:                     # x86: outer products, int16
        wt = np.ascontiguousarray(w_rows.T).astype(np.int16)
        pairs = bool(w_rows.min() >= -127)

        def run(ws, ki):
            ki.pointwise_rows(ws[x].reshape(P, Cin), wt, pairs, bias, m, left, offset, total,
                              zo, lo, hi, ws[o].reshape(P, Cout))
        return run
    # single pixels (the classifier) in every form, and the "reduce" form: int8 x int8 ->
    # int32 reductions over the input channels (sdot on ARMv8.2+); int8 weights: the classifier's
    # MBs of weights make it memory-bound (a 4-pixel tile would do 4 times the work)
    w8 = np.ascontiguousarray(w_rows)

    def run(ws, ki):
        ki.pointwise(ws[x].reshape(P, Cin), w8, bias, m, left, offset, total, zo, lo, hi,
                     ws[o].reshape(P, Cout))
    return run


def _dense(op, ctx, g: ConvGeometry, w_rows, bias, rq: Requantization, form) -> Runner:
    """The stem: patches of the input padded with x_zp, then a pointwise kernel over them."""
    x, o = op.inputs[0], op.outputs[0]
    _, zi = quantization(ctx.tensors[x])
    m, left, offset, total, zo, lo, hi = (rq.mult, rq.left, rq.offset, rq.total, rq.out_zp,
                                          rq.lo, rq.hi)
    kh, kw, sh, sw, pad_top, pad_left = g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_left
    P, K_len, Cout, Wo = g.Ho * g.Wo, g.kh * g.kw * g.Cin, g.Cout, g.Wo
    if form == "vnni":                                # patches straight into uint8
        packed = V.pack_weights(w_rows, bias, m, left, offset, total)
        xu = ctx.scratch_slot(V.input_shape(P, K_len), np.uint8, 128)
        # the padded image in uint8: the border holds x_zp + 128, written once
        xpad = ctx.scratch_slot((g.Hp, g.Wp, g.Cin), np.uint8, (zi + 128) % 256)

        def run(ws, ki):
            ki.conv_vnni(ws[x][0], kh, kw, sh, sw, pad_top, pad_left, zi, Wo, ws[xpad], ws[xu],
                        *packed, zo, lo, hi, ws[o].reshape(P, Cout))
        return run
    if form == "avx2":                                # patches straight into int16
        packed = X.pack_weights(w_rows, bias, m, left, offset, total)
        xs = ctx.scratch_slot(X.input_shape(P, K_len), np.int16, 0)
        # the padded image in int16: the border holds x_zp, written once
        xpad = ctx.scratch_slot((g.Hp, g.Wp, g.Cin), np.int16, zi)

        def run(ws, ki):
            ki.conv_avx2(ws[x][0], kh, kw, sh, sw, pad_top, pad_left, Wo, ws[xpad], ws[xs],
                        *packed, zo, lo, hi, ws[o].reshape(P, Cout))
        return run
    if form == "neon":                                # patches into rows of K8 int8 values
        packed = N.pack_weights(w_rows, bias, m, left, offset, total)
        pairs = N.variant(w_rows) == "pairs"
        P4, K8 = N.input_shape(P, K_len)
        cols = ctx.scratch_slot((P4 // TILE_ROWS, TILE_ROWS, K8), np.int8, 0)
        # the padded image: the border holds x_zp, written once
        xpad = ctx.scratch_slot((g.Hp, g.Wp, g.Cin), np.int8, zi)

        def run(ws, ki):
            ki.conv_neon(ws[x][0], kh, kw, sh, sw, pad_top, pad_left, Wo, ws[xpad], ws[cols],
                         packed[0], pairs, *packed[1:], zo, lo, hi, ws[o].reshape(P, Cout))
        return run
    patches = _patches(op, ctx, g)
    if form == "rows":
        wt = np.ascontiguousarray(w_rows.T).astype(np.int16)
        pairs = bool(w_rows.min() >= -127)

        def run(ws, ki):
            ki.pointwise_rows(patches(ws, ki), wt, pairs, bias, m, left, offset, total, zo,
                              lo, hi, ws[o].reshape(P, Cout))
        return run
    w8 = np.ascontiguousarray(w_rows)

    def run(ws, ki):
        ki.pointwise(patches(ws, ki), w8, bias, m, left, offset, total, zo, lo, hi,
                     ws[o].reshape(P, Cout))
    return run


def _patches(op, ctx, g: ConvGeometry):
    """patches(ws, ki) -> [Ho * Wo, kh * kw * Cin] int8: a strided view of the input padded
    with x_zp, copied by NumPy."""
    x = op.inputs[0]
    _, zi = quantization(ctx.tensors[x])
    Ho, Wo, kh, kw, Cin, Wp = g.Ho, g.Wo, g.kh, g.kw, g.Cin, g.Wp
    pad_top, pad_left = g.pad_top, g.pad_left
    padded = ctx.scratch_slot((1, g.Hp, 1, Wp, Cin), np.int8, zi)   # border x_zp, once
    cols = ctx.scratch_slot((Ho * Wo, kh * kw * Cin), np.int8)
    item = np.dtype(np.int8).itemsize
    # [Ho, Wo, kh, kw, Cin] over the padded [Hp, Wp, Cin]
    strides = (g.sh * Wp * Cin * item, g.sw * Cin * item, Wp * Cin * item, Cin * item, item)

    def patches(ws, ki):
        xp = ws[padded]
        ki.pad_copy(ws[x], pad_top, pad_left, xp)
        view = np.lib.stride_tricks.as_strided(xp[0, :, 0], shape=(Ho, Wo, kh, kw, Cin),
                                               strides=strides, writeable=False)
        out = ws[cols]
        np.copyto(out.reshape(Ho, Wo, kh, kw, Cin), view)
        return out
    return patches
