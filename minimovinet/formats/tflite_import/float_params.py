"""The float32 `Movinet` parameters of a walked float graph, by structure names.

As `int8.dequantize` does for an int8 program, but from the float weight tensors
(`float_graph.conv_weights`: float32, float16 widened, or dynamic-range int8 times its scales):
every conv of `structure.plan(config)` is the op the walk labelled with its `layer`; batch norm
is folded into the file's convs, so each gets an identity batch norm whose beta is the conv's
bias; the SE gate conv's bias carries the +3 of relu6(x + 3) / 6 (the converter folded it):
it is taken out again.  ReZero scales and positional-encoding scales are the walk's constants.

Constants the official model computes exactly come from the file too, so that the float
model computes what LiteRT computes (a float16 file rounds them all to float16): the SE gate's
0.16667 (its ratio to 0.16667 scales the projection kernel the gate feeds: exact, the
projection is linear), the head pool's 1 / (H * W) and the positional-encoding angles
(`file_constants`: `float32.layers.FileConstants`).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ...config import ModelConfig
from ...float32.layers import FileConstants
from ...int8.dequantize import identity_bn, kernel_layout
from ...structure import param_specs, plan
from .float_graph import conv_weights
from .labels import HEAD_POOL, SE_GATE
from .pos_encoding import SE_POS_ENCODING
from .walk import GraphMismatch, Walk

HARD_SIGMOID_SHIFT = 3.0                # relu6(x + 3) / 6
HARD_SIGMOID_SLOPE = np.float32(0.16667)   # the official hard sigmoid's literal (not 1/6)
ANGLE_RTOL = 1e-3                       # float16 files hold the encoding's angles in float16


def float_params(w: Walk, cfg: ModelConfig) -> Dict[str, np.ndarray]:
    """minimovinet float32 parameters (`structure.param_specs` names) of the walked graph."""
    convs = {w.layer_of.get(op.index): op for op in w.ops
             if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D")}
    net = plan(cfg)
    se_expand = {b.se_expand.layer for b in net.blocks if b.se_expand is not None}
    params: Dict[str, np.ndarray] = {}
    for conv in net.convs():
        op = convs.get(conv.layer)
        if op is None:
            continue                                   # reported below, by parameter name
        kernel, bias = conv_weights(w, op)
        kind = "conv" if op.name == "CONV_2D" else "depthwise"
        params[conv.kernel] = kernel_layout(kind, kernel, conv).astype(np.float32)
        if conv.bn is not None:
            params.update(identity_bn(conv, bias, cfg.bn_epsilon))
        else:
            shift = HARD_SIGMOID_SHIFT if conv.layer in se_expand else 0.0
            params[conv.bias] = (bias - shift).astype(np.float32)
    for index, (block, found) in enumerate(zip(net.blocks, w.blocks)):
        params[block.rezero] = np.array(found["rezero"], np.float32)
        if block.pos_scale is not None:
            params[block.pos_scale] = np.array(found["pos_scale"], np.float32)
        gate = _labelled_constant(w, f"{block.prefix}/{SE_GATE}")
        if gate is not None and block.projection.kernel in params:    # the file's 0.16667
            params[block.projection.kernel] *= np.float32(gate) / HARD_SIGMOID_SLOPE
    missing = [n for n in param_specs(cfg) if n not in params]
    if missing:
        raise GraphMismatch(f"the graph lacks parameters for {missing[:3]}")
    return {n: params[n] for n in param_specs(cfg)}


def _labelled_constant(w: Walk, label: str):
    """The constant operand of the MUL labelled `label`, None when there is none."""
    for op in w.ops:
        if op.name == "MUL" and w.layer_of.get(op.index) == label:
            values = [w.const(t) for t in w.constant_inputs(op)]
            if len(values) == 1 and values[0].size == 1:
                return float(values[0].ravel()[0])
    return None


def file_constants(w: Walk, cfg: ModelConfig) -> FileConstants:
    """The head pool's mean factor (SUM x the file's 1/(H*W), relative to the exact mean) and
    each block's positional-encoding angles, as the file holds them."""
    mean_scale = 1.0
    pool_sum = [op for op in w.ops if op.name == "SUM" and w.layer_of.get(op.index) == HEAD_POOL]
    factor = _labelled_constant(w, HEAD_POOL)
    if pool_sum and factor is not None:
        shape = w.shape(pool_sum[0].inputs[0])                       # [B, 1, h, w, P]
        axes = {int(a) % len(shape) for a in w.const(pool_sum[0].inputs[1]).ravel()}
        mean_scale = factor * float(np.prod([shape[a] for a in axes]))
    angles = {block.prefix: _pos_angles(w, block.prefix, block.se_reduce.kernel_shape[0])
              for block in plan(cfg).blocks if block.pos_scale is not None}   # [2E, R]: 2E
    return FileConstants(head_mean_scale=mean_scale, pos_angles=angles)


def expected_angles(channels: int) -> np.ndarray:
    """1 / 10000^(2 * (i // 2) / C) of the official encoding, [C]."""
    return 1.0 / np.power(10000.0, (2 * (np.arange(channels) // 2)) / channels)


def _pos_angles(w: Walk, prefix: str, channels: int) -> np.ndarray:
    """The angles [C] of the positional encoding the walk labelled in block `prefix`: the
    float model computes the official sinusoidal encoding, so the graph's must be it (SIN and
    COS of the frame position times these angles)."""
    label = f"{prefix}/{SE_POS_ENCODING}"
    ops = [op for op in w.ops if w.layer_of.get(op.index) == label]
    angles = [w.const(t) for op in ops if op.name == "MUL" for t in w.constant_inputs(op)
              if w.const(t).size == channels]
    if not {"SIN", "COS"} <= {op.name for op in ops} or len(angles) != 1 or not np.allclose(
            angles[0].ravel(), expected_angles(channels), rtol=ANGLE_RTOL, atol=0):
        raise GraphMismatch(f"{label}: not the official sinusoidal encoding of {channels} "
                            f"channels (SIN and COS of the frame position times "
                            f"1 / 10000^(2 * (i // 2) / {channels}))")
    return angles[0].ravel().astype(np.float32)
