"""Float TFLite graphs: which form a file is, and what the walk checks instead of int8.

The converter writes a float MoViNet stream model in three forms, with the same graph as the
int8 one less its QUANTIZE / DEQUANTIZE ops at the edges:

    float32        float32 weights and activations (no optimization)
    float16        float16 weight constants, each behind a DEQUANTIZE to float32
                   (`supported_types=[tf.float16]`); the kernels compute in float32
    dynamic-range  int8 weights with per-channel scales, float activations
                   (`optimizations=[DEFAULT]` without a representative dataset): the larger
                   CONV_2D weights feed LiteRT's "hybrid" kernels directly (they quantize the
                   activations on the fly), the small ones stay float32

`prepare_float_walk` makes a float walk out of a `Walk`: the DEQUANTIZE of a constant becomes
that constant (`Walk.folded`, labelled as part of the weights), and the matchers check float
convs (`check_float_conv`) where they check int8 ones.  `conv_weights` gives a conv's real
weights: float32 values, float16 values widened, or int8 values times their channel scales
(minimovinet runs a dynamic-range file as float with these dequantized weights).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ..tflite import Operator, TFLiteModel
from .walk import GraphMismatch, Walk

FLOAT_FORMS = ("float32", "float16", "dynamic-range")
CONSTANT = "constants"                  # the label of a constant's DEQUANTIZE

_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _weight_origin(model: TFLiteModel, t: int) -> Tuple[str, bool]:
    """(the type a conv's weight tensor `t` is stored in, whether it is behind a
    DEQUANTIZE)."""
    graph = model.subgraphs[0]
    for op in graph.operators:
        if t in op.outputs and op.name == "DEQUANTIZE":
            return graph.tensors[op.inputs[0]].type_name, True
    return graph.tensors[t].type_name, False


def graph_form(model: TFLiteModel) -> str:
    """'int8' (a full-integer model), or one of FLOAT_FORMS, from the conv inputs and
    weights; '' when the graph has no conv."""
    graph = model.subgraphs[0] if len(model.subgraphs) == 1 else None
    if graph is None:
        return ""
    inputs, weights = set(), set()
    for op in graph.operators:
        if op.name in _CONVS and len(op.inputs) > 1:
            inputs.add(graph.tensors[op.inputs[0]].type_name)
            weights.add(_weight_origin(model, op.inputs[1])[0])
    if not inputs:
        return ""
    if inputs != {"FLOAT32"}:
        return "int8"
    if "INT8" in weights:
        return "dynamic-range"
    return "float16" if "FLOAT16" in weights else "float32"


def prepare_float_walk(w: Walk) -> None:
    """Mark `w` as a float walk and fold each DEQUANTIZE of a constant into a float32
    constant (the op is labelled `CONSTANT`)."""
    w.float_graph = True
    for op in w.ops:
        if op.name != "DEQUANTIZE" or len(op.inputs) != 1:
            continue
        src = op.inputs[0]
        data = w.tensors[src].data(w.model)
        if data is None:
            continue
        q = w.tensors[src].quantization
        value = np.asarray(data, np.float64)
        if q.is_quantized:                       # int8 constant: per tensor or per channel
            value = _dequantize(value, q, w.tensors[src].name)
        w.folded[op.outputs[0]] = value.astype(np.float32)
        w.layer_of[op.index] = CONSTANT


def _dequantize(values: np.ndarray, q, name: str) -> np.ndarray:
    """Real values of an int8 constant (per-tensor, or per channel along its axis)."""
    scale = np.asarray(q.scale, np.float64)
    zero = np.asarray(q.zero_point, np.float64)
    if scale.size == 1:
        return (values - zero.ravel()[0]) * scale[0]
    axis = int(q.quantized_dimension)
    if values.ndim <= axis or values.shape[axis] != scale.size:
        raise GraphMismatch(f"tensor {name!r}: {scale.size} scales for shape "
                            f"{list(values.shape)}")
    shape = [1] * values.ndim
    shape[axis] = scale.size
    return (values - zero.reshape(shape)) * scale.reshape(shape)


def check_float_conv(w: Walk, op: Operator, layer: str) -> None:
    """A float conv: float32 input, constant weights (float32, or int8 for a dynamic-range
    hybrid kernel) and a float32 bias constant."""
    x, weights = w.tensors[op.inputs[0]], w.tensors[op.inputs[1]]
    if x.type_name != "FLOAT32" or weights.type_name not in ("FLOAT32", "INT8"):
        raise GraphMismatch(f"{layer}: conv on {x.type_name} input with {weights.type_name} "
                            f"weights in a float graph (expected float32 input)")
    if w.const(op.inputs[1]) is None:
        raise GraphMismatch(f"{layer}: conv weights are not constants")
    if len(op.inputs) < 3 or op.inputs[2] < 0 or w.type_of(op.inputs[2]) != "FLOAT32" \
            or w.const(op.inputs[2]) is None:
        raise GraphMismatch(f"{layer}: conv without a float32 bias constant")


def conv_weights(w: Walk, op: Operator) -> Tuple[np.ndarray, np.ndarray]:
    """The conv's real kernel (float64, the file's layout: conv [Cout, kh, kw, Cin],
    depthwise [1, kh, kw, C]) and bias."""
    t = op.inputs[1]
    kernel = w.const(t).astype(np.float64)
    q = w.tensors[t].quantization
    if t not in w.folded and q.is_quantized:     # a hybrid kernel's int8 weights
        kernel = _dequantize(kernel, q, w.tensors[t].name)
    return kernel, w.const(op.inputs[2]).astype(np.float64)
