"""Write an int8 program as a TFLite flatbuffer that LiteRT loads and runs with its built-in
kernels (no flatbuffers, TensorFlow or LiteRT needed to write it).

    write_tflite(model, "model_int8.tflite")   # an Int8Movinet or an Int8Program

The file follows the TFLite schema, version 3 (`tflite.py` reads it; `flatbuffer.py` encodes
the tables): one subgraph 'main' holding the program's tensors in the program's order (with
their quantization, per tensor or per channel, and their constant data, each in a buffer of
its own, 16-byte aligned), then the int32 constants the TFLite operators take as inputs and
the program keeps as attributes (RESHAPE's shape, MEAN / SUM's axes, STRIDED_SLICE's begin /
end / strides; an equal constant already among the tensors is reused); the operators in the
program's order, each op kind as its TFLite builtin operator and options; the signature
`serving_default` of a stream model: inputs `image` and every state, outputs `logits` and
every state, under the program's state names (those of the official files).  The class
names, when known, are kept in the metadata entry `minimovinet_class_names` (one per line).

Reading a written file back (`tflite_import.import_tflite`, for the graphs it recognises)
gives the same program: the same tensors at the same indices, the same ops with the same
attributes.  An op kind without a
TFLite form here, or a float model, is refused with an `UnsupportedModelError`.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..atomic import atomic_open
from ..errors import InputError, UnsupportedModelError
from ..int8.program import Int8Program, OpSpec, TensorSpec
from .flatbuffer import Table, Vector, encode
from .int8_tflite import CLASS_NAMES_METADATA
from .tflite import (ACTIVATION_NAMES, BUILTIN_OPERATOR_NAMES, BUILTIN_OPTIONS_NAMES,
                     FILE_IDENTIFIER, PADDING_NAMES, SCHEMA_VERSION, TENSOR_TYPE_NAMES)

__all__ = ["write_tflite", "tflite_bytes", "TFLITE_OPS", "CLASS_NAMES_METADATA",
           "SIGNATURE_KEY"]

SIGNATURE_KEY = "serving_default"
IMAGE, LOGITS = "image", "logits"
_TYPES = {"int8": "INT8", "int32": "INT32", "float32": "FLOAT32"}
_BUFFER_ALIGN = 16

# minimovinet op kind -> the TFLite builtin operator it is written as
TFLITE_OPS = {
    "conv": "CONV_2D", "depthwise": "DEPTHWISE_CONV_2D", "add": "ADD", "mul": "MUL",
    "div": "DIV", "avg_pool": "AVERAGE_POOL_2D", "mean": "MEAN", "sum": "SUM",
    "hard_swish": "HARD_SWISH", "logistic": "LOGISTIC", "quantize": "QUANTIZE",
    "dequantize": "DEQUANTIZE", "cast": "CAST", "reshape": "RESHAPE",
    "concat": "CONCATENATION", "slice": "STRIDED_SLICE", "sin": "SIN", "cos": "COS",
}

# The operator version TensorFlow's converter records for the int8 form of each op (as in the
# official int8 files); an op on no int8 tensor is version 1.  LiteRT's built-in resolver
# registers every version from 1 up, so a lower version never keeps a file from loading.
_INT8_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "ADD": 2, "MUL": 2, "DIV": 2,
                  "AVERAGE_POOL_2D": 2, "MEAN": 2, "SUM": 2, "LOGISTIC": 2, "DEQUANTIZE": 2,
                  "CONCATENATION": 2, "STRIDED_SLICE": 2}
_SLICE_5D_VERSION = 4          # STRIDED_SLICE on more than 4 dimensions (the stream buffers)


def _enum(table: Tuple[str, ...], name: str, what: str) -> int:
    if name not in table:
        raise UnsupportedModelError(f"{what}: {name!r} has no TFLite value")
    return table.index(name)


def _options(type_name: str, fields: Dict[int, Tuple[str, object]]):
    return BUILTIN_OPTIONS_NAMES.index(type_name), Table(fields)


# ---- the operators ---------------------------------------------------------------------------
# Each writer returns (TFLite inputs, (options type, options table) or None).

class _Graph:
    """The subgraph being written: the program's tensors plus the int32 constants the TFLite
    operators need, and the operator codes used."""

    def __init__(self, program: Int8Program):
        self.program = program
        self.tensors: List[TensorSpec] = list(program.tensors)
        self.constants: Dict[bytes, int] = {}    # an int32 vector's bytes -> its tensor
        for i, t in enumerate(self.tensors):
            if (t.data is not None and t.dtype == "int32" and len(t.shape) == 1
                    and t.scale is None and t.channel_scales is None):
                self.constants.setdefault(np.asarray(t.data, "<i4").tobytes(), i)
        self.opcodes: Dict[Tuple[str, int], int] = {}

    def int32_vector(self, values, name: str) -> int:
        data = np.asarray(values, "<i4").reshape(-1)
        key = data.tobytes()
        if key not in self.constants:
            self.tensors.append(TensorSpec(name=name, shape=(data.size,), dtype="int32",
                                           data=data.astype(np.int32)))
            self.constants[key] = len(self.tensors) - 1
        return self.constants[key]

    def opcode(self, name: str, version: int) -> int:
        return self.opcodes.setdefault((name, version), len(self.opcodes))

    def shape(self, t: int) -> Tuple[int, ...]:
        return tuple(self.tensors[t].shape)


def _attr(op: OpSpec, name: str):
    if name not in op.attrs:
        raise UnsupportedModelError(f"{op.layer}: {op.kind} op without its attribute {name!r}")
    return op.attrs[name]


def _activation(op: OpSpec) -> int:
    return _enum(ACTIVATION_NAMES, op.attrs.get("activation", "NONE"),
                 f"{op.layer}: fused activation")


def _padding(op: OpSpec) -> int:
    return _enum(PADDING_NAMES, _attr(op, "padding"), f"{op.layer}: padding")


def _conv(g: _Graph, op: OpSpec):
    strides = {1: ("i32", _attr(op, "stride_w")), 2: ("i32", _attr(op, "stride_h"))}
    dilation = (op.attrs.get("dilation_w", 1), op.attrs.get("dilation_h", 1))
    if op.kind == "conv":
        return op.inputs, _options("Conv2DOptions", {
            0: ("i8", _padding(op)), **strides, 3: ("i8", _activation(op)),
            4: ("i32", dilation[0]), 5: ("i32", dilation[1])})
    channels_in = g.shape(op.inputs[0])[-1]
    channels_out = g.shape(op.inputs[1])[-1]             # kernel [1, kh, kw, C * multiplier]
    multiplier = op.attrs.get("depth_multiplier", channels_out // max(channels_in, 1))
    return op.inputs, _options("DepthwiseConv2DOptions", {
        0: ("i8", _padding(op)), **strides, 3: ("i32", int(multiplier)),
        4: ("i8", _activation(op)), 5: ("i32", dilation[0]), 6: ("i32", dilation[1])})


def _binary(g: _Graph, op: OpSpec):
    type_name = {"add": "AddOptions", "mul": "MulOptions", "div": "DivOptions"}[op.kind]
    return op.inputs, _options(type_name, {0: ("i8", _activation(op))})


def _avg_pool(g: _Graph, op: OpSpec):
    return op.inputs, _options("Pool2DOptions", {
        0: ("i8", _padding(op)), 1: ("i32", _attr(op, "stride_w")),
        2: ("i32", _attr(op, "stride_h")), 3: ("i32", _attr(op, "filter_w")),
        4: ("i32", _attr(op, "filter_h")), 5: ("i8", _activation(op))})


def _reduce(g: _Graph, op: OpSpec):
    axes = g.int32_vector(_attr(op, "axes"), f"{op.layer}/{op.kind}/axes")
    return (op.inputs[0], axes), _options("ReducerOptions", {
        0: ("bool", int(bool(op.attrs.get("keep_dims", False))))})


def _reshape(g: _Graph, op: OpSpec):
    shape = g.int32_vector(g.shape(op.outputs[0]), f"{op.layer}/reshape/shape")
    return (op.inputs[0], shape), None


def _concat(g: _Graph, op: OpSpec):
    return op.inputs, _options("ConcatenationOptions", {
        0: ("i32", int(_attr(op, "axis"))), 1: ("i8", _activation(op))})


def _strided_slice(g: _Graph, op: OpSpec):
    """[start, stop, step] per axis as begin / end / strides (a negative step running to the
    front takes the end mask: its stop -1 would count from the back)."""
    slices = _attr(op, "slices")
    end_mask = 0
    begin, end, strides = [], [], []
    for axis, (start, stop, step) in enumerate(slices):
        if step == 0:
            raise UnsupportedModelError(f"{op.layer}: slice with step 0 on axis {axis}")
        if stop < 0:
            end_mask |= 1 << axis
            stop = 0
        begin.append(start)
        end.append(stop)
        strides.append(step)
    label = f"{op.layer}/strided_slice"
    inputs = (op.inputs[0], g.int32_vector(begin, f"{label}/begin"),
              g.int32_vector(end, f"{label}/end"), g.int32_vector(strides, f"{label}/strides"))
    return inputs, _options("StridedSliceOptions", {1: ("i32", end_mask)})


def _plain(g: _Graph, op: OpSpec):
    return op.inputs, None


_WRITERS = {"conv": _conv, "depthwise": _conv, "add": _binary, "mul": _binary, "div": _binary,
            "avg_pool": _avg_pool, "mean": _reduce, "sum": _reduce, "hard_swish": _plain,
            "logistic": _plain, "quantize": _plain, "dequantize": _plain, "cast": _plain,
            "reshape": _reshape, "concat": _concat, "slice": _strided_slice, "sin": _plain,
            "cos": _plain}


def _version(g: _Graph, name: str, op: OpSpec) -> int:
    tensors = [g.tensors[t] for t in (*op.inputs, *op.outputs) if t >= 0]
    if name == "STRIDED_SLICE" and len(g.shape(op.inputs[0])) > 4:
        return _SLICE_5D_VERSION
    if any(t.dtype == "int8" for t in tensors):
        return _INT8_VERSIONS.get(name, 1)
    return 1


def _operator(g: _Graph, op: OpSpec) -> Table:
    name = TFLITE_OPS.get(op.kind)
    if name is None:
        raise UnsupportedModelError(f"{op.layer}: op kind {op.kind!r} has no TFLite form (the "
                                    f"writer knows {', '.join(sorted(TFLITE_OPS))})")
    n = len(g.program.tensors)
    for t in (*op.inputs, *op.outputs):
        if not -1 <= t < n:
            raise UnsupportedModelError(f"{op.layer}: {op.kind} refers to tensor {t}, out of "
                                        f"range ({n} tensors)")
    inputs, options = _WRITERS[op.kind](g, op)
    fields = {0: ("u32", g.opcode(name, _version(g, name, op))),
              1: ("ref", Vector(inputs, "<i4")), 2: ("ref", Vector(op.outputs, "<i4"))}
    if options is not None:
        fields[3] = ("u8", options[0])
        fields[4] = ("ref", options[1])
    return Table(fields)


# ---- tensors, buffers, the signature -----------------------------------------------------------

def _quantization(t: TensorSpec) -> Optional[Table]:
    if t.channel_scales is not None:
        scales = np.asarray(t.channel_scales, "<f4").reshape(-1)
        return Table({2: ("ref", Vector(scales)),
                      3: ("ref", Vector(np.zeros(scales.size, "<i8"))),
                      6: ("i32", int(t.quantized_dimension))})
    if t.scale is not None:
        return Table({2: ("ref", Vector([t.scale], "<f4")),
                      3: ("ref", Vector([int(t.zero_point or 0)], "<i8"))})
    return None


def _tensor(t: TensorSpec, index: int, buffer: int) -> Table:
    type_name = _TYPES.get(t.dtype)
    if type_name is None:
        raise UnsupportedModelError(f"tensor {index} {t.name!r} has dtype {t.dtype!r}, which "
                                    f"the TFLite writer does not write")
    fields = {0: ("ref", Vector(t.shape, "<i4")),
              1: ("i8", TENSOR_TYPE_NAMES.index(type_name)),
              2: ("u32", buffer), 3: ("ref", t.name)}
    q = _quantization(t)
    if q is not None:
        fields[4] = ("ref", q)
    return Table(fields)


def _constant_bytes(t: TensorSpec, index: int) -> np.ndarray:
    data = np.asarray(t.data)
    if data.shape != tuple(t.shape) or data.dtype != np.dtype(t.numpy_dtype):
        raise UnsupportedModelError(f"tensor {index} {t.name!r}: constant of shape "
                                    f"{list(data.shape)} {data.dtype}, expected "
                                    f"{list(t.shape)} {t.dtype}")
    little = np.ascontiguousarray(data.reshape(-1), dtype=data.dtype.newbyteorder("<"))
    return little.view(np.uint8)                          # (a 0-d scalar as 1 element)


def _signature(program: Int8Program) -> Tuple[List[Tuple[str, int]], List[Tuple[str, int]]]:
    inputs = [(IMAGE, program.image)] + [(n, i) for n, (i, _) in program.states.items()]
    outputs = [(LOGITS, program.logits)] + [(n, o) for n, (_, o) in program.states.items()]
    return inputs, outputs


def _tensor_maps(pairs) -> List[Table]:
    return [Table({0: ("ref", name), 1: ("u32", t)}) for name, t in pairs]


def _check_program(program) -> Int8Program:
    if isinstance(program, Int8Program):
        return program
    from ..float32.model import Movinet
    if isinstance(program, Movinet):
        raise UnsupportedModelError(
            "a .tflite file is written from an int8 model: this is a float32 model "
            f"({program.config.model_id} {program.config.variant}); quantize it first, or "
            f"save it as .h5")
    raise InputError(f"write_tflite takes an Int8Movinet or an Int8Program, not "
                     f"{type(program).__name__}")


def tflite_bytes(program: Int8Program, class_names: Optional[Sequence[str]] = None,
                 description: str = "") -> bytes:
    """The TFLite flatbuffer of `program` (see the module docstring)."""
    program = _check_program(program)
    n = len(program.tensors)
    for name, t in _signature(program)[0] + _signature(program)[1]:
        if not 0 <= t < n:
            raise UnsupportedModelError(f"the program's {name!r} is tensor {t}, out of range "
                                        f"({n} tensors)")
    g = _Graph(program)
    operators = [_operator(g, op) for op in program.ops]   # may add int32 constants
    buffers = [Table({})]                                   # buffer 0: the empty one
    tensors = []
    for i, t in enumerate(g.tensors):
        buffer = 0
        if t.data is not None:
            buffers.append(Table({0: ("ref", Vector(_constant_bytes(t, i),
                                                    align=_BUFFER_ALIGN))}))
            buffer = len(buffers) - 1
        tensors.append(_tensor(t, i, buffer))
    inputs, outputs = _signature(program)
    subgraph = Table({0: ("ref", tensors), 1: ("ref", Vector([t for _, t in inputs], "<i4")),
                      2: ("ref", Vector([t for _, t in outputs], "<i4")),
                      3: ("ref", operators), 4: ("ref", "main")})
    opcodes = []
    for (name, version), _ in sorted(g.opcodes.items(), key=lambda kv: kv[1]):
        code = BUILTIN_OPERATOR_NAMES.index(name)
        opcodes.append(Table({0: ("i8", min(code, 127)), 2: ("i32", version),
                              3: ("i32", code)}))
    metadata = []
    if class_names is not None:
        text = "\n".join(class_names).encode("utf-8")
        buffers.append(Table({0: ("ref", Vector(np.frombuffer(text, np.uint8),
                                                align=_BUFFER_ALIGN))}))
        metadata.append(Table({0: ("ref", CLASS_NAMES_METADATA), 1: ("u32", len(buffers) - 1)}))
    signature = Table({0: ("ref", _tensor_maps(inputs)), 1: ("ref", _tensor_maps(outputs)),
                       2: ("ref", SIGNATURE_KEY), 4: ("u32", 0)})
    fields = {0: ("u32", SCHEMA_VERSION), 1: ("ref", opcodes), 2: ("ref", [subgraph]),
              3: ("ref", description or "minimovinet int8 MoViNet stream model"),
              4: ("ref", buffers), 7: ("ref", [signature])}
    if metadata:
        fields[6] = ("ref", metadata)
    return encode(Table(fields), FILE_IDENTIFIER)


def write_tflite(model, path, class_names: Optional[Sequence[str]] = None,
                 description: str = "") -> None:
    """Write `model` (an `Int8Movinet`, or its `Int8Program`) to `path` as a TFLite file
    (atomically).  class_names: default the model's."""
    program = getattr(model, "program", model)          # a float model: refused
    if class_names is None:
        class_names = getattr(model, "class_names", None)
    data = tflite_bytes(program, class_names, description)
    with atomic_open(path, "wb", suffix=".tflite.part") as f:
        f.write(data)
