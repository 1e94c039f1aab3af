"""The int8 MoViNet: runs an imported int8 TFLite stream model with minimovinet's kernels.

    model = minimovinet.load("movinet_a0_stream_k600_int8.tflite")   # or the converted .h5
    states = model.init_states()                  # the file's states, int8 ones at their zero point
    logits, states = model(frames, states)        # frames float32 [B, T, H, W, 3] in [0, 1]
    pooled, states = model.features(frames, states)   # what the classifier reads, float32 [B, P]
    float_model = model.dequantize()              # the same architecture in float32

The model is the `Int8Program` of `formats.tflite_import`: the TFLite operators in execution
order, each labelled with its MoViNet layer, compiled by `runner.ProgramRunner` into calls of
the Numba kernels (`kernels.py`) with TFLite's integer arithmetic, so that the logits and every
output state are bit-identical to LiteRT's built-in kernels.  The file's input size and batch
are fixed (one frame of H x W per invocation, as the file says); `model(frames, states)`
accepts any batch and any number of frames per call and runs them frame by frame and stream by
stream, which is what a stream model means.

States keep the file's names, shapes (batch first) and dtypes.  For files with int8 states whose
output quantization differs from the input's (full-int8 conversions may do that), the returned
states are requantized to the input quantization so that they can be fed back directly
(`raw_states=True` returns them exactly as the file's outputs).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..contract import (InputSpec, StreamModel, check_class_names, check_frame_counts,
                        check_frames, check_positive_int, check_states, default_input_spec)
from ..errors import InputError, UnsupportedModelError, WeightsFileError
from ..structure import plan
from .program import Int8Program
from .quantize import dequantize, quantize
from .runner import ProgramRunner

States = Dict[str, np.ndarray]


class Int8Movinet(StreamModel):
    """An int8 MoViNet stream model (see the module docstring)."""

    def __init__(self, program: Int8Program, class_names: Optional[Sequence[str]] = None,
                 source: str = ""):
        self.program = program
        self.config = program.config
        self.source = source or program.source
        self.class_names = check_class_names(class_names, self.config.num_classes,
                                             error=WeightsFileError)
        image = program.tensors[program.image]
        self.height, self.width = image.shape[2], image.shape[3]
        self.runner = ProgramRunner(program)
        # the pooled head features: known where the structure was recognised
        self._features_tensor = None if program.unrecognised else _classifier_input(program)
        self._checked_specs = {}                  # batch -> state_specs(batch), for each call

    # ---- description --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.config.model_id}-{self.config.variant}-int8"

    @property
    def input_spec(self) -> InputSpec:
        """The file's frame size (fixed), at the frame rate of the model id."""
        return default_input_spec(self.config, self.height, self.width, fixed_size=True)

    @property
    def image_quantization(self):
        """(dtype, scale, zero_point) of the image input (scale None for float input)."""
        t = self.program.tensors[self.program.image]
        return t.dtype, t.scale, t.zero_point

    @property
    def logits_quantization(self):
        t = self.program.tensors[self.program.logits]
        return t.dtype, t.scale, t.zero_point

    def state_quantization(self) -> "OrderedDict[str, tuple]":
        """Name -> (dtype, input scale, input zero point, output scale, output zero point)."""
        out = OrderedDict()
        for name, (ti, to) in self.program.states.items():
            a, b = self.program.tensors[ti], self.program.tensors[to]
            out[name] = (a.dtype, a.scale, a.zero_point, b.scale, b.zero_point)
        return out

    def __repr__(self):
        return (f"<minimovinet.Int8Movinet {self.name}, {self.config.num_classes} classes, "
                f"{self.height}x{self.width} frames>")

    def kernel_namespaces(self) -> tuple:
        from . import kernels
        return (kernels.SERIAL,)

    def num_parameters(self) -> int:
        """Conv weights and biases (the ReZero / gate constants are one scalar each)."""
        ids = {t for op in self.program.ops if op.kind in ("conv", "depthwise")
               for t in op.inputs[1:3]}
        return int(sum(self.program.tensors[t].data.size for t in ids))

    def describe(self, batch: int = 1, height: Optional[int] = None,
                 width: Optional[int] = None) -> str:
        """The model's structure, quantization and states.  The frame size is fixed by the
        file; `height`/`width` are accepted for the float model's signature and ignored."""
        return super().describe(batch)

    def _describe_header(self) -> List[str]:
        cfg = self.config
        dt, s, z = self.image_quantization
        lt, ls, lz = self.logits_quantization
        return [f"MoViNet {self.name}: int8 TFLite stream model ({self.source}); "
                f"{_architecture(self.program)}{cfg.num_classes} classes, "
                f"{self.num_parameters():,} parameters",
                f"input image {dt} [B, T, {self.height}, {self.width}, 3]"
                + (f" (scale {s:.6g}, zero point {z})" if s is not None else
                   " (quantized inside)")
                + f"; logits {lt}" + (f" (scale {ls:.6g}, zero point {lz})" if ls else ""),
                *_layer_lines(self.program)]

    _state_note_title = "quantization"

    def _state_note(self, name: str, shape) -> str:
        _, si, zi, so, zo = self.state_quantization()[name]
        q = "" if si is None else f"scale {si:.4g} zp {zi}" + (
            "" if (si, zi) == (so, zo) else f" (out: {so:.4g} zp {zo})")
        used = "" if self.runner.passthrough.get(name) is None else " (unused: passed through)"
        return q + used

    # ---- states -------------------------------------------------------------------------------

    def state_specs(self, batch: int = 1, height: Optional[int] = None,
                    width: Optional[int] = None) -> "OrderedDict[str, tuple]":
        """Name -> (shape, dtype) of every state for `batch` streams (the file's order)."""
        _check_size(self, height, width)
        batch = check_positive_int("batch", batch)
        specs = OrderedDict()
        for name, (ti, _) in self.program.states.items():
            t = self.program.tensors[ti]
            shape = tuple(t.shape)
            if name.endswith("_buffer"):
                shape = (batch,) + shape[1:]
            specs[name] = (shape, np.dtype(t.numpy_dtype))
        return specs

    def init_states(self, batch: int = 1, height: Optional[int] = None,
                    width: Optional[int] = None) -> States:
        """Initial states: zeros, and each int8 state at its zero point (real value 0)."""
        states = {}
        for name, (shape, dtype) in self.state_specs(batch, height, width).items():
            t = self.program.tensors[self.program.states[name][0]]
            fill = t.zero_point if (t.dtype == "int8" and t.zero_point is not None) else 0
            states[name] = np.full(shape, fill, dtype)
        return states

    # ---- inference ----------------------------------------------------------------------------

    def __call__(self, frames, states: Optional[States] = None, raw_states: bool = False):
        """Logits after the last frame and the next states (a new dict; inputs untouched).

        frames: float32 [B, T, H, W, 3] in [0, 1] (quantized as the file's QUANTIZE does), or,
        for files with an int8 image input, already-quantized int8 frames.  Without `states`
        the stream starts from `init_states` and only the logits are returned.
        Logits have the file's output dtype (float32 for float-output files).
        """
        logits, _, ends = self._run_streams(frames, states, raw_states, features=False)
        return logits if states is None else (logits, _merge_streams(ends))

    def features(self, frames, states: Optional[States] = None):
        """The pooled head features after the last frame, float32 [B, P]: the tensor the
        classifier's hidden conv reads, dequantized; with the next states when `states` is
        given (same call forms as `__call__`)."""
        _require_structure(self, "no features")
        _, pooled, ends = self._run_streams(frames, states, False, features=True)
        return pooled if states is None else (pooled, _merge_streams(ends))

    def float_logits(self, logits) -> np.ndarray:
        """The logits as float32 (dequantized with LiteRT's DEQUANTIZE for int8 logits)."""
        dtype, s, z = self.logits_quantization
        if dtype == "float32":
            return np.asarray(logits, np.float32)
        return dequantize(np.asarray(logits), s, z)

    dequantize_logits = float_logits

    def _run_streams(self, frames, states, raw_states: bool, features: bool):
        """Each stream of the batch frame by frame: (logits [B, classes], features [B, P] or
        None, each stream's last states)."""
        frames = self._check_frames(frames)                    # [B, T, H, W, 3]
        B, T = frames.shape[:2]
        if states is None:
            states = self.init_states(B)
        else:
            self._check_states(states, B)
        logits, pooled, ends = [], [], []
        for b in range(B):
            current = {name: (value[b:b + 1] if name.endswith("_buffer") else value)
                       for name, value in states.items()}
            for t in range(T):
                out, raw = self.runner.step(frames[b:b + 1, t:t + 1], current)
                current = self.runner.feedback(raw)
            logits.append(out)
            ends.append(raw if raw_states else current)
            if features:
                pooled.append(self._read_features())
        return _batch(logits), (_batch(pooled) if features else None), ends

    def _read_features(self) -> np.ndarray:
        """The classifier's input after this thread's last step, float32 [1, P]."""
        t = self.program.tensors[self._features_tensor]
        value = self.runner.workspace()[self._features_tensor]
        if t.dtype == "float32":
            return np.array(value, np.float32).reshape(1, -1)
        return dequantize(value, t.scale, t.zero_point).reshape(1, -1)

    # ---- validation -----------------------------------------------------------------------------

    def _check_frames(self, frames):
        """The frames in the file's image dtype (float frames quantized for int8 images)."""
        return _frames_for_file(frames, self.image_quantization, self.height, self.width)

    def _check_states(self, states, batch):
        # float states are checked for NaN / inf by the QUANTIZE that reads them
        specs = self._checked_specs.get(batch)
        if specs is None:
            specs = self._checked_specs[batch] = self.state_specs(batch)
        check_states(states, specs, self.name,
                     f"for batch {batch} (this int8 model runs {self.height}x{self.width} "
                     f"frames; states come from init_states of the same model)",
                     check_finite=False)
        check_frame_counts(states, 1)

    # ---- float view -----------------------------------------------------------------------------

    def dequantize(self):
        """A float32 `Movinet` of the same architecture with the dequantized weights."""
        from ..float32.model import Movinet
        from .dequantize import dequantized_params
        _require_structure(self, "no float view")
        return Movinet(self.config, dequantized_params(self.program), self.class_names)


def _architecture(program: Int8Program) -> str:
    """The architecture part of describe()'s first line."""
    cfg = program.config
    if program.unrecognised:
        return f"MoViNet structure not recognised, run op by op: {program.unrecognised}; "
    return (f"architecture {cfg.model_id} conv {cfg.conv_type}, SE {cfg.se_type}, activation "
            f"{cfg.activation}, classifier {cfg.classifier_activation}, "
            f"{_pool_arithmetic(program)} pools, ")


def _pool_arithmetic(program: Int8Program) -> str:
    """'float32' when the cumulative pools divide their running sums in float32 (the
    quantizer's pools='float', some converters), else 'int8'."""
    T = program.tensors
    divs = [op for op in program.ops if op.kind == "div"]
    return "float32" if any(T[op.outputs[0]].dtype == "float32" for op in divs) else "int8"


def _require_structure(model, what: str) -> None:
    """What needs the MoViNet structure (the float view, the features) is refused, in one
    line, for a graph run op by op."""
    if model.program.unrecognised:
        raise UnsupportedModelError(f"{model.source}: {what}: the MoViNet structure was not "
                                    f"recognised ({model.program.unrecognised})")


def _check_size(model, height, width):
    if height is None and width is None:
        return
    if (height, width) != (model.height, model.width):
        raise InputError(f"this int8 model was converted for {model.height}x{model.width} "
                         f"frames (a TFLite file has fixed shapes); got {height}x{width}")


def _frames_for_file(frames, image_quantization, height: int, width: int) -> np.ndarray:
    """Checked frames [B, T, height, width, 3] in the file's image dtype: int8 frames as they
    are, float frames checked and, for an int8 image input, quantized as LiteRT's QUANTIZE."""
    dtype, s, z = image_quantization
    if dtype == "int8" and isinstance(frames, np.ndarray) and frames.dtype == np.int8:
        if frames.ndim != 5 or frames.shape[-1] != 3 or min(frames.shape) < 1:
            raise InputError(f"frames must have shape [B, T, H, W, 3], got {frames.shape}")
        arr = np.ascontiguousarray(frames)
    else:
        arr = check_frames(frames)
    if arr.shape[2:4] != (height, width):
        raise InputError(f"frames are {arr.shape[2]}x{arr.shape[3]} but this int8 model was "
                         f"converted for {height}x{width} frames (a TFLite file has "
                         f"fixed shapes); resize the frames to {height}x{width}")
    if dtype == "int8" and arr.dtype != np.int8:
        arr = quantize(arr, s, z)                                  # [B, T, H, W, 3] int8
    return arr


def _classifier_input(program: Int8Program) -> int:
    """The tensor the classifier's hidden conv reads (the pooled head features)."""
    layer = plan(program.config).classifier_hidden.layer
    op = next((op for op in program.ops if op.layer == layer), None)
    if op is None:
        raise UnsupportedModelError(f"the int8 model has no op labelled {layer!r}")
    return op.inputs[0]


def _batch(per_stream: list) -> np.ndarray:
    """Per-stream [1, ...] arrays as [B, ...] (one stream: its own array)."""
    return np.concatenate(per_stream, axis=0) if len(per_stream) > 1 else per_stream[0]


def _merge_streams(ends: List[States]) -> States:
    """Each stream's last states as one dict: buffers stacked over the batch, frame counts
    (shared by the streams: they saw the same number of frames) from the first."""
    if len(ends) == 1:
        return ends[0]
    return {name: (np.concatenate([s[name] for s in ends], axis=0)
                   if name.endswith("_buffer") else value)
            for name, value in ends[0].items()}


def _layer_lines(program: Int8Program) -> List[str]:
    """The ops per top-level layer (blocks with their shapes), in network order."""
    kinds_of = OrderedDict()
    for op in program.ops:
        if op.kind != "reshape":
            kinds_of.setdefault(op.layer.split("/")[0], []).append(op.kind)
    blocks = {f"block{b.get('g')}_layer{b.get('l')}": b for b in program.blocks}
    lines = [f"layers ({sum(len(v) for v in kinds_of.values())} ops, RESHAPEs as views):"]
    for top, kinds in sorted(kinds_of.items(), key=lambda kv: _layer_order(kv[0])):
        block = blocks.get(top)
        extra = ""
        if block:
            kt, kh, kw = block["kernel"]
            extra = (f"  {block['cin']}->{block['expand']}->{block['cout']}, kernel "
                     f"{kt}x{kh}x{kw}, stride {block['stride'][1]}, skip {block['skip']}"
                     f"{', SE' if block['se'] else ''}")
        summary = ", ".join(f"{k} x{kinds.count(k)}" if kinds.count(k) > 1 else k
                            for k in dict.fromkeys(kinds))
        lines.append(f"  {top:<16} {summary}{extra}")
    return lines


def _layer_order(top: str):
    m = re.match(r"block(\d+)_layer(\d+)$", top)
    if m:
        return (2, int(m.group(1)), int(m.group(2)))
    return ({"input": 0, "stem": 1, "head": 3, "classifier": 4, "output": 5}.get(top, 6), 0, 0)
