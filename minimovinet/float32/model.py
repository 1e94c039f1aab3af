"""The MoViNet model: the forward pass, its stream states, and input/state validation."""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..config import ModelConfig
from ..errors import InputError, StateError
from .layers import build_layers

States = Dict[str, np.ndarray]

INT32_MAX = np.iinfo(np.int32).max


def _halve(size: int) -> int:
    return math.ceil(size / 2)   # TF SAME with stride 2


class Movinet:
    """A float32 MoViNet.  Create it with `minimovinet.load(path)` or `Movinet(config, params)`.

    Stream (causal) models:
        states = model.init_states(batch=1, height=172, width=172)
        logits, states = model(frames, states)     # frames float32 [B, T, H, W, 3], any T >= 1
    Whole-clip use of any model (states start at zero and are not returned):
        logits = model(frames)
    """

    def __init__(self, config: ModelConfig, params: Dict[str, np.ndarray],
                 class_names: Optional[Sequence[str]] = None):
        from .params import check_params
        check_params(config, params)
        self.config = config
        self.class_names = list(class_names) if class_names is not None else None
        self.stem, self.blocks, self.head, self.classifier = build_layers(config, params)
        self._params = params

    # ---- states ---------------------------------------------------------------------------

    def state_specs(self, batch: int = 1, height: int = 172, width: int = 172
                    ) -> "OrderedDict[str, Tuple[Tuple[int, ...], np.dtype]]":
        """Name -> (shape, dtype) of every stream state, in the official names and order of use."""
        cfg = self.config
        if not cfg.causal:
            return OrderedDict()
        _check_positive_int("batch", batch)
        _check_positive_int("height", height)
        _check_positive_int("width", width)
        specs = OrderedDict()
        h, w = _halve(height), _halve(width)          # after the stride-2 stem
        for g, l, cin, expand, cout, kernel, stride in cfg.layers():
            prefix = f"state_block{g}_layer{l}"
            downsample = stride[1] > 1
            if downsample and cfg.conv_type == "2plus1d":
                h, w = _halve(h), _halve(w)           # (2+1)D: buffer after the spatial stride
            if kernel[0] > 1:
                specs[f"{prefix}_stream_buffer"] = ((batch, kernel[0] - 1, h, w, expand),
                                                    np.dtype(np.float32))
            if cfg.se_type in ("3d", "2plus3d"):
                specs[f"{prefix}_pool_buffer"] = ((batch, 1, 1, 1, expand), np.dtype(np.float32))
                specs[f"{prefix}_pool_frame_count"] = ((1,), np.dtype(np.int32))
            if cfg.uses_positional_encoding:
                specs[f"{prefix}_pos_enc_frame_count"] = ((1,), np.dtype(np.int32))
            if downsample and cfg.conv_type != "2plus1d":
                h, w = _halve(h), _halve(w)           # 3D: buffer before the strided conv
        specs["state_head_pool_buffer"] = ((batch, 1, 1, 1, cfg.head.project_filters),
                                           np.dtype(np.float32))
        specs["state_head_pool_frame_count"] = ((1,), np.dtype(np.int32))
        return specs

    def init_states(self, batch: int = 1, height: int = 172, width: int = 172) -> States:
        """Zero states for `batch` streams of height x width frames (a new dict of new arrays)."""
        if not self.config.causal:
            raise StateError(f"model {self.name} is a whole-clip (base) model: it has no stream "
                             f"states; call model(frames) on the whole clip")
        return {name: np.zeros(shape, dtype)
                for name, (shape, dtype) in self.state_specs(batch, height, width).items()}

    # ---- inference ------------------------------------------------------------------------

    def __call__(self, frames, states: Optional[States] = None):
        frames = _check_frames(frames)
        B, T, H, W, _ = frames.shape
        streaming = states is not None
        if streaming:
            if not self.config.causal:
                raise StateError(f"model {self.name} is a whole-clip (base) model and takes no "
                                 f"states; call model(frames)")
            _check_states(states, self.state_specs(B, H, W), self.name,
                          f"for frames of batch {B} and size {H}x{W} (states are tied to the "
                          f"batch and frame size given to init_states)")
            _check_frame_counts(states, T)
        elif self.config.causal:
            states = self.init_states(B, H, W)
        new_states: States = {}
        x = self.stem(frames)                                    # [B, T, H/2, W/2, C0]
        for _, block in self.blocks:
            x = block(x, states, new_states)                     # [B, T, h, w, Cg]
        pooled = self.head(x, states, new_states)                # [B, P]
        logits = self.classifier(pooled)                         # [B, num_classes]
        return (logits, new_states) if streaming else logits

    def predict_proba(self, frames, states: Optional[States] = None):
        """Softmax probabilities instead of logits (same call forms as `__call__`)."""
        out = self(frames, states)
        logits, rest = (out if isinstance(out, tuple) else (out, None))
        shifted = logits - logits.max(axis=-1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=-1, keepdims=True)
        return (probs, rest) if rest is not None else probs

    # ---- description ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.config.model_id}-{self.config.variant}"

    def num_parameters(self) -> int:
        return int(sum(np.asarray(a).size for a in self._params.values()))

    def describe(self, batch: int = 1, height: int = 172, width: int = 172) -> str:
        """A table of the stream states each layer carries, with their bytes."""
        cfg = self.config
        lines = [f"MoViNet {self.name}: conv {cfg.conv_type}, SE {cfg.se_type}, "
                 f"activation {cfg.activation}, gate {cfg.gating_activation}, "
                 f"positional encoding {cfg.uses_positional_encoding}, "
                 f"{cfg.num_classes} classes, {self.num_parameters():,} parameters"]
        specs = self.state_specs(batch, height, width)
        if not specs:
            lines.append("whole-clip model: no stream states")
            return "\n".join(lines)
        lines.append(f"stream states for batch {batch}, {height}x{width} frames:")
        lines.append(f"  {'state':<44} {'shape':<22} {'dtype':<8} {'bytes':>10}  holds")
        total = 0
        for name, (shape, dtype) in specs.items():
            nbytes = int(np.prod(shape)) * dtype.itemsize
            total += nbytes
            lines.append(f"  {name:<44} {str(shape):<22} {dtype.name:<8} {nbytes:>10,}  "
                         f"{_what_state_holds(name, shape)}")
        lines.append(f"  {'total':<44} {'':<22} {'':<8} {total:>10,}  "
                     f"({len(specs)} states, {total / 2**20:.2f} MiB)")
        return "\n".join(lines)

    def __repr__(self):
        return f"<minimovinet.Movinet {self.name}, {self.config.num_classes} classes>"


def _what_state_holds(name: str, shape) -> str:
    if name.endswith("_stream_buffer"):
        return f"last {shape[1]} frame(s) into the {shape[1] + 1}-tap causal temporal conv"
    if name.endswith("_pool_buffer"):
        return "running sum of per-frame spatial means"
    if name.endswith("_pos_enc_frame_count"):
        return "position of the next frame (positional encoding)"
    if name.endswith("_frame_count"):
        return "frames summed so far"
    return ""


# ---- validation ---------------------------------------------------------------------------

def _check_positive_int(what, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{what} must be a positive integer, got {value!r}")


def _check_frames(frames) -> np.ndarray:
    if not isinstance(frames, np.ndarray):
        raise InputError(f"frames must be a numpy array of shape [B, T, H, W, 3], got "
                         f"{type(frames).__name__}")
    if frames.ndim != 5:
        raise InputError(f"frames must have rank 5 [B, T, H, W, 3], got shape {frames.shape}"
                         + (" (add batch and time axes: frames[None, None])" if frames.ndim == 3
                            else " (add a batch axis: frames[None])" if frames.ndim == 4 else ""))
    if frames.shape[-1] != 3:
        raise InputError(f"frames must have 3 RGB channels last [B, T, H, W, 3], got shape "
                         f"{frames.shape}")
    if min(frames.shape) < 1:
        raise InputError(f"frames must not be empty, got shape {frames.shape}")
    if frames.dtype != np.float32:
        if np.issubdtype(frames.dtype, np.integer) or frames.dtype == np.bool_:
            raise InputError(f"frames must be float32 in [0, 1], got {frames.dtype}; for 8-bit "
                             f"video use frames.astype(np.float32) / 255")
        raise InputError(f"frames must be float32 in [0, 1], got {frames.dtype}; convert with "
                         f"frames.astype(np.float32)")
    if not np.isfinite(frames).all():
        raise InputError("frames contain NaN or infinite values")
    return np.ascontiguousarray(frames)


def _check_states(states, specs, model_name, shape_hint, check_finite=True):
    """Check a state dict against `specs` (name -> (shape, dtype)); shared by the float and int8
    models.  `shape_hint` ends the wrong-shape message (what the states are tied to)."""
    if not isinstance(states, dict):
        raise StateError(f"states must be a dict of arrays (from model.init_states), got "
                         f"{type(states).__name__}")
    missing = [n for n in specs if n not in states]
    extra = [n for n in states if n not in specs]
    if missing or extra:
        raise StateError(f"states do not match model {model_name}: missing {missing[:4]}"
                         f"{' ...' if len(missing) > 4 else ''} ({len(missing)}), unexpected "
                         f"{extra[:4]}{' ...' if len(extra) > 4 else ''} ({len(extra)}); "
                         f"create them with model.init_states()")
    for name, (shape, dtype) in specs.items():
        value = states[name]
        if not isinstance(value, np.ndarray):
            raise StateError(f"state {name!r} must be a numpy array, got {type(value).__name__}")
        if value.shape != shape:
            raise StateError(f"state {name!r} has shape {value.shape}, expected {shape} "
                             f"{shape_hint}")
        if value.dtype != dtype:
            raise StateError(f"state {name!r} has dtype {value.dtype}, expected {dtype}")
        if check_finite and dtype.kind == "f" and not np.isfinite(value).all():
            raise StateError(f"state {name!r} contains NaN or infinite values")
        if name.endswith("_frame_count") and value[0] < 0:
            raise StateError(f"state {name!r} is negative ({value[0]})")


def _check_frame_counts(states, T):
    for name, value in states.items():
        if name.endswith("_frame_count") and int(value[0]) > INT32_MAX - T:
            raise StateError(f"state {name!r} would overflow int32 after {T} more frames; "
                             f"start a new stream with init_states()")
