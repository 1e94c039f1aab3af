"""Compilers of the float elementwise functions SIN and COS (the positional encoding of the
A3-A5 stream models, computed in the graph in float32 between a DEQUANTIZE and a QUANTIZE).

LiteRT's built-in SIN / COS apply the C library's single-precision `std::sin` / `std::cos` to
each float32 value.  Numba's `math.sin` on a float32 compiles to the same libm call (sinf,
cosf), not to NumPy's own vectorised approximation, whose last bit can differ.
"""
from __future__ import annotations

import math

from numba import njit

from ...errors import UnsupportedModelError
from ..program import OpSpec
from .common import CompileContext, Runner


@njit(cache=True)
def _sin(x, out):
    for i in range(x.size):
        out[i] = math.sin(x[i])


@njit(cache=True)
def _cos(x, out):
    for i in range(x.size):
        out[i] = math.cos(x[i])


FUNCTIONS = {"sin": _sin, "cos": _cos}


def compile_trig(op: OpSpec, ctx: CompileContext) -> Runner:
    T = ctx.tensors
    x, o = op.inputs[0], op.outputs[0]
    if T[x].dtype != "float32" or T[o].dtype != "float32":
        raise UnsupportedModelError(f"{op.layer}: {op.kind.upper()} on {T[x].dtype}, "
                                    f"expected float32")
    function = FUNCTIONS[op.kind]

    def run(ws, ki):
        function(ws[x].reshape(-1), ws[o].reshape(-1))
    return run

