"""The one place that spells the network's parameter names, state names and their shapes.

`ModelConfig` (config.py) says what the architecture is; this module turns it into names:
for every conv the name of its kernel, its batch norm (or bias) and its layer label, and for
every block the names of the stream states it carries and where its stream buffer sits.  The
float layers (`float32.layers.build_layers`), the h5 format, the official checkpoint names
(`formats.official_checkpoint`), the int8 importer's layer labels and the int8 model's
dequantized weights all read these tables instead of spelling the names themselves.

Parameter layouts (channels last):
    pointwise conv kernel      [Cin, Cout]
    depthwise conv kernel      [kt, kh, kw, C]      (spatial: kt = 1; temporal: kh = kw = 1)
    dense conv kernel (stem)   [kt, kh, kw, Cin, Cout]
    bias / BN vectors          [C]
    scalar scales              []

States (stream models only), per block `block{g}_layer{l}`:
    state_block{g}_layer{l}_stream_buffer      [B, kt-1, h, w, E]  the causal conv's last kt-1 input frames
    state_block{g}_layer{l}_pool_buffer        [B, 1, 1, 1, E]     SE: running sum of frame means
    state_block{g}_layer{l}_pool_frame_count   [1] int32           SE: frames summed so far
    state_block{g}_layer{l}_pos_enc_frame_count [1] int32          a3..a5: next frame's position
and for the head `state_head_pool_buffer` [B, 1, 1, 1, P] and `state_head_pool_frame_count`.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np

from .config import ModelConfig, se_hidden_filters

Shape = Tuple[int, ...]

BN_FIELDS = ("gamma", "beta", "moving_mean", "moving_variance")

# The kinds of stream state and their dtypes.
STATE_KINDS = ("stream_buffer", "pool_buffer", "pool_frame_count", "pos_enc_frame_count")
STATE_DTYPES = {"stream_buffer": np.dtype(np.float32), "pool_buffer": np.dtype(np.float32),
                "pool_frame_count": np.dtype(np.int32),
                "pos_enc_frame_count": np.dtype(np.int32)}
HEAD_PREFIX = "head"
# Any state name: group 1 the owner ('block{g}_layer{l}' or 'head'), groups 2/3 g and l, 4 the kind.
STATE_NAME = re.compile(r"^state_(block(\d+)_layer(\d+)|head)_(" + "|".join(STATE_KINDS) + r")$")


def state_name(owner: str, kind: str) -> str:
    """'state_block1_layer0_stream_buffer' for owner 'block1_layer0', kind 'stream_buffer'."""
    assert kind in STATE_KINDS, kind
    return f"state_{owner}_{kind}"


def block_prefix(g: int, l: int) -> str:
    return f"block{g}_layer{l}"


@dataclasses.dataclass(frozen=True)
class ConvParams:
    """The parameters of one conv: kernel, then either a batch norm or a bias.

    `layer` is the conv's label (what the int8 importer calls the TFLite op it maps here)."""
    layer: str                  # e.g. 'block1_layer0/expansion/conv'
    kernel: str                 # kernel parameter name
    kernel_shape: Shape
    bn: Optional[str] = None    # BN prefix: '{bn}/gamma', ... each [C]
    bias: Optional[str] = None  # bias parameter name [C] (convs without BN)

    @property
    def channels(self) -> int:
        return self.kernel_shape[-1]

    def bn_names(self) -> Dict[str, str]:
        """BN field -> parameter name."""
        return {field: f"{self.bn}/{field}" for field in BN_FIELDS}

    def specs(self) -> List[Tuple[str, Shape]]:
        out = [(self.kernel, self.kernel_shape)]
        if self.bn is not None:
            out += [(name, (self.channels,)) for name in self.bn_names().values()]
        if self.bias is not None:
            out.append((self.bias, (self.channels,)))
        return out


def _bn_conv(prefix: str, kernel_shape: Shape, kernel: str = "conv", bn: str = "bn"):
    return ConvParams(f"{prefix}/{kernel}", f"{prefix}/{kernel}/kernel", kernel_shape,
                      bn=f"{prefix}/{bn}")


def _bias_conv(prefix: str, kernel_shape: Shape):
    return ConvParams(f"{prefix}/conv", f"{prefix}/kernel", kernel_shape, bias=f"{prefix}/bias")


def has_skip_projection(cin: int, cout: int, stride) -> bool:
    """A block's skip is the identity unless it changes width or resolution."""
    return cin != cout or any(s > 1 for s in stride)


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    """One block: its shape, its parameters and the states it carries (None: not this model)."""
    g: int
    l: int
    cin: int
    expand: int
    cout: int
    kernel: Tuple[int, int, int]     # (kt, kh, kw)
    stride: Tuple[int, int, int]
    expansion: ConvParams            # 1x1 cin -> expand
    feature: ConvParams              # depthwise: spatial 1 x kh x kw ((2+1)D) or kt x kh x kw (3D)
    feature_temporal: Optional[ConvParams]   # (2+1)D with kt > 1: depthwise kt x 1 x 1
    se_reduce: Optional[ConvParams]
    se_expand: Optional[ConvParams]
    pos_scale: Optional[str]         # a3..a5 stream: scale of the positional encoding []
    projection: ConvParams           # 1x1 expand -> cout (ReZero scale folded in at load)
    skip: Optional[ConvParams]       # 1x1 cin -> cout when the skip is not the identity
    rezero: str                      # ReZero scale []
    stream_buffer: Optional[str]
    pool_buffer: Optional[str]
    pool_frame_count: Optional[str]
    pos_enc_frame_count: Optional[str]
    buffer_after_stride: bool        # (2+1)D: the buffer holds the spatial conv's (strided) output

    @property
    def prefix(self) -> str:
        return block_prefix(self.g, self.l)

    @property
    def downsamples(self) -> bool:
        return self.stride[1] > 1

    def convs(self) -> List[ConvParams]:
        return [c for c in (self.expansion, self.feature, self.feature_temporal, self.se_reduce,
                            self.se_expand, self.projection, self.skip) if c is not None]

    def specs(self) -> List[Tuple[str, Shape]]:
        """Parameter name -> shape in network order."""
        out = self.expansion.specs() + self.feature.specs()
        if self.feature_temporal is not None:
            out += self.feature_temporal.specs()
        if self.se_reduce is not None:
            out += self.se_reduce.specs() + self.se_expand.specs()
        if self.pos_scale is not None:
            out.append((self.pos_scale, ()))
        out += self.projection.specs()
        if self.skip is not None:
            out += self.skip.specs()
        out.append((self.rezero, ()))
        return out


def _block_plan(cfg: ModelConfig, g, l, cin, expand, cout, kernel, stride) -> BlockPlan:
    p = block_prefix(g, l)
    kt, kh, kw = kernel
    two_plus_one = cfg.conv_type == "2plus1d"
    if two_plus_one:
        feature = _bn_conv(f"{p}/feature", (1, kh, kw, expand))
        temporal = (_bn_conv(f"{p}/feature", (kt, 1, 1, expand), kernel="conv_temporal",
                             bn="bn_temporal") if kt > 1 else None)
    else:
        feature, temporal = _bn_conv(f"{p}/feature", (kt, kh, kw, expand)), None
    se_reduce = se_expand = None
    if cfg.se_type != "none":
        se_in = 2 * expand if cfg.se_type == "2plus3d" else expand
        hidden = se_hidden_filters(expand, cfg.se_type)
        se_reduce = _bias_conv(f"{p}/se/reduce", (se_in, hidden))
        se_expand = _bias_conv(f"{p}/se/expand", (hidden, expand))
    causal_pool = cfg.causal and cfg.se_type in ("3d", "2plus3d")
    return BlockPlan(
        g=g, l=l, cin=cin, expand=expand, cout=cout, kernel=tuple(kernel), stride=tuple(stride),
        expansion=_bn_conv(f"{p}/expansion", (cin, expand)),
        feature=feature, feature_temporal=temporal, se_reduce=se_reduce, se_expand=se_expand,
        pos_scale=f"{p}/se/pos_encoding/scale" if cfg.uses_positional_encoding else None,
        projection=_bn_conv(f"{p}/projection", (expand, cout)),
        skip=(_bn_conv(f"{p}/skip", (cin, cout)) if has_skip_projection(cin, cout, stride)
              else None),
        rezero=f"{p}/rezero/scale",
        stream_buffer=state_name(p, "stream_buffer") if cfg.causal and kt > 1 else None,
        pool_buffer=state_name(p, "pool_buffer") if causal_pool else None,
        pool_frame_count=state_name(p, "pool_frame_count") if causal_pool else None,
        pos_enc_frame_count=(state_name(p, "pos_enc_frame_count")
                             if cfg.uses_positional_encoding else None),
        buffer_after_stride=two_plus_one)


@dataclasses.dataclass(frozen=True)
class NetworkPlan:
    """Every parameter and state of a model, by layer."""
    stem: ConvParams                 # dense [1, kh, kw, 3, C0]
    blocks: Tuple[BlockPlan, ...]
    head_project: ConvParams         # 1x1 -> P, then the global pool
    classifier_hidden: ConvParams    # 1x1 P -> hidden, with bias
    classifier_logits: ConvParams    # 1x1 hidden -> num_classes, with bias
    head_pool_buffer: Optional[str]
    head_pool_frame_count: Optional[str]

    def convs(self) -> List[ConvParams]:
        return ([self.stem] + [c for b in self.blocks for c in b.convs()]
                + [self.head_project, self.classifier_hidden, self.classifier_logits])


def plan(cfg: ModelConfig) -> NetworkPlan:
    """The parameter and state names of model `cfg`."""
    stem = cfg.stem
    head = cfg.head
    return NetworkPlan(
        stem=_bn_conv("stem", (1,) + stem.kernel[1:] + (3, stem.filters)),
        blocks=tuple(_block_plan(cfg, *layer) for layer in cfg.layers()),
        head_project=_bn_conv("head/project", (cfg.groups[-1].out_filters,
                                               head.project_filters)),
        classifier_hidden=_bias_conv("classifier/hidden", (head.project_filters,
                                                           head.hidden_filters)),
        classifier_logits=_bias_conv("classifier/logits", (head.hidden_filters,
                                                           cfg.num_classes)),
        head_pool_buffer=state_name(HEAD_PREFIX, "pool_buffer") if cfg.causal else None,
        head_pool_frame_count=(state_name(HEAD_PREFIX, "pool_frame_count") if cfg.causal
                               else None))


def param_specs(cfg: ModelConfig) -> "OrderedDict[str, Shape]":
    """Every parameter the model `cfg` needs: canonical name -> shape, in network order."""
    net = plan(cfg)
    specs = net.stem.specs()
    for block in net.blocks:
        specs += block.specs()
    specs += net.head_project.specs() + net.classifier_hidden.specs()
    specs += net.classifier_logits.specs()
    return OrderedDict(specs)


# ---- geometry ------------------------------------------------------------------------------

def same_padding(size: int, kernel: int, stride: int):
    """TF 'SAME' padding along one axis: (output size, pad before).  Extra padding goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2


def _halve(size: int) -> int:
    return math.ceil(size / 2)   # TF SAME with stride 2


def state_specs(cfg: ModelConfig, batch: int = 1, height: int = 172, width: int = 172
                ) -> "OrderedDict[str, Tuple[Shape, np.dtype]]":
    """Name -> (shape, dtype) of every stream state, in the official names and order of use
    (empty for whole-clip models)."""
    if not cfg.causal:
        return OrderedDict()
    specs = OrderedDict()
    h, w = _halve(height), _halve(width)          # after the stride-2 stem
    for block in plan(cfg).blocks:
        if block.downsamples and block.buffer_after_stride:
            h, w = _halve(h), _halve(w)
        if block.stream_buffer:
            specs[block.stream_buffer] = ((batch, block.kernel[0] - 1, h, w, block.expand),
                                          STATE_DTYPES["stream_buffer"])
        if block.pool_buffer:
            specs[block.pool_buffer] = ((batch, 1, 1, 1, block.expand),
                                        STATE_DTYPES["pool_buffer"])
            specs[block.pool_frame_count] = ((1,), STATE_DTYPES["pool_frame_count"])
        if block.pos_enc_frame_count:
            specs[block.pos_enc_frame_count] = ((1,), STATE_DTYPES["pos_enc_frame_count"])
        if block.downsamples and not block.buffer_after_stride:
            h, w = _halve(h), _halve(w)
    net = plan(cfg)
    specs[net.head_pool_buffer] = ((batch, 1, 1, 1, cfg.head.project_filters),
                                   STATE_DTYPES["pool_buffer"])
    specs[net.head_pool_frame_count] = ((1,), STATE_DTYPES["pool_frame_count"])
    return specs


def what_state_holds(name: str, shape) -> str:
    """A short description of state `name` (for `describe()` tables)."""
    kind = STATE_NAME.match(name)
    kind = kind.group(4) if kind else ""
    if kind == "stream_buffer":
        return f"last {shape[1]} frame(s) into the {shape[1] + 1}-tap causal temporal conv"
    if kind == "pool_buffer":
        return "running sum of per-frame spatial means"
    if kind == "pos_enc_frame_count":
        return "position of the next frame (positional encoding)"
    if kind == "pool_frame_count":
        return "frames summed so far"
    return ""


def state_sort_key(name: str):
    """Network order: blocks by (group, layer), the head last."""
    m = STATE_NAME.match(name)
    if m is None or m.group(1) == HEAD_PREFIX:
        return (10**6, 0, name)
    return (int(m.group(2)), int(m.group(3)), name)

