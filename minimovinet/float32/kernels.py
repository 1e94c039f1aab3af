"""Numba float32 kernels, channels-last.  The fast path of every float layer.

Each kernel writes into a caller-allocated `out` array and fuses bias + activation (BN is
already folded into kernel and bias at load time).  Inner loops run over the channel axis,
which is contiguous, so LLVM vectorizes them without fastmath (results do not depend on the
vector width).  Every kernel exists twice: a serial build and a `parallel=True` build whose
`prange` splits rows across threads; `set_num_threads(1)` selects the serial build so that
single-threaded inference pays no thread-pool overhead.

The plain NumPy versions of the same operations live in `reference.py`; the tests compare the
two.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import threads

# Activation codes shared by all kernels (an int argument keeps one compiled kernel per dtype).
ACT_CODES = {"linear": 0, "relu": 1, "relu6": 2, "swish": 3, "hard_swish": 4, "sigmoid": 5,
             "hard_sigmoid": 6}


@njit(inline="always", cache=True)
def activate(v, act):
    """Apply activation `act` (an ACT_CODES value) to the float32 scalar `v`."""
    if act == 0:
        return v
    if act == 1:
        return max(v, np.float32(0.0))
    if act == 2:
        return min(max(v, np.float32(0.0)), np.float32(6.0))
    if act == 3:
        return v / (np.float32(1.0) + np.exp(-v))   # x * sigmoid(x)
    if act == 4:
        # x * relu6(x + 3) / 6, in the official order: (x * relu6(x + 3)) * (1 / 6)
        r = min(max(v + np.float32(3.0), np.float32(0.0)), np.float32(6.0))
        return (v * r) * np.float32(1.0 / 6.0)
    if act == 5:
        return np.float32(1.0) / (np.float32(1.0) + np.exp(-v))
    # act == 6: relu6(x + 3) * 0.16667 (the official literal, not 1/6)
    r = min(max(v + np.float32(3.0), np.float32(0.0)), np.float32(6.0))
    return r * np.float32(0.16667)


def _pointwise(x, w_t, bias, act, residual, out):
    """1x1x1 convolution over rows of pixels.

    x [P, Cin]; w_t [Cout, Cin] (transposed, so the reduction over Cin reads contiguous memory);
    bias [Cout]; out [P, Cout].
    residual [P, Cout]: when non-empty, added after the activation (the block's skip).

    Each output is a dot product over Cin; rows go in groups of 4 that share every weight load.
    This kernel alone is compiled with reassociation allowed (see _FASTMATH), so LLVM vectorizes
    the dot products; the result differs from a sequential sum by float32 rounding only.
    """
    P, Cin = x.shape
    Cout = w_t.shape[0]
    use_residual = residual.shape[0] > 0
    n_groups = (P + 3) // 4
    for group in prange(n_groups):
        p0 = group * 4
        if p0 + 4 <= P:
            for co in range(Cout):
                a0 = np.float32(0.0)
                a1 = np.float32(0.0)
                a2 = np.float32(0.0)
                a3 = np.float32(0.0)
                for ci in range(Cin):
                    wv = w_t[co, ci]
                    a0 += x[p0, ci] * wv
                    a1 += x[p0 + 1, ci] * wv
                    a2 += x[p0 + 2, ci] * wv
                    a3 += x[p0 + 3, ci] * wv
                b = bias[co]
                out[p0, co] = a0 + b
                out[p0 + 1, co] = a1 + b
                out[p0 + 2, co] = a2 + b
                out[p0 + 3, co] = a3 + b
        else:                                   # the last 1-3 rows, one at a time
            for p in range(p0, P):
                for co in range(Cout):
                    a = np.float32(0.0)
                    for ci in range(Cin):
                        a += x[p, ci] * w_t[co, ci]
                    out[p, co] = a + bias[co]
        for p in range(p0, min(p0 + 4, P)):
            for co in range(Cout):
                y = activate(out[p, co], act)
                if use_residual:
                    y += residual[p, co]
                out[p, co] = y


def _bias_act(out, bias, act, residual):
    """In place: out = act(out + bias) (+ residual): the epilogue of a BLAS 1x1 conv.

    out [P, Cout] (the matrix product); bias [Cout]; residual [P, Cout] or empty.
    Indexed flat, one branch per activation outside the channel loop: that is what lets LLVM
    vectorize it (2-D indexing with the activation switch inside did not).
    """
    P, Cout = out.shape
    flat = out.reshape(-1)
    res = residual.reshape(-1)
    use_residual = residual.shape[0] > 0
    for p in prange(P):
        base = p * Cout
        if act == 0:
            for co in range(Cout):
                flat[base + co] += bias[co]
        elif act == 4:                          # hard swish, as activate()
            for co in range(Cout):
                v = flat[base + co] + bias[co]
                r = min(max(v + np.float32(3.0), np.float32(0.0)), np.float32(6.0))
                flat[base + co] = (v * r) * np.float32(1.0 / 6.0)
        else:
            for co in range(Cout):
                flat[base + co] = activate(flat[base + co] + bias[co], act)
        if use_residual:
            for co in range(Cout):
                flat[base + co] += res[base + co]


def _depthwise3d(x, w, bias, stride_h, stride_w, pad_top, pad_left, act, out):
    """Depthwise conv, valid in time (the caller pads or prepends the stream buffer).

    x [B, Ti, H, W, C]; w [kt, kh, kw, C]; bias [C]; out [B, To, Ho, Wo, C], To = Ti - kt + 1.
    Spatial padding is implicit zeros: input row = out_row * stride_h - pad_top + dh.
    One job per output row; the taps go outermost so that each tap's weights [C] serve the
    whole row (1.4-2x the pixel-outer order); every output still sums its taps in the order
    dt, dh, dw, so the bits are those of the plain loop.
    """
    B, Ti, H, W, C = x.shape
    kt, kh, kw, _ = w.shape
    _, To, Ho, Wo, _ = out.shape
    for job in prange(B * To * Ho):
        b = job // (To * Ho)
        t = (job // Ho) % To
        oh = job % Ho
        row = out[b, t, oh]                              # [Wo, C]
        for ow in range(Wo):
            for c in range(C):
                row[ow, c] = bias[c]
        for dt in range(kt):
            for dh in range(kh):
                ih = oh * stride_h - pad_top + dh
                if ih < 0 or ih >= H:
                    continue
                x_row = x[b, t + dt, ih]                 # [W, C]
                for dw in range(kw):
                    w_tap = w[dt, dh, dw]                # [C]
                    for ow in range(Wo):
                        iw = ow * stride_w - pad_left + dw
                        if iw < 0 or iw >= W:
                            continue
                        for c in range(C):
                            row[ow, c] += x_row[iw, c] * w_tap[c]
        for ow in range(Wo):
            for c in range(C):
                row[ow, c] = activate(row[ow, c], act)


def _temporal_stream(prev, x, w, bias, act, out):
    """Causal temporal depthwise conv (kt x 1 x 1) over the stream buffer and the new frames,
    without concatenating them: input frame f is prev[f] for f < kt - 1, else x[f - kt + 1].

    prev [B, kt-1, P, C] (the buffer); x [B, T, P, C]; w [kt, C]; bias [C]; out [B, T, P, C].
    """
    B, T, P, C = x.shape
    kt = w.shape[0]
    chunks = (P + 31) // 32                    # 32 pixels per job, so threads split one frame
    for job in prange(B * T * chunks):
        b = job // (T * chunks)
        t = (job // chunks) % T
        p0 = (job % chunks) * 32
        for p in range(p0, min(p0 + 32, P)):
            for c in range(C):
                out[b, t, p, c] = bias[c]
            for dt in range(kt):
                f = t + dt
                if f < kt - 1:
                    for c in range(C):
                        out[b, t, p, c] += prev[b, f, p, c] * w[dt, c]
                else:
                    for c in range(C):
                        out[b, t, p, c] += x[b, f - kt + 1, p, c] * w[dt, c]
            for c in range(C):
                out[b, t, p, c] = activate(out[b, t, p, c], act)


def _conv3d(x, w, bias, stride_h, stride_w, pad_top, pad_left, act, out):
    """Full (dense) conv, valid in time, implicit zero spatial padding.

    x [B, Ti, H, W, Cin]; w [kt, kh, kw, Cin, Cout]; bias [Cout]; out [B, To, Ho, Wo, Cout].
    """
    B, Ti, H, W, Cin = x.shape
    kt, kh, kw, _, Cout = w.shape
    _, To, Ho, Wo, _ = out.shape
    for job in prange(B * To * Ho):
        b = job // (To * Ho)
        t = (job // Ho) % To
        oh = job % Ho
        for ow in range(Wo):
            for co in range(Cout):
                out[b, t, oh, ow, co] = bias[co]
            for dt in range(kt):
                for dh in range(kh):
                    ih = oh * stride_h - pad_top + dh
                    if ih < 0 or ih >= H:
                        continue
                    for dw in range(kw):
                        iw = ow * stride_w - pad_left + dw
                        if iw < 0 or iw >= W:
                            continue
                        for ci in range(Cin):
                            v = x[b, t + dt, ih, iw, ci]
                            for co in range(Cout):
                                out[b, t, oh, ow, co] += v * w[dt, dh, dw, ci, co]
            for co in range(Cout):
                out[b, t, oh, ow, co] = activate(out[b, t, oh, ow, co], act)


def _im2col(x, kt, kh, kw, stride_h, stride_w, pad_top, pad_left, Ho, Wo, cols):
    """The patches of a dense conv as rows, so that the conv is one matrix product (BLAS).

    x [B, Ti, H, W, Cin]; cols [B * To * Ho * Wo, kt * kh * kw * Cin], To = Ti - kt + 1: rows in
    the output's order [B, To, Ho, Wo], columns in the kernel's order [kt, kh, kw, Cin];
    padded cells are zeros.
    """
    B, Ti, H, W, Cin = x.shape
    To = Ti - kt + 1
    K = kt * kh * kw * Cin
    flat = cols.reshape(-1)
    for job in prange(B * To * Ho):
        b = job // (To * Ho)
        t = (job // Ho) % To
        oh = job % Ho
        for ow in range(Wo):
            k = (job * Wo + ow) * K
            for dt in range(kt):
                for dh in range(kh):
                    ih = oh * stride_h - pad_top + dh
                    for dw in range(kw):
                        iw = ow * stride_w - pad_left + dw
                        inside = ih >= 0 and ih < H and iw >= 0 and iw < W
                        for ci in range(Cin):
                            flat[k] = x[b, t + dt, ih, iw, ci] if inside else np.float32(0.0)
                            k += 1


def _avg_pool(x, k, stride, pad_top, pad_left, out):
    """k x k average pool per frame; padded cells are excluded from the count (TF 'SAME').

    x [N, H, W, C]; out [N, Ho, Wo, C].
    """
    N, H, W, C = x.shape
    _, Ho, Wo, _ = out.shape
    for job in prange(N * Ho):
        n = job // Ho
        oh = job % Ho
        h0 = max(oh * stride - pad_top, 0)
        h1 = min(oh * stride - pad_top + k, H)
        for ow in range(Wo):
            w0 = max(ow * stride - pad_left, 0)
            w1 = min(ow * stride - pad_left + k, W)
            for c in range(C):
                out[n, oh, ow, c] = 0.0
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    for c in range(C):
                        out[n, oh, ow, c] += x[n, ih, iw, c]
            count = np.float32((h1 - h0) * (w1 - w0))
            for c in range(C):
                out[n, oh, ow, c] = out[n, oh, ow, c] / count


def _spatial_mean(x, out):
    """Per-frame spatial mean with a float64 accumulator.  x [N, P, C] -> out [N, C] float32."""
    N, P, C = x.shape
    for n in prange(N):
        acc = np.zeros(C, np.float64)
        for p in range(P):
            for c in range(C):
                acc[c] += x[n, p, c]
        for c in range(C):
            out[n, c] = np.float32(acc[c] / P)


def _se_stream(x, pool_sum, frame_count, mode, w_reduce_t, b_reduce, act_reduce, w_expand_t,
               b_expand, act_expand, gate, new_sum):
    """One frame's squeeze-excitation gate of N streams in one call (a stream's usual step:
    `layers.SqueezeExcite` with T = 1, no positional encoding), the same operations in the same
    order as the layer-by-layer path but with the two small products as sequential sums.

    x [N, P, C] the block's features; pool_sum [N, C] the cumulative pool's running sum and
    frame_count the frames it holds (mode 1: '3d', 2: '2plus3d'; mode 0: '2d', no pool);
    w_reduce_t [Cr, C'] (C' = C, or 2C for '2plus3d'), b_reduce [Cr]; w_expand_t [C, Cr],
    b_expand [C]; act_*: ACT_CODES.  Writes gate [N, C] and, with a pool, new_sum [N, C]."""
    N, P, C = x.shape
    Cr, Cp = w_reduce_t.shape
    divisor = np.float32(frame_count + 1)
    for n in prange(N):
        acc = np.zeros(C, np.float64)                 # the frame's spatial mean (float64)
        for p in range(P):
            for c in range(C):
                acc[c] += x[n, p, c]
        pooled = np.empty(Cp, np.float32)
        for c in range(C):
            mean = np.float32(acc[c] / P)
            if mode == 0:
                pooled[c] = mean
            else:                                     # running sum, then the mean so far
                running = mean + pool_sum[n, c]
                new_sum[n, c] = running
                pooled[c] = running / divisor
                if mode == 2:
                    pooled[C + c] = mean
        hidden = np.empty(Cr, np.float32)
        for r in range(Cr):
            a = np.float32(0.0)
            for c in range(Cp):
                a += pooled[c] * w_reduce_t[r, c]
            hidden[r] = activate(a + b_reduce[r], act_reduce)
        for c in range(C):
            a = np.float32(0.0)
            for r in range(Cr):
                a += hidden[r] * w_expand_t[c, r]
            gate[n, c] = activate(a + b_expand[c], act_expand)


_KERNEL_SOURCES = {
    "pointwise": _pointwise,
    "se_stream": _se_stream,
    "bias_act": _bias_act,
    "depthwise3d": _depthwise3d,
    "temporal_stream": _temporal_stream,
    "conv3d": _conv3d,
    "im2col": _im2col,
    "avg_pool": _avg_pool,
    "spatial_mean": _spatial_mean,
}


# Float flags per kernel: only the dot products of the pointwise conv may be reassociated
# (vectorized reduction); no 'afn' / 'nnan' / 'ninf', so exp and NaN handling stay exact.
_FASTMATH = {"pointwise": {"reassoc", "nsz", "contract"},
             "se_stream": {"reassoc", "nsz", "contract"}}

SERIAL = threads.builds(_KERNEL_SOURCES, _FASTMATH)
# one parallel region at a time per process, else the serial build (threads.guarded)
PARALLEL = threads.guarded_namespace(threads.builds(_KERNEL_SOURCES, _FASTMATH, parallel=True),
                                     SERIAL)

# Below this many multiply-adds a kernel runs serially even when threads > 1: a parallel region
# costs tens of microseconds to dispatch, more than it saves on the small late layers.
PARALLEL_MIN_WORK = 500_000


def impl(work: int = PARALLEL_MIN_WORK):
    """The kernel namespace for the current thread setting and a kernel of `work` multiply-adds."""
    if work < PARALLEL_MIN_WORK or not threads.threads_wanted():
        return SERIAL
    return PARALLEL


# ---- small helpers shared by layers -------------------------------------------------------

EMPTY_SCALE = np.zeros((0, 1), np.float32)


__all__ = ["ACT_CODES", "SERIAL", "PARALLEL", "impl", "EMPTY_SCALE"]
