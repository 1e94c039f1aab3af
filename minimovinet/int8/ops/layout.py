"""Compilers of the ops that only move values: RESHAPE (a view), CONCATENATION, SLICE."""
from __future__ import annotations

import numpy as np

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
        ws[o][...] = ws[x][index]
    return run
