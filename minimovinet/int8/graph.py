"""The graph of a float stream MoViNet as TFLite lays it out: what post-training quantization
calibrates and then quantizes (`quantize_model.py`).

`build_graph(config, params, ...)` returns a `Graph`: the ops of one invocation (one frame of
one stream, as a TFLite stream model runs) in execution order, with the op kinds, TFLite
operator names, attributes and layer labels the importer gives a converter-made file
(`formats.tflite_import`), over tensors that are still float (`TensorSpec.dtype` 'float32',
constants with their float values; frame counts int32).  Each tensor has a role that says how
it is quantized:

    act      an activation: per-tensor asymmetric int8 from its calibrated range
    weight   a conv kernel: per-channel symmetric int8 (`channel_axis`)
    bias     a conv bias: int32 at input scale x weight scale
    scalar   a constant operand (ReZero, 1/6): int8 with its own range
    float    stays float32 (float image / states / logits, the float pools)
    int32    frame counts and their constants

`Graph.same` lists the groups of tensors that must share one quantization (a RESHAPE is a
view; CONCATENATION, STRIDED_SLICE and AVERAGE_POOL_2D keep their input's quantization; a
stream buffer's state is the concatenation's).

The convs follow TFLite: 1x1 convs and the stem are CONV_2D on [1, H, W, C], the spatial and
temporal depthwise convs DEPTHWISE_CONV_2D (the temporal one VALID over [1, kt, h*w, E]); batch
norm is folded into each conv (float64, as the float model folds it); the ReZero scale is a
MUL after the projection; the hard sigmoid gate is relu6(x + 3) / 6 with the + 3 in the gate
conv's bias (what the converter does; `dequantize.py` takes it out again).
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..config import ModelConfig
from ..errors import UnsupportedModelError
from ..structure import ConvParams, plan, same_padding, state_specs
from .program import OpSpec, TensorSpec

# the float model's activations -> how the int8 graph computes them after a conv
FUSED = {"relu6": "RELU6", "relu": "RELU", "linear": "NONE", "hard_swish": "NONE",
         "swish": "NONE"}


@dataclasses.dataclass
class Graph:
    tensors: List[TensorSpec]
    roles: List[str]
    ops: List[OpSpec]
    image: int
    logits: int
    states: "OrderedDict[str, Tuple[int, int]]"
    config: ModelConfig
    blocks: List[dict]
    same: List[List[int]]
    channel_axis: Dict[int, int]          # weight tensor -> its per-channel axis
    bias_of: Dict[int, Tuple[int, int]]   # bias tensor -> (conv input, weight)
    fixed: Dict[int, Tuple[float, int]]   # tensors whose quantization is fixed (scale, zp)
    height: int
    width: int


class GraphBuilder:
    """Tensors and ops appended in execution order."""

    def __init__(self, config: ModelConfig):
        self.config = config
        self.tensors: List[TensorSpec] = []
        self.roles: List[str] = []
        self.ops: List[OpSpec] = []
        self.same: List[List[int]] = []
        self.channel_axis: Dict[int, int] = {}
        self.bias_of: Dict[int, Tuple[int, int]] = {}
        self.fixed: Dict[int, Tuple[float, int]] = {}
        self.states: "OrderedDict[str, List[Optional[int]]]" = OrderedDict()

    def tensor(self, name, shape, role="act", data=None, dtype="float32") -> int:
        if role == "int32":
            dtype = "int32"
        if data is not None:
            data = np.asarray(data, np.int32 if dtype == "int32" else np.float32)
        self.tensors.append(TensorSpec(name=name, shape=tuple(int(d) for d in shape),
                                       dtype=dtype, data=data))
        self.roles.append(role)
        return len(self.tensors) - 1

    def shape(self, t) -> tuple:
        return self.tensors[t].shape

    def op(self, kind, layer, inputs, out_shape, tflite_op, attrs=None, role="act",
           name=None) -> int:
        out = self.tensor(name or f"{layer}/{kind}:{len(self.ops)}", out_shape, role)
        self.ops.append(OpSpec(kind=kind, layer=layer, inputs=tuple(inputs), outputs=(out,),
                               attrs=dict(attrs or {}), tflite_op=tflite_op))
        return out

    def reshape(self, x, shape, layer) -> int:
        out = self.op("reshape", layer, (x,), shape, "RESHAPE", role=self.roles[x])
        if self.roles[x] == "act":
            self.same.append([x, out])
        return out

    # ---- convs -----------------------------------------------------------------------------

    def conv(self, layer, x, kernel, bias, stride=1, activation="NONE", padding="SAME"):
        """CONV_2D: x [1, H, W, Cin], kernel [Cout, kh, kw, Cin] -> [1, Ho, Wo, Cout]."""
        _, H, W, _ = self.shape(x)
        cout, kh, _, _ = kernel.shape
        Ho, Wo = same_padding(H, kh, stride)[0], same_padding(W, kernel.shape[2], stride)[0]
        w = self.tensor(f"{layer}/kernel", kernel.shape, "weight", kernel)
        b = self.tensor(f"{layer}/bias", (cout,), "bias", bias)
        self.channel_axis[w] = 0
        self.bias_of[b] = (x, w)
        return self.op("conv", layer, (x, w, b), (1, Ho, Wo, cout), "CONV_2D",
                       dict(stride_h=stride, stride_w=stride, padding=padding,
                            activation=activation))

    def depthwise(self, layer, x, kernel, bias, stride=1, activation="NONE", padding="SAME"):
        """DEPTHWISE_CONV_2D: x [1, H, W, C], kernel [1, kh, kw, C]."""
        _, H, W, C = self.shape(x)
        kh, kw = kernel.shape[1:3]
        if padding == "SAME":
            Ho, Wo = same_padding(H, kh, stride)[0], same_padding(W, kw, stride)[0]
        else:
            Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
        w = self.tensor(f"{layer}/kernel", kernel.shape, "weight", kernel)
        b = self.tensor(f"{layer}/bias", (C,), "bias", bias)
        self.channel_axis[w] = 3
        self.bias_of[b] = (x, w)
        return self.op("depthwise", layer, (x, w, b), (1, Ho, Wo, C), "DEPTHWISE_CONV_2D",
                       dict(stride_h=stride, stride_w=stride, padding=padding,
                            activation=activation, depth_multiplier=1))

    def activation(self, x, name, act_layer):
        """The activation ops after a conv whose fused activation is already applied."""
        if name == "hard_swish":
            return self.op("hard_swish", act_layer, (x,), self.shape(x), "HARD_SWISH")
        if name == "swish":                       # x * sigmoid(x): LOGISTIC, then MUL
            s = self.op("logistic", act_layer, (x,), self.shape(x), "LOGISTIC")
            self.fixed[s] = (1.0 / 256.0, -128)
            return self.op("mul", act_layer, (x, s), self.shape(x), "MUL",
                           dict(activation="NONE"))
        return x

    def scalar(self, name, value) -> int:
        return self.tensor(name, (), "scalar", np.float32(value))

    def mul(self, layer, a, b, role="act"):
        return self.op("mul", layer, (a, b), self.shape(a), "MUL", dict(activation="NONE"),
                       role=role)

    def add(self, layer, a, b, role="act"):
        return self.op("add", layer, (a, b), self.shape(a), "ADD", dict(activation="NONE"),
                       role=role)


def fused_and_after(act: str) -> Tuple[str, str]:
    if act not in FUSED:
        raise UnsupportedModelError(f"activation {act!r} has no int8 form")
    return FUSED[act], act


# ---- weights in TFLite layouts -----------------------------------------------------------------

def folded(params, conv: ConvParams, eps: float) -> Tuple[np.ndarray, np.ndarray]:
    """(kernel with BN folded, bias) in minimovinet's layout, float32 (as the float model)."""
    kernel = params[conv.kernel].astype(np.float64)
    if conv.bn is None:
        return kernel.astype(np.float32), params[conv.bias].astype(np.float32)
    n = conv.bn_names()
    scale = (params[n["gamma"]].astype(np.float64)
             / np.sqrt(params[n["moving_variance"]].astype(np.float64) + eps))
    bias = -params[n["moving_mean"]].astype(np.float64) * scale + params[n["beta"]]
    return (kernel * scale).astype(np.float32), bias.astype(np.float32)


def pointwise_kernel(k) -> np.ndarray:
    return np.ascontiguousarray(k.T[:, None, None, :])          # [Cin, Cout] -> [Cout, 1, 1, Cin]


def stem_kernel(k) -> np.ndarray:
    return np.ascontiguousarray(k[0].transpose(3, 0, 1, 2))     # [1, kh, kw, 3, C] -> [C, kh, kw, 3]


def spatial_kernel(k) -> np.ndarray:
    return np.ascontiguousarray(k)                              # [1, kh, kw, C]


def temporal_kernel(k) -> np.ndarray:
    return np.ascontiguousarray(k.reshape(1, k.shape[0], 1, k.shape[-1]))   # [kt,1,1,C] -> [1,kt,1,C]


# ---- the network -------------------------------------------------------------------------------

def check_supported(cfg: ModelConfig) -> None:
    if not cfg.causal or cfg.conv_type != "2plus1d":
        raise UnsupportedModelError(
            f"model {cfg.model_id}-{cfg.variant}: only causal (2+1)D stream models are "
            f"quantized (the 'stream' and 'mobile' variants); this one is "
            f"{'causal' if cfg.causal else 'a whole-clip model'} with {cfg.conv_type} convs")
    if cfg.se_type not in ("2plus3d", "none"):
        raise UnsupportedModelError(f"squeeze-excitation {cfg.se_type!r} has no int8 form "
                                    f"here (stream models use '2plus3d')")
    if cfg.se_type != "none" and cfg.gating_activation != "hard_sigmoid":
        raise UnsupportedModelError(f"the SE gate {cfg.gating_activation!r} has no int8 form "
                                    f"here (stream models use hard_sigmoid)")
    for name in (cfg.activation, cfg.classifier_activation):
        fused_and_after(name)


def build_graph(config: ModelConfig, params, height: int, width: int, *, image="float",
                states="float", pools="int8", logits="float") -> Graph:
    """The graph of `config` with float `params` for frames of height x width (see the
    module docstring).  image / states / logits: 'float' or 'int8' interfaces; pools: 'int8'
    (the converter's running sums and DIV in int8) or 'float' (running sums, frame counts and
    the division in float32, between a DEQUANTIZE and a QUANTIZE)."""
    check_supported(config)
    from .graph_blocks import build_block, build_head, build_input
    b = GraphBuilder(config)
    net = plan(config)
    specs = state_specs(config, 1, height, width)
    for name in specs:
        b.states[name] = [None, None]
    opts = dict(states=states, pools=pools, eps=config.bn_epsilon)
    image_t, x = build_input(b, net, params, height, width, image, opts)
    blocks = []
    for block in net.blocks:
        x, spec = build_block(b, block, params, x, specs, opts)
        blocks.append(dict(index=len(blocks), **spec))
    logits_t = build_head(b, net, params, x, specs, opts, logits)
    missing = [n for n, (i, o) in b.states.items() if i is None or o is None]
    if missing:
        raise UnsupportedModelError(f"the graph has no place for states {missing[:3]}")
    return Graph(tensors=b.tensors, roles=b.roles, ops=b.ops, image=image_t, logits=logits_t,
                 states=OrderedDict((n, (i, o)) for n, (i, o) in b.states.items()),
                 config=config, blocks=blocks, same=b.same, channel_axis=b.channel_axis,
                 bias_of=b.bias_of, fixed=b.fixed, height=height, width=width)

