"""One MoViNet block, from its input tensor to its residual ADD:

    expansion 1x1 conv (+ act) -> spatial depthwise conv (+ act)
      -> [stream buffer: CONCATENATION(state, frame) on time; STRIDED_SLICE -> next state;
          temporal depthwise kt x 1 conv (+ act)]
      -> [squeeze-excitation (se.py)]
      -> projection 1x1 conv -> MUL(rezero constant) -> ADD(skip)
    skip: identity | 1x1 conv | AVERAGE_POOL 3x3/2 -> 1x1 conv

Block `i` is labelled '@i' until the architecture is known (labels.py).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ..tflite import Operator
from .activations import activation, check_act, fused_activation, peek_activation_output
from .convs import block_depthwise, block_pointwise, out_channels
from .labels import REZERO, RESIDUAL_ADD, SKIP_POOL, STREAM_BUFFER, block_label, block_name
from .se import match_se
from .signature import block_state_source, state_sink
from .walk import GraphMismatch, Walk


def _feeds_depthwise(w: Walk, op: Operator) -> bool:
    """A CONV_2D whose output (after its activation) goes into a depthwise conv."""
    return op.name == "CONV_2D" and "DEPTHWISE_CONV_2D" in {
        u.name for u in w.uses(peek_activation_output(w, op))}


def next_is_block(w: Walk, x: int) -> str:
    """'block' when `x` feeds another block's expansion conv, 'head' when it feeds the head's
    projection conv (whose output is pooled)."""
    for op in w.uses(x):
        if op.name != "CONV_2D":
            continue
        names = {u.name for u in w.uses(peek_activation_output(w, op))}
        if "DEPTHWISE_CONV_2D" in names:
            return "block"
        if "SUM" in names or "MEAN" in names:
            return "head"
    found = ", ".join(f"#{op.index} {op.name}" for op in w.uses(x)) or "nothing"
    raise GraphMismatch(f"after block {len(w.blocks)}: expected the next block's expansion "
                        f"conv or the head's projection conv, found {found}")


def match_expansion(w: Walk, x: int, index: int, cin: int) -> Tuple[int, int]:
    """The 1x1 expansion conv reading the block input `x`: (its activation's output, E)."""
    p = block_name(index)
    expansion = None
    for op in w.uses(x):
        if _feeds_depthwise(w, op):
            expansion = op
    if expansion is None:
        raise GraphMismatch(f"{p}: no expansion conv feeding a depthwise conv")
    label = block_pointwise(w, expansion, index, "expansion", cin)
    expand = out_channels(w, expansion)
    h, act = activation(w, expansion, label)
    check_act(w, act, f"{p}/expansion")
    return h, expand


def match_spatial_conv(w: Walk, h: int, index: int, expand: int):
    """The spatial depthwise 1 x kh x kw conv: (its activation's output, (kh, kw), stride)."""
    p = block_name(index)
    dw = w.one(w.uses(h), ("DEPTHWISE_CONV_2D",), f"{p} spatial depthwise conv")
    kernel = w.shape(dw.inputs[1])                       # [1, kh, kw, E]
    o = dw.options
    if kernel[0] != 1 or kernel[3] != expand or o.depth_multiplier not in (0, 1) \
            or o.padding != "SAME" or (o.dilation_h_factor, o.dilation_w_factor) != (1, 1):
        raise GraphMismatch(f"{p}: spatial depthwise conv has kernel {list(kernel)}, "
                            f"padding {o.padding}")
    label = block_depthwise(w, dw, index, "feature")
    h, act = activation(w, dw, label)
    check_act(w, act, f"{p}/feature")
    return h, (kernel[1], kernel[2]), (1, o.stride_h, o.stride_w)


def match_stream_buffer(w: Walk, cat: Operator, h: int, index: int) -> int:
    """CONCATENATION(buffer state, frame `h`) on time and the STRIDED_SLICE keeping the last
    kt - 1 frames as the next state.  Returns the concatenation [B, kt, H, W, E]."""
    layer = block_label(index, STREAM_BUFFER)
    if len(cat.inputs) != 2 or w.origin(cat.inputs[1]) != w.origin(h):
        raise GraphMismatch(f"{layer}: expected CONCATENATION(buffer, frame)")
    if cat.options.axis not in (1, -4) or len(w.shape(cat.outputs[0])) != 5:
        raise GraphMismatch(f"{layer}: concatenation on axis {cat.options.axis}, expected "
                            f"time (axis 1 of [B, T, H, W, C])")
    w.claim(cat, layer)
    name = block_state_source(w, cat.inputs[0], index, "stream_buffer", layer)
    w.check_same_quant(cat.inputs + cat.outputs, layer)
    frames = cat.outputs[0]                              # [B, kt, H, W, E]
    sl = w.one(w.uses(frames), ("STRIDED_SLICE",), f"{layer} slice")
    w.claim(sl, layer)
    if w.shape(sl.outputs[0]) != w.shape(w.state_in[name]):
        raise GraphMismatch(f"{layer}: the next buffer has shape "
                            f"{list(w.shape(sl.outputs[0]))}, the state "
                            f"{list(w.shape(w.state_in[name]))}")
    state_sink(w, sl.outputs[0], name, layer)
    return frames


def match_temporal_conv(w: Walk, frames: int, index: int, expand: int) -> Tuple[int, int]:
    """The causal temporal depthwise kt x 1 conv over the buffered `frames`: (its
    activation's output, kt)."""
    p = block_name(index)
    kt = w.shape(frames)[1]
    tdw = w.one(w.uses(frames), ("DEPTHWISE_CONV_2D",), f"{p} temporal conv")
    kernel = w.shape(tdw.inputs[1])                      # [1, kt, 1, E]
    if kernel != (1, kt, 1, expand) or tdw.options.padding != "VALID":
        raise GraphMismatch(f"{p}: temporal depthwise conv has kernel {list(kernel)}, "
                            f"padding {tdw.options.padding}; expected [1, {kt}, 1, "
                            f"{expand}] VALID")
    label = block_depthwise(w, tdw, index, "feature_temporal")
    h, act = activation(w, tdw, label)
    check_act(w, act, f"{p}/feature_temporal")
    return h, kt


def match_projection(w: Walk, h: int, index: int, expand: int):
    """Projection 1x1 conv (linear) -> MUL(rezero constant) -> ADD(skip).

    Returns (Cout, the rezero value, the residual ADD, its skip operand)."""
    p = block_name(index)
    convs = [op for op in w.uses(h) if op.name == "CONV_2D"]
    proj = w.one(convs, ("CONV_2D",), f"{p} projection")
    block_pointwise(w, proj, index, "projection", expand)
    cout = out_channels(w, proj)
    if fused_activation(proj) != "NONE":
        raise GraphMismatch(f"{p}: projection conv has an activation")
    rz = w.one(w.uses(proj.outputs[0]), ("MUL",), f"{p} rezero")
    rz_values = w.constant_operand(rz, f"{p}: rezero MUL without a constant operand")
    if rz_values.size == 0 or not np.all(rz_values == rz_values.ravel()[0]):
        raise GraphMismatch(f"{p}: rezero constant is not one scalar")
    w.claim(rz, block_label(index, REZERO))
    add = w.one(w.uses(rz.outputs[0]), ("ADD",), f"{p} residual add")
    w.claim(add, block_label(index, RESIDUAL_ADD))
    other = [t for t in add.inputs if w.origin(t) != w.origin(rz.outputs[0])]
    if len(other) != 1:
        raise GraphMismatch(f"{p}: residual ADD inputs")
    return cout, float(rz_values.ravel()[0]), add, other[0]


def match_skip(w: Walk, skip_in: int, x: int, index: int, cin: int) -> str:
    """The skip branch from the block input `x` to the residual ADD's operand `skip_in`:
    'identity', 'conv' (1x1) or 'pool+conv' (AVERAGE_POOL 3x3/2 SAME, then 1x1)."""
    p = block_name(index)
    skip_t = w.origin(skip_in)
    if skip_t == x:
        return "identity"
    conv = w.producer_op(skip_t)
    if conv is None or conv.name != "CONV_2D":
        raise GraphMismatch(f"{p}: the skip branch is neither the block input nor a conv")
    block_pointwise(w, conv, index, "skip", cin)
    src = w.origin(conv.inputs[0])
    if src == x:
        return "conv"
    pool = w.producer_op(src)
    if pool is None or pool.name != "AVERAGE_POOL_2D" or w.origin(pool.inputs[0]) != x:
        raise GraphMismatch(f"{p}: the skip conv does not read the block input or its "
                            f"average pool")
    po = pool.options
    if (po.filter_height, po.filter_width, po.stride_h, po.stride_w) != (3, 3, 2, 2) \
            or po.padding != "SAME":
        raise GraphMismatch(f"{p}: skip pool is not 3x3 stride 2 SAME")
    w.claim(pool, block_label(index, SKIP_POOL))
    return "pool+conv"


def match_block(w: Walk, x: int, index: int, cin: int) -> Tuple[int, dict]:
    """Block `index` reading `x` (`cin` channels): (its output tensor, its spec)."""
    x = w.origin(x)
    h, expand = match_expansion(w, x, index, cin)
    h, (kh, kw), stride = match_spatial_conv(w, h, index, expand)
    kt = 1
    concat = [op for op in w.uses(h) if op.name == "CONCATENATION"]
    if concat:                                           # a causal temporal conv
        frames = match_stream_buffer(w, concat[0], h, index)
        h, kt = match_temporal_conv(w, frames, index, expand)
    se = None
    if any(op.name == "MEAN" for op in w.uses(h)):       # squeeze-excitation
        h, se = match_se(w, h, index, expand)
    cout, rezero, add, skip_in = match_projection(w, h, index, expand)
    skip = match_skip(w, skip_in, x, index, cin)
    spec = dict(index=index, cin=cin, expand=expand, cout=cout, kernel=(kt, kh, kw),
                stride=stride, se=se is not None, skip=skip, rezero=rezero)
    if se is not None and se.get("pos_scale") is not None:   # A3-A5: positional encoding
        spec["pos_scale"] = se["pos_scale"]
    return add.outputs[0], spec
