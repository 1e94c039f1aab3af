"""Compilers of the pooling ops: AVERAGE_POOL_2D, and MEAN / SUM over contiguous axes (the
SE and head pools)."""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedModelError
from ...structure import same_padding
from ..arith import activation_range, quantize_multiplier
from ..program import OpSpec
from .common import CompileContext, Runner, quantization


def compile_avg_pool(op: OpSpec, ctx: CompileContext) -> Runner:
    T = ctx.tensors
    x, o = op.inputs[0], op.outputs[0]
    a = op.attrs
    H, W = T[x].shape[1:3]
    if (T[x].scale, T[x].zero_point) != (T[o].scale, T[o].zero_point):
        raise UnsupportedModelError(f"{op.layer}: AVERAGE_POOL with requantization")
    if a["filter_h"] != a["filter_w"] or a["stride_h"] != a["stride_w"]:
        raise UnsupportedModelError(f"{op.layer}: non-square average pool")
    k, s = a["filter_h"], a["stride_h"]
    if k * k > 1024:              # the kernel's float32 division is exact up to 2^10 cells
        raise UnsupportedModelError(f"{op.layer}: average pool window {k}x{k} is too large")
    if a["padding"] == "SAME":
        pad_top, pad_left = same_padding(H, k, s)[1], same_padding(W, k, s)[1]
    else:
        pad_top = pad_left = 0
    lo, hi = activation_range(a["activation"], *quantization(T[o]))

    def run(ws, ki):
        ki.avg_pool(ws[x], k, s, pad_top, pad_left, lo, hi, ws[o])
    return run


def _reduced_shape(op: OpSpec, ctx: CompileContext):
    """(N, P, C): the input as [N, P, C] with P the reduced (contiguous, not last) axes."""
    shape = ctx.tensors[op.inputs[0]].shape
    axes = op.attrs["axes"]
    if axes != list(range(axes[0], axes[-1] + 1)) or axes[-1] == len(shape) - 1:
        raise UnsupportedModelError(f"{op.layer}: {op.kind} over axes {axes} is not supported")
    return (int(np.prod(shape[:axes[0]])), int(np.prod(shape[axes[0]:axes[-1] + 1])),
            int(np.prod(shape[axes[-1] + 1:])))


def compile_mean(op: OpSpec, ctx: CompileContext) -> Runner:
    """MEAN with TFLite's integer multiplier of s_in / s_out, divided by P ahead of time."""
    T = ctx.tensors
    x, o = op.inputs[0], op.outputs[0]
    N, P, C = _reduced_shape(op, ctx)
    si, zi = quantization(T[x])
    so, zo = quantization(T[o])
    m, s = quantize_multiplier(si / so)
    k = min(P.bit_length() - 1, 32, 31 + s)
    m_over_p = (m << k) // P
    shift = s - k

    def run(ws, ki):
        ki.mean(ws[x].reshape(N, P, C), zi, m_over_p, shift, zo, ws[o].reshape(N, C))
    return run


def compile_sum(op: OpSpec, ctx: CompileContext) -> Runner:
    """SUM with TFLite's float32 rescaling."""
    T = ctx.tensors
    x, o = op.inputs[0], op.outputs[0]
    N, P, C = _reduced_shape(op, ctx)
    si, zi = quantization(T[x])
    so, zo = quantization(T[o])
    scale = np.float32(np.float32(si) / np.float32(so))
    bias = np.float32(np.float32(np.float32(-zi) * scale) * np.float32(P))

    def run(ws, ki):
        ki.sum(ws[x].reshape(N, P, C), scale, bias, zo, ws[o].reshape(N, C))
    return run
