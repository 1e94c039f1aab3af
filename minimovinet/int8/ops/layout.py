"""Compilers of the ops that only move values: RESHAPE (a view), CONCATENATION, SLICE,
BROADCAST_TO (a copy), and RANGE (int32 indices: the frame position of the positional
encoding)."""
from __future__ import annotations

import numpy as np

from ...errors import StateError, UnsupportedModelError
from ..program import OpSpec
from .common import CompileContext, Runner


def compile_reshape(op: OpSpec, ctx: CompileContext) -> Runner:
    x, o = op.inputs[0], op.outputs[0]
    shape = ctx.tensors[o].shape

    def run(ws, ki):
        ws[o] = ws[x].reshape(shape)            # a view: RESHAPE copies nothing
    return run


def compile_concat(op: OpSpec, ctx: CompileContext) -> Runner:
    axis = op.attrs["axis"]
    sources = list(op.inputs)
    o = op.outputs[0]

    def run(ws, ki):
        np.concatenate([ws[i] for i in sources], axis=axis, out=ws[o])
    return run


def compile_slice(op: OpSpec, ctx: CompileContext) -> Runner:
    x, o = op.inputs[0], op.outputs[0]
    index = tuple(slice(*s) for s in op.attrs["slices"])

    def run(ws, ki):
        ws[o][...] = ws[x][index].reshape(ws[o].shape)   # a shrunk axis is dropped
    return run


def compile_broadcast_to(op: OpSpec, ctx: CompileContext) -> Runner:
    """The input repeated to the output's shape (NumPy's broadcasting rules are TFLite's)."""
    x, o = op.inputs[0], op.outputs[0]
    shape = ctx.tensors[o].shape
    try:
        np.broadcast_shapes(ctx.tensors[x].shape, shape)
    except ValueError:
        raise UnsupportedModelError(f"{op.layer}: BROADCAST_TO of {list(ctx.tensors[x].shape)} "
                                    f"to {list(shape)}") from None

    def run(ws, ki):
        np.copyto(ws[o], np.broadcast_to(ws[x], shape))
    return run


def compile_range(op: OpSpec, ctx: CompileContext) -> Runner:
    """RANGE(start, limit, delta) of int32 scalars; the file fixes the output's length, a
    range of another length (a corrupt state) is refused when it runs."""
    start, limit, delta = op.inputs
    o = op.outputs[0]
    T = ctx.tensors
    if any(T[t].dtype != "int32" for t in (start, limit, delta, o)):
        raise UnsupportedModelError(f"{op.layer}: RANGE on {T[o].dtype}, expected int32")
    n = int(np.prod(T[o].shape))

    def run(ws, ki):
        values = np.arange(int(ws[start].reshape(-1)[0]), int(ws[limit].reshape(-1)[0]),
                           int(ws[delta].reshape(-1)[0]), dtype=np.int32)
        if values.size != n:
            raise StateError(f"{op.layer}: RANGE gives {values.size} values from the input "
                             f"states, the file's tensor holds {n}")
        ws[o][...] = values.reshape(ws[o].shape)
    return run
