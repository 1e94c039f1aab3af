"""Plain NumPy versions of the float kernels in `kernels.py`: slow, short, easy to check.

Same arguments and layouts as the Numba kernels but returning their output.  The tests run
both on the same inputs; read these first to see what a kernel computes.
"""
from __future__ import annotations

import numpy as np

from ..structure import same_padding


def activate(x, act: str):
    x = np.asarray(x, np.float32)
    relu6 = lambda v: np.clip(v, 0, 6)  # noqa: E731
    if act == "linear":
        return x
    if act == "relu":
        return np.maximum(x, 0)
    if act == "relu6":
        return relu6(x)
    if act == "swish":
        return x / (1 + np.exp(-x))
    if act == "hard_swish":
        return (x * relu6(x + 3)) * np.float32(1 / 6)
    if act == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if act == "hard_sigmoid":
        return relu6(x + 3) * np.float32(0.16667)
    raise ValueError(act)


def pointwise(x, w, bias, act="linear", in_scale=None, rows_per_scale=1, residual=None):
    """x [P, Cin] (optionally scaled per row group) @ w [Cin, Cout] + bias, act, + residual."""
    if in_scale is not None:
        x = x * np.repeat(in_scale, rows_per_scale, axis=0)[: len(x)]
    y = activate(x @ w + bias, act)
    return y if residual is None else y + residual


def _pad_spatial(x, kh, kw, stride):
    """Zero-pad axes 2, 3 of [B, T, H, W, C] for TF SAME; return padded x and (Ho, Wo)."""
    H, W = x.shape[2:4]
    Ho, top = same_padding(H, kh, stride)
    Wo, left = same_padding(W, kw, stride)
    bottom = max((Ho - 1) * stride + kh - H - top, 0)
    right = max((Wo - 1) * stride + kw - W - left, 0)
    return np.pad(x, [(0, 0), (0, 0), (top, bottom), (left, right), (0, 0)]), Ho, Wo


def depthwise3d(x, w, bias, stride=1, act="linear"):
    """x [B, Ti, H, W, C], w [kt, kh, kw, C] -> [B, Ti-kt+1, Ho, Wo, C] (valid in time)."""
    kt, kh, kw, C = w.shape
    xp, Ho, Wo = _pad_spatial(x, kh, kw, stride)
    To = x.shape[1] - kt + 1
    out = np.zeros((x.shape[0], To, Ho, Wo, C), np.float32) + bias
    for dt in range(kt):
        for dh in range(kh):
            for dw in range(kw):
                window = xp[:, dt:dt + To, dh:dh + stride * (Ho - 1) + 1:stride,
                            dw:dw + stride * (Wo - 1) + 1:stride]
                out += window * w[dt, dh, dw]
    return activate(out, act)


def conv3d(x, w, bias, stride=1, act="linear"):
    """x [B, Ti, H, W, Cin], w [kt, kh, kw, Cin, Cout] -> [B, To, Ho, Wo, Cout]."""
    kt, kh, kw, Cin, Cout = w.shape
    xp, Ho, Wo = _pad_spatial(x, kh, kw, stride)
    To = x.shape[1] - kt + 1
    out = np.zeros((x.shape[0], To, Ho, Wo, Cout), np.float32) + bias
    for dt in range(kt):
        for dh in range(kh):
            for dw in range(kw):
                window = xp[:, dt:dt + To, dh:dh + stride * (Ho - 1) + 1:stride,
                            dw:dw + stride * (Wo - 1) + 1:stride]
                out += window @ w[dt, dh, dw]
    return activate(out, act)


def avg_pool(x, k=3, stride=2):
    """x [N, H, W, C] -> [N, Ho, Wo, C]: mean over the window's cells inside the image."""
    x5 = x[:, None]
    ones = np.ones(x5.shape[:-1] + (1,), np.float32)
    w = np.ones((1, k, k, 1), np.float32)
    sums = depthwise3d(x5, np.broadcast_to(w, (1, k, k, x.shape[-1])).copy(), 0, stride)
    counts = depthwise3d(ones, w, 0, stride)
    return (sums / counts)[:, 0]


def spatial_mean(x):
    """x [N, P, C] -> [N, C]."""
    return x.astype(np.float64).mean(axis=1).astype(np.float32)
