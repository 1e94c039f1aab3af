"""The from-scratch TFLite reader against LiteRT, on the official MoViNet-A0 int8 stream model and
on small models converted here; plus truncated, corrupted and foreign files.

The oracle is the LiteRT interpreter (tensor / op / signature details and constant tensor values);
the reader itself never imports TensorFlow, LiteRT or flatbuffers (checked in a subprocess).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import missing, need, need_tensorflow  # noqa: E402

from minimovinet.errors import TFLiteError
from minimovinet.formats.tflite import BUILTIN_OPERATOR_NAMES, Conv2DOptions, DepthwiseConv2DOptions, Pool2DOptions, TFLiteModel, UndecodedOptions, builtin_operator_name, read_tflite
from minimovinet.formats import tflite as tf_file

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OFFICIAL = SHARED / "models" / "movinet_a0_stream_k600_int8.tflite"
OFFICIAL_IO_SPEC = SHARED / "models" / "movinet_a0_stream_k600_int8.io_spec.json"
MEDIA = SHARED / "media"

# What the official A0 stream int8 model holds (shared/README.md lists the same ops except CAST,
# which casts the head's int32 frame count to float32 before the DIV of the global average pool).
OFFICIAL_OP_COUNTS = {
    "RESHAPE": 74, "CONV_2D": 38, "DEPTHWISE_CONV_2D": 26, "ADD": 17, "MUL": 16, "QUANTIZE": 14,
    "DEQUANTIZE": 13, "CONCATENATION": 11, "STRIDED_SLICE": 11, "AVERAGE_POOL_2D": 4,
    "CAST": 1, "DIV": 1, "SUM": 1,
}


# ----------------------------------------------------------------------------------------------
# fixtures and helpers
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def official_bytes() -> bytes:
    if not OFFICIAL.exists():
        missing(f"shared model not available: {OFFICIAL} (../shared is absent in a user's "
                    "checkout)")
    return OFFICIAL.read_bytes()


@pytest.fixture(scope="module")
def official(official_bytes) -> TFLiteModel:
    return read_tflite(OFFICIAL)


def _litert():
    return need("ai_edge_litert.interpreter",
                               reason="ai-edge-litert (the oracle) is not installed")


def _interpreter(model_path=None, model_content=None):
    lr = _litert()
    it = lr.Interpreter(model_path=None if model_path is None else str(model_path),
                        model_content=model_content,
                        experimental_op_resolver_type=(
                            lr.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    it.allocate_tensors()
    return it


def _assert_matches_litert(model: TFLiteModel, it) -> dict:
    """Tensors, constants, operators, graph inputs/outputs and signatures equal LiteRT's."""
    g = model.subgraphs[0]
    # allocate_tensors() may append kernel scratch tensors after the file's own ones
    details = [d for d in it.get_tensor_details() if d["index"] < len(g.tensors)]
    assert sorted(d["index"] for d in details) == list(range(len(g.tensors)))
    for d in details:
        t = g.tensors[d["index"]]
        assert t.index == d["index"]
        assert t.name == d["name"]
        assert t.shape == tuple(int(s) for s in d["shape"]), t.name
        assert t.shape_signature == tuple(int(s) for s in d["shape_signature"]), t.name
        assert t.dtype == np.dtype(d["dtype"]), t.name
        qp = d["quantization_parameters"]
        q = t.quantization
        assert q.scale.dtype == np.float32 and q.zero_point.dtype == np.int64
        # float32 scales compared exactly, bit for bit
        assert q.scale.tobytes() == np.asarray(qp["scales"], np.float32).tobytes(), t.name
        np.testing.assert_array_equal(q.zero_point, np.asarray(qp["zero_points"], np.int64))
        assert q.quantized_dimension == qp["quantized_dimension"], t.name
        if q.is_quantized and not q.per_channel:
            assert d["quantization"] == (float(q.scale[0]), int(q.zero_point[0]))

    # Constant tensors: bit-for-bit equal to what LiteRT holds.
    n_const = n_compared = 0
    for t in g.tensors:
        ours = t.data(model)
        if ours is None:
            continue
        n_const += 1
        assert not ours.flags.writeable
        try:
            theirs = it.get_tensor(t.index)
        except ValueError:  # not exposed by LiteRT
            continue
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, t.name
        assert ours.tobytes() == np.ascontiguousarray(theirs).tobytes(), t.name
        n_compared += 1
    assert n_compared == n_const > 0
    for i in g.inputs:
        assert g.tensors[i].data(model) is None

    ops = it._get_ops_details()
    assert len(ops) == len(g.operators)
    for d, op in zip(ops, g.operators):
        assert d["index"] == op.index
        assert d["op_name"] == op.name
        assert tuple(int(i) for i in d["inputs"]) == op.inputs, op
        assert tuple(int(i) for i in d["outputs"]) == op.outputs, op

    assert [d["index"] for d in it.get_input_details()] == list(g.inputs)
    assert [d["index"] for d in it.get_output_details()] == list(g.outputs)

    sigs = it.get_signature_list()
    assert set(sigs) == set(model.signature_defs)
    for key, s in model.signature_defs.items():
        assert s.key == key and s.subgraph_index == 0
        assert sorted(sigs[key]["inputs"]) == sorted(s.inputs)
        assert sorted(sigs[key]["outputs"]) == sorted(s.outputs)
        runner = it.get_signature_runner(key)
        assert {n: d["index"] for n, d in runner.get_input_details().items()} == s.inputs
        assert {n: d["index"] for n, d in runner.get_output_details().items()} == s.outputs
    return {"tensors": len(g.tensors), "constants": n_const, "ops": len(g.operators)}


def _out_size(size, k, stride, dilation, padding):
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return -(-size // stride)
    assert padding == "VALID"
    return -(-(size - eff + 1) // stride)


def _check_op_consistency(model: TFLiteModel, op) -> None:
    """The op's decoded options agree with its tensors' shapes, as the op semantics require."""
    g = model.subgraphs[0]
    T = g.tensors
    ins = [T[i] if i >= 0 else None for i in op.inputs]
    out = T[op.outputs[0]]
    if op.name == "CONV_2D":
        o = op.options
        assert isinstance(o, Conv2DOptions) and op.options_type == "Conv2DOptions"
        x, w = ins[0], ins[1]
        n, h, wd, c = x.shape
        oc, kh, kw, ic = w.shape
        assert c == ic
        assert out.shape == (n, _out_size(h, kh, o.stride_h, o.dilation_h_factor, o.padding),
                             _out_size(wd, kw, o.stride_w, o.dilation_w_factor, o.padding), oc)
        if len(ins) > 2 and ins[2] is not None:
            assert ins[2].shape == (oc,)
    elif op.name == "DEPTHWISE_CONV_2D":
        o = op.options
        assert isinstance(o, DepthwiseConv2DOptions)
        x, w = ins[0], ins[1]
        n, h, wd, c = x.shape
        one, kh, kw, cm = w.shape
        assert one == 1 and cm == c * o.depth_multiplier
        assert out.shape == (n, _out_size(h, kh, o.stride_h, o.dilation_h_factor, o.padding),
                             _out_size(wd, kw, o.stride_w, o.dilation_w_factor, o.padding), cm)
    elif op.name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = op.options
        assert isinstance(o, Pool2DOptions)
        n, h, wd, c = ins[0].shape
        assert out.shape == (n, _out_size(h, o.filter_height, o.stride_h, 1, o.padding),
                             _out_size(wd, o.filter_width, o.stride_w, 1, o.padding), c)
    elif op.name == "STRIDED_SLICE":
        o = op.options
        assert o.ellipsis_mask == o.new_axis_mask == o.shrink_axis_mask == 0 and not o.offset
        x = ins[0]
        begin, end, strides = (t.data(model) for t in ins[1:4])
        shape = []
        for d, size in enumerate(x.shape):
            b = None if o.begin_mask >> d & 1 else int(begin[d])
            e = None if o.end_mask >> d & 1 else int(end[d])
            shape.append(len(range(*slice(b, e, int(strides[d])).indices(size))))
        assert tuple(shape) == out.shape
    elif op.name == "CONCATENATION":
        axis = op.options.axis % len(out.shape)
        assert sum(t.shape[axis] for t in ins) == out.shape[axis]
        for t in ins:
            assert t.shape[:axis] + t.shape[axis + 1:] == out.shape[:axis] + out.shape[axis + 1:]
    elif op.name in ("SUM", "MEAN"):
        axes = {int(a) % len(ins[0].shape) for a in ins[1].data(model)}
        if op.options.keep_dims:
            expect = tuple(1 if d in axes else s for d, s in enumerate(ins[0].shape))
        else:
            expect = tuple(s for d, s in enumerate(ins[0].shape) if d not in axes)
        assert out.shape == expect
    elif op.name == "RESHAPE":
        assert math.prod(ins[0].shape) == math.prod(out.shape)
        if len(ins) > 1 and ins[1] is not None and ins[1].data(model) is not None:
            new = [int(v) for v in ins[1].data(model)]
            if -1 in new:
                new[new.index(-1)] = math.prod(out.shape) // -math.prod(new)
            assert tuple(new) == out.shape
    elif op.name in ("ADD", "MUL", "SUB", "DIV"):
        assert np.broadcast_shapes(*(t.shape for t in ins)) == out.shape
        assert op.options_type == op.name.capitalize() + "Options"
    elif op.name == "QUANTIZE":
        assert ins[0].shape == out.shape and out.type_name in ("INT8", "UINT8", "INT16")
        assert out.quantization.is_quantized
    elif op.name == "DEQUANTIZE":
        assert ins[0].shape == out.shape and out.type_name == "FLOAT32"
        assert ins[0].quantization.is_quantized or ins[0].type_name == "FLOAT16"
    elif op.name == "CAST":
        assert ins[0].shape == out.shape
    elif op.name == "FULLY_CONNECTED":
        assert ins[1].shape[0] == out.shape[-1]
    elif op.name in ("SOFTMAX", "HARD_SWISH"):
        assert ins[0].shape == out.shape
    else:
        raise AssertionError(f"no consistency check for {op.name}")


# ----------------------------------------------------------------------------------------------
# 1. the official MoViNet-A0 stream int8 model
# ----------------------------------------------------------------------------------------------

def test_official_matches_litert(official):
    it = _interpreter(model_path=OFFICIAL)
    stats = _assert_matches_litert(official, it)
    assert stats == {"tensors": 452, "constants": 181, "ops": 227}


def test_official_parse_time(official_bytes):
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        read_tflite(OFFICIAL)
        times.append(time.perf_counter() - t0)
    print(f"\nparse of {len(official_bytes):,}-byte official model: best {min(times) * 1e3:.1f} ms")
    assert min(times) < 0.5


def test_official_ops(official):
    assert official.version == 3
    assert len(official.subgraphs) == 1
    assert official.op_counts() == OFFICIAL_OP_COUNTS
    readme_ops = {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "AVERAGE_POOL_2D", "SUM", "DIV",
                  "CONCATENATION", "STRIDED_SLICE", "QUANTIZE", "DEQUANTIZE", "RESHAPE"}
    assert set(official.op_counts()) == readme_ops | {"CAST"}
    for oc in official.operator_codes:   # old-style file: the byte-wide code is filled in too
        assert oc.custom_code is None and oc.deprecated_builtin_code == oc.builtin_code


def test_official_io(official):
    g = official.subgraphs[0]
    spec = json.loads(OFFICIAL_IO_SPEC.read_text()) if OFFICIAL_IO_SPEC.exists() else None
    sig = official.signature_defs["serving_default"]
    assert len(sig.inputs) == len(sig.outputs) == 44
    assert sorted(sig.inputs) == sorted(g.tensors[i].name.split("serving_default_")[1][:-2]
                                        for i in g.inputs)
    image = g.tensors[sig.inputs["image"]]
    assert (image.type_name, image.shape) == ("FLOAT32", (1, 1, 172, 172, 3))
    logits = g.tensors[sig.outputs["logits"]]
    assert (logits.type_name, logits.shape) == ("FLOAT32", (1, 600))
    for name, idx in list(sig.inputs.items()) + list(sig.outputs.items()):
        t = g.tensors[idx]
        if name.endswith("_frame_count"):
            assert (t.type_name, t.shape) == ("INT32", (1,))
        elif name.startswith("state_"):
            assert t.type_name == "FLOAT32" and name.endswith(("_pool_buffer", "_stream_buffer"))
        assert not t.quantization.is_quantized
    if spec is not None:
        for kind, mapping in (("inputs", sig.inputs), ("outputs", sig.outputs)):
            assert set(spec[kind]) == set(mapping)
            for name, d in spec[kind].items():
                t = g.tensors[mapping[name]]
                assert list(t.shape) == d["shape"] and t.dtype == np.dtype(d["dtype"])
    assert not any(t.is_variable for t in g.tensors)
    # The SE pool_buffer states (no squeeze-excitation in this model) pass straight through.
    passthrough = {n for n, i in sig.inputs.items() if sig.outputs.get(n) == i}
    assert passthrough and all(n.endswith("_pool_buffer") or n.endswith("_frame_count")
                               for n in passthrough)


def test_official_options_consistent(official):
    g = official.subgraphs[0]
    for op in g.operators:
        _check_op_consistency(official, op)
    first_conv = next(op for op in g.operators if op.name == "CONV_2D")
    assert first_conv.options == Conv2DOptions(padding="SAME", stride_w=2, stride_h=2,
                                               fused_activation_function="RELU6")
    acts = {op.options.fused_activation_function for op in g.operators
            if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D")}
    assert acts <= {"NONE", "RELU6"} and "RELU6" in acts
    assert {op.options.depth_multiplier for op in g.operators
            if op.name == "DEPTHWISE_CONV_2D"} == {1}
    assert {(op.options.filter_height, op.options.filter_width) for op in g.operators
            if op.name == "AVERAGE_POOL_2D"} == {(3, 3)}
    assert all(op.options is None for op in g.operators
               if op.name in ("QUANTIZE", "DEQUANTIZE", "RESHAPE", "CAST"))
    summ = next(op for op in g.operators if op.name == "SUM")
    assert summ.options.keep_dims is True


def test_official_quantization(official):
    """Per-channel int8 weights, int32 biases with scale = input scale x weight scale."""
    g = official.subgraphs[0]
    T = g.tensors
    n = 0
    for op in g.operators:
        if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        x, w, b = (T[i] for i in op.inputs[:3])
        qd = 0 if op.name == "CONV_2D" else 3
        assert w.type_name == "INT8" and w.quantization.quantized_dimension == qd
        assert w.quantization.scale.size == w.shape[qd]
        assert not w.quantization.zero_point.any()
        assert b.type_name == "INT32" and b.quantization.scale.size == w.shape[qd]
        np.testing.assert_allclose(b.quantization.scale,
                                   x.quantization.scale[0] * w.quantization.scale, rtol=1e-6)
        wd = w.data(official)
        assert wd.dtype == np.int8 and wd.shape == w.shape and wd.min() >= -127
        n += 1
    assert n == 64


def test_official_summary_and_inputs(official, official_bytes):
    s = official.summary()
    assert "227 operators" in s and "RESHAPE x74" in s and "serving_default" in s
    assert "min runtime version: 2.3.0" in s
    # every input form gives the same model
    for src in (str(OFFICIAL), official_bytes, bytearray(official_bytes),
                memoryview(official_bytes)):
        assert read_tflite(src).summary() == s
    assert official.description == "MLIR Converted."
    assert official.buffers[0].size == 0
    assert builtin_operator_name(3) == "CONV_2D" and builtin_operator_name(999) == "UNKNOWN_999"
    assert len(BUILTIN_OPERATOR_NAMES) == 210 and BUILTIN_OPERATOR_NAMES[127] == \
        "PLACEHOLDER_FOR_GREATER_OP_CODES"


# ----------------------------------------------------------------------------------------------
# white-box patches of the official file (locate fields with the reader's own table class)
# ----------------------------------------------------------------------------------------------

def _root(data: bytes):
    buf = tf_file._Buf(data)
    return tf_file._Table(buf, int.from_bytes(data[:4], "little"), "model")


def _patched(data: bytes, pos: int, value: int, size: int, signed=True) -> bytes:
    b = bytearray(data)
    b[pos:pos + size] = value.to_bytes(size, "little", signed=signed)
    return bytes(b)


def test_operator_code_resolution(official_bytes):
    root = _root(official_bytes)
    oc0 = root.tables(1, "operator_codes", "operator code")[0]      # QUANTIZE (114)
    dep_pos = oc0._field(0, 1, "deprecated_builtin_code")
    code_pos = oc0._field(3, 4, "builtin_code")
    assert dep_pos is not None and code_pos is not None

    def ops_named(m):
        return {op.name for op in m.subgraphs[0].operators if op.opcode_index == 0}

    # unknown code: kept numerically, named UNKNOWN_<n>
    m = read_tflite(_patched(official_bytes, code_pos, 250, 4))
    assert m.operator_codes[0].builtin_code == 250 and ops_named(m) == {"UNKNOWN_250"}
    assert m.op_counts()["UNKNOWN_250"] == 14
    # max(builtin_code, deprecated_builtin_code): a zero extended code keeps QUANTIZE
    m = read_tflite(_patched(official_bytes, code_pos, 0, 4))
    assert ops_named(m) == {"QUANTIZE"}
    # placeholder in the byte field, real code in the extended field
    d = _patched(_patched(official_bytes, dep_pos, 127, 1), code_pos, 150, 4)
    assert ops_named(read_tflite(d)) == {"GELU"}
    # CUSTOM without a custom_code is refused
    d = _patched(_patched(official_bytes, dep_pos, 32, 1), code_pos, 32, 4)
    with pytest.raises(TFLiteError, match="custom_code"):
        read_tflite(d)


def test_bad_version_and_identifier(official_bytes):
    root = _root(official_bytes)
    with pytest.raises(TFLiteError, match="schema version 4"):
        read_tflite(_patched(official_bytes, root._field(0, 4, "version"), 4, 4))
    with pytest.raises(TFLiteError, match="file identifier b'TFL2'"):
        read_tflite(official_bytes[:4] + b"TFL2" + official_bytes[8:])


def test_bad_indices_are_named(official_bytes):
    root = _root(official_bytes)
    sg = root.tables(2, "subgraphs", "subgraph")[0]
    t17 = sg.tables(0, "tensors", "subgraph 0 tensor")[17]
    d = _patched(official_bytes, t17._field(2, 4, "buffer"), 100000, 4, signed=False)
    with pytest.raises(TFLiteError, match=r"tensor 17 .* buffer index 100000 out of range"):
        read_tflite(d)
    ops = sg.tables(3, "operators", "subgraph 0 operator")
    i, op = next((i, op) for i, op in enumerate(ops) if op.has(0))  # opcode_index stored
    d = _patched(official_bytes, op._field(0, 4, "opcode_index"), 99, 4, signed=False)
    with pytest.raises(TFLiteError, match=f"operator {i} opcode_index 99 out of range"):
        read_tflite(d)
    # a tensor's shape that no longer matches its constant data
    model = read_tflite(official_bytes)
    const = next(t for t in model.subgraphs[0].tensors
                 if t.data(model) is not None and not t.quantization.is_quantized)
    start, n = sg.tables(0, "tensors", "t")[const.index].vector(0, 4, "shape")
    d = _patched(official_bytes, start, 1000, 4)
    with pytest.raises(TFLiteError, match="holds .* bytes but shape"):
        read_tflite(d)


# ----------------------------------------------------------------------------------------------
# 2. small models converted here
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def converted():
    """{kind: tflite bytes} for a tiny Keras net: float, full-int8, float16 weights, and float
    with constant data stored after the flatbuffer (Buffer.offset/size, the >2 GB layout)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = need_tensorflow("the small test models are converted with TensorFlow")
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    y = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)
    y = keras.layers.Activation("hard_swish")(y)
    z = keras.layers.AveragePooling2D(2)(y)
    a = keras.layers.Conv2D(16, 1, padding="valid")(z)
    s = keras.layers.Add()([z, a])
    m = keras.layers.Multiply()([s, z])
    c = keras.layers.Concatenate()([s, m])
    f = keras.layers.Flatten()(c)
    out = keras.layers.Dense(5, activation="softmax")(f)
    model = keras.Model(inp, out)

    def representative():
        rng = np.random.default_rng(0)
        for _ in range(8):
            yield [rng.random((1, 12, 12, 3), dtype=np.float32)]

    result = {}
    for kind in ("float", "int8", "float16", "offset"):
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if kind == "int8":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        elif kind == "float16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        elif kind == "offset":
            conv._experimental_use_buffer_offset = True
        result[kind] = conv.convert()
    return result


KINDS = ("float", "int8", "float16", "offset")


@pytest.mark.parametrize("kind", KINDS)
def test_converted_matches_litert(converted, kind):
    data = converted[kind]
    model = read_tflite(data)
    _assert_matches_litert(model, _interpreter(model_content=data))
    for op in model.subgraphs[0].operators:
        _check_op_consistency(model, op)


@pytest.mark.parametrize("kind", KINDS)
def test_converted_options(converted, kind):
    model = read_tflite(converted[kind])
    g = model.subgraphs[0]
    core = [op for op in g.operators if op.name not in ("QUANTIZE", "DEQUANTIZE")]
    assert [op.name for op in core] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "HARD_SWISH", "AVERAGE_POOL_2D", "CONV_2D", "ADD", "MUL",
        "CONCATENATION", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    conv0, dw, hs, pool, conv1, add, mul, cat, _, fc, sm = core
    assert conv0.options == Conv2DOptions("SAME", 2, 2, "RELU")
    assert conv1.options == Conv2DOptions("VALID", 1, 1, "NONE")
    assert dw.options == DepthwiseConv2DOptions("SAME", 1, 1, 2, "NONE")
    assert pool.options == Pool2DOptions("VALID", 2, 2, 2, 2, "NONE")
    assert hs.options_type is None and hs.options is None
    assert add.options.fused_activation_function == "NONE" and add.options.pot_scale_int16
    assert mul.options_type == "MulOptions"
    assert cat.options.axis in (-1, 3)
    # ops no MoViNet graph has: named, their options not decoded
    assert fc.options_type == "FullyConnectedOptions"
    assert fc.options == UndecodedOptions("FullyConnectedOptions")
    assert sm.options == UndecodedOptions("SoftmaxOptions")
    inp = g.tensors[g.inputs[0]]
    assert inp.type_name == "FLOAT32" and inp.shape == (1, 12, 12, 3)
    if kind == "int8":
        assert core[0] is g.operators[1] and g.operators[0].name == "QUANTIZE"
        w = {op.name: g.tensors[op.inputs[1]] for op in (conv0, dw, fc)}
        assert w["CONV_2D"].quantization.scale.size == 8
        assert w["CONV_2D"].quantization.quantized_dimension == 0
        assert w["DEPTHWISE_CONV_2D"].quantization.scale.size == 16
        assert w["DEPTHWISE_CONV_2D"].quantization.quantized_dimension == 3
        assert all(t.type_name == "INT8" and t.quantization.per_channel for t in w.values())
    if kind == "float16":
        halves = [t for t in g.tensors if t.type_name == "FLOAT16"]
        assert halves and all(t.data(model).dtype == np.float16 for t in halves)


def test_buffer_offset_layout(converted):
    """Buffers stored after the flatbuffer (offset/size fields) read like inline ones."""
    plain, moved = read_tflite(converted["float"]), read_tflite(converted["offset"])
    root = _root(converted["offset"])
    offsets = [b.u64(1, "offset") for b in root.tables(4, "buffers", "buffer")]
    assert sum(o > 1 for o in offsets) >= 5
    by_name = {t.name: t for t in plain.subgraphs[0].tensors}
    n = 0
    for t in moved.subgraphs[0].tensors:
        a, b = t.data(moved), by_name[t.name].data(plain)
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == b.dtype and np.array_equal(a, b)
            n += 1
    assert n == sum(t.data(plain) is not None for t in plain.subgraphs[0].tensors) >= 6
    # cutting the trailing data away is caught by the bounds checks
    cut = min(o for o in offsets if o > 1) + 2
    with pytest.raises(TFLiteError, match="truncated: buffer .* beyond end of file"):
        read_tflite(converted["offset"][:cut])


# ----------------------------------------------------------------------------------------------
# 3. truncated, corrupted, foreign and empty files
# ----------------------------------------------------------------------------------------------

def _exercise(model: TFLiteModel) -> None:
    """Use everything a successfully parsed (corrupted) model offers; only TFLiteError may leak."""
    model.summary()
    model.op_counts()
    for g in model.subgraphs:
        for t in g.tensors:
            try:
                t.data(model)
            except TFLiteError:
                pass


def test_truncations(official_bytes):
    size = len(official_bytes)
    cuts = sorted(set(range(64)) | {int(c) for c in np.linspace(64, size - 1, 20)} | {size - 1})
    for cut in cuts:
        with pytest.raises(TFLiteError) as ei:
            read_tflite(official_bytes[:cut])
        msg = str(ei.value)
        assert msg.startswith(("empty file", "truncated", "corrupt", "not a TFLite")), msg


def test_truncation_message_names_the_part(official_bytes):
    with pytest.raises(TFLiteError, match=r"^empty file"):
        read_tflite(b"")
    with pytest.raises(TFLiteError, match=r"^truncated: .* too short"):
        read_tflite(official_bytes[:5])
    with pytest.raises(TFLiteError, match=r"^truncated: .*beyond end of file"):
        read_tflite(official_bytes[:len(official_bytes) // 2])


def _structure_mask(data: bytes, model: TFLiteModel) -> np.ndarray:
    """True for bytes outside constant-buffer payloads (vtables, tables, vectors, strings)."""
    mask = np.ones(len(data), bool)
    base = np.frombuffer(data, np.uint8).ctypes.data
    for b in model.buffers:
        if b.size:
            start = b.ctypes.data - base
            assert 0 <= start <= len(data) - b.size
            mask[start:start + b.size] = False
    return mask


def test_random_corruptions(official_bytes):
    rng = np.random.default_rng(1234)
    size = len(official_bytes)
    # (the buffers must be views of these very bytes for the mask)
    structure = np.flatnonzero(_structure_mask(official_bytes, read_tflite(official_bytes)))
    assert 0 < structure.size < size
    outcomes = {"error": 0, "parsed": 0}
    t0 = time.perf_counter()
    for trial in range(180):
        b = bytearray(official_bytes)
        k = int(rng.integers(1, 5))
        # most edits hit the structure (where they matter); some land anywhere
        pool = structure if trial % 6 else np.arange(size)
        for pos in rng.choice(pool, size=k, replace=False):
            if rng.random() < 0.5:
                b[pos] = int(rng.integers(0, 256))
            else:  # a random 32-bit value, as a corrupted offset would be
                b[pos:pos + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
                del b[size:]
        try:
            m = read_tflite(bytes(b))
        except TFLiteError:
            outcomes["error"] += 1
            continue
        outcomes["parsed"] += 1
        _exercise(m)
    elapsed = time.perf_counter() - t0
    print(f"\ncorruptions: {outcomes}, {elapsed:.1f} s")
    assert outcomes["error"] > 15 and outcomes["parsed"] > 15


def test_foreign_files(tmp_path):
    rng = np.random.default_rng(7)
    with pytest.raises(TFLiteError, match="not a TFLite model"):
        read_tflite(rng.integers(0, 256, 10000, dtype=np.uint8).tobytes())
    with pytest.raises(TFLiteError, match="not a TFLite model"):
        read_tflite(b"\x89PNG\r\n\x1a\n" + bytes(100))
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(TFLiteError, match="empty file"):
        read_tflite(empty)
    with pytest.raises(TFLiteError, match="cannot read"):
        read_tflite(tmp_path / "missing.tflite")
    with pytest.raises(TFLiteError, match="cannot read"):
        read_tflite(tmp_path)  # a directory
    # right identifier, nonsense behind it
    for root in (0, 8, 0xFFFFFFF0):
        with pytest.raises(TFLiteError):
            read_tflite(root.to_bytes(4, "little") + b"TFL3" + bytes(8))
    with pytest.raises(TypeError):
        read_tflite(12345)


def test_mp4_is_not_tflite():
    clips = sorted(MEDIA.glob("*.mp4")) if MEDIA.exists() else []
    if not clips:
        missing(f"shared media not available: {MEDIA}")
    with pytest.raises(TFLiteError, match=r"file identifier b'ftyp'"):
        read_tflite(clips[0])


# ----------------------------------------------------------------------------------------------
# 4. no TensorFlow / LiteRT / flatbuffers needed
# ----------------------------------------------------------------------------------------------

def test_parses_without_tensorflow_or_litert(official_bytes):
    code = f"""
import sys
for name in ("tensorflow", "ai_edge_litert", "tflite", "tflite_runtime", "flatbuffers", "keras"):
    sys.modules[name] = None
from minimovinet.formats.tflite import read_tflite
m = read_tflite({str(OFFICIAL)!r})
assert m.op_counts()["CONV_2D"] == 38
w = next(t for t in m.subgraphs[0].tensors if t.type_name == "INT8" and t.data(m) is not None)
assert w.data(m).dtype.name == "int8"
bad = [n for n in ("tensorflow", "ai_edge_litert", "flatbuffers", "tflite") if sys.modules.get(n)]
assert not bad, bad
print("ok", len(m.subgraphs[0].tensors))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok 452"
