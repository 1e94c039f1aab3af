"""Compilers of the one-input elementwise ops: HARD_SWISH and LOGISTIC (256-entry tables),
QUANTIZE, DEQUANTIZE, CAST (SIN / COS are in trig.py)."""
from __future__ import annotations

import numpy as np

from ...errors import StateError, UnsupportedModelError
from ..arith import hard_swish_lut, logistic_lut
from ..program import OpSpec
from .common import CompileContext, Runner, quantization


def compile_lookup(op: OpSpec, ctx: CompileContext) -> Runner:
    """HARD_SWISH / LOGISTIC: the output depends on the int8 input value only."""
    T = ctx.tensors
    x, o = op.inputs[0], op.outputs[0]
    make = hard_swish_lut if op.kind == "hard_swish" else logistic_lut
    table = make(*quantization(T[x]), *quantization(T[o]))

    def run(ws, ki):
        ki.lut(ws[x].reshape(-1), table, ws[o].reshape(-1))
    return run


def compile_quantize(op: OpSpec, ctx: CompileContext) -> Runner:
    T = ctx.tensors
    x, o = op.inputs[0], op.outputs[0]
    if T[x].dtype != "float32":
        raise UnsupportedModelError(f"{op.layer}: int8 -> int8 QUANTIZE (requantization) is "
                                    f"not supported")
    s, z = quantization(T[o])
    inv = np.float32(1.0 / s)
    name = T[x].name.replace("serving_default_", "").split(":")[0]

    def run(ws, ki):
        if ki.quantize(ws[x].reshape(-1), s, inv, z, ws[o].reshape(-1)):
            # the float state inputs are checked here, where they are read anyway
            raise StateError(f"input {name!r} contains NaN or infinite values")
    return run


def compile_dequantize(op: OpSpec, ctx: CompileContext) -> Runner:
    x, o = op.inputs[0], op.outputs[0]
    s, z = quantization(ctx.tensors[x])
    s32 = np.float32(s)
    neg_zp_times_scale = np.float32(-z * s)

    def run(ws, ki):
        ki.dequantize(ws[x].reshape(-1), s32, neg_zp_times_scale, s, z, ws[o].reshape(-1))
    return run


def compile_cast(op: OpSpec, ctx: CompileContext) -> Runner:
    x, o = op.inputs[0], op.outputs[0]
    dtype = ctx.tensors[o].numpy_dtype

    def run(ws, ki):
        ws[o][...] = ws[x].astype(dtype).reshape(ws[o].shape)
    return run
