"""MoViNet layers over channels-last NumPy arrays, each a thin object around a Numba kernel.

Activations flow as [B, T, H, W, C] float32.  Stateful layers read the incoming state dict
(`states`, never modified) and write their next state into `new_states`.

The two ideas that make streaming equal to whole-clip inference live here:
  * `StreamBuffer`: a causal temporal conv with kernel kt needs the kt-1 frames before the
    current ones.  The buffer keeps exactly those frames and is prepended to the input, so the
    conv runs 'valid' in time on [buffer, frames] and sees what it would have seen in the
    whole clip.
  * `CumulativePool`: the causal SE pool is a running mean over all frames so far.  The state
    keeps the running SUM of per-frame spatial means (`pool_buffer`) and the number of frames
    seen (`pool_frame_count`); the mean at frame t is (sum so far) / (count + t + 1).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import numpy as np

from . import blas, kernels
from .. import structure
from ..config import ModelConfig
from ..structure import same_padding
from .kernels import ACT_CODES, EMPTY_SCALE
from .params import bn_params, fold_batch_norm

States = Dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class FileConstants:
    """Constants the official model computes exactly and a converted file holds rounded
    (a float16 TFLite file stores every constant in float16); the default is exact.

    head_mean_scale: the head's spatial mean is multiplied by it (the file's 1 / (H * W)
        times H * W).
    pos_angles: block prefix -> the angles [C] of its positional encoding.
    """
    head_mean_scale: float = 1.0
    pos_angles: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


class Pointwise:
    """1x1x1 conv (BN folded) + activation on the last axis: [..., Cin] -> [..., Cout].

    Optional fusions: `in_scale` multiplies the input channels per group of `rows_per_scale`
    rows (the SE gate per frame), `residual` is added after the activation (the block's skip).
    """

    def __init__(self, kernel, bias, activation="linear"):
        kernel = np.asarray(kernel, np.float32)                       # [Cin, Cout]
        self.cin, self.cout = kernel.shape
        self.kernel = np.ascontiguousarray(kernel)                    # [Cin, Cout], for BLAS
        self.kernel_t = np.ascontiguousarray(kernel.T)                # [Cout, Cin], for Numba
        self.bias = np.ascontiguousarray(bias, np.float32)            # [Cout]
        self.act = ACT_CODES[activation]

    def __call__(self, x, in_scale=None, rows_per_scale=1, residual=None):
        rows = np.ascontiguousarray(x).reshape(-1, self.cin)          # [P, Cin]
        res = EMPTY_SCALE if residual is None else np.ascontiguousarray(residual).reshape(-1, self.cout)
        out = np.empty((rows.shape[0], self.cout), np.float32)        # [P, Cout]
        if blas.usable():
            self._blas(rows, in_scale, rows_per_scale, res, out)
            return out.reshape(x.shape[:-1] + (self.cout,))           # [..., Cout]
        if in_scale is not None:                                      # [S, Cin], S * rows_per_scale = P
            rows = (rows.reshape(-1, rows_per_scale, self.cin)
                    * in_scale.reshape(-1, 1, self.cin)).reshape(-1, self.cin)
        kernels.impl(rows.shape[0] * self.cin * self.cout).pointwise(
            rows, self.kernel_t, self.bias, self.act, res, out)
        return out.reshape(x.shape[:-1] + (self.cout,))               # [..., Cout]

    def _blas(self, rows, in_scale, rows_per_scale, res, out):
        """out = act(rows @ kernel + bias) + res; the per-frame input scale (the SE gate) is
        folded into the (small) kernel instead of the (large) input: (x * g) @ W = x @ (g W)."""
        if in_scale is None:
            np.matmul(rows, self.kernel, out=out)
        else:
            scales = in_scale.reshape(-1, self.cin)                   # [S, Cin]
            for s, scale in enumerate(scales):
                part = slice(s * rows_per_scale, (s + 1) * rows_per_scale)
                np.matmul(rows[part], scale[:, None] * self.kernel, out=out[part])
        kernels.impl(out.size).bias_act(out, self.bias, self.act, res)


class DepthwiseConv:
    """Depthwise kt x kh x kw conv (BN folded) + activation; 'valid' in time, TF SAME in space.

    [B, Ti, H, W, C] -> [B, Ti - kt + 1, Ho, Wo, C]; the caller provides the kt - 1 frames of
    temporal context (stream buffer, or symmetric zero padding for whole-clip models).
    """

    def __init__(self, kernel, bias, stride=1, activation="linear"):
        self.kernel = np.ascontiguousarray(kernel, np.float32)   # [kt, kh, kw, C]
        self.bias = np.ascontiguousarray(bias, np.float32)       # [C]
        self.stride = int(stride)
        self.act = ACT_CODES[activation]

    def __call__(self, x):
        B, Ti, H, W, C = x.shape
        kt, kh, kw, _ = self.kernel.shape
        Ho, pad_top = same_padding(H, kh, self.stride)
        Wo, pad_left = same_padding(W, kw, self.stride)
        out = np.empty((B, Ti - kt + 1, Ho, Wo, C), np.float32)    # [B, To, Ho, Wo, C]
        kernels.impl(out.size * kt * kh * kw).depthwise3d(
            np.ascontiguousarray(x), self.kernel, self.bias, self.stride, self.stride, pad_top,
            pad_left, self.act, out)
        return out


    def stream(self, buffer_name, x, states: States, new_states: States):
        """The causal temporal conv (kernel kt x 1 x 1) of a stream: reads the stream buffer
        `states[buffer_name]` [B, kt-1, H, W, C] and the new frames x [B, T, H, W, C] in place
        (no concatenation) and writes the next buffer, the newest kt - 1 frames."""
        B, T, H, W, C = x.shape
        kt = self.kernel.shape[0]
        prev = states[buffer_name]                                     # [B, kt-1, H, W, C]
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)                                         # [B, T, H, W, C]
        kernels.impl(out.size * kt).temporal_stream(
            prev.reshape(B, kt - 1, H * W, C), x.reshape(B, T, H * W, C),
            self.kernel.reshape(kt, C), self.bias, self.act, out.reshape(B, T, H * W, C))
        if T >= kt - 1:
            new_states[buffer_name] = x[:, T - (kt - 1):].copy()
        else:
            new_states[buffer_name] = np.concatenate([prev[:, T:], x], axis=1)
        return out


class DenseConv:
    """Full conv (the stem) + BN folded + activation: [B, Ti, H, W, Cin] -> [B, To, Ho, Wo, Cout]."""

    def __init__(self, kernel, bias, stride=1, activation="linear"):
        self.kernel = np.ascontiguousarray(kernel, np.float32)   # [kt, kh, kw, Cin, Cout]
        self.bias = np.ascontiguousarray(bias, np.float32)
        self.stride = int(stride)
        self.act = ACT_CODES[activation]

    def __call__(self, x):
        B, Ti, H, W, _ = x.shape
        kt, kh, kw, _, cout = self.kernel.shape
        Ho, pad_top = same_padding(H, kh, self.stride)
        Wo, pad_left = same_padding(W, kw, self.stride)
        out = np.empty((B, Ti - kt + 1, Ho, Wo, cout), np.float32)
        if blas.usable():           # patches as rows, one matrix product: 2x the direct loop
            cols = np.empty((out.size // cout, self.kernel[..., 0].size), np.float32)
            kernels.impl(cols.size).im2col(np.ascontiguousarray(x), kt, kh, kw, self.stride,
                                           self.stride, pad_top, pad_left, Ho, Wo, cols)
            flat = out.reshape(-1, cout)                              # [B*To*Ho*Wo, Cout]
            np.matmul(cols, self.kernel.reshape(-1, cout), out=flat)
            kernels.impl(out.size).bias_act(flat, self.bias, self.act, EMPTY_SCALE)
            return out
        kernels.impl(out.size * self.kernel[..., 0].size).conv3d(
            np.ascontiguousarray(x), self.kernel, self.bias, self.stride, self.stride, pad_top,
            pad_left, self.act, out)
        return out


class AvgPoolSkip:
    """3x3 stride-2 average pool per frame, TF SAME, padded cells excluded from the mean."""

    def __call__(self, x):
        B, T, H, W, C = x.shape
        Ho, pad_top = same_padding(H, 3, 2)
        Wo, pad_left = same_padding(W, 3, 2)
        out = np.empty((B * T, Ho, Wo, C), np.float32)
        kernels.impl(out.size * 9).avg_pool(np.ascontiguousarray(x).reshape(B * T, H, W, C), 3, 2,
                                             pad_top, pad_left, out)
        return out.reshape(B, T, Ho, Wo, C)


def spatial_mean(x):
    """Per-frame spatial mean: [B, T, H, W, C] -> [B, T, C] (float64 accumulation)."""
    B, T, H, W, C = x.shape
    out = np.empty((B * T, C), np.float32)
    kernels.impl(x.size).spatial_mean(np.ascontiguousarray(x).reshape(B * T, H * W, C), out)
    return out.reshape(B, T, C)


class StreamBuffer:
    """Carries the last `size` = kt - 1 frames of a causal temporal conv's input across calls."""

    def __init__(self, name: str, size: int):
        self.name = name   # e.g. 'state_block1_layer0_stream_buffer', [B, kt-1, H, W, C]
        self.size = size

    def __call__(self, x, states: States, new_states: States):
        full = np.concatenate([states[self.name], x], axis=1)   # [B, kt-1+T, H, W, C]
        new_states[self.name] = full[:, -self.size:].copy()     # the newest kt-1 frames
        return full


class CumulativePool:
    """Global average pool whose state is a running sum and a frame count.

    causal=True (SE of stream models): output per frame t, the mean over every frame up to t,
      [B, T, C] -> [B, T, C].
    causal=False with states (the head of stream models): one mean over every frame seen so
      far, [B, T, C] -> [B, 1, C].
    Whole-clip models call it without state names: the sum starts at zero.
    """

    def __init__(self, sum_name: Optional[str], count_name: Optional[str], causal: bool):
        self.sum_name = sum_name       # e.g. 'state_head_pool_buffer' [B, 1, 1, 1, C], or None
        self.count_name = count_name   # e.g. 'state_head_pool_frame_count' [1] int32
        self.causal = causal

    def __call__(self, frame_means, states: States, new_states: States):
        B, T, C = frame_means.shape
        if self.sum_name is None:
            pool_sum, frame_count = np.zeros((B, 1, C), np.float32), 0
        else:
            pool_sum = states[self.sum_name].reshape(B, 1, C)
            frame_count = int(states[self.count_name][0])
        if self.causal and T == 1:                     # a stream's usual call: no cumsum
            running = frame_means + pool_sum                                        # [B, 1, C]
            pooled = running / np.float32(frame_count + 1)
            new_sum = running
        elif self.causal:
            running = np.cumsum(frame_means, axis=1, dtype=np.float32) + pool_sum  # [B, T, C]
            divisors = np.arange(frame_count + 1, frame_count + T + 1, dtype=np.float32)
            pooled = running / divisors[None, :, None]                              # [B, T, C]
            new_sum = running[:, -1:]
        else:
            new_sum = frame_means.sum(axis=1, keepdims=True, dtype=np.float32) + pool_sum
            pooled = new_sum / np.float32(frame_count + T)                         # [B, 1, C]
        if self.sum_name is not None:
            new_states[self.sum_name] = new_sum.reshape(B, 1, 1, 1, C).astype(np.float32)
            new_states[self.count_name] = np.array([frame_count + T], np.int32)
        return pooled if pooled.dtype == np.float32 else pooled.astype(np.float32)


def positional_encoding(positions, channels: int, angles=None):
    """Sinusoidal encoding [len(positions), channels] in float32, as the official layer builds it:
    angle_i = 1 / 10000^(2 * (i // 2) / channels) (or the given `angles` [C]); the sines of the
    even-index angles are CONCATENATED with the cosines of the odd-index ones (not
    interleaved)."""
    positions = np.asarray(positions, np.float32)[:, None]                   # [T, 1]
    if angles is None:
        idx = np.arange(channels)
        power = (2 * (idx // 2)).astype(np.float32) / np.float32(channels)
        angles = np.float32(1.0) / np.power(np.float32(10000.0), power)       # [C]
    angles = np.asarray(angles, np.float32)
    radians = positions * angles[None, :]                                     # [T, C]
    return np.concatenate([np.sin(radians[:, 0::2]), np.cos(radians[:, 1::2])], axis=-1)


class SqueezeExcite:
    """SE gate per frame: pool -> (positional encoding) -> 1x1 reduce + act -> 1x1 expand + gate.

    se_type '3d': (cumulative) spatiotemporal mean; '2d': per-frame spatial mean;
    '2plus3d': both, concatenated [cumulative mean, frame mean] (2C channels).
    Returns the gate [B * T, C] that the projection conv multiplies into its input.
    """

    def __init__(self, se_type, causal, reduce: Pointwise, expand: Pointwise,
                 pool: "CumulativePool", pos_count_name: Optional[str] = None, pos_scale=None,
                 pos_angles=None):
        self.se_type = se_type
        self.causal = causal
        self.reduce, self.expand = reduce, expand
        self.pool = pool
        self.pos_scale = None if pos_scale is None else np.float32(pos_scale)
        self.pos_count_name = pos_count_name   # [1] int32: position of the next frame
        self.pos_angles = pos_angles           # [C] or None: the official angles

    def __call__(self, x, states: States, new_states: States):
        B, T = x.shape[:2]
        if T == 1 and self.pos_scale is None and (self.se_type == "2d" or (
                self.causal and self.pool.sum_name is not None)):
            return self._stream_frame(x, states, new_states)
        frame_means = spatial_mean(x)                                       # [B, T, C]
        if self.se_type == "2d":
            pooled = frame_means
        else:
            pooled = self.pool(frame_means, states, new_states)             # [B, T or 1, C]
            if pooled.shape[1] != T:
                pooled = np.broadcast_to(pooled, frame_means.shape)         # whole clip: tile
            if self.se_type == "2plus3d":
                pooled = np.concatenate([pooled, frame_means], axis=-1)     # [B, T, 2C]
        if self.pos_scale is not None:
            start = int(states[self.pos_count_name][0])
            encoding = positional_encoding(np.arange(start, start + T), pooled.shape[-1],
                                           self.pos_angles)
            pooled = pooled + self.pos_scale * encoding[None]               # [B, T, C']
            new_states[self.pos_count_name] = np.array([start + T], np.int32)
        gate = self.expand(self.reduce(pooled))                             # [B, T, C]
        return gate.reshape(B * T, -1)                                      # [B*T, C]

    def _stream_frame(self, x, states: States, new_states: States):
        """A stream's one-frame step in one compiled call (`kernels.se_stream`): the spatial
        mean, the cumulative pool, both small 1x1 convs and the gate."""
        B, _, H, W, C = x.shape
        mode = {"2d": 0, "3d": 1, "2plus3d": 2}[self.se_type]
        gate = np.empty((B, C), np.float32)                                 # [B, C]
        new_sum = np.empty((B, C), np.float32)
        if mode == 0:
            pool_sum, frame_count = EMPTY_SCALE, 0
        else:
            pool_sum = np.ascontiguousarray(states[self.pool.sum_name]).reshape(B, C)
            frame_count = int(states[self.pool.count_name][0])
        kernels.impl(B * H * W * C).se_stream(
            np.ascontiguousarray(x).reshape(B, H * W, C), pool_sum, frame_count, mode,
            self.reduce.kernel_t, self.reduce.bias, self.reduce.act, self.expand.kernel_t,
            self.expand.bias, self.expand.act, gate, new_sum)
        if mode != 0:
            new_states[self.pool.sum_name] = new_sum.reshape(B, 1, 1, 1, C)
            new_states[self.pool.count_name] = np.array([frame_count + 1], np.int32)
        return gate                                                         # [B*T, C], T = 1


class FeatureConv:
    """The block's depthwise spatiotemporal conv (kt x kh x kw) with its stream buffer.

    '2plus1d': spatial kh x kw conv (+BN+act) -> stream buffer -> temporal kt x 1 conv (+BN+act);
               the buffer holds post-stride activations.
    '3d':      stream buffer (causal) or zero padding (whole clip) -> one kt x kh x kw conv.
    """

    def __init__(self, spatial: DepthwiseConv, temporal: Optional[DepthwiseConv],
                 buffer: Optional[StreamBuffer], kt: int, causal: bool):
        self.spatial, self.temporal, self.buffer = spatial, temporal, buffer
        self.kt, self.causal = kt, causal

    def __call__(self, x, states: States, new_states: States):
        if self.temporal is not None and self.causal:     # (2+1)D stream
            x = self.spatial(x)                            # [B, T, Ho, Wo, C]
            return self.temporal.stream(self.buffer.name, x, states, new_states)
        if self.temporal is not None:                      # (2+1)D
            x = self.spatial(x)                            # [B, T, Ho, Wo, C]
            return self.temporal(self.buffer(x, states, new_states))
        return self.spatial(self._time_context(x, states, new_states))

    def _time_context(self, x, states, new_states):
        if self.kt == 1:
            return x
        if self.causal:
            return self.buffer(x, states, new_states)      # [B, kt-1+T, H, W, C]
        before = (self.kt - 1) // 2                         # TF SAME in time, stride 1
        pad = [(0, 0), (before, self.kt - 1 - before), (0, 0), (0, 0), (0, 0)]
        return np.pad(x, pad)


class Block:
    """MoViNet inverted bottleneck: expand -> feature conv -> SE -> project (x ReZero) + skip."""

    def __init__(self, prefix, expansion, feature, se, projection, skip_pool, skip_conv):
        self.prefix = prefix               # 'block{g}_layer{l}'
        self.expansion, self.feature, self.se = expansion, feature, se
        self.projection = projection       # ReZero scale folded into kernel and bias
        self.skip_pool, self.skip_conv = skip_pool, skip_conv

    def __call__(self, x, states: States, new_states: States):
        h = self.feature(self.expansion(x), states, new_states)        # [B, T, Ho, Wo, E]
        gate = None if self.se is None else self.se(h, states, new_states)  # [B*T, E]
        skip = x if self.skip_pool is None else self.skip_pool(x)
        skip = skip if self.skip_conv is None else self.skip_conv(skip)      # [B, T, Ho, Wo, Cout]
        rows_per_frame = h.shape[2] * h.shape[3]
        return self.projection(h, in_scale=gate, rows_per_scale=rows_per_frame, residual=skip)


class Head:
    """1x1 projection + act, then the global average pool over every frame seen so far."""

    def __init__(self, project: Pointwise, pool: CumulativePool, mean_scale: float = 1.0):
        self.project = project
        self.pool = pool            # over all frames (not per frame): [B, T, P] -> [B, 1, P]
        self.mean_scale = np.float32(mean_scale)    # FileConstants.head_mean_scale

    def __call__(self, x, states: States, new_states: States):
        frame_means = spatial_mean(self.project(x))                      # [B, T, P]
        if self.mean_scale != 1:
            frame_means = frame_means * self.mean_scale
        return self.pool(frame_means, states, new_states)[:, 0]          # [B, P]


class Classifier:
    """Hidden 1x1 conv + bias + act (dropout is identity at inference), then logits."""

    def __init__(self, hidden: Pointwise, logits: Pointwise):
        self.hidden, self.logits = hidden, logits

    def __call__(self, pooled):
        return self.logits(self.hidden(pooled))                          # [B, num_classes]


# ---- building the layers from raw parameters -----------------------------------------------

def build_layers(cfg: ModelConfig, params: Dict[str, np.ndarray],
                 constants: Optional[FileConstants] = None):
    """Fold BN (and ReZero) into the convs and create the stem, blocks, head and classifier.
    Every parameter and state name comes from `structure.plan(cfg)`."""
    constants = FileConstants() if constants is None else constants
    net = structure.plan(cfg)
    eps = cfg.bn_epsilon
    act = cfg.activation

    def folded(conv: structure.ConvParams, activation, kind=Pointwise, stride=1, scale=1.0):
        kernel, bias = fold_batch_norm(params[conv.kernel], bn_params(params, conv.bn), eps)
        kernel, bias = kernel * np.float32(scale), bias * np.float32(scale)
        if kind is Pointwise:
            return Pointwise(kernel, bias, activation)
        return kind(kernel, bias, stride, activation)

    def with_bias(conv: structure.ConvParams, activation):
        return Pointwise(params[conv.kernel], params[conv.bias], activation)

    stem = folded(net.stem, act, DenseConv, cfg.stem.stride[1])
    blocks = [_build_block(cfg, plan, params, folded, with_bias,
                           constants.pos_angles.get(plan.prefix)) for plan in net.blocks]
    head_pool = CumulativePool(net.head_pool_buffer, net.head_pool_frame_count, causal=False)
    head = Head(folded(net.head_project, act), head_pool, constants.head_mean_scale)
    classifier = Classifier(with_bias(net.classifier_hidden, cfg.classifier_activation),
                            with_bias(net.classifier_logits, "linear"))
    return stem, blocks, head, classifier


def _build_block(cfg: ModelConfig, plan: structure.BlockPlan, params, folded, with_bias,
                 pos_angles=None):
    act = cfg.activation
    kt = plan.kernel[0]
    spatial = folded(plan.feature, act, DepthwiseConv, plan.stride[1])
    temporal = (None if plan.feature_temporal is None
                else folded(plan.feature_temporal, act, DepthwiseConv))
    buffer = None if plan.stream_buffer is None else StreamBuffer(plan.stream_buffer, kt - 1)
    # (2+1)D: the buffer sits between the spatial and the temporal conv (FeatureConv)
    assert (temporal is not None) == (plan.buffer_after_stride and kt > 1)
    feature = FeatureConv(spatial, temporal, buffer, kt, cfg.causal)
    se = None
    if plan.se_reduce is not None:
        pool = CumulativePool(plan.pool_buffer, plan.pool_frame_count, cfg.causal)
        pos_scale = None if plan.pos_scale is None else params[plan.pos_scale]
        se = SqueezeExcite(cfg.se_type, cfg.causal, with_bias(plan.se_reduce, act),
                           with_bias(plan.se_expand, cfg.gating_activation), pool,
                           plan.pos_enc_frame_count, pos_scale, pos_angles)
    rezero = float(params[plan.rezero])
    projection = folded(plan.projection, "linear", scale=rezero)
    skip_pool = AvgPoolSkip() if plan.downsamples else None
    skip_conv = None if plan.skip is None else folded(plan.skip, "linear")
    return Block(plan.prefix, folded(plan.expansion, act), feature, se, projection, skip_pool,
                 skip_conv)
