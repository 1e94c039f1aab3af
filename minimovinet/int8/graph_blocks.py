"""The parts of the quantization graph (`graph.py`): input and stem, one block (expansion,
spatial conv, stream buffer, temporal conv, squeeze-excitation with its cumulative pool and
positional encoding, projection, ReZero, skip), the head and the classifier.

Labels are the importer's (`formats.tflite_import.labels`): conv labels from `structure`, and
'{block}/feature/stream_buffer', '{block}/se/pool', '{block}/se/concat', '{block}/se/expand/gate',
'{block}/se/scale', '{block}/rezero', '{block}/add', '{block}/skip/pool', 'head/pool',
'input/quantize', 'output/dequantize', '{conv}/act' for an activation op after a conv.
"""
from __future__ import annotations

import numpy as np

from ..structure import BlockPlan
from .graph import (GraphBuilder, folded, fused_and_after, pointwise_kernel, spatial_kernel,
                    stem_kernel, temporal_kernel)

IMAGE_QUANTIZATION = (1.0 / 255.0, -128)      # frames in [0, 1]
HARD_SIGMOID_OFFSET = 3.0


def act_label(conv_layer: str) -> str:
    base = conv_layer[:-len("/conv")] if conv_layer.endswith("/conv") else conv_layer
    return f"{base}/act"


def conv_act(b: GraphBuilder, layer, x, kernel, bias, act, stride=1, depthwise=False,
             padding="SAME"):
    """A conv with the model's activation: fused (relu6, relu), or as its own ops."""
    fused, after = fused_and_after(act)
    make = b.depthwise if depthwise else b.conv
    y = make(layer, x, kernel, bias, stride, fused, padding)
    return b.activation(y, after, act_label(layer))


# ---- states ------------------------------------------------------------------------------------

def state_input(b: GraphBuilder, name, shape, layer, states):
    """(the signature's input tensor, its int8 value): int8 states are read as they are, float
    ones through a QUANTIZE."""
    if states == "int8":
        t = b.tensor(name, shape, "act", dtype="int8")
        b.states[name][0] = t
        return t, t
    t = b.tensor(name, shape, "float")
    b.states[name][0] = t
    return t, b.op("quantize", layer, (t,), shape, "QUANTIZE")


def state_output(b: GraphBuilder, name, value, layer, states):
    """The next state: the int8 `value`, or its DEQUANTIZE for float states."""
    if states == "float":
        value = b.op("dequantize", layer, (value,), b.shape(value), "DEQUANTIZE", role="float",
                     name=f"{name}:out")
    b.states[name][1] = value


def next_count(b: GraphBuilder, name, layer):
    """count + 1 (int32), the next count state; returns it."""
    count_in = b.tensor(name, (1,), "int32")
    one = b.tensor(f"{layer}/one", (), "int32", data=1)
    count_out = b.op("add", layer, (count_in, one), (1,), "ADD", dict(activation="NONE"),
                     role="int32", name=f"{name}:out")
    b.states[name] = [count_in, count_out]
    return count_out


def cumulative_mean(b: GraphBuilder, layer, frame_mean, sum_name, count_name, opts):
    """(running sum + this frame's mean) / (frame count + 1), the sum and count carried as
    states; `frame_mean` [1, 1, 1, 1, C] int8.  Returns the int8 mean."""
    shape = b.shape(frame_mean)
    count = next_count(b, count_name, layer)
    count_f = b.op("cast", layer, (count,), (1,), "CAST", role="float")
    if opts["pools"] == "float":
        sum_in = b.tensor(sum_name, shape, "float")
        mean_f = b.op("dequantize", layer, (frame_mean,), shape, "DEQUANTIZE", role="float")
        total = b.add(layer, mean_f, sum_in, role="float")
        b.states[sum_name] = [sum_in, total]
        mean = b.op("div", layer, (total, count_f), shape, "DIV", dict(activation="NONE"),
                    role="float")
        return b.op("quantize", layer, (mean,), shape, "QUANTIZE")
    sum_in, sum_q = state_input(b, sum_name, shape, layer, opts["states"])
    total = b.add(layer, frame_mean, sum_q)
    b.same.append([sum_q, total])             # the state keeps the sum's quantization
    nxt = total
    if layer != "head/pool":                  # the converter's SE pools slice the next state
        nxt = b.op("slice", layer, (total,), shape, "STRIDED_SLICE",
                   dict(slices=[[0, d, 1] for d in shape]))
        b.same.append([total, nxt])
    state_output(b, sum_name, nxt, layer, opts["states"])
    # the count at its calibrated range, as the converter does: beyond the calibration's
    # length both the sum and the count saturate, and their quotient stays near the mean
    count_q = b.op("quantize", layer, (count_f,), (1,), "QUANTIZE")
    return b.op("div", layer, (total, count_q), shape, "DIV", dict(activation="NONE"))


# ---- input and stem ----------------------------------------------------------------------------

def build_input(b: GraphBuilder, net, params, height, width, image, opts):
    """(the image tensor, the stem's output [1, H/2, W/2, C0])."""
    shape = (1, 1, height, width, 3)
    if image == "int8":
        img = q = b.tensor("image", shape, "act", dtype="int8")
        b.fixed[img] = IMAGE_QUANTIZATION
    else:
        img = b.tensor("image", shape, "float")
        q = b.op("quantize", "input/quantize", (img,), shape, "QUANTIZE")
        b.fixed[q] = IMAGE_QUANTIZATION
    x = b.reshape(q, (1, height, width, 3), net.stem.layer)
    k, bias = folded(params, net.stem, opts["eps"])
    stride = b.config.stem.stride[1]
    return img, conv_act(b, net.stem.layer, x, stem_kernel(k), bias, b.config.activation,
                         stride)


# ---- a block -----------------------------------------------------------------------------------

def stream_buffer(b: GraphBuilder, bp: BlockPlan, h, opts):
    """CONCATENATION(buffer state, frame) on time, the last kt - 1 frames as the next state:
    returns the kt frames [1, kt, h, w, E]."""
    _, hh, ww, E = b.shape(h)
    kt = bp.kernel[0]
    layer = f"{bp.prefix}/feature/stream_buffer"
    h5 = b.reshape(h, (1, 1, hh, ww, E), layer)
    _, buf = state_input(b, bp.stream_buffer, (1, kt - 1, hh, ww, E), layer, opts["states"])
    frames = b.op("concat", layer, (buf, h5), (1, kt, hh, ww, E), "CONCATENATION",
                  dict(axis=1, activation="NONE"))
    nxt = b.op("slice", layer, (frames,), (1, kt - 1, hh, ww, E), "STRIDED_SLICE",
               dict(slices=[[0, 1, 1], [1, kt, 1], [0, hh, 1], [0, ww, 1], [0, E, 1]]))
    b.same.append([buf, h5, frames, nxt])
    state_output(b, bp.stream_buffer, nxt, layer, opts["states"])
    return frames


def positional_encoding(b: GraphBuilder, bp: BlockPlan, params, pooled, opts):
    """pooled + scale * [sin(p * angles), cos(p * angles)] at the frame's position p (the
    pos_enc_frame_count state), computed in float32 and quantized; returns the int8 sum."""
    layer = f"{bp.prefix}/se/pos_encoding"
    shape = b.shape(pooled)
    C = shape[-1]
    count_in = b.tensor(bp.pos_enc_frame_count, (1,), "int32")
    one = b.tensor(f"{layer}/one", (), "int32", data=1)
    count_out = b.op("add", layer, (count_in, one), (1,), "ADD", dict(activation="NONE"),
                     role="int32", name=f"{bp.pos_enc_frame_count}:out")
    b.states[bp.pos_enc_frame_count] = [count_in, count_out]
    position = b.op("cast", layer, (count_in,), (1,), "CAST", role="float")
    idx = np.arange(0, C, 2)
    power = (2 * (idx // 2)).astype(np.float32) / np.float32(C)
    angles = np.float32(1.0) / np.power(np.float32(10000.0), power)          # [C/2]
    angles_t = b.tensor(f"{layer}/angles", (C // 2,), "float", angles)
    radians = b.op("mul", layer, (position, angles_t), (C // 2,), "MUL",
                   dict(activation="NONE"), role="float")
    sin = b.op("sin", layer, (radians,), (C // 2,), "SIN", role="float")
    cos = b.op("cos", layer, (radians,), (C // 2,), "COS", role="float")
    enc = b.op("concat", layer, (sin, cos), (C,), "CONCATENATION",
               dict(axis=0, activation="NONE"), role="float")
    scale = b.tensor(f"{layer}/scale", (), "float", np.float32(params[bp.pos_scale]))
    scaled = b.op("mul", layer, (enc, scale), (C,), "MUL", dict(activation="NONE"),
                  role="float")
    enc5 = b.op("reshape", layer, (scaled,), shape, "RESHAPE", role="float")
    q = b.op("quantize", layer, (enc5,), shape, "QUANTIZE")
    return b.add(layer, pooled, q)


def squeeze_excite(b: GraphBuilder, bp: BlockPlan, params, h, opts):
    """The gated features MUL(gate, h) [1, 1, h, w, E] of block `bp`'s SE over `h`."""
    p = bp.prefix
    _, hh, ww, E = b.shape(h)
    act = b.config.activation
    h5 = b.reshape(h, (1, 1, hh, ww, E), f"{p}/se/pool")
    frame_mean = b.op("mean", f"{p}/se/pool", (h5,), (1, 1, 1, 1, E), "MEAN",
                      dict(axes=[2, 3], keep_dims=True))
    mean = cumulative_mean(b, f"{p}/se/pool", frame_mean, bp.pool_buffer, bp.pool_frame_count,
                           opts)
    pooled = b.op("concat", f"{p}/se/concat", (mean, frame_mean), (1, 1, 1, 1, 2 * E),
                  "CONCATENATION", dict(axis=4, activation="NONE"))
    b.same.append([frame_mean, mean, pooled])
    if bp.pos_enc_frame_count is not None:
        pooled = positional_encoding(b, bp, params, pooled, opts)
    r = b.reshape(pooled, (1, 1, 1, 2 * E), bp.se_reduce.layer)
    k, bias = folded(params, bp.se_reduce, opts["eps"])
    r = conv_act(b, bp.se_reduce.layer, r, pointwise_kernel(k), bias, act)
    k, bias = folded(params, bp.se_expand, opts["eps"])
    g = b.conv(bp.se_expand.layer, r, pointwise_kernel(k), bias + np.float32(HARD_SIGMOID_OFFSET),
               1, "RELU6")
    g = b.mul(f"{p}/se/expand/gate", g, b.scalar(f"{p}/se/expand/gate/slope", 1.0 / 6.0))
    g5 = b.reshape(g, (1, 1, 1, 1, E), f"{p}/se/scale")
    return b.op("mul", f"{p}/se/scale", (g5, h5), (1, 1, hh, ww, E), "MUL",
                dict(activation="NONE"))


def build_block(b: GraphBuilder, bp: BlockPlan, params, x, specs, opts):
    """Block `bp` on its input x [1, H, W, Cin]: (its output [1, h, w, Cout], its spec)."""
    p, act, eps = bp.prefix, b.config.activation, opts["eps"]
    k, bias = folded(params, bp.expansion, eps)
    h = conv_act(b, bp.expansion.layer, x, pointwise_kernel(k), bias, act)
    k, bias = folded(params, bp.feature, eps)
    h = conv_act(b, bp.feature.layer, h, spatial_kernel(k), bias, act, bp.stride[1], True)
    _, hh, ww, E = b.shape(h)
    if bp.feature_temporal is not None:
        frames = stream_buffer(b, bp, h, opts)
        layer = bp.feature_temporal.layer
        flat = b.reshape(frames, (1, bp.kernel[0], hh * ww, E), layer)
        k, bias = folded(params, bp.feature_temporal, eps)
        h = conv_act(b, layer, flat, temporal_kernel(k), bias, act, 1, True, "VALID")
        h = b.reshape(h, (1, hh, ww, E), layer)
    if bp.se_reduce is not None:
        h = squeeze_excite(b, bp, params, h, opts)
        h = b.reshape(h, (1, hh, ww, E), bp.projection.layer)
    k, bias = folded(params, bp.projection, eps)
    proj = b.conv(bp.projection.layer, h, pointwise_kernel(k), bias)
    rezero = float(params[bp.rezero])
    branch = b.mul(f"{p}/rezero", proj, b.scalar(f"{p}/rezero/scale", rezero))
    skip, kind = x, "identity"
    if bp.skip is not None:
        kind = "conv"
        if bp.downsamples:
            _, H, W, C = b.shape(x)
            skip = b.op("avg_pool", f"{p}/skip/pool", (x,), (1, -(-H // 2), -(-W // 2), C),
                        "AVERAGE_POOL_2D", dict(filter_h=3, filter_w=3, stride_h=2, stride_w=2,
                                                padding="SAME", activation="NONE"))
            b.same.append([x, skip])
            kind = "pool+conv"
        k, bias = folded(params, bp.skip, eps)
        skip = b.conv(bp.skip.layer, skip, pointwise_kernel(k), bias)
    out = b.add(f"{p}/add", branch, skip)
    spec = dict(cin=bp.cin, expand=bp.expand, cout=bp.cout, kernel=list(bp.kernel),
                stride=list(bp.stride), se=bp.se_reduce is not None, skip=kind, rezero=rezero,
                g=bp.g, l=bp.l)
    if bp.pos_scale is not None:
        spec["pos_scale"] = float(params[bp.pos_scale])
    return out, spec


# ---- head and classifier -----------------------------------------------------------------------

def build_head(b: GraphBuilder, net, params, x, specs, opts, logits):
    """Head projection, its cumulative global pool, the classifier: the logits tensor."""
    cfg, eps = b.config, opts["eps"]
    k, bias = folded(params, net.head_project, eps)
    h = conv_act(b, net.head_project.layer, x, pointwise_kernel(k), bias, cfg.activation)
    _, hh, ww, P = b.shape(h)
    h5 = b.reshape(h, (1, 1, hh, ww, P), "head/pool")
    frame_mean = b.op("mean", "head/pool", (h5,), (1, 1, 1, 1, P), "MEAN",
                      dict(axes=[2, 3], keep_dims=True))
    pooled = cumulative_mean(b, "head/pool", frame_mean, net.head_pool_buffer,
                             net.head_pool_frame_count, opts)
    r = b.reshape(pooled, (1, 1, 1, P), net.classifier_hidden.layer)
    k, bias = folded(params, net.classifier_hidden, eps)
    r = conv_act(b, net.classifier_hidden.layer, r, pointwise_kernel(k), bias,
                 cfg.classifier_activation)
    k, bias = folded(params, net.classifier_logits, eps)
    out = b.conv(net.classifier_logits.layer, r, pointwise_kernel(k), bias)
    out = b.reshape(out, (1, cfg.num_classes), "output")
    if logits == "float":
        out = b.op("dequantize", "output/dequantize", (out,), (1, cfg.num_classes),
                   "DEQUANTIZE", role="float", name="logits")
    return out
