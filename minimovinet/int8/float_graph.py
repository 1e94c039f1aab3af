"""The quantization graph (`graph.py`) run in float32 with NumPy: one frame at a time, states
carried, every tensor kept.

What calibration records (the range of every tensor, states included, as the converter's
representative dataset sees them when frames are streamed with the states carried forward)
and what the int8 program's tensors are compared with (`accuracy.py`).  QUANTIZE and
DEQUANTIZE are the identity here: every tensor holds the real value the int8 one stands for.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from ..structure import same_padding
from .graph import Graph

F32 = np.float32


def _fused(y, activation):
    if activation == "RELU6":
        return np.clip(y, F32(0), F32(6))
    if activation == "RELU":
        return np.maximum(y, F32(0))
    return y


def _padded(x, kh, kw, sh, sw, padding):
    """x [H, W, C] padded with zeros as TF SAME pads (VALID: as it is), and (Ho, Wo)."""
    H, W, _ = x.shape
    if padding == "VALID":
        return x, (H - kh) // sh + 1, (W - kw) // sw + 1
    Ho, top = same_padding(H, kh, sh)
    Wo, left = same_padding(W, kw, sw)
    bottom = max((Ho - 1) * sh + kh - H - top, 0)
    right = max((Wo - 1) * sw + kw - W - left, 0)
    return np.pad(x, ((top, bottom), (left, right), (0, 0))), Ho, Wo


def conv(x, w, bias, a):
    """CONV_2D: x [1, H, W, Cin], w [Cout, kh, kw, Cin] -> [1, Ho, Wo, Cout]."""
    cout, kh, kw, cin = w.shape
    if (kh, kw) == (1, 1) and a["stride_h"] == 1:
        y = x.reshape(-1, cin) @ w.reshape(cout, cin).T + bias
        return _fused(y.reshape(x.shape[:-1] + (cout,)), a["activation"])
    xp, Ho, Wo = _padded(x[0], kh, kw, a["stride_h"], a["stride_w"], a["padding"])
    s, t = a["stride_h"], a["stride_w"]
    cols = [xp[i:i + s * (Ho - 1) + 1:s, j:j + t * (Wo - 1) + 1:t] for i in range(kh)
            for j in range(kw)]                                   # kh*kw x [Ho, Wo, Cin]
    patches = np.stack(cols, axis=2).reshape(Ho * Wo, kh * kw * cin)
    y = patches @ w.reshape(cout, -1).T + bias
    return _fused(y.reshape(1, Ho, Wo, cout), a["activation"])


def depthwise(x, w, bias, a):
    """DEPTHWISE_CONV_2D (multiplier 1): x [1, H, W, C], w [1, kh, kw, C]."""
    _, kh, kw, C = w.shape
    s, t = a["stride_h"], a["stride_w"]
    xp, Ho, Wo = _padded(x[0], kh, kw, s, t, a["padding"])
    y = np.zeros((Ho, Wo, C), F32)
    for i in range(kh):
        for j in range(kw):
            y += xp[i:i + s * (Ho - 1) + 1:s, j:j + t * (Wo - 1) + 1:t] * w[0, i, j]
    return _fused((y + bias)[None], a["activation"])


def avg_pool(x, a):
    """AVERAGE_POOL_2D, SAME: padded cells are not counted."""
    k, s = a["filter_h"], a["stride_h"]
    xp, Ho, Wo = _padded(x[0], k, k, s, s, a["padding"])
    ones, _, _ = _padded(np.ones(x.shape[1:3] + (1,), F32), k, k, s, s, a["padding"])
    total = np.zeros((Ho, Wo, x.shape[-1]), F32)
    count = np.zeros((Ho, Wo, 1), F32)
    for i in range(k):
        for j in range(k):
            total += xp[i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s]
            count += ones[i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s]
    return (total / count)[None]


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


def run_op(op, values):
    """The float output of `op` given its inputs' values."""
    k, a = op.kind, op.attrs
    x = values[op.inputs[0]]
    if k == "conv":
        return conv(x, values[op.inputs[1]], values[op.inputs[2]], a)
    if k == "depthwise":
        return depthwise(x, values[op.inputs[1]], values[op.inputs[2]], a)
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
        for op in g.ops:
            out = run_op(op, values)
            values[op.outputs[0]] = np.asarray(out).reshape(g.tensors[op.outputs[0]].shape)
        next_states = {name: values[o] for name, (_, o) in g.states.items()}
        return values[g.logits], next_states, values
