"""The `Int8Program` of a walked graph: its tensors with their quantization and constants, and
its operators in execution order as minimovinet ops, each with its layer label.

`OP_CONVERTERS` maps each TFLite op a MoViNet stream graph uses to a small converter giving
the minimovinet op kind, its attributes and the inputs the kernel reads (constant axes and
slice bounds become attributes; RESHAPEs become views).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import List, Tuple

import numpy as np

from ...config import ModelConfig
from ...int8.program import Int8Program, OpSpec, TensorSpec
from ...structure import state_sort_key
from ..tflite import Operator, Tensor
from .labels import UNCLAIMED
from .walk import GraphMismatch, Walk

_DTYPES = {"INT8": "int8", "INT32": "int32", "INT64": "int64", "FLOAT32": "float32"}

Converted = Tuple[str, dict, Tuple[int, ...]]          # (kind, attrs, inputs)


# ---- tensors -----------------------------------------------------------------------------------

def tensor_spec(w: Walk, t: Tensor) -> TensorSpec:
    """Name, shape, dtype, quantization (per tensor or per channel) and constant data."""
    dtype = _DTYPES.get(t.type_name)
    if dtype is None:
        raise GraphMismatch(f"tensor {t.name!r} has type {t.type_name}")
    q = t.quantization
    spec = TensorSpec(name=t.name, shape=tuple(int(d) for d in t.shape), dtype=dtype)
    if q.is_quantized:
        if q.per_channel:
            spec.channel_scales = np.asarray(q.scale, np.float32).copy()
            spec.quantized_dimension = int(q.quantized_dimension)
            if np.any(np.asarray(q.zero_point) != 0):
                raise GraphMismatch(f"tensor {t.name!r}: per-channel zero points")
        else:
            spec.scale = float(np.float32(q.scale[0]))
            spec.zero_point = int(q.zero_point[0])
    data = t.data(w.model)
    if data is not None:
        spec.data = np.array(data)
    return spec


# ---- operators ---------------------------------------------------------------------------------

def _conv(w: Walk, op: Operator, tensors) -> Converted:
    o = op.options
    kind = "conv" if op.name == "CONV_2D" else "depthwise"
    return kind, dict(stride_h=o.stride_h, stride_w=o.stride_w, padding=o.padding,
                      activation=o.fused_activation_function), tuple(op.inputs)


def _binary(w: Walk, op: Operator, tensors) -> Converted:
    return (op.name.lower(), dict(activation=op.options.fused_activation_function),
            tuple(op.inputs))


def _avg_pool(w: Walk, op: Operator, tensors) -> Converted:
    o = op.options
    return "avg_pool", dict(filter_h=o.filter_height, filter_w=o.filter_width,
                            stride_h=o.stride_h, stride_w=o.stride_w, padding=o.padding,
                            activation=o.fused_activation_function), tuple(op.inputs)


def _reduce(w: Walk, op: Operator, tensors) -> Converted:
    """MEAN / SUM: the constant axes (2nd input) become an attribute."""
    x, axes = op.inputs[0], op.inputs[1]
    rank = len(tensors[x].shape)
    return op.name.lower(), dict(axes=sorted(int(a) % rank for a in w.const(axes).ravel()),
                                 keep_dims=bool(op.options.keep_dims)), (x,)


def _concat(w: Walk, op: Operator, tensors) -> Converted:
    rank = len(tensors[op.outputs[0]].shape)
    return "concat", dict(axis=int(op.options.axis) % rank), tuple(op.inputs)


def _strided_slice(w: Walk, op: Operator, tensors) -> Converted:
    """The constant begin / end / strides (with their masks) become [start, stop, step] per
    axis."""
    o = op.options
    if o.ellipsis_mask or o.new_axis_mask or o.offset:
        raise GraphMismatch(f"STRIDED_SLICE #{op.index} uses unsupported masks")
    x = op.inputs[0]
    shape = tensors[x].shape
    begin, end, strides = ([int(v) for v in w.const(t).ravel()] for t in op.inputs[1:4])
    slices = []
    for d in range(len(shape)):
        b = None if (o.begin_mask >> d) & 1 else begin[d]
        e = None if (o.end_mask >> d) & 1 else end[d]
        if (o.shrink_axis_mask >> d) & 1:         # one index, the axis dropped (the output's
            b = begin[d] % shape[d]                # shape says so: the kernel reshapes)
            e = b + 1
        start, stop, step = slice(b, e, strides[d]).indices(shape[d])
        slices.append([start, stop, step])
    return "slice", dict(slices=slices), (x,)


def _reshape(w: Walk, op: Operator, tensors) -> Converted:
    return "reshape", {}, (op.inputs[0],)               # the new shape is the output's


def _plain(w: Walk, op: Operator, tensors) -> Converted:
    return op.name.lower(), {}, tuple(op.inputs)


def _broadcast_to(w: Walk, op: Operator, tensors) -> Converted:
    return "broadcast_to", {}, (op.inputs[0],)          # the target shape is the output's


# TFLite op -> converter; the ops a MoViNet stream graph is made of (in the order error
# messages list them).
OP_CONVERTERS = {
    "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _conv, "ADD": _binary, "MUL": _binary,
    "AVERAGE_POOL_2D": _avg_pool, "HARD_SWISH": _plain, "LOGISTIC": _plain, "MEAN": _reduce,
    "SUM": _reduce, "DIV": _binary, "CAST": _plain, "QUANTIZE": _plain, "DEQUANTIZE": _plain,
    "CONCATENATION": _concat, "STRIDED_SLICE": _strided_slice, "RESHAPE": _reshape,
    # converter variations: TF 2.12 broadcasts the SE gate; the positional encoding (A3-A5)
    # is computed in the graph from the frame position (RANGE), in float (SIN, COS)
    "BROADCAST_TO": _broadcast_to, "RANGE": _plain, "SIN": _plain, "COS": _plain,
}
SUPPORTED_OPS = tuple(OP_CONVERTERS)


def convert_op(w: Walk, op: Operator, tensors: List[TensorSpec]) -> OpSpec:
    converter = OP_CONVERTERS.get(op.name)
    if converter is None:                                # excluded by network.check_operators
        raise GraphMismatch(f"operator #{op.index} {op.name}")
    kind, attrs, inputs = converter(w, op, tensors)
    return OpSpec(kind=kind, layer=w.layer_of.get(op.index) or UNCLAIMED, inputs=inputs,
                  outputs=tuple(op.outputs), attrs=attrs, tflite_op=op.name,
                  tflite_index=op.index)


# ---- the program -------------------------------------------------------------------------------

def _jsonable(block: dict) -> dict:
    """A block spec with lists for tuples and ints for NumPy integers (it is saved as JSON)."""
    out = {}
    for k, v in block.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, np.integer):
            v = int(v)
        out[k] = v
    return out


def build_program(w: Walk, config: ModelConfig) -> Int8Program:
    tensors = [tensor_spec(w, t) for t in w.tensors]
    ops = [convert_op(w, op, tensors) for op in w.ops]
    states = OrderedDict((name, (w.state_in[name], w.state_out[name]))
                         for name in sorted(w.state_in, key=state_sort_key))
    return Int8Program(tensors=tensors, ops=ops, image=w.image, logits=w.logits,
                       states=states, config=config,
                       blocks=[_jsonable(b) for b in w.blocks], source=w.label)
