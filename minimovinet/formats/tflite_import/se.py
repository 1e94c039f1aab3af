"""Squeeze-excitation (2plus3d, causal), from the features `h` to MUL(gate, h):

    MEAN over H, W -> ADD(pool_buffer state) -> running mean (frame_count.py; float pools:
      DEQUANTIZE -> float ADD -> float DIV -> QUANTIZE)
      -> CONCATENATION(cumulative mean, frame mean) -> [positional encoding (pos_encoding.py)]
      -> reduce 1x1 conv (+ act)
      -> expand 1x1 conv (relu6) -> MUL(1/6) -> MUL(gate, features)

relu6(x + 3) / 6 is the hard sigmoid: the converter folds the + 3 into the expand conv's bias.
"""
from __future__ import annotations

from typing import Tuple

from ...structure import STATE_NAME, state_name
from ..tflite import Operator
from .activations import activation, check_act, fused_activation
from .convs import block_pointwise
from .frame_count import match_divide_by_count, running_sum
from .pos_encoding import match_positional_encoding
from .labels import SE_CONCAT, SE_GATE, SE_POOL, SE_SCALE, block_label
from .signature import block_state_source, state_sink
from .walk import GraphMismatch, Walk

HARD_SIGMOID_SLOPE = 1 / 6


def match_se_pool(w: Walk, h: int, index: int) -> Tuple[int, int]:
    """The frame mean of `h` and its running mean: (frame mean, cumulative mean), both
    [B, 1, 1, 1, E]."""
    where = block_label(index, "se")
    layer = block_label(index, SE_POOL)
    mean = w.one(w.uses(h), ("MEAN",), f"{where} pool")
    axes = sorted(int(a) % 5 for a in w.const(mean.inputs[1]).ravel())
    if axes != [2, 3] or not mean.options.keep_dims:
        raise GraphMismatch(f"{where}: MEAN over axes {axes}, expected the spatial axes [2, 3]")
    w.claim(mean, layer)
    frame_mean = mean.outputs[0]                         # [B, 1, 1, 1, E]
    add, addend = running_sum(w, frame_mean, f"{where} cumulative pool", layer)
    w.claim(add, layer)
    buffer_in = w.other_input(add, addend, f"{where} cumulative pool")
    name = block_state_source(w, buffer_in, index, "pool_buffer", layer)
    total = add.outputs[0]
    if w.type_of(total) == "FLOAT32" and not w.float_graph:
        state_sink(w, total, name, layer)                # float pools: the sum is the state
    else:                                                # the converter slices it
        sl = w.one(w.uses(total), ("STRIDED_SLICE",), f"{where} pool buffer")
        w.claim(sl, layer)
        state_sink(w, sl.outputs[0], name, layer)
    count_name = state_name(STATE_NAME.match(name).group(1), "pool_frame_count")
    return frame_mean, match_divide_by_count(w, total, count_name, layer)


def match_se_gate(w: Walk, pooled: int, index: int, expand: int) -> Tuple[Operator, float]:
    """reduce conv (+ act) -> expand conv (relu6) -> MUL(1/6) from the pooled [B, 1, 1, 1, 2E]:
    (the gate MUL, its factor)."""
    where = block_label(index, "se")
    red = w.one(w.uses(pooled), ("CONV_2D",), f"{where} reduce")
    reduce_label = block_pointwise(w, red, index, "se_reduce", 2 * expand)
    r, act = activation(w, red, reduce_label)
    check_act(w, act, f"{where}/reduce")
    exp = w.one(w.uses(r), ("CONV_2D",), f"{where} expand")
    block_pointwise(w, exp, index, "se_expand")
    if fused_activation(exp) != "RELU6":
        raise GraphMismatch(f"{where}: the gate conv is not relu6-fused (hard sigmoid)")
    gate_mul = w.one(w.uses(exp.outputs[0]), ("MUL",), f"{where} gate")
    gate_factor = float(w.constant_operand(
        gate_mul, f"{where}: the gate MUL has no constant operand").ravel()[0])
    if abs(gate_factor - HARD_SIGMOID_SLOPE) > 0.01:
        raise GraphMismatch(f"{where}: gate factor {gate_factor:.5f}, expected 1/6 "
                            f"(hard sigmoid)")
    w.claim(gate_mul, block_label(index, SE_GATE))
    return gate_mul, gate_factor


def match_se(w: Walk, h: int, index: int, expand: int) -> Tuple[int, dict]:
    """The SE of block `index` over its features `h` (E = `expand` channels): (the gated
    features, dict(gate_factor))."""
    where = block_label(index, "se")
    frame_mean, cumulative = match_se_pool(w, h, index)
    cat = w.one(w.uses(cumulative), ("CONCATENATION",), f"{where} concat")
    if [w.origin(t) for t in cat.inputs] != [w.origin(cumulative), w.origin(frame_mean)]:
        raise GraphMismatch(f"{where}: expected CONCATENATION(cumulative mean, frame mean)")
    concat_label = block_label(index, SE_CONCAT)
    w.check_same_quant(cat.inputs + cat.outputs, concat_label)
    w.claim(cat, concat_label)
    pooled, pos_scale = match_positional_encoding(w, cat.outputs[0], index)
    gate_mul, gate_factor = match_se_gate(w, pooled, index, expand)
    scale = w.one(w.uses(gate_mul.outputs[0]), ("MUL",), f"{where} scale")
    if {w.origin(t) for t in scale.inputs} != {w.origin(gate_mul.outputs[0]), w.origin(h)}:
        raise GraphMismatch(f"{where}: expected MUL(gate, features)")
    w.claim(scale, block_label(index, SE_SCALE))
    return scale.outputs[0], dict(gate_factor=gate_factor, pos_scale=pos_scale)
