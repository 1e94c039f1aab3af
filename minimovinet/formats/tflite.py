"""Read a TFLite ``.tflite`` model file with nothing but Python and NumPy.

A ``.tflite`` file is a FlatBuffer whose root table is ``tflite.Model`` (schema
``tensorflow/compiler/mlir/lite/schema/schema.fbs``, file identifier ``TFL3``).  This module
implements the small part of the FlatBuffers binary format the schema needs and decodes the model
into plain dataclasses; it never imports ``flatbuffers``, TensorFlow, ``tflite`` or LiteRT.

It decodes what minimovinet reads: tensors (shapes, types, quantization, constant data),
operators with the builtin options of the ops a MoViNet stream graph uses (any other op is
named, its options only by their type: `UndecodedOptions`), signatures and metadata.

FlatBuffers in brief (all little-endian):

* the file starts with a ``uoffset`` (uint32) to the root table, then the 4-byte identifier;
* a table starts with an ``soffset`` (int32): its vtable sits at ``table - soffset``;
* a vtable is ``uint16 vtable_bytes, uint16 table_bytes`` followed by one ``uint16`` per field:
  the field's offset inside the table, 0 when the field is absent (the default applies);
* strings, vectors and sub-tables are reached through a ``uoffset`` stored in the field, relative
  to the field's own position; a vector is a ``uint32`` length followed by its elements (vectors
  of tables hold one ``uoffset`` per element, relative to that element's position);
* a union field ``u`` takes two vtable slots: ``u_type`` (uint8, 0 = none) then ``u`` itself.

Every read is bounds-checked, so a truncated, corrupted or foreign file raises
:class:`~minimovinet.errors.TFLiteError` naming what could not be read, never ``IndexError`` or
``struct.error``.  Constant data is exposed as read-only NumPy views of the file's bytes.

Entry point: :func:`read_tflite`.
"""
from __future__ import annotations

import dataclasses
import math
import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ..errors import TFLiteError

__all__ = [
    "read_tflite", "TFLiteModel", "SubGraph", "Tensor", "Quantization", "Operator",
    "OperatorCode", "SignatureDef", "Metadata", "UndecodedOptions",
    "BUILTIN_OPERATOR_NAMES", "BUILTIN_OPTIONS_NAMES", "TENSOR_TYPE_NAMES",
    "builtin_operator_name",
    "Conv2DOptions", "DepthwiseConv2DOptions", "Pool2DOptions", "ConcatenationOptions",
    "AddOptions", "MulOptions", "DivOptions", "ReshapeOptions", "StridedSliceOptions",
    "ReducerOptions", "CastOptions",
]

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3

# --------------------------------------------------------------------------------------------
# Enum name tables (schema order; the value of a name is its position).
# --------------------------------------------------------------------------------------------

BUILTIN_OPERATOR_NAMES: Tuple[str, ...] = tuple("""
    ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
    EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
    LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
    RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS
    SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER
    BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE
    UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT
    LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG
    PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE
    EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD
    REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV
    REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU
    SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE
    RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE
    NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM
    BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D
    IMAG REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL
    CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS
    RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE
    RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX UNSORTED_SEGMENT_SUM ATAN2
    UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT STABLEHLO_LOGISTIC STABLEHLO_ADD
    STABLEHLO_DIVIDE STABLEHLO_MULTIPLY STABLEHLO_MAXIMUM STABLEHLO_RESHAPE STABLEHLO_CLAMP
    STABLEHLO_CONCATENATE STABLEHLO_BROADCAST_IN_DIM STABLEHLO_CONVOLUTION STABLEHLO_SLICE
    STABLEHLO_CUSTOM_CALL STABLEHLO_REDUCE STABLEHLO_ABS STABLEHLO_AND STABLEHLO_COSINE
    STABLEHLO_EXPONENTIAL STABLEHLO_FLOOR STABLEHLO_LOG STABLEHLO_MINIMUM STABLEHLO_NEGATE
    STABLEHLO_OR STABLEHLO_POWER STABLEHLO_REMAINDER STABLEHLO_RSQRT STABLEHLO_SELECT
    STABLEHLO_SUBTRACT STABLEHLO_TANH STABLEHLO_SCATTER STABLEHLO_COMPARE STABLEHLO_CONVERT
    STABLEHLO_DYNAMIC_SLICE STABLEHLO_DYNAMIC_UPDATE_SLICE STABLEHLO_PAD STABLEHLO_IOTA
    STABLEHLO_DOT_GENERAL STABLEHLO_REDUCE_WINDOW STABLEHLO_SORT STABLEHLO_WHILE
    STABLEHLO_GATHER STABLEHLO_TRANSPOSE DILATE STABLEHLO_RNG_BIT_GENERATOR REDUCE_WINDOW
    STABLEHLO_COMPOSITE STABLEHLO_SHIFT_LEFT STABLEHLO_CBRT STABLEHLO_CASE
""".split())

BUILTIN_OPTIONS_NAMES: Tuple[str, ...] = tuple("""
    NONE Conv2DOptions DepthwiseConv2DOptions ConcatEmbeddingsOptions LSHProjectionOptions
    Pool2DOptions SVDFOptions RNNOptions FullyConnectedOptions SoftmaxOptions
    ConcatenationOptions AddOptions L2NormOptions LocalResponseNormalizationOptions LSTMOptions
    ResizeBilinearOptions CallOptions ReshapeOptions SkipGramOptions SpaceToDepthOptions
    EmbeddingLookupSparseOptions MulOptions PadOptions GatherOptions BatchToSpaceNDOptions
    SpaceToBatchNDOptions TransposeOptions ReducerOptions SubOptions DivOptions SqueezeOptions
    SequenceRNNOptions StridedSliceOptions ExpOptions TopKV2Options SplitOptions
    LogSoftmaxOptions CastOptions DequantizeOptions MaximumMinimumOptions ArgMaxOptions
    LessOptions NegOptions PadV2Options GreaterOptions GreaterEqualOptions LessEqualOptions
    SelectOptions SliceOptions TransposeConvOptions SparseToDenseOptions TileOptions
    ExpandDimsOptions EqualOptions NotEqualOptions ShapeOptions PowOptions ArgMinOptions
    FakeQuantOptions PackOptions LogicalOrOptions OneHotOptions LogicalAndOptions
    LogicalNotOptions UnpackOptions FloorDivOptions SquareOptions ZerosLikeOptions FillOptions
    BidirectionalSequenceLSTMOptions BidirectionalSequenceRNNOptions
    UnidirectionalSequenceLSTMOptions FloorModOptions RangeOptions ResizeNearestNeighborOptions
    LeakyReluOptions SquaredDifferenceOptions MirrorPadOptions AbsOptions SplitVOptions
    UniqueOptions ReverseV2Options AddNOptions GatherNdOptions CosOptions WhereOptions
    RankOptions ReverseSequenceOptions MatrixDiagOptions QuantizeOptions MatrixSetDiagOptions
    HardSwishOptions IfOptions WhileOptions DepthToSpaceOptions NonMaxSuppressionV4Options
    NonMaxSuppressionV5Options ScatterNdOptions SelectV2Options DensifyOptions SegmentSumOptions
    BatchMatMulOptions CumsumOptions CallOnceOptions BroadcastToOptions Rfft2dOptions
    Conv3DOptions HashtableOptions HashtableFindOptions HashtableImportOptions
    HashtableSizeOptions VarHandleOptions ReadVariableOptions AssignVariableOptions
    RandomOptions BucketizeOptions GeluOptions DynamicUpdateSliceOptions
    UnsortedSegmentProdOptions UnsortedSegmentMaxOptions UnsortedSegmentMinOptions
    UnsortedSegmentSumOptions ATan2Options SignOptions BitcastOptions BitwiseXorOptions
    RightShiftOptions
""".split())

TENSOR_TYPE_NAMES: Tuple[str, ...] = tuple("""
    FLOAT32 FLOAT16 INT32 UINT8 INT64 STRING BOOL INT16 COMPLEX64 INT8 FLOAT64 COMPLEX128 UINT64
    RESOURCE VARIANT UINT32 UINT16 INT4 BFLOAT16 INT2 UINT4 FLOAT8_E4M3FN FLOAT8_E5M2
""".split())

PADDING_NAMES = ("SAME", "VALID")
ACTIVATION_NAMES = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")

_CUSTOM_CODE = BUILTIN_OPERATOR_NAMES.index("CUSTOM")

# TensorType -> little-endian NumPy dtype; types without a NumPy equivalent (packed int4/int2,
# bfloat16, float8, resource, variant) and STRING (no MoViNet graph has one) map to None: their
# constant data is not decoded.
_NUMPY_DTYPES: Dict[str, Optional[np.dtype]] = {
    "FLOAT32": np.dtype("<f4"), "FLOAT16": np.dtype("<f2"), "FLOAT64": np.dtype("<f8"),
    "INT8": np.dtype("i1"), "UINT8": np.dtype("u1"), "INT16": np.dtype("<i2"),
    "UINT16": np.dtype("<u2"), "INT32": np.dtype("<i4"), "UINT32": np.dtype("<u4"),
    "INT64": np.dtype("<i8"), "UINT64": np.dtype("<u8"), "BOOL": np.dtype("?"),
    "COMPLEX64": np.dtype("<c8"), "COMPLEX128": np.dtype("<c16"),
}


def _enum_name(table: Tuple[str, ...], value: int) -> str:
    return table[value] if 0 <= value < len(table) else f"UNKNOWN_{value}"


def builtin_operator_name(code: int) -> str:
    """The BuiltinOperator enum name of ``code`` (``UNKNOWN_<code>`` when not in the table)."""
    return _enum_name(BUILTIN_OPERATOR_NAMES, code)


# --------------------------------------------------------------------------------------------
# Bounds-checked FlatBuffers reading.
# --------------------------------------------------------------------------------------------

_U8 = struct.Struct("<B")
_I8 = struct.Struct("<b")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class _Buf:
    """The file's bytes, with checked reads."""
    __slots__ = ("data", "size")

    def __init__(self, data: bytes):
        self.data = data
        self.size = len(data)

    def check(self, pos: int, nbytes: int, what: str) -> None:
        if pos < 0:
            raise TFLiteError(f"corrupt: {what} points before the start of the file "
                              f"(byte offset {pos})")
        if pos + nbytes > self.size:
            raise TFLiteError(f"truncated: {what} (bytes {pos}..{pos + nbytes}) beyond end of "
                              f"file ({self.size} bytes)")

    def read(self, st: struct.Struct, pos: int, what: str):
        self.check(pos, st.size, what)
        return st.unpack_from(self.data, pos)[0]


class _Table:
    """One FlatBuffers table: its position, its vtable, and typed field accessors.

    Field accessors take the vtable slot (field id in schema order, counting a union as two)
    and the field's name, used only in error messages.
    """
    __slots__ = ("buf", "pos", "vt", "vt_size", "obj_size", "what")

    def __init__(self, buf: _Buf, pos: int, what: str):
        self.buf = buf
        self.pos = pos
        self.what = what
        soffset = buf.read(_I32, pos, f"{what} table")
        vt = pos - soffset
        vt_size = buf.read(_U16, vt, f"{what} vtable")
        if vt_size < 4 or vt_size % 2:
            raise TFLiteError(f"corrupt: {what} vtable at byte {vt} has invalid size {vt_size}")
        buf.check(vt, vt_size, f"{what} vtable")
        obj_size = _U16.unpack_from(buf.data, vt + 2)[0]
        if obj_size < 4:
            raise TFLiteError(f"corrupt: {what} table at byte {pos} has invalid size {obj_size}")
        buf.check(pos, obj_size, f"{what} table")
        self.vt = vt
        self.vt_size = vt_size
        self.obj_size = obj_size

    def _field(self, slot: int, nbytes: int, name: str) -> Optional[int]:
        entry = 4 + 2 * slot
        if entry >= self.vt_size:
            return None
        off = _U16.unpack_from(self.buf.data, self.vt + entry)[0]
        if off == 0:
            return None
        if off < 4 or off + nbytes > self.obj_size:
            raise TFLiteError(f"corrupt: {self.what} field {name!r} at table offset {off} lies "
                              f"outside its {self.obj_size}-byte table")
        return self.pos + off

    def has(self, slot: int) -> bool:
        entry = 4 + 2 * slot
        return (entry < self.vt_size
                and _U16.unpack_from(self.buf.data, self.vt + entry)[0] != 0)

    # scalars --------------------------------------------------------------------------------
    def scalar(self, slot: int, st: struct.Struct, default, name: str):
        p = self._field(slot, st.size, name)
        return default if p is None else st.unpack_from(self.buf.data, p)[0]

    def u8(self, slot, name, default=0):
        return self.scalar(slot, _U8, default, name)

    def i8(self, slot, name, default=0):
        return self.scalar(slot, _I8, default, name)

    def i32(self, slot, name, default=0):
        return self.scalar(slot, _I32, default, name)

    def u32(self, slot, name, default=0):
        return self.scalar(slot, _U32, default, name)

    def u64(self, slot, name, default=0):
        return self.scalar(slot, _U64, default, name)

    def bool(self, slot, name, default=False):
        return bool(self.scalar(slot, _U8, int(default), name))

    # references -----------------------------------------------------------------------------
    def _ref(self, slot: int, name: str) -> Optional[int]:
        p = self._field(slot, 4, name)
        if p is None:
            return None
        target = p + _U32.unpack_from(self.buf.data, p)[0]
        if target >= self.buf.size:
            raise TFLiteError(f"truncated: {self.what} field {name!r} offset {target} beyond "
                              f"end of file ({self.buf.size} bytes)")
        return target

    def table(self, slot: int, name: str, what: Optional[str] = None) -> Optional["_Table"]:
        t = self._ref(slot, name)
        return None if t is None else _Table(self.buf, t, what or f"{self.what} {name}")

    def vector(self, slot: int, elem_size: int, name: str) -> Optional[Tuple[int, int]]:
        """(position of the first element, number of elements), or None when absent."""
        t = self._ref(slot, name)
        if t is None:
            return None
        n = self.buf.read(_U32, t, f"{self.what} {name} length")
        self.buf.check(t + 4, n * elem_size, f"{self.what} {name} ({n} elements)")
        return t + 4, n

    def array(self, slot: int, dtype: str, name: str) -> Optional[np.ndarray]:
        dt = np.dtype(dtype)
        v = self.vector(slot, dt.itemsize, name)
        if v is None:
            return None
        start, n = v
        if n == 0:
            return np.empty(0, dt)
        return np.frombuffer(self.buf.data, dtype=dt, count=n, offset=start)

    def ints(self, slot: int, name: str, dtype: str = "<i4") -> Optional[Tuple[int, ...]]:
        a = self.array(slot, dtype, name)
        return None if a is None else tuple(a.tolist())

    def string(self, slot: int, name: str) -> Optional[str]:
        v = self.vector(slot, 1, name)
        if v is None:
            return None
        start, n = v
        try:
            return self.buf.data[start:start + n].decode("utf-8")
        except UnicodeDecodeError as e:
            raise TFLiteError(f"corrupt: {self.what} {name} is not valid UTF-8 ({e})") from None

    def tables(self, slot: int, name: str, what: str) -> List["_Table"]:
        """A vector of tables (empty list when absent); element i is described as ``what i``."""
        v = self.vector(slot, 4, name)
        if v is None:
            return []
        start, n = v
        data, buf = self.buf.data, self.buf
        out = []
        for i in range(n):
            p = start + 4 * i
            t = p + _U32.unpack_from(data, p)[0]
            if t >= buf.size:
                raise TFLiteError(f"truncated: {what} {i} table offset {t} beyond end of file "
                                  f"({buf.size} bytes)")
            out.append(_Table(buf, t, f"{what} {i}"))
        return out


# --------------------------------------------------------------------------------------------
# Builtin options: decoded for the ops a MoViNet stream graph is made of (the int8 importer's
# SUPPORTED_OPS; HARD_SWISH, LOGISTIC, QUANTIZE and DEQUANTIZE have no option fields).  The
# options of any other op stay `UndecodedOptions`, which names their type.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Conv2DOptions:
    padding: str = "SAME"
    stride_w: int = 0
    stride_h: int = 0
    fused_activation_function: str = "NONE"
    dilation_w_factor: int = 1
    dilation_h_factor: int = 1
    quantized_bias_type: str = "FLOAT32"  # FLOAT32 (the default) means "not set"


@dataclass(frozen=True)
class DepthwiseConv2DOptions:
    padding: str = "SAME"
    stride_w: int = 0
    stride_h: int = 0
    depth_multiplier: int = 0
    fused_activation_function: str = "NONE"
    dilation_w_factor: int = 1
    dilation_h_factor: int = 1


@dataclass(frozen=True)
class Pool2DOptions:
    padding: str = "SAME"
    stride_w: int = 0
    stride_h: int = 0
    filter_width: int = 0
    filter_height: int = 0
    fused_activation_function: str = "NONE"


@dataclass(frozen=True)
class ConcatenationOptions:
    axis: int = 0
    fused_activation_function: str = "NONE"


@dataclass(frozen=True)
class AddOptions:
    fused_activation_function: str = "NONE"
    pot_scale_int16: bool = True


@dataclass(frozen=True)
class MulOptions:
    fused_activation_function: str = "NONE"


@dataclass(frozen=True)
class DivOptions:
    fused_activation_function: str = "NONE"


@dataclass(frozen=True)
class ReshapeOptions:
    new_shape: Optional[Tuple[int, ...]] = None  # None: the shape comes from the 2nd input


@dataclass(frozen=True)
class StridedSliceOptions:
    begin_mask: int = 0
    end_mask: int = 0
    ellipsis_mask: int = 0
    new_axis_mask: int = 0
    shrink_axis_mask: int = 0
    offset: bool = False


@dataclass(frozen=True)
class ReducerOptions:
    """Options of SUM, MEAN, REDUCE_MAX/MIN/PROD/ANY/ALL (the axes are the 2nd input)."""
    keep_dims: bool = False


@dataclass(frozen=True)
class CastOptions:
    in_data_type: str = "FLOAT32"
    out_data_type: str = "FLOAT32"


@dataclass(frozen=True)
class UndecodedOptions:
    """Options of a type this reader does not decode (or that has no fields): its name only."""
    type_name: str


def _read_enum(table: Tuple[str, ...]):
    return lambda t, slot, name, default: _enum_name(table, t.i8(slot, name,
                                                                table.index(default)))


_FIELD_READERS = {
    "i32": lambda t, slot, name, default: t.i32(slot, name, default),
    "bool": lambda t, slot, name, default: t.bool(slot, name, default),
    "i32[]": lambda t, slot, name, default: t.ints(slot, name),
    "padding": _read_enum(PADDING_NAMES),
    "activation": _read_enum(ACTIVATION_NAMES),
    "tensor_type": _read_enum(TENSOR_TYPE_NAMES),
}

# Field kinds in vtable-slot order; None marks a deprecated slot.  Every other field of the
# dataclass is read from the slot at its position in this list, with the dataclass default.
_OPTIONS_LAYOUT: Dict[str, Tuple[type, Tuple[Optional[str], ...]]] = {
    "Conv2DOptions": (Conv2DOptions, ("padding", "i32", "i32", "activation", "i32", "i32",
                                      "tensor_type")),
    "DepthwiseConv2DOptions": (DepthwiseConv2DOptions, ("padding", "i32", "i32", "i32",
                                                        "activation", "i32", "i32")),
    "Pool2DOptions": (Pool2DOptions, ("padding", "i32", "i32", "i32", "i32", "activation")),
    "ConcatenationOptions": (ConcatenationOptions, ("i32", "activation")),
    "AddOptions": (AddOptions, ("activation", "bool")),
    "MulOptions": (MulOptions, ("activation",)),
    "DivOptions": (DivOptions, ("activation",)),
    "ReshapeOptions": (ReshapeOptions, ("i32[]",)),
    "StridedSliceOptions": (StridedSliceOptions, ("i32", "i32", "i32", "i32", "i32", "bool")),
    "ReducerOptions": (ReducerOptions, ("bool",)),
    "CastOptions": (CastOptions, ("tensor_type", "tensor_type")),
}


def _decode_options(type_name: str, tab: Optional[_Table]):
    layout = _OPTIONS_LAYOUT.get(type_name)
    if layout is None:
        return UndecodedOptions(type_name)
    cls, kinds = layout
    fields = dataclasses.fields(cls)
    if tab is None:  # union type set without a table: every field takes its default
        return cls()
    values = {}
    fi = 0
    for slot, kind in enumerate(kinds):
        if kind is None:
            continue
        f = fields[fi]
        fi += 1
        values[f.name] = _FIELD_READERS[kind](tab, slot, f.name, f.default)
    return cls(**values)


# --------------------------------------------------------------------------------------------
# The model.
# --------------------------------------------------------------------------------------------

@dataclass
class Quantization:
    """Affine quantization ``real = scale * (q - zero_point)``.

    Per-tensor when ``scale`` has one entry, per-channel along ``quantized_dimension`` when it
    has ``shape[quantized_dimension]`` entries; empty arrays when the tensor is not quantized.
    """
    scale: np.ndarray                       # float32
    zero_point: np.ndarray                  # int64
    quantized_dimension: int = 0

    @property
    def is_quantized(self) -> bool:
        return self.scale.size > 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


def _no_quantization() -> Quantization:
    return Quantization(np.empty(0, np.float32), np.empty(0, np.int64), 0)


@dataclass
class Tensor:
    index: int
    name: str
    shape: Tuple[int, ...]
    shape_signature: Tuple[int, ...]  # -1 for dynamic dims; equal to `shape` when not recorded
    type_name: str                    # TensorType name, e.g. 'INT8'
    dtype: Optional[np.dtype]         # NumPy dtype (None for int4, bfloat16, string, ...)
    buffer: int                       # index into TFLiteModel.buffers (0: no data)
    is_variable: bool = False
    quantization: Quantization = field(default_factory=_no_quantization)
    is_sparse: bool = False
    external_buffer: int = 0          # index into the model's external buffers (0: none)

    def data(self, model: "TFLiteModel") -> Optional[np.ndarray]:
        """The tensor's constant value as a read-only array of its dtype and shape, or None."""
        if not 0 <= self.buffer < len(model.buffers):
            raise TFLiteError(f"tensor {self.index} {self.name!r} buffer index {self.buffer} "
                              f"out of range ({len(model.buffers)} buffers)")
        raw = model.buffers[self.buffer]
        if raw.size == 0:
            if self.external_buffer:
                raise TFLiteError(f"tensor {self.index} {self.name!r} keeps its data in an "
                                  "external file, which is not supported")
            return None
        what = f"tensor {self.index} {self.name!r}"
        if self.is_sparse:
            raise TFLiteError(f"{what} is sparse, which is not supported")
        if self.dtype is None:
            raise TFLiteError(f"{what} has type {self.type_name}, whose data this reader does "
                              f"not decode")
        if any(d < 0 for d in self.shape):
            raise TFLiteError(f"corrupt: {what} has constant data but shape {list(self.shape)}")
        count = math.prod(self.shape)
        if count * self.dtype.itemsize != raw.size:
            raise TFLiteError(f"corrupt: {what} buffer {self.buffer} holds {raw.size} bytes but "
                              f"shape {list(self.shape)} of {self.type_name} needs "
                              f"{count * self.dtype.itemsize}")
        arr = raw.view(self.dtype).reshape(self.shape)
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr


@dataclass
class OperatorCode:
    builtin_code: int             # max(builtin_code, deprecated_builtin_code), as TFLite does
    name: str                     # BuiltinOperator name, 'CUSTOM', or 'UNKNOWN_<n>'
    custom_code: Optional[str] = None
    version: int = 1
    deprecated_builtin_code: int = 0


@dataclass
class Operator:
    index: int
    opcode_index: int
    name: str                     # BuiltinOperator name, e.g. 'CONV_2D' ('CUSTOM' for custom ops)
    builtin_code: int
    inputs: Tuple[int, ...]       # tensor indices; -1 marks an omitted optional input
    outputs: Tuple[int, ...]
    options_type: Optional[str] = None   # BuiltinOptions union type name, e.g. 'Conv2DOptions'
    options: Any = None                  # decoded dataclass, UndecodedOptions, or None
    custom_code: Optional[str] = None
    version: int = 1


@dataclass
class SubGraph:
    index: int
    name: str
    tensors: List[Tensor]
    inputs: Tuple[int, ...]
    outputs: Tuple[int, ...]
    operators: List[Operator]

    def tensor_by_name(self, name: str) -> Tensor:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"no tensor named {name!r} in subgraph {self.index}")


@dataclass
class SignatureDef:
    key: str
    subgraph_index: int
    inputs: Dict[str, int]        # signature name -> tensor index in that subgraph
    outputs: Dict[str, int]


@dataclass
class Metadata:
    name: str
    buffer: int


@dataclass
class TFLiteModel:
    version: int
    description: str
    operator_codes: List[OperatorCode]
    subgraphs: List[SubGraph]
    buffers: List[np.ndarray]     # read-only uint8 views of the file's bytes (entry 0 is empty)
    signature_defs: Dict[str, SignatureDef]
    metadata: List[Metadata] = field(default_factory=list)
    file_size: int = 0

    def metadata_bytes(self, name: str) -> Optional[bytes]:
        for m in self.metadata:
            if m.name == name:
                return self.buffers[m.buffer].tobytes()
        return None

    def op_counts(self, subgraph: Optional[int] = None) -> Dict[str, int]:
        """Operator name -> count (all subgraphs, or one), most frequent first."""
        graphs = self.subgraphs if subgraph is None else [self.subgraphs[subgraph]]
        c = Counter(op.name for g in graphs for op in g.operators)
        return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

    def summary(self) -> str:
        def fmt_tensor(t: Tensor) -> str:
            dt = t.dtype.name if t.dtype is not None else t.type_name
            s = f"[{t.index}] {t.name} {dt}{list(t.shape)}"
            q = t.quantization
            if q.per_channel:
                s += f" q(per-channel x{q.scale.size}, dim {q.quantized_dimension})"
            elif q.is_quantized:
                s += f" q(scale={float(q.scale[0]):.6g}, zp={int(q.zero_point[0])})"
            if t.is_variable:
                s += " variable"
            return s

        nbytes = sum(int(b.size) for b in self.buffers)
        lines = [f"TFLite model: schema v{self.version}, {self.file_size:,} bytes, "
                 f"{len(self.buffers)} buffers ({nbytes:,} bytes of constants), "
                 f"{len(self.operator_codes)} operator codes, {len(self.subgraphs)} subgraph(s)"]
        if self.description:
            lines.append(f"  description: {self.description}")
        runtime = self.metadata_bytes("min_runtime_version")
        if runtime:
            lines.append(f"  min runtime version: {runtime.rstrip(bytes(1)).decode('latin-1')}")
        for g in self.subgraphs:
            n_const = sum(1 for t in g.tensors if 0 <= t.buffer < len(self.buffers)
                          and self.buffers[t.buffer].size)
            n_var = sum(1 for t in g.tensors if t.is_variable)
            lines.append(f"  subgraph {g.index} {g.name!r}: {len(g.tensors)} tensors "
                         f"({n_const} constant, {n_var} variable), {len(g.operators)} operators, "
                         f"{len(g.inputs)} inputs, {len(g.outputs)} outputs")
            for label, idx in (("input", g.inputs), ("output", g.outputs)):
                for i in idx:
                    lines.append(f"    {label} {fmt_tensor(g.tensors[i])}")
            counts = self.op_counts(g.index)
            lines.append("    ops: " + ", ".join(f"{k} x{v}" for k, v in counts.items()))
        for s in self.signature_defs.values():
            lines.append(f"  signature {s.key!r} (subgraph {s.subgraph_index}): "
                         f"{len(s.inputs)} inputs, {len(s.outputs)} outputs")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Decoding.
# --------------------------------------------------------------------------------------------

def _index_list(tab: _Table, slot: int, name: str, n: int, allow_optional: bool
                ) -> Tuple[int, ...]:
    idx = tab.ints(slot, name) or ()
    lo = -1 if allow_optional else 0
    for i in idx:
        if not lo <= i < n:
            raise TFLiteError(f"corrupt: {tab.what} {name} refers to tensor {i}, out of range "
                              f"({n} tensors)")
    return idx


def _read_buffers(root: _Table, buf: _Buf) -> List[np.ndarray]:
    out = []
    for i, t in enumerate(root.tables(4, "buffers", "buffer")):
        start_n = t.vector(0, 1, "data")
        offset = t.u64(1, "offset")
        size = t.u64(2, "size")
        if offset > 1:  # data stored after the flatbuffer (models larger than 2 GB)
            buf.check(offset, size, f"buffer {i} data (offset {offset}, size {size})")
            start, n = offset, size
        elif start_n is not None:
            start, n = start_n
        else:
            start, n = 0, 0
        if n == 0:
            out.append(np.empty(0, np.uint8))
        else:
            a = np.frombuffer(buf.data, dtype=np.uint8, count=n, offset=start)
            out.append(a)
    return out


def _read_operator_codes(root: _Table) -> List[OperatorCode]:
    out = []
    for t in root.tables(1, "operator_codes", "operator code"):
        dep = t.i8(0, "deprecated_builtin_code")
        custom = t.string(1, "custom_code")
        version = t.i32(2, "version", 1)
        code = max(t.i32(3, "builtin_code"), dep)
        if code == _CUSTOM_CODE and custom is None:
            raise TFLiteError(f"corrupt: {t.what} is CUSTOM but has no custom_code")
        out.append(OperatorCode(code, builtin_operator_name(code), custom, version, dep))
    return out


def _read_quantization(t: _Table, tensor_what: str, shape: Tuple[int, ...]) -> Quantization:
    q = t.table(4, "quantization", f"{tensor_what} quantization")
    if q is None:
        return _no_quantization()
    scale = q.array(2, "<f4", "scale")                   # (slots 0, 1: min, max; unused)
    zero_point = q.array(3, "<i8", "zero_point")
    qdim = q.i32(6, "quantized_dimension")
    if scale is None or scale.size == 0:
        return _no_quantization()
    if zero_point is None or zero_point.size != scale.size:
        nz = 0 if zero_point is None else zero_point.size
        raise TFLiteError(f"corrupt: {tensor_what} quantization has {scale.size} scales but "
                          f"{nz} zero points")
    if shape and not 0 <= qdim < len(shape):
        raise TFLiteError(f"corrupt: {tensor_what} quantized_dimension {qdim} out of range for "
                          f"shape {list(shape)}")
    if scale.size != 1 and shape and scale.size != shape[qdim]:
        raise TFLiteError(f"corrupt: {tensor_what} has {scale.size} scales but dimension {qdim} "
                          f"of shape {list(shape)} is {shape[qdim]}")
    return Quantization(scale.astype(np.float32), zero_point.astype(np.int64), qdim)


def _read_tensor(t: _Table, i: int, n_buffers: int, buffers: List[np.ndarray]) -> Tensor:
    name = t.string(3, "name") or ""
    what = f"{t.what} {name!r}"
    shape = t.ints(0, "shape") or ()
    type_name = _enum_name(TENSOR_TYPE_NAMES, t.i8(1, "type"))
    buffer = t.u32(2, "buffer")
    if buffer >= n_buffers:
        raise TFLiteError(f"corrupt: {what} buffer index {buffer} out of range "
                          f"({n_buffers} buffers)")
    quant = _read_quantization(t, what, shape)
    is_variable = t.bool(5, "is_variable")
    is_sparse = t.has(6)
    sig = t.ints(7, "shape_signature")
    external = t.u32(10, "external_buffer")
    dtype = _NUMPY_DTYPES.get(type_name)
    nbytes = buffers[buffer].size
    if nbytes and dtype is not None and not is_sparse:
        count = math.prod(shape) if all(d >= 0 for d in shape) else -1
        if count * dtype.itemsize != nbytes:
            raise TFLiteError(f"corrupt: {what} buffer {buffer} holds {nbytes} bytes but shape "
                              f"{list(shape)} of {type_name} needs {count * dtype.itemsize}")
    return Tensor(index=i, name=name, shape=shape,
                  shape_signature=sig if sig is not None else shape,
                  type_name=type_name, dtype=dtype, buffer=buffer, is_variable=is_variable,
                  quantization=quant, is_sparse=is_sparse,
                  external_buffer=external)


def _read_operator(t: _Table, i: int, opcodes: List[OperatorCode], n_tensors: int) -> Operator:
    """Its code, tensors and builtin options (custom options, intermediates and the StableHLO
    options are not read: no MoViNet graph has them)."""
    opcode_index = t.u32(0, "opcode_index")
    if opcode_index >= len(opcodes):
        raise TFLiteError(f"corrupt: {t.what} opcode_index {opcode_index} out of range "
                          f"({len(opcodes)} operator codes)")
    oc = opcodes[opcode_index]
    inputs = _index_list(t, 1, "inputs", n_tensors, True)
    outputs = _index_list(t, 2, "outputs", n_tensors, True)
    opt_type_code = t.u8(3, "builtin_options_type")
    options_type = options = None
    if opt_type_code:
        options_type = _enum_name(BUILTIN_OPTIONS_NAMES, opt_type_code)
        options = _decode_options(options_type, t.table(4, "builtin_options",
                                                        f"{t.what} {options_type}"))
    return Operator(index=i, opcode_index=opcode_index, name=oc.name,
                    builtin_code=oc.builtin_code, inputs=inputs, outputs=outputs,
                    options_type=options_type, options=options, custom_code=oc.custom_code,
                    version=oc.version)


def _read_subgraph(t: _Table, gi: int, opcodes, buffers) -> SubGraph:
    tensors = [_read_tensor(tt, i, len(buffers), buffers)
               for i, tt in enumerate(t.tables(0, "tensors", f"subgraph {gi} tensor"))]
    n = len(tensors)
    inputs = _index_list(t, 1, "inputs", n, False)
    outputs = _index_list(t, 2, "outputs", n, False)
    operators = [_read_operator(ot, i, opcodes, n)
                 for i, ot in enumerate(t.tables(3, "operators", f"subgraph {gi} operator"))]
    return SubGraph(index=gi, name=t.string(4, "name") or "", tensors=tensors, inputs=inputs,
                    outputs=outputs, operators=operators)


def _read_signatures(root: _Table, subgraphs: List[SubGraph]) -> Dict[str, SignatureDef]:
    out: Dict[str, SignatureDef] = {}
    for t in root.tables(7, "signature_defs", "signature def"):
        key = t.string(2, "signature_key") or ""
        gi = t.u32(4, "subgraph_index")
        if gi >= len(subgraphs):
            raise TFLiteError(f"corrupt: signature {key!r} refers to subgraph {gi}, out of range "
                              f"({len(subgraphs)} subgraphs)")
        n = len(subgraphs[gi].tensors)
        maps = []
        for slot, kind in ((0, "inputs"), (1, "outputs")):
            m: Dict[str, int] = {}
            for tm in t.tables(slot, kind, f"signature {key!r} {kind[:-1]}"):
                name = tm.string(0, "name") or ""
                idx = tm.u32(1, "tensor_index")
                if idx >= n:
                    raise TFLiteError(f"corrupt: signature {key!r} {kind[:-1]} {name!r} refers "
                                      f"to tensor {idx}, out of range ({n} tensors)")
                if name in m:
                    raise TFLiteError(f"corrupt: signature {key!r} has two {kind} named {name!r}")
                m[name] = idx
            maps.append(m)
        if key in out:
            raise TFLiteError(f"corrupt: two signatures with key {key!r}")
        out[key] = SignatureDef(key, gi, maps[0], maps[1])
    return out


def _load_bytes(source: Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray]
                ) -> Tuple[bytes, str]:
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                return f.read(), os.fspath(source)
        except OSError as e:
            raise TFLiteError(f"cannot read TFLite file {os.fspath(source)!r}: "
                              f"{e.strerror or e}") from e
    if isinstance(source, bytes):
        return source, "<bytes>"
    if isinstance(source, (bytearray, memoryview, np.ndarray)):
        return bytes(source), "<bytes>"
    raise TypeError(f"read_tflite expects a path or bytes, not {type(source).__name__}")


def read_tflite(source: Union[str, os.PathLike, bytes, bytearray, memoryview]) -> TFLiteModel:
    """Parse a ``.tflite`` file (a path, or its bytes) into a :class:`TFLiteModel`.

    Raises :class:`TFLiteError` for a missing, empty, truncated, corrupted or non-TFLite file.
    """
    data, label = _load_bytes(source)
    if len(data) == 0:
        raise TFLiteError(f"empty file: {label} holds no bytes")
    if len(data) < 8:
        raise TFLiteError(f"truncated: {label} is {len(data)} bytes, too short for a TFLite "
                          "FlatBuffer header (8 bytes)")
    ident = data[4:8]
    if ident != FILE_IDENTIFIER:
        raise TFLiteError(f"not a TFLite model: {label} has file identifier {ident!r} at offset "
                          f"4, expected {FILE_IDENTIFIER!r}")
    buf = _Buf(data)
    root_pos = buf.read(_U32, 0, "root table offset")
    if root_pos >= buf.size:
        raise TFLiteError(f"truncated: root table offset {root_pos} beyond end of file "
                          f"({buf.size} bytes)")
    root = _Table(buf, root_pos, "model")
    version = root.u32(0, "version")
    if version != SCHEMA_VERSION:
        raise TFLiteError(f"unsupported TFLite schema version {version} (expected "
                          f"{SCHEMA_VERSION})")
    buffers = _read_buffers(root, buf)
    opcodes = _read_operator_codes(root)
    subgraphs = [_read_subgraph(t, gi, opcodes, buffers)
                 for gi, t in enumerate(root.tables(2, "subgraphs", "subgraph"))]
    if not subgraphs:
        raise TFLiteError(f"corrupt: {label} has no subgraphs")
    description = root.string(3, "description") or ""
    metadata = []
    for t in root.tables(6, "metadata", "metadata"):
        m = Metadata(t.string(0, "name") or "", t.u32(1, "buffer"))
        if m.buffer >= len(buffers):
            raise TFLiteError(f"corrupt: metadata {m.name!r} buffer index {m.buffer} out of "
                              f"range ({len(buffers)} buffers)")
        metadata.append(m)
    signatures = _read_signatures(root, subgraphs)
    return TFLiteModel(version=version, description=description, operator_codes=opcodes,
                       subgraphs=subgraphs, buffers=buffers, signature_defs=signatures,
                       metadata=metadata, file_size=buf.size)
