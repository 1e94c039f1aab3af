"""The float32 MoViNet: the forward pass and its stream states, on the model contract."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from .. import structure
from ..config import ModelConfig
from ..contract import (InputSpec, StreamModel, check_class_names, check_frame_counts,
                        check_frames, check_positive_int, check_states, default_input_spec)
from ..errors import StateError, WeightsFileError
from .layers import FileConstants, build_layers
from .params import check_params

States = Dict[str, np.ndarray]


class Movinet(StreamModel):
    """A float32 MoViNet.  Create it with `minimovinet.load(path)` or `Movinet(config, params)`.

    Stream (causal) models:
        states = model.init_states(batch=1, height=172, width=172)
        logits, states = model(frames, states)     # frames float32 [B, T, H, W, 3], any T >= 1
    Whole-clip use of any model (states start at zero and are not returned):
        logits = model(frames)
    """

    def __init__(self, config: ModelConfig, params: Dict[str, np.ndarray],
                 class_names: Optional[Sequence[str]] = None, source: str = "",
                 constants: Optional[FileConstants] = None):
        check_params(config, params)
        self.config = config
        self.source = source          # where the weights came from, for describe() ('': unsaid)
        self.constants = constants    # a converted file's rounded constants (None: exact)
        self.class_names = check_class_names(class_names, config.num_classes, WeightsFileError)
        self.stem, self.blocks, self.head, self.classifier = build_layers(config, params,
                                                                          constants)
        self._params = params
        self._state_specs = {}      # (batch, height, width) -> state_specs: checked every call

    # ---- states ---------------------------------------------------------------------------

    @property
    def input_spec(self) -> InputSpec:
        """Any frame size works; the spec gives the model id's training clip (size, fps)."""
        return default_input_spec(self.config)

    def state_specs(self, batch: int = 1, height: Optional[int] = None,
                    width: Optional[int] = None):
        """Name -> (shape, dtype) of every stream state, in the official names and order of use
        (`structure.state_specs`); height/width default to `input_spec`'s."""
        spec = self.input_spec
        height = spec.height if height is None else height
        width = spec.width if width is None else width
        if not self.config.causal:
            return structure.state_specs(self.config)
        check_positive_int("batch", batch)
        check_positive_int("height", height)
        check_positive_int("width", width)
        return structure.state_specs(self.config, batch, height, width)

    def init_states(self, batch: int = 1, height: Optional[int] = None,
                    width: Optional[int] = None) -> States:
        """Zero states for `batch` streams of height x width frames (a new dict of new arrays)."""
        if not self.config.causal:
            raise StateError(f"model {self.name} is a whole-clip (base) model: it has no stream "
                             f"states; call model(frames) on the whole clip")
        return {name: np.zeros(shape, dtype)
                for name, (shape, dtype) in self.state_specs(batch, height, width).items()}

    # ---- inference ------------------------------------------------------------------------

    def __call__(self, frames, states: Optional[States] = None):
        pooled, new_states = self._backbone(frames, states)          # [B, P]
        logits = self.classifier(pooled)                             # [B, num_classes]
        return (logits, new_states) if states is not None else logits

    def features(self, frames, states: Optional[States] = None):
        """The head's pooled features before the classifier: float32 [B, P]."""
        pooled, new_states = self._backbone(frames, states)          # [B, P]
        return (pooled, new_states) if states is not None else pooled

    def _backbone(self, frames, states: Optional[States]):
        """Stem, blocks and head: (pooled features [B, P], next states)."""
        frames = check_frames(frames)
        B, T, H, W, _ = frames.shape
        if states is not None:
            if not self.config.causal:
                raise StateError(f"model {self.name} is a whole-clip (base) model and takes no "
                                 f"states; call model(frames)")
            specs = self._state_specs.get((B, H, W))
            if specs is None:
                specs = self._state_specs[(B, H, W)] = self.state_specs(B, H, W)
            check_states(states, specs, self.name,
                         f"for frames of batch {B} and size {H}x{W} (states are tied to the "
                         f"batch and frame size given to init_states)")
            check_frame_counts(states, T)
        elif self.config.causal:
            states = self.init_states(B, H, W)
        new_states: States = {}
        x = self.stem(frames)                                    # [B, T, H/2, W/2, C0]
        for block in self.blocks:
            x = block(x, states, new_states)                     # [B, T, h, w, Cg]
        pooled = self.head(x, states, new_states)                # [B, P]
        return pooled, new_states

    # ---- description ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.config.model_id}-{self.config.variant}"

    def kernel_namespaces(self) -> tuple:
        from . import kernels
        return (kernels.SERIAL,)

    @property
    def raw_params(self) -> Dict[str, np.ndarray]:
        """The raw (unfolded) parameters under the `structure.param_specs` names, as saved
        (not to be modified: the layers were built from them)."""
        return self._params

    def num_parameters(self) -> int:
        return int(sum(np.asarray(a).size for a in self._params.values()))

    def _describe_header(self) -> List[str]:
        cfg = self.config
        lines = [f"MoViNet {self.name}: conv {cfg.conv_type}, SE {cfg.se_type}, "
                 f"activation {cfg.activation}, gate {cfg.gating_activation}, "
                 f"positional encoding {cfg.uses_positional_encoding}, "
                 f"{cfg.num_classes} classes, {self.num_parameters():,} parameters"]
        if self.source:
            lines.append(f"float32 model from {self.source}")
        return lines

    def _state_note(self, name: str, shape) -> str:
        return structure.what_state_holds(name, shape)

    def __repr__(self):
        return f"<minimovinet.Movinet {self.name}, {self.config.num_classes} classes>"
