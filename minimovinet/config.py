"""The MoViNet architectures as data: block specs for a0..a5 and the variant presets.

A model is fully described by a `ModelConfig`: which block specs (`model_id`) and how each
block is built (`variant` settings: causal or not, (2+1)D or 3D depthwise convs, which
squeeze-excitation, which activations).  Everything else in the package reads this object.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

from .errors import ConfigError

Kernel = Tuple[int, int, int]  # (time, height, width)

# Kernel and stride shorthands: K(ab) is an (a, b, b) kernel, S(ab) an (a, b, b) stride.
K13: Kernel = (1, 3, 3)
K15: Kernel = (1, 5, 5)
K33: Kernel = (3, 3, 3)
K53: Kernel = (5, 3, 3)
S11: Kernel = (1, 1, 1)
S12: Kernel = (1, 2, 2)


@dataclasses.dataclass(frozen=True)
class StemSpec:
    filters: int
    kernel: Kernel
    stride: Kernel


@dataclasses.dataclass(frozen=True)
class GroupSpec:
    """One block group: every layer projects to `out_filters`; per-layer expansion/kernel/stride."""
    out_filters: int
    expand_filters: Tuple[int, ...]
    kernels: Tuple[Kernel, ...]
    strides: Tuple[Kernel, ...]


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    project_filters: int   # 1x1 conv before the global pool
    hidden_filters: int    # classifier's hidden 1x1 conv (2048 for a0..a5)


def _group(out_filters, expand, kernels, strides):
    assert len(expand) == len(kernels) == len(strides)
    return GroupSpec(out_filters, tuple(expand), tuple(kernels), tuple(strides))


def _strides(n, first=S12):
    """The first layer of a group may downsample, the rest keep the resolution."""
    return (first,) + (S11,) * (n - 1)


# The block specs of the official models (Kondratyuk et al. 2021, Table 7; Model Garden).
BLOCK_SPECS: Dict[str, Tuple[StemSpec, Tuple[GroupSpec, ...], HeadSpec]] = {
    "a0": (
        StemSpec(8, K13, S12),
        (
            _group(8, [24], [K15], _strides(1)),
            _group(32, [80, 80, 80], [K33, K33, K33], _strides(3)),
            _group(56, [184, 112, 184], [K53, K33, K33], _strides(3)),
            _group(56, [184, 184, 184, 184], [K53, K33, K33, K33], _strides(4, S11)),
            _group(104, [384, 280, 280, 344], [K53, K15, K15, K15], _strides(4)),
        ),
        HeadSpec(480, 2048),
    ),
    "a1": (
        StemSpec(16, K13, S12),
        (
            _group(16, [40, 40], [K15, K33], _strides(2)),
            _group(40, [96, 120, 96, 96], [K33] * 4, _strides(4)),
            _group(64, [216, 128, 216, 168, 216], [K53] + [K33] * 4, _strides(5)),
            _group(64, [216, 216, 216, 128, 128, 216], [K53, K33, K33, K33, K15, K33],
                   _strides(6, S11)),
            _group(136, [456, 360, 360, 360, 456, 456, 544],
                   [K53, K15, K15, K15, K15, K33, K13], _strides(7)),
        ),
        HeadSpec(600, 2048),
    ),
    "a2": (
        StemSpec(16, K13, S12),
        (
            _group(16, [40, 40, 64], [K15, K33, K33], _strides(3)),
            _group(40, [96, 120, 96, 96, 120], [K33] * 5, _strides(5)),
            _group(72, [240, 160, 240, 192, 240], [K53] + [K33] * 4, _strides(5)),
            _group(72, [240, 240, 240, 240, 144, 240], [K53, K33, K33, K33, K15, K33],
                   _strides(6, S11)),
            _group(144, [480, 384, 384, 480, 480, 480, 576],
                   [K53, K15, K15, K15, K15, K33, K13], _strides(7)),
        ),
        HeadSpec(640, 2048),
    ),
    "a3": (
        StemSpec(16, K13, S12),
        (
            _group(16, [40, 40, 64, 40], [K15, K33, K33, K33], _strides(4)),
            _group(48, [112, 144, 112, 112, 144, 144], [K33, K33, K33, K15, K33, K33],
                   _strides(6)),
            _group(80, [240, 152, 240, 192, 240], [K53] + [K33] * 4, _strides(5)),
            _group(88, [264, 264, 264, 264, 160, 264, 264, 264],
                   [K53, K33, K33, K33, K15, K33, K33, K33], _strides(8, S11)),
            _group(168, [560, 448, 448, 560, 560, 560, 448, 448, 560, 672],
                   [K53, K15, K15, K15, K15, K33, K15, K15, K33, K13], _strides(10)),
        ),
        HeadSpec(744, 2048),
    ),
    "a4": (
        StemSpec(24, K13, S12),
        (
            _group(24, [64, 64, 96, 64, 96, 64], [K15] + [K33] * 5, _strides(6)),
            _group(56, [168, 168, 136, 136, 168, 168, 168, 136, 136],
                   [K33] * 7 + [K15, K33], _strides(9)),
            _group(96, [320, 160, 320, 192, 320, 160, 320, 256, 320], [K53] + [K33] * 8,
                   _strides(9)),
            _group(96, [320, 320, 320, 320, 192, 320, 320, 192, 320, 320],
                   [K53, K33, K33, K33, K15, K33, K33, K33, K33, K33], _strides(10, S11)),
            _group(192, [640, 512, 512, 640, 640, 640, 512, 512, 640, 768, 640, 640, 768],
                   [K53, K15, K15, K15, K15, K33, K15, K15, K15, K15, K15, K33, K33],
                   _strides(13)),
        ),
        HeadSpec(856, 2048),
    ),
    "a5": (
        StemSpec(24, K13, S12),
        (
            _group(24, [64, 64, 96, 64, 96, 64], [K15, K15] + [K33] * 4, _strides(6)),
            _group(64, [192, 152, 152, 152, 192, 192, 192, 152, 152, 192, 192],
                   [K53] + [K33] * 10, _strides(11)),
            _group(112, [376, 224, 376, 376, 296, 376, 224, 376, 376, 296, 376, 376, 376],
                   [K53] + [K33] * 12, _strides(13)),
            _group(120, [376, 376, 376, 376, 224, 376, 376, 224, 376, 376, 376],
                   [K53, K33, K33, K33, K15] + [K33] * 6, _strides(11, S11)),
            _group(224, [744, 744, 600, 600, 744, 744, 744, 896, 600, 600, 896, 744, 744,
                         896, 600, 600, 744, 744],
                   [K53, K33, K15, K15, K15, K15, K33, K15, K15, K15, K15, K15, K33, K15,
                    K15, K15, K15, K33], _strides(18)),
        ),
        HeadSpec(992, 2048),
    ),
}

MODEL_IDS = tuple(BLOCK_SPECS)
CUSTOM = "custom"             # the model_id of a config with its own block_spec
# The model_id of an int8 TFLite graph whose MoViNet structure was not recognised (it runs op
# by op): its config knows the number of classes only, it has no block spec.
UNRECOGNISED = "unrecognised"

# The clip each model id was trained and evaluated on: (input size, frames of the 10 s clip,
# frame rate).  Model Garden README "Input Shape" (frames x size x size; streaming footnote:
# frames = the 10-second clip) and the TFLite video classification guide (A0/A1 172x172 at
# 5 fps, A2 224x224 at 5 fps).
CLIPS: Dict[str, Tuple[int, int, int]] = {
    "a0": (172, 50, 5), "a1": (172, 50, 5), "a2": (224, 50, 5),
    "a3": (256, 120, 12), "a4": (290, 80, 8), "a5": (320, 120, 12)}

# Variant presets.  Each maps onto the official `movinet.Movinet` arguments (see
# `ModelConfig.official_kwargs`).
VARIANTS: Dict[str, dict] = {
    # Whole-clip models: non-causal 3D convs with symmetric SAME time padding.
    "base": dict(causal=False, conv_type="3d", se_type="3d", activation="swish",
                 gating_activation="sigmoid", classifier_activation="swish",
                 use_positional_encoding=False),
    # The official stream models: causal (2+1)D convs, SE on [cumulative mean, frame mean].
    "stream": dict(causal=True, conv_type="2plus1d", se_type="2plus3d",
                   activation="hard_swish", gating_activation="hard_sigmoid",
                   classifier_activation="swish", use_positional_encoding=None),
    # The legacy causal stream models with full 3D depthwise convs (buffer before the conv).
    "stream3d": dict(causal=True, conv_type="3d", se_type="3d", activation="swish",
                     gating_activation="sigmoid", classifier_activation="swish",
                     use_positional_encoding=None),
    # The mobile stream models behind the official int8 TFLite files: relu6 and no SE.
    "mobile": dict(causal=True, conv_type="2plus1d", se_type="none", activation="relu6",
                   gating_activation="hard_sigmoid", classifier_activation="relu6",
                   use_positional_encoding=False),
}

CONV_TYPES = ("3d", "2plus1d")
SE_TYPES = ("3d", "2d", "2plus3d", "none")
ACTIVATIONS = ("relu", "relu6", "swish", "hard_swish", "sigmoid", "hard_sigmoid", "linear")

# Official `Movinet` defaults that minimovinet relies on.
BN_EPSILON = 1e-3
SE_RATIO = 0.25


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    model_id: str = "a0"                       # which BLOCK_SPECS entry
    variant: str = "stream"                    # preset name (informational once resolved)
    causal: bool = True                        # causal time padding + stream states
    conv_type: str = "2plus1d"                 # '2plus1d': spatial kxk then temporal kt x 1; '3d'
    se_type: str = "2plus3d"                   # '3d', '2d', '2plus3d' or 'none'
    activation: str = "hard_swish"             # every conv block's activation
    gating_activation: str = "hard_sigmoid"    # SE gate
    classifier_activation: str = "swish"       # classifier hidden layer
    use_positional_encoding: bool = False      # a3..a5 stream models add one inside SE
    num_classes: int = 600                     # Kinetics-600
    bn_epsilon: float = BN_EPSILON
    # An architecture that is not one of a0..a5 (model_id "custom"): (StemSpec, groups, HeadSpec)
    # as in BLOCK_SPECS, e.g. read off a TFLite file of a reduced or fine-tuned model.
    block_spec: Optional[Tuple[StemSpec, Tuple[GroupSpec, ...], HeadSpec]] = None

    def __post_init__(self):
        if self.block_spec is not None:
            if self.model_id != CUSTOM:
                raise ConfigError(f"a config with its own block_spec has model_id {CUSTOM!r}, "
                                  f"got {self.model_id!r}")
        elif self.model_id not in BLOCK_SPECS and self.model_id != UNRECOGNISED:
            raise ConfigError(f"unknown model_id {self.model_id!r}; expected one of {MODEL_IDS} "
                              f"(or {CUSTOM!r} with a block_spec)")
        if self.conv_type not in CONV_TYPES:
            raise ConfigError(f"unknown conv_type {self.conv_type!r}; expected one of {CONV_TYPES}")
        if self.se_type not in SE_TYPES:
            raise ConfigError(f"unknown se_type {self.se_type!r}; expected one of {SE_TYPES}")
        for field in ("activation", "gating_activation", "classifier_activation"):
            if getattr(self, field) not in ACTIVATIONS:
                raise ConfigError(f"unknown {field} {getattr(self, field)!r}; "
                                 f"expected one of {ACTIVATIONS}")
        if self.conv_type == "2plus1d" and not self.causal:
            # The official base models are 3D; non-causal (2+1)D is not a released model.
            raise ConfigError("conv_type '2plus1d' is supported for causal models only")
        if int(self.num_classes) < 1:
            raise ConfigError(f"num_classes must be >= 1, got {self.num_classes}")

    @classmethod
    def from_variant(cls, model_id: str, variant: str, **overrides) -> "ModelConfig":
        if variant not in VARIANTS:
            raise ConfigError(f"unknown variant {variant!r}; expected one of {tuple(VARIANTS)}")
        settings = dict(VARIANTS[variant])
        if settings["use_positional_encoding"] is None:
            # The official a3..a5 stream models add a positional encoding in SE.
            settings["use_positional_encoding"] = model_id in ("a3", "a4", "a5")
        settings.update(overrides)
        return cls(model_id=model_id, variant=variant, **settings)

    @property
    def spec(self) -> Tuple[StemSpec, Tuple[GroupSpec, ...], HeadSpec]:
        """(stem, groups, head): BLOCK_SPECS[model_id], or the config's own block_spec."""
        if self.model_id == UNRECOGNISED:
            raise ConfigError("the MoViNet structure of this model was not recognised (an int8 "
                              "TFLite graph run op by op): its architecture is not known")
        return self.block_spec if self.block_spec is not None else BLOCK_SPECS[self.model_id]

    @property
    def stem(self) -> StemSpec:
        return self.spec[0]

    @property
    def groups(self) -> Tuple[GroupSpec, ...]:
        return self.spec[1]

    @property
    def head(self) -> HeadSpec:
        return self.spec[2]

    @property
    def uses_positional_encoding(self) -> bool:
        # Official: only applied in causal mode, and it lives inside SE.
        return bool(self.use_positional_encoding and self.causal and self.se_type != "none")

    def layers(self):
        """Yield (group_index, layer_index, in_filters, expand, out_filters, kernel, stride)."""
        in_filters = self.stem.filters
        for g, group in enumerate(self.groups):
            for l, (expand, kernel, stride) in enumerate(
                    zip(group.expand_filters, group.kernels, group.strides)):
                yield g, l, in_filters, expand, group.out_filters, kernel, stride
                in_filters = group.out_filters

    def official_kwargs(self) -> dict:
        """The arguments of the official `movinet.Movinet` / `MovinetClassifier` for this config."""
        return dict(model_id=self.model_id, causal=self.causal, conv_type=self.conv_type,
                    se_type=self.se_type, activation=self.activation,
                    gating_activation=self.gating_activation,
                    use_positional_encoding=bool(self.use_positional_encoding),
                    use_external_states=self.causal,
                    classifier_activation=self.classifier_activation,
                    num_classes=self.num_classes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)                 # nested specs become dicts of lists
        if self.block_spec is None:
            d.pop("block_spec")                      # files of a0..a5 stay as they were
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ConfigError(f"unknown model config keys {sorted(unknown)}")
        d = dict(d)
        if d.get("block_spec") is not None:
            d["block_spec"] = _spec_from_dict(d["block_spec"])
        return cls(**d)


def _spec_from_dict(spec) -> Tuple[StemSpec, Tuple[GroupSpec, ...], HeadSpec]:
    """The (stem, groups, head) of `ModelConfig.to_dict()` (JSON lists) back as specs."""
    try:
        stem, groups, head = spec
        kernel = lambda k: tuple(int(v) for v in k)    # noqa: E731
        return (StemSpec(int(stem["filters"]), kernel(stem["kernel"]), kernel(stem["stride"])),
                tuple(GroupSpec(int(g["out_filters"]), tuple(int(e) for e in g["expand_filters"]),
                                tuple(kernel(k) for k in g["kernels"]),
                                tuple(kernel(t) for t in g["strides"])) for g in groups),
                HeadSpec(int(head["project_filters"]), int(head["hidden_filters"])))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"bad block_spec in the model config: {e}") from None


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never dropping more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def se_hidden_filters(expand_filters: int, se_type: str) -> int:
    # '2plus3d' feeds SE the concatenation of two pooled vectors, so its hidden width doubles.
    multiplier = 2 if se_type == "2plus3d" else 1
    return make_divisible(SE_RATIO * expand_filters * multiplier, 8)
