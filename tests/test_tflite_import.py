"""The int8 TFLite importer's matchers, one at a time, on committed models: the signature
reader, the input and stem, one block, the SE, the divide-by-frame-count, the head, the
architecture, the program's op converters; and graphs broken in memory (an op renamed, a
fused activation changed, a state output missing, ...), each refused with what did not match.

No TensorFlow: the models are parsed with `formats.tflite.read_tflite`.
    official  ../shared/models/movinet_a0_stream_k600_int8.tflite (relu6, no SE, float I/O)
    stream    tests/data/int8/a0_stream_int8_64.tflite (hard swish, SE, int8 I/O; manifest.json)
    quantized minimovinet's own quantizer's files (`mm.quantize` + `mm.save`, seeded random
              A0 / A3 at 32x32): float pools, the A3 positional encoding in float32
"""
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from minimovinet.errors import TFLiteError, UnsupportedModelError
from minimovinet.formats.tflite import read_tflite
from minimovinet.formats.tflite_import import SUPPORTED_OPS, import_tflite
from minimovinet.formats.tflite_import.architecture import infer_config
from minimovinet.formats.tflite_import.block import match_block
from minimovinet.formats.tflite_import.build import OP_CONVERTERS, build_program
from minimovinet.formats.tflite_import.frame_count import match_divide_by_count
from minimovinet.formats.tflite_import.head import match_head
from minimovinet.formats.tflite_import.network import match_input, match_stem, walk_graph
from minimovinet.formats.tflite_import.se import match_se
from minimovinet.formats.tflite_import.signature import read_signature
from minimovinet.formats.tflite_import.walk import GraphMismatch, Walk
from minimovinet.structure import STATE_NAME, plan, state_sort_key

DATA = Path(__file__).resolve().parent / "data" / "int8"
OFFICIAL = "models/movinet_a0_stream_k600_int8.tflite"
STREAM = DATA / "a0_stream_int8_64.tflite"
PREFIX = ("<TFLiteModel>: not a MoViNet stream model (as exported by the Model Garden and "
          "converted to int8): ")


@pytest.fixture(scope="module")
def official_bytes(shared_dir):
    return (shared_dir / OFFICIAL).read_bytes()


@pytest.fixture(scope="module")
def stream_bytes():
    return STREAM.read_bytes()


@pytest.fixture(scope="module")
def quantized_bytes(tmp_path_factory):
    """model id -> the bytes of its quantized .tflite (default options: float pools)."""
    import minimovinet as mm
    clips = np.random.default_rng(0).random((2, 6, 32, 32, 3), dtype=np.float32)
    files = {}
    for model_id in ("a0", "a3"):
        q = mm.quantize(mm.random_model(model_id, "stream", num_classes=5, seed=1), clips,
                        size=32)
        path = tmp_path_factory.mktemp("quantized") / f"{model_id}.tflite"
        mm.save(q, path)
        files[model_id] = path.read_bytes()
    return files


def _walk(data) -> Walk:
    """A fresh walk (the signature read) over a freshly parsed model: matchers may mutate it."""
    w = Walk.of(read_tflite(data), "<test>")
    read_signature(w)
    return w


def _edited(data, edit):
    """The model parsed from `data` with `edit(model)` applied (operators copied first)."""
    model = read_tflite(data)
    g = model.subgraphs[0]
    g.operators = [dataclasses.replace(op) for op in g.operators]
    edit(model)
    return model


def _refused(model, message):
    """import_tflite refuses `model` with exactly `message` after the common prefix."""
    with pytest.raises(UnsupportedModelError, match="^" + re.escape(PREFIX + message)):
        import_tflite(model)


def _ops(w: Walk, name):
    return [op for op in w.ops if op.name == name]


def _set_activation(op, activation):
    op.options = dataclasses.replace(op.options, fused_activation_function=activation)


def _config_of(data):
    """The ModelConfig of the whole walk over `data`."""
    w = _walk(data)
    walk_graph(w)
    return infer_config(w)


# ---- the matchers, one at a time -----------------------------------------------------------

def test_signature(official_bytes):
    w = _walk(official_bytes)
    assert w.tensors[w.image].shape == (1, 1, 172, 172, 3)
    assert w.tensors[w.logits].shape == (1, 600)
    assert len(w.state_in) == len(w.state_out) == 43
    assert all(STATE_NAME.match(name) for name in w.state_in)
    assert list(w.state_in)[:2] == ["state_block0_layer0_pool_buffer",
                                    "state_block0_layer0_pool_frame_count"]
    assert w.state_by_tensor[w.state_in["state_head_pool_buffer"]] == "state_head_pool_buffer"
    assert w.used_states == {} and w.block_states == {}


def test_input_and_stem(official_bytes):
    w = _walk(official_bytes)
    x = match_input(w)
    quantize = w.producer_op(x)
    assert quantize.name == "QUANTIZE" and w.layer_of[quantize.index] == "input/quantize"
    assert (w.height, w.width) == (172, 172) and w.type_of(x) == "INT8"
    match_stem(w, x)
    assert w.stem == dict(filters=8, kernel=(1, 3, 3), stride=(1, 2, 2))
    assert w.stem_act == "relu6"
    stem = next(op for op in w.ops if op.name == "CONV_2D")
    assert w.layer_of[stem.index] == "stem/conv"


def test_one_block(official_bytes):
    """Block 0 (spatial only, pool + conv skip) and block 1 (with a stream buffer)."""
    w = _walk(official_bytes)
    x = match_stem(w, match_input(w))
    x, spec = match_block(w, x, 0, 8)
    assert spec == dict(index=0, cin=8, expand=24, cout=8, kernel=(1, 5, 5), stride=(1, 2, 2),
                        se=False, skip="pool+conv", rezero=spec["rezero"])
    assert sorted(role for i, role in w.block_convs.values() if i == 0) == [
        "expansion", "feature", "projection", "skip"]
    add = w.producer_op(w.origin(x))
    assert add.name == "ADD" and w.layer_of[add.index] == "@0/add"
    assert w.block_states == {}                          # block 0 has no stream buffer
    x, spec = match_block(w, x, 1, 8)
    assert (spec["expand"], spec["cout"], spec["kernel"]) == (80, 32, (3, 3, 3))
    assert w.block_states == {1: (1, 0)}
    assert w.used_states == {"state_block1_layer0_stream_buffer": "@1/feature/stream_buffer"}
    temporal = [i for i, (b, role) in w.block_convs.items() if role == "feature_temporal"]
    assert [w.layer_of[i] for i in temporal] == ["@1/feature/conv_temporal"]


def test_se(stream_bytes):
    w = _walk(stream_bytes)
    mean = _ops(w, "MEAN")[0]
    h = w.origin(mean.inputs[0])
    expand = w.shape(h)[-1]
    out, se = match_se(w, h, 0, expand)
    assert abs(se["gate_factor"] - 1 / 6) < 1e-3
    scale = w.producer_op(w.origin(out))
    assert scale.name == "MUL" and w.layer_of[scale.index] == "@0/se/scale"
    assert w.layer_of[mean.index] == "@0/se/pool"
    assert sorted(role for _, role in w.block_convs.values()) == ["se_expand", "se_reduce"]
    assert w.block_states == {0: (0, 0)}
    assert set(w.used_states) == {"state_block0_layer0_pool_buffer",
                                  "state_block0_layer0_pool_frame_count"}
    assert w.acts == {"@0/se/reduce": "hard_swish"}


def test_divide_by_count_float(official_bytes):
    """The official head divides the dequantized running sum by the frame count in float."""
    w = _walk(official_bytes)
    buffer_in = w.state_in["state_head_pool_buffer"]
    quantize = w.one(w.uses(buffer_in), ("QUANTIZE",), "test")
    add = w.one(w.uses(quantize.outputs[0]), ("ADD",), "test")
    mean = match_divide_by_count(w, add.outputs[0], "state_head_pool_frame_count", "head/pool")
    assert w.type_of(mean) == "INT8"
    assert [op.name for op in w.uses(mean)] == ["CONV_2D"]      # the classifier's hidden conv
    labelled = sorted(w.ops[i].name for i, layer in w.layer_of.items() if layer == "head/pool")
    assert labelled == ["ADD", "CAST", "DEQUANTIZE", "DIV", "QUANTIZE"]
    assert list(w.used_states) == ["state_head_pool_frame_count"]


def test_divide_by_count_int8(stream_bytes):
    """The SE of the int8 stream model divides in int8 (a QUANTIZE of the count, int8 DIV)."""
    w = _walk(stream_bytes)
    buffer_in = w.state_in["state_block0_layer0_pool_buffer"]
    add = w.one(w.uses(buffer_in), ("ADD",), "test")
    mean = match_divide_by_count(w, add.outputs[0], "state_block0_layer0_pool_frame_count",
                                 "@0/se/pool")
    div = w.producer_op(mean)
    assert div.name == "DIV" and w.type_of(div.inputs[0]) == "INT8"


def test_se_float_pools(quantized_bytes):
    """minimovinet's float pools: the running sum in float32 between the frame mean's
    DEQUANTIZE and the mean's QUANTIZE, the sum itself the next state (no slice)."""
    w = _walk(quantized_bytes["a0"])
    mean = _ops(w, "MEAN")[0]
    h = w.origin(mean.inputs[0])
    match_se(w, h, 0, w.shape(h)[-1])
    labelled = sorted(w.ops[i].name for i, layer in w.layer_of.items() if layer == "@0/se/pool")
    assert labelled == ["ADD", "ADD", "CAST", "DEQUANTIZE", "DIV", "MEAN", "QUANTIZE", "RESHAPE"]
    add = next(w.ops[i] for i, layer in w.layer_of.items()
               if layer == "@0/se/pool" and w.ops[i].name == "ADD"
               and w.type_of(w.ops[i].outputs[0]) == "FLOAT32")
    assert w.state_out["state_block0_layer0_pool_buffer"] == add.outputs[0]
    assert set(w.used_states) == {"state_block0_layer0_pool_buffer",
                                  "state_block0_layer0_pool_frame_count"}

    def mean_for_sum(model):                 # DIV(this frame's float mean, count)
        ops = model.subgraphs[0].operators
        dq = next(op for op in ops if op.name == "DEQUANTIZE")
        div = next(op for op in ops if op.name == "DIV")
        div.inputs = (dq.outputs[0],) + tuple(div.inputs[1:])
    _refused(_edited(quantized_bytes["a0"], mean_for_sum),
             "block #0/se/pool: float DIV numerator is not the running sum")


def test_positional_encoding_float_scale(quantized_bytes):
    """The A3 encoding as minimovinet writes it: scaled by a float MUL, then QUANTIZEd; the
    scale read is the float32 constant itself."""
    import minimovinet as mm
    program = import_tflite(quantized_bytes["a3"])
    model = mm.random_model("a3", "stream", num_classes=5, seed=1)
    net = plan(model.config)
    pos = {(b.g, b.l): b.pos_scale for b in net.blocks if b.pos_scale is not None}
    assert pos and all(b["pos_scale"] == float(model.raw_params[pos[b["g"], b["l"]]])
                       for b in program.blocks)

    def no_scale(model):                     # the scaling MUL's constant made computed
        ops, tensors = model.subgraphs[0].operators, model.subgraphs[0].tensors
        encoding = next(op for op in ops if op.name == "CONCATENATION"
                        and tensors[op.outputs[0]].type_name == "FLOAT32").outputs[0]
        mul = next(op for op in ops if op.name == "MUL" and encoding in op.inputs)
        mul.inputs = (encoding, encoding)
    _refused(_edited(quantized_bytes["a3"], no_scale),
             "block #0/se/pos_encoding: the encoding is not scaled by a constant")


def test_head(official_bytes):
    w = _walk(official_bytes)
    pool = _ops(w, "SUM")[0]
    project = w.producer_op(w.origin(pool.inputs[0]))    # relu6 fused: no activation op
    match_head(w, project.inputs[0])
    assert w.head == dict(project=480, hidden=2048, pool="SUM")
    assert (w.num_classes, w.classifier_act) == (600, "relu6")
    assert w.acts == {"head/project": "relu6"}
    convs = sorted(w.layer_of[op.index] for op in _ops(w, "CONV_2D") if op.index in w.layer_of)
    net = plan(_config_of(official_bytes))
    assert convs == sorted(c.layer for c in (net.head_project, net.classifier_hidden,
                                             net.classifier_logits))
    dequantize = w.producer_op(w.logits)
    assert w.layer_of[dequantize.index] == "output/dequantize"


@pytest.mark.parametrize("which", ["official", "stream"])
def test_architecture_and_conv_labels(which, official_bytes, stream_bytes):
    """The whole walk: the config, and every conv labelled with its `structure` label."""
    data = official_bytes if which == "official" else stream_bytes
    w = _walk(data)
    walk_graph(w)
    assert all(layer.startswith("@") for i, layer in w.layer_of.items() if i in w.block_convs)
    cfg = infer_config(w)
    assert (cfg.model_id, cfg.variant) == ("a0", "mobile" if which == "official" else "stream")
    assert [(b["g"], b["l"]) for b in w.blocks] == [(g, l) for g, l, *_ in cfg.layers()]
    conv_labels = [w.layer_of[op.index] for op in w.ops
                   if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert sorted(conv_labels) == sorted(c.layer for c in plan(cfg).convs())
    assert not any("@" in layer for layer in w.layer_of.values())
    assert not any("@" in layer for layer in w.used_states.values())


def test_program_converters(stream_bytes):
    assert SUPPORTED_OPS == tuple(OP_CONVERTERS) and len(SUPPORTED_OPS) == 20
    w = _walk(stream_bytes)
    walk_graph(w)
    program = build_program(w, infer_config(w))
    assert [op.tflite_index for op in program.ops] == list(range(len(w.ops)))
    by_op = {op.tflite_op: op for op in program.ops}
    assert by_op["RESHAPE"].kind == "reshape" and len(by_op["RESHAPE"].inputs) == 1
    assert by_op["MEAN"].attrs == dict(axes=[2, 3], keep_dims=True)
    assert len(by_op["MEAN"].inputs) == 1                # the axes became an attribute
    assert by_op["CONCATENATION"].kind == "concat"
    slices = by_op["STRIDED_SLICE"].attrs["slices"]
    assert len(slices) == 5 and all(len(s) == 3 for s in slices)
    assert list(program.states) == sorted(program.states, key=state_sort_key)
    assert list(program.states)[-2:] == ["state_head_pool_buffer",
                                         "state_head_pool_frame_count"]
    weights = program.tensors[by_op["CONV_2D"].inputs[1]]
    assert weights.channel_scales is not None and weights.data.dtype == np.int8


# ---- broken graphs -------------------------------------------------------------------------

def test_foreign_operator(official_bytes):
    def rename_first_conv(model):
        next(op for op in model.subgraphs[0].operators if op.name == "CONV_2D").name = \
            "FULLY_CONNECTED"
    model = _edited(official_bytes, rename_first_conv)
    conv = next(op for op in model.subgraphs[0].operators if op.name == "FULLY_CONNECTED")
    out = model.subgraphs[0].tensors[conv.outputs[0]].name
    with pytest.raises(UnsupportedModelError) as info:
        import_tflite(model)
    assert str(info.value) == (f"<TFLiteModel>: operator #{conv.index} FULLY_CONNECTED (output "
                               f"tensor {out!r}) is not implemented")


def test_residual_add_renamed(official_bytes):
    def rename_residual_add(model):
        w = Walk.of(model)
        rezero = next(op for op in w.ops if op.name == "MUL")
        w.one(w.uses(rezero.outputs[0]), ("ADD",), "test").name = "MUL"
    model = _edited(official_bytes, rename_residual_add)
    w = Walk.of(model)
    read_signature(w)
    x = match_stem(w, match_input(w))
    with pytest.raises(GraphMismatch, match=r"^@0 residual add: expected one ADD operator, "
                                            r"found #\d+ MUL$"):
        match_block(w, x, 0, 8)
    with pytest.raises(UnsupportedModelError, match=r"block #0 residual add: expected one ADD"):
        import_tflite(model)


def test_fused_activation_changed(official_bytes, stream_bytes):
    def stem_tanh(model):
        _set_activation(next(op for op in model.subgraphs[0].operators
                             if op.name == "CONV_2D"), "TANH")
    _refused(_edited(official_bytes, stem_tanh),
             "stem/conv: fused activation TANH is not a MoViNet activation")

    def projection_relu6(model):
        w = Walk.of(model)
        rezero = next(op for op in w.ops if op.name == "MUL")
        _set_activation(w.producer_op(w.origin(rezero.inputs[0])), "RELU6")
    _refused(_edited(official_bytes, projection_relu6),
             "block #0: projection conv has an activation")

    def gate_linear(model):
        w = Walk.of(model)
        _set_activation(next(op for op in w.ops if op.name == "CONV_2D"
                             and op.options.fused_activation_function == "RELU6"), "NONE")
    _refused(_edited(stream_bytes, gate_linear),
             "block #0/se: the gate conv is not relu6-fused (hard sigmoid)")

    def logits_relu(model):
        convs = [op for op in model.subgraphs[0].operators if op.name == "CONV_2D"]
        _set_activation(convs[-1], "RELU")
    _refused(_edited(official_bytes, logits_relu), "classifier logits conv has an activation")


def test_skip_pool_changed(official_bytes):
    def pool_2x2(model):
        pool = next(op for op in model.subgraphs[0].operators if op.name == "AVERAGE_POOL_2D")
        pool.options = dataclasses.replace(pool.options, filter_height=2, filter_width=2)
    _refused(_edited(official_bytes, pool_2x2), "block #0: skip pool is not 3x3 stride 2 SAME")


def test_state_output_missing_or_wrong(official_bytes):
    name = "state_block1_layer0_stream_buffer"

    def drop_output(model):
        del model.signature_defs["serving_default"].outputs[name]
    model = _edited(official_bytes, drop_output)
    with pytest.raises(GraphMismatch, match=re.escape(f"state inputs {[name]} have no matching "
                                                      f"output")):
        read_signature(Walk.of(model))
    _refused(model, f"state inputs {[name]} have no matching output")

    def swap_outputs(model):
        outputs = model.signature_defs["serving_default"].outputs
        other = "state_block1_layer1_stream_buffer"
        outputs[name], outputs[other] = outputs[other], outputs[name]
    _refused(_edited(official_bytes, swap_outputs),
             f"block #1/feature/stream_buffer: the next value of {name!r} is not the "
             f"signature's output of that name")

    def foreign_input(model):
        inputs = model.signature_defs["serving_default"].inputs
        inputs["frames"] = inputs.pop("state_head_pool_buffer")
    _refused(_edited(official_bytes, foreign_input),
             "input 'frames' is neither 'image' nor a MoViNet state")

    def no_signature(model):
        model.signature_defs.clear()
    _refused(_edited(official_bytes, no_signature),
             "it has no signature: the state inputs and outputs cannot be named")


def test_architecture_mismatches(official_bytes):
    w = _walk(official_bytes)
    walk_graph(w)
    w.blocks[0]["expand"] = 25
    # an architecture that is none of A0..A5 becomes a config of its own, grouped as the
    # state names say (the walk checks the convs against it afterwards)
    custom = infer_config(w)
    assert custom.model_id == "custom" and custom.groups[0].expand_filters == (25,)
    assert [g.out_filters for g in custom.groups] == [8, 32, 56, 56, 104]
    assert [len(g.expand_filters) for g in custom.groups] == [1, 3, 3, 4, 4]

    w = _walk(official_bytes)
    walk_graph(w)
    w.block_states[2] = (5, 0)
    with pytest.raises(GraphMismatch, match=re.escape(
            "block #2 reads the states of block5_layer0, which cannot follow the blocks "
            "before it")):
        w.blocks[0]["expand"] = 25
        infer_config(w)

    w = _walk(official_bytes)
    walk_graph(w)
    w.block_states[1] = (2, 0)
    with pytest.raises(GraphMismatch, match=re.escape(
            "block #1 (block1_layer0 of a0) reads the states of block2_layer0")):
        infer_config(w)

    w = _walk(official_bytes)
    walk_graph(w)
    skip = next(i for i, (index, role) in w.block_convs.items() if (index, role) == (0, "skip"))
    del w.block_convs[skip]
    with pytest.raises(GraphMismatch, match=re.escape(
            "block0_layer0/skip/conv of a0 is missing from the graph")):
        infer_config(w)


def test_operator_left_over(official_bytes):
    """An operator the walk never reaches (here a DEQUANTIZE of the stem's weights)."""
    def extra_dequantize(model):
        ops = model.subgraphs[0].operators
        weights = next(op for op in ops if op.name == "CONV_2D").inputs[1]
        dequantize = next(op for op in ops if op.name == "DEQUANTIZE")
        ops.append(dataclasses.replace(dequantize, index=len(ops), inputs=(weights,),
                                       outputs=(weights,)))
    _refused(_edited(official_bytes, extra_dequantize),
             "1 operator(s) are not part of the MoViNet structure: #227 DEQUANTIZE")


def test_malformed_file_stays_a_tflite_error(official_bytes):
    with pytest.raises(TFLiteError, match="truncated"):
        import_tflite(official_bytes[:len(official_bytes) // 2])
    assert not issubclass(UnsupportedModelError, TFLiteError)
