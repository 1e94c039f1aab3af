"""The op compilers: each minimovinet op kind of an `Int8Program` -> its compiler.

    common.py     the compile context (tensors, scratch arrays, 1x1-conv form), quantization
    conv.py       CONV_2D, DEPTHWISE_CONV_2D; the 1x1-conv forms and MINIMOVINET_INT8_FORM
    binary.py     ADD, MUL, DIV (int8, and float32), the fused ReZero MUL + ADD; LiteRT's SIMD
                  blocks, the tables
    pooling.py    AVERAGE_POOL_2D, MEAN, SUM
    unary.py      HARD_SWISH, LOGISTIC (tables), QUANTIZE, DEQUANTIZE, CAST
    layout.py     RESHAPE (a view), CONCATENATION, SLICE, BROADCAST_TO, RANGE
    trig.py       SIN, COS (float32, the C library's sinf / cosf)

A compiler takes (op, CompileContext) and returns a runner `run(ws, ki)` (see common.py).
"""
from __future__ import annotations

from ...errors import UnsupportedModelError
from ..program import OpSpec
from .binary import compile_add_mul, compile_div
from .common import CompileContext, Runner
from .conv import compile_conv, compile_depthwise
from .layout import (compile_broadcast_to, compile_concat, compile_range, compile_reshape,
                     compile_slice)
from .pooling import compile_avg_pool, compile_mean, compile_sum
from .trig import compile_trig
from .unary import compile_cast, compile_dequantize, compile_lookup, compile_quantize

COMPILERS = {
    "conv": compile_conv,
    "depthwise": compile_depthwise,
    "add": compile_add_mul,
    "mul": compile_add_mul,
    "div": compile_div,
    "avg_pool": compile_avg_pool,
    "mean": compile_mean,
    "sum": compile_sum,
    "hard_swish": compile_lookup,
    "logistic": compile_lookup,
    "quantize": compile_quantize,
    "dequantize": compile_dequantize,
    "cast": compile_cast,
    "reshape": compile_reshape,
    "concat": compile_concat,
    "slice": compile_slice,
    "broadcast_to": compile_broadcast_to,
    "range": compile_range,
    "sin": compile_trig,
    "cos": compile_trig,
}


def compile_op(op: OpSpec, ctx: CompileContext) -> Runner:
    compiler = COMPILERS.get(op.kind)
    if compiler is None:
        raise UnsupportedModelError(f"{op.layer}: unknown op kind {op.kind!r}")
    return compiler(op, ctx)
