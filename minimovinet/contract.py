"""The model contract: what every minimovinet model offers, float32 or int8.

The applications (classify, live, and the tools built on them) use only this:

    spec = model.input_spec                 # frame size, frame rate, dtype of the frames
    states = model.init_states(batch=1)     # zero states (a new dict of new arrays)
    logits, states = model(frames, states)  # frames float32 [B, T, H, W, 3] in [0, 1]
    probs, states = model.predict_proba(frames, states)
    pooled, states = model.features(frames, states)   # [B, P] before the classifier
    model.class_names, model.describe(), model.name, model.config

Also here: the validation of frames and state dicts that both models share, the softmax, and
the state table of `describe()`.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np

from .config import CLIPS, ModelConfig
from .errors import InputError, StateError

States = Dict[str, np.ndarray]
StateSpecs = "OrderedDict[str, Tuple[Tuple[int, ...], np.dtype]]"

INT32_MAX = np.iinfo(np.int32).max
# Frames are RGB in [0, 1]; a maximum above this is a forgotten / 255 (values a little over 1,
# e.g. from augmentation or resampling overshoot, still pass).
PIXEL_RANGE_LIMIT = 2.0


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What a model's frames are: [B, T, height, width, 3] float32 RGB in [0, 1]."""
    height: int          # the frame size the model was made for
    width: int
    fixed_size: bool     # True: only this size (an int8 TFLite file); False: any size works
    fps: float           # the frame rate the model was trained at (5 for A0-A2: an int there)
    dtype: str = "float32"


def default_input_spec(config: ModelConfig, height: Optional[int] = None,
                       width: Optional[int] = None, fixed_size: bool = False) -> InputSpec:
    """The training clip's size and rate for `config.model_id` (config.CLIPS; a custom
    architecture: A0's 172x172 at 5 fps unless the file says its size)."""
    size, _, fps = CLIPS.get(config.model_id, CLIPS["a0"])
    return InputSpec(height or size, width or size, fixed_size, fps)


class StreamModel(abc.ABC):
    """Base class of `Movinet` (float32) and `Int8Movinet`."""

    config: ModelConfig
    class_names: Optional[List[str]]

    # ---- what each model defines ------------------------------------------------------------

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """e.g. 'a0-stream' or 'a0-mobile-int8'."""

    @property
    @abc.abstractmethod
    def input_spec(self) -> InputSpec:
        """The frames the model expects."""

    @abc.abstractmethod
    def state_specs(self, batch: int = 1, height: Optional[int] = None,
                    width: Optional[int] = None) -> StateSpecs:
        """Name -> (shape, dtype) of every stream state."""

    @abc.abstractmethod
    def init_states(self, batch: int = 1, height: Optional[int] = None,
                    width: Optional[int] = None) -> States:
        """Zero states for `batch` streams (a new dict of new arrays)."""

    @abc.abstractmethod
    def __call__(self, frames, states: Optional[States] = None):
        """(logits [B, num_classes], next states), or the logits alone without `states`."""

    @abc.abstractmethod
    def features(self, frames, states: Optional[States] = None):
        """The pooled head features before the classifier, float32 [B, P] (P =
        config.head.project_filters), and the next states (the features alone without
        `states`): what a new classifier head trains on."""

    @abc.abstractmethod
    def num_parameters(self) -> int:
        """How many weights the model holds."""

    @abc.abstractmethod
    def _describe_header(self) -> List[str]:
        """The first lines of `describe()`: architecture and quantization."""

    @abc.abstractmethod
    def kernel_namespaces(self) -> tuple:
        """The namespaces of jitted kernels the model runs (for `jit_cache`)."""

    def float_logits(self, logits) -> np.ndarray:
        """The logits as float32 (int8 models dequantize theirs)."""
        return np.asarray(logits, np.float32)

    def _state_note(self, name: str, shape) -> str:
        """The last column of `describe()`'s state table."""
        return ""

    _state_note_title = "holds"

    # ---- shared -----------------------------------------------------------------------------

    def predict_proba(self, frames, states: Optional[States] = None):
        """Softmax probabilities float32 [B, num_classes] instead of logits (same call forms
        as `__call__`)."""
        out = self(frames, states)
        logits, rest = out if isinstance(out, tuple) else (out, None)
        probs = softmax(self.float_logits(logits)).astype(np.float32)
        return (probs, rest) if rest is not None else probs

    def describe(self, batch: int = 1, height: Optional[int] = None,
                 width: Optional[int] = None) -> str:
        """The model's structure and a table of the stream states it carries, with bytes."""
        spec = self.input_spec
        height, width = height or spec.height, width or spec.width
        lines = self._describe_header()
        specs = self.state_specs(batch, height, width)
        if not specs:
            lines.append("whole-clip model: no stream states")
        else:
            lines.append(f"stream states for batch {batch}, {height}x{width} frames:")
            lines += state_table(specs, self._state_note, self._state_note_title)
        return "\n".join(lines)


# ---- shared maths and checks -----------------------------------------------------------------

def softmax(logits) -> np.ndarray:
    """Softmax over the last axis, computed in float64."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def state_table(specs, note=lambda name, shape: "", note_title: str = "holds") -> List[str]:
    """The lines of a state table: name, shape, dtype, bytes and a note; then the total."""
    lines = [f"  {'state':<44} {'shape':<22} {'dtype':<8} {'bytes':>10}  {note_title}"]
    total = 0
    for name, (shape, dtype) in specs.items():
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        total += nbytes
        lines.append(f"  {name:<44} {str(tuple(shape)):<22} {dtype.name:<8} {nbytes:>10,}  "
                     f"{note(name, shape)}")
    lines.append(f"  {'total':<44} {'':<22} {'':<8} {total:>10,}  "
                 f"({len(specs)} states, {total / 2**20:.2f} MiB)")
    return lines


def check_positive_int(what: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def check_frames(frames) -> np.ndarray:
    """float32 frames [B, T, H, W, 3] in [0, 1] (contiguous), or an InputError saying what is
    wrong and how to fix it."""
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
    peak = float(frames.max())
    if peak > PIXEL_RANGE_LIMIT:
        raise InputError(f"frames look like 0..255 pixel values (maximum {peak:g}), the model "
                         f"expects float32 in [0, 1]: divide by 255")
    return np.ascontiguousarray(frames)


def check_states(states, specs, model_name: str, shape_hint: str, check_finite: bool = True):
    """Check a state dict against `specs` (name -> (shape, dtype)).  `shape_hint` ends the
    wrong-shape message (what the states are tied to)."""
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
        if value.shape != tuple(shape):
            raise StateError(f"state {name!r} has shape {value.shape}, expected {tuple(shape)} "
                             f"{shape_hint}")
        if value.dtype != dtype:
            raise StateError(f"state {name!r} has dtype {value.dtype}, expected {dtype}")
        if check_finite and value.dtype.kind == "f" and not np.isfinite(value).all():
            raise StateError(f"state {name!r} contains NaN or infinite values")
        if name.endswith("_frame_count") and value[0] < 0:
            raise StateError(f"state {name!r} is negative ({value[0]})")


def check_frame_counts(states: States, frames: int):
    """Refuse a call whose `frames` new frames would overflow an int32 frame count."""
    for name, value in states.items():
        if name.endswith("_frame_count") and int(value[0]) > INT32_MAX - frames:
            raise StateError(f"state {name!r} would overflow int32 after {frames} more frames; "
                             f"start a new stream with init_states()")


def check_class_names(class_names: Optional[Sequence[str]], num_classes: int, error=InputError):
    """A list of `num_classes` class names, or None."""
    if class_names is None:
        return None
    names = [str(n) for n in class_names]
    if len(names) != num_classes:
        raise error(f"{len(names)} class names for {num_classes} classes")
    return names
