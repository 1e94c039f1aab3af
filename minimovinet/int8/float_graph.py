"""The quantization graph (`graph.py`) run in float32 with NumPy: one frame at a time, states
carried, every tensor kept.

What calibration records (the range of every tensor, states included, as the converter's
representative dataset sees them when frames are streamed with the states carried forward)
and what the int8 program's tensors are compared with (`accuracy.py`).  The convs and the
average pool run the float model's Numba kernels (`minimovinet.float32.kernels`, public names).  QUANTIZE and
DEQUANTIZE are the identity here: every tensor holds the real value the int8 one stands for.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from ..float32 import kernels as K
from ..float32.kernels import ACT_CODES, EMPTY_SCALE
from ..structure import same_padding
from .graph import Graph

F32 = np.float32


def _fused(y, activation):
    if activation == "RELU6":
        return np.clip(y, F32(0), F32(6))
    if activation == "RELU":
        return np.maximum(y, F32(0))
    return y


# the convs run minimovinet's float32 kernels (Numba; BLAS threads on a busy machine are
# slower than these by 10x): fused activation -> their activation code
_ACT = {"NONE": ACT_CODES["linear"], "RELU": ACT_CODES["relu"], "RELU6": ACT_CODES["relu6"]}


def _pads(H, W, kh, kw, sh, sw, padding):
    """(Ho, Wo, pad_top, pad_left) of TF SAME / VALID."""
    if padding == "VALID":
        return (H - kh) // sh + 1, (W - kw) // sw + 1, 0, 0
    Ho, top = same_padding(H, kh, sh)
    Wo, left = same_padding(W, kw, sw)
    return Ho, Wo, top, left


def prepare(op, values):
    """An op's weights in the float kernels' layouts (computed once per graph)."""
    w = values[op.inputs[1]]
    if op.kind == "depthwise":                                   # [1, kh, kw, C]
        if op.attrs["padding"] == "VALID" and w.shape[2] == 1:   # temporal: kt along time
            return np.ascontiguousarray(w.reshape(w.shape[1], 1, 1, w.shape[3]))
        return np.ascontiguousarray(w)
    cout, kh, kw, cin = w.shape
    if (kh, kw) == (1, 1) and op.attrs["stride_h"] == 1:
        return np.ascontiguousarray(w.reshape(cout, cin))          # [Cout, Cin]
    return np.ascontiguousarray(w.transpose(1, 2, 3, 0)[None])     # [1, kh, kw, Cin, Cout]


def conv(x, w, bias, a):
    """CONV_2D: x [1, H, W, Cin] -> [1, Ho, Wo, Cout]; w prepared (`prepare`)."""
    act = _ACT[a["activation"]]
    _, H, W, cin = x.shape
    if w.ndim == 2:
        rows = np.ascontiguousarray(x, F32).reshape(-1, cin)
        out = np.empty((rows.shape[0], w.shape[0]), F32)
        K.impl(out.size * cin).pointwise(rows, w, bias, act, EMPTY_SCALE, out)
        return out.reshape(1, H, W, -1)
    _, kh, kw, _, cout = w.shape
    Ho, Wo, top, left = _pads(H, W, kh, kw, a["stride_h"], a["stride_w"], a["padding"])
    out = np.empty((1, 1, Ho, Wo, cout), F32)
    K.impl(out.size * kh * kw * cin).conv3d(np.ascontiguousarray(x, F32)[None], w, bias,
                                            a["stride_h"], a["stride_w"], top, left, act, out)
    return out[0]


def depthwise(x, w, bias, a):
    """DEPTHWISE_CONV_2D (multiplier 1): x [1, H, W, C]; w prepared."""
    act = _ACT[a["activation"]]
    _, H, W, C = x.shape
    x = np.ascontiguousarray(x, F32)
    if w.shape[0] > 1:                                           # temporal: x [1, kt, P, C]
        out = np.empty((1, 1, 1, W, C), F32)
        K.impl(out.size * w.shape[0]).depthwise3d(x.reshape(1, H, 1, W, C), w, bias, 1, 1,
                                                  0, 0, act, out)
        return out.reshape(1, 1, W, C)
    kh, kw = w.shape[1:3]
    Ho, Wo, top, left = _pads(H, W, kh, kw, a["stride_h"], a["stride_w"], a["padding"])
    out = np.empty((1, 1, Ho, Wo, C), F32)
    K.impl(out.size * kh * kw).depthwise3d(x[None], w, bias, a["stride_h"], a["stride_w"],
                                           top, left, act, out)
    return out[0]


def avg_pool(x, a):
    """AVERAGE_POOL_2D, SAME: padded cells are not counted."""
    k, s = a["filter_h"], a["stride_h"]
    _, H, W, C = x.shape
    Ho, Wo, top, left = _pads(H, W, k, k, s, s, a["padding"])
    out = np.empty((1, Ho, Wo, C), F32)
    K.impl(out.size * k * k).avg_pool(np.ascontiguousarray(x, F32), k, s, top, left, out)
    return out


def hard_swish(x):
    return x * np.clip(x + F32(3), F32(0), F32(6)) / F32(6)


def _binary(kind, a, b, attrs):
    if kind == "add":
        y = a + b
    elif kind == "mul":
        y = a * b
    else:
        y = a / b
    return _fused(y, attrs.get("activation", "NONE"))


def run_op(op, values, weights=None):
    """The float output of `op` given its inputs' values (`weights`: the conv's prepared
    weights)."""
    k, a = op.kind, op.attrs
    x = values[op.inputs[0]]
    if k in ("conv", "depthwise"):
        w = prepare(op, values) if weights is None else weights
        return (conv if k == "conv" else depthwise)(x, w, values[op.inputs[2]], a)
    if k in ("add", "mul", "div"):
        y = values[op.inputs[1]]
        if x.dtype == np.int32:
            return (x + y).astype(np.int32)
        return _binary(k, x, y, a).astype(F32)
    if k in ("quantize", "dequantize"):
        return x
    if k == "cast":
        return x.astype(F32)
    if k == "reshape":
        return x
    if k == "concat":
        return np.concatenate([values[i] for i in op.inputs], axis=a["axis"])
    if k == "slice":
        return x[tuple(slice(*s) for s in a["slices"])]
    if k == "mean":
        return x.mean(axis=tuple(a["axes"]), keepdims=True, dtype=np.float64).astype(F32)
    if k == "hard_swish":
        return hard_swish(x)
    if k == "logistic":
        with np.errstate(over="ignore"):
            return (F32(1) / (F32(1) + np.exp(-x))).astype(F32)
    if k == "avg_pool":
        return avg_pool(x, a)
    if k == "sin":
        return np.sin(x)
    if k == "cos":
        return np.cos(x)
    raise ValueError(f"{op.layer}: no float form of op kind {k!r}")


class FloatGraphRunner:
    """`step(frame, states)` -> (logits, next states, every tensor's value)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.constants = {i: t.data for i, t in enumerate(graph.tensors) if t.data is not None}
        values = [t.data for t in graph.tensors]
        self.weights = {j: prepare(op, values) for j, op in enumerate(graph.ops)
                        if op.kind in ("conv", "depthwise")}

    def init_states(self) -> Dict[str, np.ndarray]:
        g = self.graph
        return {name: np.zeros(g.tensors[i].shape, np.int32 if g.roles[i] == "int32" else F32)
                for name, (i, _) in g.states.items()}

    def step(self, frame, states):
        """frame float32 [1, 1, H, W, 3]; states as `init_states` (real values)."""
        g = self.graph
        values: List = [None] * len(g.tensors)
        for i, v in self.constants.items():
            values[i] = v
        values[g.image] = np.asarray(frame, F32)
        for name, (i, _) in g.states.items():
            values[i] = states[name]
        for j, op in enumerate(g.ops):
            out = run_op(op, values, self.weights.get(j))
            values[op.outputs[0]] = np.asarray(out).reshape(g.tensors[op.outputs[0]].shape)
        next_states = {name: values[o] for name, (_, o) in g.states.items()}
        return values[g.logits], next_states, values
