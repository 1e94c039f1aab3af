"""The int8 program's weights as minimovinet float32 parameters (`Int8Movinet.dequantize()`).

Every name comes from `structure.plan(config)`: each conv's `layer` label is the op the
importer mapped there, and its kernel, batch norm or bias names are where the dequantized
weights go.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ..errors import UnsupportedModelError
from ..structure import ConvParams, param_specs, plan
from .program import Int8Program, OpSpec


def _float_weights(op: OpSpec, T):
    """The conv's dequantized kernel (float64, the file's layout: conv [Cout, kh, kw, Cin],
    depthwise [1, kh, kw, C]) and bias (the int32 bias times input scale x weight scale)."""
    x, wt, bt = op.inputs[:3]
    w = T[wt].data.astype(np.float64)
    scales = T[wt].channel_scales
    channels = w.shape[0 if op.kind == "conv" else 3]
    scales = (np.full(channels, T[wt].scale) if scales is None
              else scales.astype(np.float64))
    if op.kind == "conv":
        kernel = w * scales[:, None, None, None]
    else:
        kernel = w * scales[None, None, None, :]
    bias = T[bt].data.astype(np.float64) * float(np.float32(T[x].scale)) * scales
    return kernel, bias


def kernel_layout(kind: str, kernel, conv: ConvParams) -> np.ndarray:
    """A TFLite file's kernel of a 'conv' or 'depthwise' op in minimovinet's layout
    (`structure` module docstring)."""
    if kind == "depthwise":                         # [1, kh, kw, C] or [1, kt, 1, C]
        return kernel.reshape(conv.kernel_shape)       # -> [1, kh, kw, C] / [kt, 1, 1, C]
    if len(conv.kernel_shape) == 2:                    # 1x1: [Cout, 1, 1, Cin] -> [Cin, Cout]
        return kernel[:, 0, 0, :].T
    return kernel.transpose(1, 2, 3, 0)[None]          # dense: -> [1, kh, kw, Cin, Cout]


def dequantized_params(program: Int8Program) -> Dict[str, np.ndarray]:
    """minimovinet float parameters (`structure.param_specs` names) from the int8 program.

    Batch norm is already folded into the int8 convs: each conv gets an identity batch norm
    whose beta is the dequantized bias.  The SE gate conv of hard-sigmoid models carries the
    +3 of relu6(x + 3) / 6 in its bias (the converter folded it): it is taken out again."""
    cfg = program.config
    T = program.tensors
    ops = {op.layer: op for op in program.ops if op.kind in ("conv", "depthwise")}
    net = plan(cfg)
    se_expand = {b.se_expand.layer for b in net.blocks if b.se_expand is not None}
    params: Dict[str, np.ndarray] = {}
    for conv in net.convs():
        op = ops.get(conv.layer)
        if op is None:
            continue                                   # reported below, by parameter name
        kernel, bias = _float_weights(op, T)
        params[conv.kernel] = kernel_layout(op.kind, kernel, conv).astype(np.float32)
        if conv.bn is not None:
            params.update(identity_bn(conv, bias, cfg.bn_epsilon))
        else:
            shift = 3.0 if conv.layer in se_expand else 0.0
            params[conv.bias] = (bias - shift).astype(np.float32)
    blocks = {(b["g"], b["l"]): b for b in program.blocks}
    for block in net.blocks:
        spec = blocks.get((block.g, block.l), {})
        if "rezero" in spec:
            params[block.rezero] = np.array(spec["rezero"], np.float32)
        if block.pos_scale is not None and "pos_scale" in spec:   # quantized a3-a5 programs
            params[block.pos_scale] = np.array(spec["pos_scale"], np.float32)
    specs = param_specs(cfg)
    missing = [n for n in specs if n not in params]
    if missing:
        raise UnsupportedModelError(f"the int8 model lacks parameters for {missing[:3]}")
    return {n: params[n] for n in specs}


def identity_bn(conv: ConvParams, beta, eps) -> Dict[str, np.ndarray]:
    """A batch norm that adds `beta` and changes nothing else."""
    c = beta.shape[0]
    names = conv.bn_names()
    return {names["gamma"]: np.ones(c, np.float32),
            names["beta"]: beta.astype(np.float32),
            names["moving_mean"]: np.zeros(c, np.float32),
            names["moving_variance"]: np.full(c, 1.0 - eps, np.float32)}
