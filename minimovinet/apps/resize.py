"""Frames for the models: a bilinear resize equal to OpenCV's, and uint8 -> model input.

``resize_bilinear`` reproduces ``cv2.resize(frame, (width, height), interpolation=
cv2.INTER_LINEAR)``: half-pixel centres, edges clamped, and for uint8 OpenCV's fixed-point
arithmetic (11-bit weights, the vectorised rounding of its vertical pass), done in int32 NumPy:
on real frames it equals OpenCV bit for bit (see tests/test_video.py).  Float frames follow
OpenCV's float path (positions in double, float32 weights and sums; within 2e-7 of cv2).
Downscaling by more than 2x reads 2 pixels per axis, no antialiasing (as OpenCV).  The frame is
resized after rotation and only when its size differs.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import InputError


def is_int(value) -> bool:
    """An int or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))

_COEF_BITS = 11                     # OpenCV INTER_RESIZE_COEF_BITS
_COEF_SCALE = 1 << _COEF_BITS


@lru_cache(maxsize=64)
def _axis_table(src: int, dst: int, clamp_weights: bool, float_image: bool):
    """Source indices and weights of one axis, computed as OpenCV does.

    Position ``f = (d + 0.5) * scale - 0.5`` with ``scale = 1 / (dst / src)`` in double, rounded
    to float32 for uint8 images (kept in double for float images), ``i0 = floor(f)``, weight of
    ``i0 + 1`` = ``f - i0``.  On the x axis OpenCV clamps the position (outside the image:
    weight 0 on the edge pixel); on the y axis it keeps the weights and clamps the row indices.
    Integer weights are ``rint(w * 2048)`` (float32 products, ties to even).
    """
    scale = 1.0 / (dst / src)
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5
    if not float_image:
        pos = pos.astype(np.float32)
    i0 = np.floor(pos).astype(np.int64)
    frac = (pos - i0).astype(np.float32)
    if clamp_weights:
        low, high = i0 < 0, i0 >= src - 1
        frac[low | high] = 0
        i0[low] = 0
        i0[high] = src - 1
    i1 = np.clip(i0 + 1, 0, src - 1)
    i0 = np.clip(i0, 0, src - 1)
    w0 = (np.float32(1) - frac).astype(np.float32)
    w1 = frac
    iw0 = np.rint(w0 * np.float32(_COEF_SCALE)).astype(np.int32)
    iw1 = np.rint(w1 * np.float32(_COEF_SCALE)).astype(np.int32)
    # rows actually read (the y pass works on these only)
    used, inverse = np.unique(np.concatenate([i0, i1]), return_inverse=True)
    j0, j1 = inverse[:dst], inverse[dst:]
    out = (i0, i1, w0, w1, iw0, iw1, used, j0, j1)
    for a in out:
        a.setflags(write=False)
    return out


def resize_bilinear(frame, height: int, width: int) -> np.ndarray:
    """Resize ``frame`` [H, W] or [H, W, C] to [height, width(, C)], like cv2 INTER_LINEAR.

    uint8 frames give uint8 with OpenCV's fixed-point arithmetic (bit-exact on real frames);
    float frames give float32.  The same size returns a copy.
    """
    a = np.asarray(frame)
    if not (is_int(height) and is_int(width) and height > 0 and width > 0):
        raise InputError(f"height and width must be positive integers, got {height!r}, {width!r}")
    if a.ndim not in (2, 3) or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"frame must be [H, W] or [H, W, C], got shape {a.shape}")
    if a.dtype != np.uint8 and a.dtype.kind != "f":
        raise InputError(f"frame must be uint8 or float, got {a.dtype}")
    height, width = int(height), int(width)
    if a.shape[:2] == (height, width):
        return a.copy() if a.dtype == np.uint8 else a.astype(np.float32)
    img = a if a.ndim == 3 else a[:, :, None]
    h, w = img.shape[:2]
    is_float = a.dtype != np.uint8
    x0, x1, wx0, wx1, ix0, ix1, _, _, _ = _axis_table(w, width, True, is_float)
    _, _, wy0, wy1, iy0, iy1, rows, j0, j1 = _axis_table(h, height, False, is_float)
    img = img[rows]
    if a.dtype == np.uint8:
        # horizontal pass: int sum of 11-bit weights; vertical pass as OpenCV's SIMD
        # VResizeLinearVec_32s8u: ((S0 >> 4) * b0 >> 16) + ((S1 >> 4) * b1 >> 16) + 2 >> 2
        hor = (img[:, x0].astype(np.int32) * ix0[None, :, None]
               + img[:, x1].astype(np.int32) * ix1[None, :, None])
        hor >>= 4
        out = (hor[j0] * iy0[:, None, None]) >> 16
        out += (hor[j1] * iy1[:, None, None]) >> 16
        out += 2
        out >>= 2
        np.clip(out, 0, 255, out=out)
        out = out.astype(np.uint8)
    else:
        img = img.astype(np.float32, copy=False)
        hor = img[:, x0] * wx0[None, :, None] + img[:, x1] * wx1[None, :, None]
        out = hor[j0] * wy0[:, None, None] + hor[j1] * wy1[:, None, None]
    return out if a.ndim == 3 else out[:, :, 0]


def to_model_input(frame) -> np.ndarray:
    """uint8 RGB frame [H, W, 3] -> float32 [1, 1, H, W, 3] in [0, 1] (divided by 255)."""
    a = np.asarray(frame)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"to_model_input expects a uint8 RGB frame [H, W, 3], got "
                         f"{a.dtype} of shape {a.shape}")
    return (a.astype(np.float32) / np.float32(255))[None, None]


CROPS = ("squash", "center")


def center_crop(frame, height: int, width: int) -> np.ndarray:
    """The largest centred region of `frame` [H, W, C] with the aspect ratio height:width (a
    view): resizing it to height x width keeps the picture's proportions instead of squashing."""
    a = np.asarray(frame)
    h, w = a.shape[:2]
    if h * width > w * height:                    # too tall: cut rows
        keep = max(1, round(w * height / width))
        top = (h - keep) // 2
        return a[top:top + keep]
    keep = max(1, round(h * width / height))      # too wide: cut columns
    left = (w - keep) // 2
    return a[:, left:left + keep]

