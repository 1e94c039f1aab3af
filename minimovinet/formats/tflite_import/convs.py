"""The convs of the structure: what every one must be (int8 weights and input, an int32 bias;
1x1 stride 1 for the pointwise ones: expansion, projection, skip, SE, head), and claiming a
block's conv under its role (`structure.BlockPlan` field) for `architecture.name_blocks`."""
from __future__ import annotations

from typing import Optional

from ..tflite import Operator
from .float_graph import check_float_conv
from .labels import block_conv_label
from .walk import GraphMismatch, Walk


def check_conv_quant(w: Walk, op: Operator, layer: str) -> None:
    """An int8 conv: int8 input and weights, an int32 bias, both constants (in a float
    graph: a float conv, `float_graph.check_float_conv`)."""
    if w.float_graph:
        return check_float_conv(w, op, layer)
    x, weights = w.tensors[op.inputs[0]], w.tensors[op.inputs[1]]
    if x.type_name != "INT8" or weights.type_name != "INT8":
        raise GraphMismatch(f"{layer}: conv on {x.type_name} input with {weights.type_name} "
                            f"weights; expected int8 (a float or dynamic-range model is not "
                            f"an int8 model)")
    if len(op.inputs) < 3 or op.inputs[2] < 0 or w.type_of(op.inputs[2]) != "INT32":
        raise GraphMismatch(f"{layer}: conv without an int32 bias")
    if w.const(op.inputs[1]) is None or w.const(op.inputs[2]) is None:
        raise GraphMismatch(f"{layer}: conv weights or bias are not constants")


def pointwise(w: Walk, op: Operator, layer: str, cin: Optional[int] = None) -> Operator:
    """`op` must be a 1x1 stride-1 int8 CONV_2D (from `cin` channels when given); claims it."""
    if op.name != "CONV_2D":
        raise GraphMismatch(f"{layer}: expected CONV_2D, found #{op.index} {op.name}")
    kernel = w.shape(op.inputs[1])                       # [Cout, kh, kw, Cin]
    if len(kernel) != 4 or kernel[1:3] != (1, 1):
        raise GraphMismatch(f"{layer}: expected a 1x1 conv, found kernel {list(kernel)}")
    o = op.options
    if (o.stride_h, o.stride_w) != (1, 1) or \
            (o.dilation_h_factor, o.dilation_w_factor) != (1, 1):
        raise GraphMismatch(f"{layer}: expected stride 1, no dilation")
    if cin is not None and kernel[3] != cin:
        raise GraphMismatch(f"{layer}: expected {cin} input channels, found {kernel[3]}")
    check_conv_quant(w, op, layer)
    return w.claim(op, layer)


def out_channels(w: Walk, conv: Operator) -> int:
    """Cout of a CONV_2D (kernel [Cout, kh, kw, Cin]); C of a depthwise conv ([1, kh, kw, C])
    is kernel[3]."""
    return w.shape(conv.inputs[1])[0]


def block_pointwise(w: Walk, op: Operator, index: int, role: str,
                    cin: Optional[int] = None) -> str:
    """Claim the 1x1 conv `role` (a `structure.BlockPlan` field) of block `index`."""
    label = block_conv_label(index, role)
    pointwise(w, op, label, cin)
    w.block_convs[op.index] = (index, role)
    return label


def block_depthwise(w: Walk, op: Operator, index: int, role: str) -> str:
    """Claim the depthwise conv `role` of block `index` (its shape is checked by the caller)."""
    label = block_conv_label(index, role)
    check_conv_quant(w, op, label)
    w.claim(op, label)
    w.block_convs[op.index] = (index, role)
    return label
