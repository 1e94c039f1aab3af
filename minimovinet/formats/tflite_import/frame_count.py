"""A running mean over the frames seen so far: total / (frame_count + 1).

The SE pools and the head's global pool are causal: they keep the running sum of the frame
means and a frame count as states.  The converter computes the mean either as an int8 DIV by
the quantized count, or as a float DIV of the dequantized sum by the count (in a float graph:
of the sum itself).
"""
from __future__ import annotations

from ..tflite import Operator
from .labels import display
from .signature import state_sink, state_source
from .walk import GraphMismatch, Walk


def _next_count(w: Walk, count_name: str, layer: str) -> int:
    """ADD(count state, 1) -> the next count state; returns the incremented count."""
    if count_name not in w.state_in:
        raise GraphMismatch(f"{display(layer)}: the signature has no state {count_name!r}")
    count_in = w.state_in[count_name]
    state_source(w, count_in, count_name, layer)
    inc = w.one(w.uses(count_in), ("ADD",), f"{display(layer)} frame count")
    step = [w.const(t) for t in w.constant_inputs(inc)]
    if len(step) != 1 or int(step[0].ravel()[0]) != 1:
        raise GraphMismatch(f"{display(layer)}: the frame count does not advance by 1")
    w.claim(inc, layer)
    state_sink(w, inc.outputs[0], count_name, layer)
    return inc.outputs[0]


def _division(w: Walk, count: int, total: int, layer: str) -> Operator:
    """The DIV of `total` by the float-cast `count` (int8, or float on the dequantized sum)."""
    cast = w.one(w.uses(count), ("CAST",), f"{layer} count cast")
    w.claim(cast, layer)
    div = None
    for op in w.uses(cast.outputs[0]):
        if op.name == "QUANTIZE":                 # int8 DIV
            w.claim(op, layer)
            div = w.one(w.uses(op.outputs[0]), ("DIV",), f"{layer} divide")
            if w.origin(div.inputs[0]) != w.origin(total):
                raise GraphMismatch(f"{layer}: DIV numerator is not the running sum")
        elif op.name == "DIV" and w.float_graph:  # a float graph: DIV of the sum
            div = op
            if w.origin(div.inputs[0]) != w.origin(total):
                raise GraphMismatch(f"{layer}: float DIV numerator is not the running sum")
        elif op.name == "DIV":                    # float DIV of the dequantized sum
            div = op
            dq = w.producer_op(w.origin(div.inputs[0]))
            if dq is None or dq.name != "DEQUANTIZE" or w.origin(dq.inputs[0]) != w.origin(total):
                raise GraphMismatch(f"{layer}: float DIV numerator is not the running sum")
            w.claim(dq, layer)
    if div is None:
        raise GraphMismatch(f"{layer}: no division by the frame count")
    return div


def match_divide_by_count(w: Walk, total: int, count_name: str, layer: str) -> int:
    """total / (frame count + 1), the count carried in state `count_name`; the ops are
    labelled `layer`.  Returns the quantized mean."""
    count = _next_count(w, count_name, layer)
    div = _division(w, count, total, layer)
    w.claim(div, layer)
    out = div.outputs[0]
    if w.type_of(out) == "FLOAT32" and not w.float_graph:
        q = w.one(w.uses(out), ("QUANTIZE",), f"{layer} quantize")
        w.claim(q, layer)
        out = q.outputs[0]
    return out
