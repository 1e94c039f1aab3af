"""The positional encoding of the A3-A5 stream models, inside squeeze-excitation:

    pooled [B, 1, 1, 1, 2E] -> ADD(pooled, scale * encoding(frame position)) -> reduce conv

The encoding (sines and cosines of the frame position, which the block's
`pos_enc_frame_count` state carries) is computed in the graph, and the converter writes it in
whatever ops it likes (RANGE, CAST, QUANTIZE, STRIDED_SLICE, int8 MUL, DEQUANTIZE, float SIN /
COS, CONCATENATION, QUANTIZE ...; the releases differ).  So it is not matched op by op: the
encoding is everything the ADD's other operand is computed from, as long as that is only
constants and the block's `pos_enc_frame_count` state (no conv, no other tensor of the
network).  The program runs those ops one by one, each TFLite-exact.  The last MUL by a
constant is the encoding's scale (a learned parameter: `structure.BlockPlan.pos_scale`).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from ..tflite import Operator
from .labels import block_label, display
from .signature import block_state_source, state_sink
from .walk import GraphMismatch, Walk

SE_POS_ENCODING = "se/pos_encoding"
_NOT_IN_ENCODING = ("CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "SUM", "AVERAGE_POOL_2D")


def _cone(w: Walk, t: int, layer: str) -> Tuple[List[Operator], List[int]]:
    """The ops `t` is computed from (through any op) and the graph inputs it reads."""
    ops, inputs, seen, todo = [], [], set(), [t]
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        if w.const(t) is not None:         # a constant (a float graph's DEQUANTIZEd ones too)
            continue
        op = w.producer_op(t)
        if op is None:
            inputs.append(t)
            continue
        if op.name in _NOT_IN_ENCODING:
            raise GraphMismatch(f"{display(layer)}: the encoding is computed from "
                                f"{op.name} #{op.index}, not from the frame position only")
        ops.append(op)
        todo.extend(u for u in op.inputs if u >= 0)
    return ops, inputs


def _scale(w: Walk, encoding: int) -> Optional[float]:
    """The constant factor of the last MUL of the encoding, None when there is none."""
    op = w.producer_op(w.origin(encoding))
    if op is None or op.name != "MUL":
        return None
    constant = w.constant_inputs(op)
    return float(w.dequantized(constant[0]).ravel()[0]) if len(constant) == 1 else None


def _next_position(w: Walk, state_in: int, name: str, layer: str) -> None:
    """ADD(position state, 1) -> the next position state."""
    incs = [op for op in w.uses(state_in) if op.index not in w.layer_of]
    inc = w.one(incs, ("ADD",), f"{display(layer)} next position")
    step = [w.const(t) for t in w.constant_inputs(inc)]
    if len(step) != 1 or int(step[0].ravel()[0]) != 1:
        raise GraphMismatch(f"{display(layer)}: the frame position does not advance by 1")
    w.claim(inc, layer)
    state_sink(w, inc.outputs[0], name, layer)


def match_positional_encoding(w: Walk, pooled: int, index: int) -> Tuple[int, Optional[float]]:
    """(the pooled features with the encoding added, its scale) when an encoding is added to
    `pooled` of block `index`; else (`pooled`, None)."""
    uses = w.uses(pooled)
    if len(uses) != 1 or uses[0].name != "ADD":
        return pooled, None
    add = uses[0]
    layer = block_label(index, SE_POS_ENCODING)
    encoding = w.other_input(add, pooled, display(layer))
    ops, inputs = _cone(w, encoding, layer)
    if len(inputs) != 1:
        raise GraphMismatch(f"{display(layer)}: the encoding reads {len(inputs)} graph "
                            f"inputs, expected the frame position state only")
    scale = _scale(w, encoding)
    if scale is None:
        raise GraphMismatch(f"{display(layer)}: the encoding is not scaled by a constant")
    name = block_state_source(w, inputs[0], index, "pos_enc_frame_count", layer)
    for op in sorted(ops, key=lambda op: op.index):
        w.claim(op, layer)
    w.claim(add, layer)
    _next_position(w, w.state_in[name], name, layer)
    return add.outputs[0], scale
