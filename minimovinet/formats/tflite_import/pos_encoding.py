"""The positional encoding of the A3..A5 stream models' SE, as a float graph computes it:

    pos_enc_frame_count state -> STRIDED_SLICE / RANGE / CAST / RESHAPE ... -> positions
      -> MUL(angles constant) -> [SIN of the even channels, COS of the odd ones]
      -> CONCATENATION -> MUL(scale constant) -> ADD(pooled)
    pos_enc_frame_count state -> ADD(1) -> its next value

The official layer's encoding (`float32.layers.positional_encoding`) is fixed by the channel
count; the file's angles must be it (to float16 precision: `w.pos_angles` keeps them for the
float model, `float32.layers.FileConstants`).  The learned scale (`w.pos_scales`) is the
only parameter; the float model computes the encoding itself.
"""
from __future__ import annotations

from typing import List

import numpy as np

from ..tflite import Operator
from .labels import block_label
from .signature import block_state_source, state_sink
from .walk import GraphMismatch, Walk

POS_ENCODING = "se/pos_encoding"
# What the converter computes the frame position with (from the state, T = 1 frame a call).
POSITION_OPS = ("STRIDED_SLICE", "RESHAPE", "CAST", "RANGE", "ADD", "SQUEEZE", "EXPAND_DIMS")
ANGLE_RTOL = 1e-3                       # float16 files hold the angles in float16


def expected_angles(channels: int) -> np.ndarray:
    """1 / 10000^(2 * (i // 2) / C) of the official encoding, [C]."""
    power = (2 * (np.arange(channels) // 2)) / channels
    return 1.0 / np.power(10000.0, power)


def _producer(w: Walk, t: int, names, where: str, layer: str) -> Operator:
    op = w.producer_op(w.origin(t, layer))
    if op is None or op.name not in names:
        found = "an input" if op is None else f"#{op.index} {op.name}"
        raise GraphMismatch(f"{where}: expected {'/'.join(names)}, found {found}")
    return w.claim(op, layer)


def _slice_start_step(w: Walk, op: Operator) -> tuple:
    """(begin, stride) of the last axis of a STRIDED_SLICE."""
    begin, _, strides = (w.const(t) for t in op.inputs[1:4])
    if begin is None or strides is None:
        raise GraphMismatch(f"STRIDED_SLICE #{op.index}: bounds are not constants")
    return int(begin.ravel()[-1]), int(strides.ravel()[-1])


def match_positional_encoding(w: Walk, pooled: int, index: int) -> int:
    """pooled + scale * encoding(position) of block `index` (pooled [B, 1, 1, 1, C]):
    returns the sum; records the scale in w.pos_scales."""
    layer = where = block_label(index, POS_ENCODING)
    add = w.one(w.uses(pooled), ("ADD",), f"{where} add")
    w.claim(add, layer)
    scaled = w.other_input(add, pooled, f"{where} add")
    scale_mul = _producer(w, scaled, ("MUL",), f"{where} scale", layer)
    scale = w.constant_operand(scale_mul, f"{where}: the scale MUL has no constant operand")
    if scale.size != 1:
        raise GraphMismatch(f"{where}: the scale is not one scalar")
    wave = [t for t in scale_mul.inputs if w.const(t) is None]
    cat = _producer(w, wave[0], ("CONCATENATION",), f"{where} concat", layer)
    if len(cat.inputs) != 2:
        raise GraphMismatch(f"{where}: expected CONCATENATION(sin, cos)")
    sin = _producer(w, cat.inputs[0], ("SIN",), f"{where} sin", layer)
    cos = _producer(w, cat.inputs[1], ("COS",), f"{where} cos", layer)
    even = _producer(w, sin.inputs[0], ("STRIDED_SLICE",), f"{where} even", layer)
    odd = _producer(w, cos.inputs[0], ("STRIDED_SLICE",), f"{where} odd", layer)
    if (_slice_start_step(w, even), _slice_start_step(w, odd)) != ((0, 2), (1, 2)) \
            or w.origin(even.inputs[0]) != w.origin(odd.inputs[0]):
        raise GraphMismatch(f"{where}: expected the sines of the even and the "
                            f"cosines of the odd channels")
    radians = _producer(w, even.inputs[0], ("MUL",), f"{where} angles", layer)
    channels = w.shape(w.origin(pooled))[-1]
    angles = w.constant_operand(radians, f"{where}: the angle MUL has no constant operand")
    if angles.size != channels or not np.allclose(angles.ravel(), expected_angles(channels),
                                                  rtol=ANGLE_RTOL, atol=0):
        raise GraphMismatch(f"{where}: the angles are not the official encoding's for "
                            f"{channels} channels")
    positions = [t for t in radians.inputs if w.const(t) is None][0]
    _match_position(w, positions, index, layer)
    w.pos_scales[index] = float(scale.ravel()[0])
    w.pos_angles[index] = angles.ravel().astype(np.float32)
    return add.outputs[0]


def _match_position(w: Walk, positions: int, index: int, layer: str) -> None:
    """The ops computing the frame position from the block's pos_enc_frame_count state
    (claimed), and the state's ADD(1) giving its next value."""
    states: List[int] = []
    seen = set()
    todo = [positions]
    while todo:
        t = todo.pop()
        if t in seen or w.const(t) is not None:
            continue
        seen.add(t)
        if t in w.state_by_tensor:
            states.append(t)
            continue
        op = w.producer_op(t)
        if op is None or op.name not in POSITION_OPS:
            found = "a non-state input" if op is None else f"#{op.index} {op.name}"
            raise GraphMismatch(f"{layer}: the frame position is computed from {found}")
        w.claim(op, layer)
        todo += [u for u in op.inputs if u >= 0]
    if len(states) != 1:
        raise GraphMismatch(f"{layer}: the frame position comes from {len(states)} states")
    name = block_state_source(w, states[0], index, "pos_enc_frame_count", layer)
    out = w.origin(w.state_out[name])
    step = [op for op in w.uses(states[0]) if op.name == "ADD" and w.origin(op.outputs[0]) == out]
    if len(step) != 1 or [float(w.const(t).ravel()[0]) for t in w.constant_inputs(step[0])] != [1]:
        raise GraphMismatch(f"{layer}: the next {name!r} is not the state + 1")
    w.claim(step[0], layer)
    state_sink(w, step[0].outputs[0], name, layer)
