"""Post-training quantization of a float stream MoViNet into an `Int8Program`, without
TensorFlow: what the TFLite converter does with a stateful representative dataset.

    model8, graph = quantize_float_model(float_model, clips)       # an Int8Movinet
    model8, graph = quantize_float_model(float_model, clips, ranges="mse", pools="int8")

The graph (`graph.py`: TFLite's operators, the importer's labels) is calibrated on the clips
streamed frame by frame (`calibrate.py`), then quantized as the converter quantizes:

* activations: per-tensor asymmetric int8, scale (hi - lo) / 255 over the range with 0 in it,
  zero point round(-128 - lo / scale);
* conv kernels: per-channel symmetric int8 in [-127, 127], scale max|w| / 127;
* conv biases: int32 at input scale x weight scale (zero point 0);
* constant operands (ReZero, the gate's 1/6): int8 over [min(c, 0), max(c, 0)];
* fixed: LOGISTIC outputs 1/256 at -128, frames [0, 1] as 1/255 at -128, frame counts at
  scale 1 (exact up to 255 frames).

The program then runs on minimovinet's int8 path with TFLite's fixed-point requantization (the
kernels of `ops/`), and is what the TFLite writer writes.

Options: `image`, `states`, `logits` ('float' or 'int8' interfaces), `ranges` ('minmax',
'percentile', 'mse'), `pools` ('float', the default: the running sums, counts and the division
of the cumulative pools in float32 between a DEQUANTIZE and a QUANTIZE -- the sums grow with
every frame, which no int8 scale calibrated on short clips holds; 'int8': the running sums as
int8 and an int8 DIV, like the converter).  With pools='float' the pool_buffer states are
float32 whatever `states` says.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np

from ..errors import InputError, UnsupportedModelError
from .calibrate import DEFAULT_PERCENTILE, check_clips, choose_ranges, groups, record
from .graph import Graph, build_graph
from .program import Int8Program, TensorSpec

INTERFACES = ("float", "int8")
POOLS = ("int8", "float")


def activation_quantization(lo: float, hi: float) -> Tuple[float, int]:
    """(scale, zero point) of an int8 tensor over [lo, hi], 0 included (TFLite's nudging)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-12:
        hi = lo + 1e-6
    scale = float(np.float32((hi - lo) / 255.0))
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return scale, zp


def _quantize_values(x, scale, zp) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, np.float64) / scale) + zp, -128, 127).astype(np.int8)


def _weight(t: TensorSpec, axis: int) -> TensorSpec:
    """Per-channel symmetric int8 along `axis`."""
    w = t.data.astype(np.float64)
    other = tuple(a for a in range(w.ndim) if a != axis)
    peak = np.abs(w).max(axis=other)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scales.astype(np.float64).reshape(shape)), -127, 127)
    return TensorSpec(name=t.name, shape=t.shape, dtype="int8", channel_scales=scales,
                      quantized_dimension=axis, data=q.astype(np.int8))


def _bias(t: TensorSpec, in_scale: float, w_scales: np.ndarray) -> TensorSpec:
    scales = (np.float64(np.float32(in_scale)) * w_scales.astype(np.float64))
    q = np.clip(np.round(t.data.astype(np.float64) / scales), -(2**31), 2**31 - 1)
    return TensorSpec(name=t.name, shape=t.shape, dtype="int32",
                      channel_scales=scales.astype(np.float32), quantized_dimension=0,
                      data=q.astype(np.int32))


def quantize_graph(graph: Graph, ranges: Dict[int, Tuple[float, float]],
                   source: str = "") -> Int8Program:
    """The int8 program of a calibrated graph (see the module docstring)."""
    quant: Dict[int, Tuple[float, int]] = {i: activation_quantization(*r)
                                           for i, r in ranges.items()}
    for group in groups(graph):                      # a fixed one wins over its whole group
        fixed = [graph.fixed[t] for t in group if t in graph.fixed]
        for t in group if fixed else ():
            quant[t] = fixed[0]
    tensors = []
    for i, (t, role) in enumerate(zip(graph.tensors, graph.roles)):
        if role == "act":
            s, z = quant[i]
            data = None if t.data is None else _quantize_values(t.data, s, z)
            tensors.append(TensorSpec(t.name, t.shape, "int8", s, z, data=data))
        elif role == "weight":
            tensors.append(_weight(t, graph.channel_axis[i]))
        elif role == "scalar":
            c = float(t.data)
            s, z = activation_quantization(min(c, 0.0), max(c, 0.0))
            tensors.append(TensorSpec(t.name, t.shape, "int8", s, z,
                                      data=_quantize_values(t.data, s, z)))
        else:                                         # float, int32, and biases (below)
            tensors.append(TensorSpec(t.name, t.shape, t.dtype, data=t.data))
    for b, (x, w) in graph.bias_of.items():
        tensors[b] = _bias(graph.tensors[b], tensors[x].scale, tensors[w].channel_scales)
    return Int8Program(tensors=tensors, ops=list(graph.ops), image=graph.image,
                       logits=graph.logits, states=graph.states, config=graph.config,
                       blocks=graph.blocks, source=source)


def _check_option(name, value, allowed):
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def quantize_float_model(model, clips: Sequence[np.ndarray], *, image: str = "float",
                         states: str = "float", logits: str = "float", ranges: str = "minmax",
                         pools: str = "float", percentile: float = DEFAULT_PERCENTILE,
                         seed: int = 0, progress=None, source: str = ""):
    """(an `Int8Movinet` of the float stream `model` calibrated on `clips`, the calibrated
    `Graph`: what `accuracy.measure` compares it with).  clips: float32 [T, H, W, 3] in
    [0, 1], all of one frame size (the int8 model's fixed input size)."""
    from .model import Int8Movinet
    for name, value, allowed in (("image", image, INTERFACES), ("states", states, INTERFACES),
                                 ("logits", logits, INTERFACES), ("pools", pools, POOLS)):
        _check_option(name, value, allowed)
    params = getattr(model, "raw_params", None)
    if params is None:
        raise UnsupportedModelError(f"{model!r} is not a float minimovinet model")
    clips = [np.asarray(c) for c in clips]
    if not clips:
        raise InputError("no calibration clips")
    H, W = clips[0].shape[1:3] if clips[0].ndim == 4 else (0, 0)
    graph = build_graph(model.config, params, H, W, image=image, states=states, pools=pools,
                        logits=logits)
    check_clips(clips, graph)
    stats = record(graph, clips, seed=seed, progress=progress)
    chosen = choose_ranges(graph, stats, ranges, percentile)
    program = quantize_graph(graph, chosen, source=source)
    return Int8Movinet(program, model.class_names, source=source), graph
