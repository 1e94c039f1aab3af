"""The op kinds and graph rewrites that let the int8 importer take every converter variation
(formats/tflite_import/normalize.py, pos_encoding.py; int8/ops/trig.py, layout.py), each
checked against LiteRT's built-in kernels:

* SIN and COS on single-op float graphs converted here with TensorFlow, on a dense grid of
  values (every dequantized int8 value at several scales, and wide random floats);
* every BROADCAST_TO, RANGE, shrinking STRIDED_SLICE, float CONCATENATION, SIN, COS and the
  QUANTIZEs the normalization inserts, op by op inside the TFLite matrix files (TF 2.12 /
  2.15 / 2.21, with positional encoding), fed LiteRT's own inputs, every frame;
* the normalization rewrites value-preserving pairs only (a requantizing pair stays);
* the refusals: an operator minimovinet does not implement, a TFLite file that is not a
  MoViNet -- one line each, naming the file;
* the official A0 int8 file still maps fully onto the MoViNet structure (fused kernels).
"""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from conftest import need, need_tensorflow

import minimovinet as mm
from minimovinet.errors import UnsupportedModelError
from minimovinet.formats.tflite import read_tflite
from minimovinet.formats.tflite_import import import_tflite
from minimovinet.formats.tflite_import.normalize import normalize
from minimovinet.int8 import kernels as int8_kernels
from minimovinet.int8 import runner as int8_runner
from minimovinet.int8.ops import CompileContext, compile_op
from minimovinet.int8.program import OpSpec, TensorSpec

DATA = Path(__file__).resolve().parent / "data" / "tflite_matrix"
OFFICIAL = "models/movinet_a0_stream_k600_int8.tflite"
FRAMES = 3


# ---- SIN / COS on single-op graphs -------------------------------------------------------------

def _grid() -> np.ndarray:
    """float32 values the positional encoding feeds SIN / COS (dequantized int8 at several
    scales), and random floats over a wide range."""
    q = np.arange(-128, 128, dtype=np.float32)
    dequantized = [np.float32(s) * (q - np.float32(z))
                   for s, z in ((0.0196078, -128), (0.0392157, -128), (0.0078125, 0),
                                (0.123, 7), (0.5, -3))]
    rng = np.random.default_rng(0)
    wide = rng.uniform(-300, 300, 4096).astype(np.float32)
    small = rng.normal(0, 2, 4096).astype(np.float32)
    return np.concatenate(dequantized + [wide, small]).astype(np.float32)


@pytest.fixture(scope="module")
def trig_files(tmp_path_factory):
    tf = need_tensorflow("converts the single-op SIN / COS graphs")
    need("ai_edge_litert", "LiteRT is the reference")
    n = _grid().size
    out = {}
    for name, fn in (("sin", tf.sin), ("cos", tf.cos)):
        f = tf.function(lambda x, fn=fn: fn(x),
                        input_signature=[tf.TensorSpec([n], tf.float32)])
        conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
        path = tmp_path_factory.mktemp("trig") / f"{name}.tflite"
        path.write_bytes(conv.convert())
        out[name] = path
    return out


def _litert_single(path, x):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=str(path), experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    it.allocate_tensors()
    ops = {op["op_name"] for op in it._get_ops_details()}
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]), ops


@pytest.mark.parametrize("kind", ["sin", "cos"])
def test_trig_equals_litert(trig_files, kind):
    x = _grid()
    expected, ops = _litert_single(trig_files[kind], x)
    assert ops == {kind.upper()}, ops
    tensors = [TensorSpec("x", x.shape, "float32"), TensorSpec("y", x.shape, "float32")]
    op = OpSpec(kind=kind, layer="test", inputs=(0,), outputs=(1,))
    run = compile_op(op, CompileContext(tensors))
    ws = [x, np.empty_like(x)]
    run(ws, None)
    bad = np.flatnonzero(ws[1].view(np.int32) != expected.view(np.int32))
    maxdiff = float(np.abs(ws[1].astype(np.float64) - expected).max())
    print(f"{kind}: {x.size} values, maxdiff {maxdiff:.3g}, {bad.size} differ")
    assert bad.size == 0, f"{kind}({x[bad[0]]!r}) = {ws[1][bad[0]]!r}, LiteRT {expected[bad[0]]!r}"


# ---- the new op kinds inside the matrix files, op by op -----------------------------------------

NEW_KINDS = ("broadcast_to", "range", "sin", "cos", "slice", "concat", "quantize", "cast")


def _frames(interp_details, rng):
    from minimovinet.int8.reference import quantize as quantize_like_litert
    shape = interp_details["shape"]
    clip = rng.random((FRAMES, *shape), dtype=np.float32)
    if interp_details["dtype"] == np.int8:
        scale, zp = interp_details["quantization"]
        return [quantize_like_litert(f, scale, zp) for f in clip]
    return list(clip)


@pytest.mark.parametrize("name", ["tf2.12-stream-pe-floatio-perchannel",
                                  "tf2.15-stream-pe-floatio-perchannel",
                                  "tf2.21-stream-pe-floatio-perchannel",
                                  "tf2.12-stream-int8io-perchannel"])
def test_every_new_op_equals_litert_in_the_matrix(name, monkeypatch):
    """Every op of the program (the new kinds named), fed LiteRT's own inputs of the frame,
    computes LiteRT's own output tensor; over a few frames of the stream."""
    need("ai_edge_litert", "LiteRT is the reference")
    from int8_support import LiteRTStream
    monkeypatch.setattr(int8_runner, "FUSE_REZERO_ADD", False)
    path = DATA / f"{name}.tflite"
    model = mm.load(path)
    prog = model.program
    original_tensors = len(read_tflite(path).subgraphs[0].tensors)
    ref = LiteRTStream(path, "builtin", preserve_all_tensors=True)
    ref.reset(model.init_states())
    interp = ref.interpreter
    checked = {}
    for t, frame in enumerate(_frames(ref.input_details["image"], np.random.default_rng(3))):
        ref.step(frame)
        ws = [None] * (len(prog.tensors) + len(model.runner.scratch))
        for i, (shape, dtype, fill) in enumerate(model.runner.scratch):
            ws[len(prog.tensors) + i] = np.full(shape, fill, dtype)
        for i, spec in enumerate(prog.tensors):
            ws[i] = spec.data if spec.data is not None else (
                np.array(interp.get_tensor(i)) if i < original_tensors else None)
        for op, run in zip(prog.ops, model.runner.runners):
            if any(ws[i] is None for i in op.inputs):          # an input the rewrite made
                continue
            outs = {}
            for o in op.outputs:
                spec = prog.tensors[o]
                outs[o] = ws[o]
                ws[o] = np.empty(spec.shape, spec.numpy_dtype)
            run(ws, int8_kernels.SERIAL)
            for o in op.outputs:
                mine = ws[o]
                if o < original_tensors:
                    expected = np.array(interp.get_tensor(o))
                    np.testing.assert_array_equal(
                        np.asarray(mine).reshape(expected.shape), expected,
                        err_msg=f"frame {t}: op #{op.tflite_index} {op.tflite_op} ({op.layer})")
                    if op.kind in NEW_KINDS:
                        checked[op.kind] = checked.get(op.kind, 0) + 1
                ws[o] = outs[o] if o < original_tensors else mine
    print(name, "checked:", checked)
    pe = "-pe-" in name
    wanted = {"slice", "quantize"} | ({"range", "sin", "cos", "concat", "cast"} if pe else set())
    if name.startswith("tf2.12-stream"):
        wanted.add("broadcast_to")
    assert wanted <= set(checked), f"not checked: {sorted(wanted - set(checked))}"


# ---- the normalization ------------------------------------------------------------------------

def _float_concats(model):
    g = model.subgraphs[0]
    return [op for op in g.operators if op.name == "CONCATENATION"
            and g.tensors[op.outputs[0]].type_name == "FLOAT32"]


def test_normalization_pushes_quantize_into_the_se_concat():
    """TF 2.15's float SE concatenation becomes TF 2.21's int8 one; the 2.21 file is left as
    it is; the positional encoding's float concatenation (no cancelling DEQUANTIZE) stays."""
    old = read_tflite(DATA / "tf2.15-stream-floatio-perchannel.tflite")
    assert len(_float_concats(old)) == 5                  # one per SE block
    new = normalize(old)
    assert _float_concats(new) == []
    counts_old, counts_new = old.op_counts(), new.op_counts()
    assert counts_new["DEQUANTIZE"] == counts_old["DEQUANTIZE"] - 5    # the frame means'
    assert counts_new["QUANTIZE"] == counts_old["QUANTIZE"]            # one moved per block
    assert [op.index for op in new.subgraphs[0].operators] == list(
        range(len(new.subgraphs[0].operators)))
    assert len(old.subgraphs[0].operators) == sum(counts_old.values())  # the input unchanged
    newest = read_tflite(DATA / "tf2.21-stream-floatio-perchannel.tflite")
    assert normalize(newest) is newest
    pe = normalize(read_tflite(DATA / "tf2.21-stream-pe-floatio-perchannel.tflite"))
    assert len(_float_concats(pe)) == 5                   # CONCATENATION(SIN, COS)


def test_normalization_keeps_a_requantizing_pair():
    """A DEQUANTIZE -> QUANTIZE with another scale is a requantization, not the identity: the
    float concatenation stays (and the walk then refuses the SE it does not know)."""
    model = read_tflite(DATA / "tf2.15-stream-floatio-perchannel.tflite")
    g = model.subgraphs[0]
    g.tensors = list(g.tensors)
    for cat in _float_concats(model):
        q = next(op for op in g.operators if op.name == "QUANTIZE"
                 and op.inputs[0] == cat.outputs[0])
        t = g.tensors[q.outputs[0]]
        quant = dataclasses.replace(t.quantization, scale=t.quantization.scale * 1.01)
        g.tensors[t.index] = dataclasses.replace(t, quantization=quant)
    assert len(_float_concats(normalize(model))) == 5
    with pytest.raises(UnsupportedModelError, match="se/pool quantize"):
        import_tflite(model)


def _with_pair_after_first_hard_swish(path, scale_factor):
    """The parsed file with DEQUANTIZE -> QUANTIZE inserted after the first HARD_SWISH (the
    QUANTIZE's scale times `scale_factor`), its readers reading the QUANTIZE's output."""
    from minimovinet.formats.tflite import Quantization
    model = read_tflite(path)
    g = model.subgraphs[0]
    g.tensors = list(g.tensors)
    hs = next(op for op in g.operators if op.name == "HARD_SWISH")
    x = g.tensors[hs.outputs[0]]
    f = dataclasses.replace(x, index=len(g.tensors), name="test/dequantized", type_name="FLOAT32",
                            dtype=np.dtype(np.float32), quantization=Quantization(
                                np.empty(0, np.float32), np.empty(0, np.int64)))
    g.tensors.append(f)
    q = dataclasses.replace(x, index=len(g.tensors), name="test/quantized", quantization=(
        dataclasses.replace(x.quantization, scale=x.quantization.scale * scale_factor)))
    g.tensors.append(q)
    dq_op = dataclasses.replace(hs, name="DEQUANTIZE", inputs=(x.index,), outputs=(f.index,))
    q_op = dataclasses.replace(hs, name="QUANTIZE", inputs=(f.index,), outputs=(q.index,))
    ops = []
    for op in g.operators:
        ops.append(dataclasses.replace(op, inputs=tuple(q.index if t == x.index else t
                                                        for t in op.inputs)))
        if op is hs:
            ops += [dq_op, q_op]
    g.operators = [dataclasses.replace(op, index=i) for i, op in enumerate(ops)]
    return model


def test_normalization_cancels_an_identity_pair_anywhere():
    """DEQUANTIZE -> QUANTIZE of the same quantization inserted into a graph: dropped, the
    structure recognised, the results LiteRT's on the file without the pair; with another
    scale it requantizes: kept, and the walk names where the structure broke (the block
    after the stem)."""
    need("ai_edge_litert", "LiteRT is the reference")
    from int8_support import LiteRTStream
    from minimovinet.int8.model import Int8Movinet
    path = DATA / "tf2.21-stream-floatio-perchannel.tflite"
    model = Int8Movinet(import_tflite(_with_pair_after_first_hard_swish(path, 1.0)))
    assert len(model.program.ops) == len(read_tflite(path).subgraphs[0].operators)
    reference = LiteRTStream(path, "builtin")
    reference.reset(model.init_states())
    states = model.init_states()
    for t, frame in enumerate(_frames(reference.input_details["image"],
                                      np.random.default_rng(8))):
        expected, _ = reference.step(frame)
        logits, states = model(frame, states)
        np.testing.assert_array_equal(logits, expected, err_msg=f"frame {t}")
    with pytest.raises(UnsupportedModelError, match=r"after block 0: .* found #\d+ DEQUANTIZE"):
        import_tflite(_with_pair_after_first_hard_swish(path, 1.5))


# ---- refusals ----------------------------------------------------------------------------------

def test_unimplemented_operator_is_one_line_naming_op_tensor_and_file(tmp_path):
    """An operator without a minimovinet kernel (here the SE's MEAN renamed to REDUCE_PROD
    in the parsed graph, then an unknown custom op) is refused with its index, output tensor
    and the file."""
    path = DATA / "tf2.21-stream-floatio-perchannel.tflite"
    model = read_tflite(path)
    g = model.subgraphs[0]
    mean = next(op for op in g.operators if op.name == "MEAN")
    g.operators = [dataclasses.replace(op, name="REDUCE_PROD") if op.index == mean.index
                   else op for op in g.operators]
    with pytest.raises(UnsupportedModelError) as info:
        import_tflite(model)
    message = str(info.value)
    out = g.tensors[mean.outputs[0]].name
    assert message == (f"<TFLiteModel>: operator #{mean.index} REDUCE_PROD (output tensor "
                       f"{out!r}) is not implemented")
    assert "\n" not in message
    g.operators = [dataclasses.replace(op, name="CUSTOM", custom_code="MyOp")
                   if op.index == mean.index else op for op in g.operators]
    with pytest.raises(UnsupportedModelError, match=r"operator #\d+ CUSTOM \(MyOp\)"):
        import_tflite(model)


def test_tflite_that_is_not_a_movinet(tmp_path):
    """A small float graph (a dense layer) from a SavedModel, with its signature and with the
    signature removed: one line naming the file and what is missing."""
    tf = need_tensorflow("converts a small non-MoViNet model")
    weights = tf.constant(np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32))
    module = tf.Module()
    module.f = tf.function(lambda x: tf.nn.relu(tf.matmul(x, weights)),
                           input_signature=[tf.TensorSpec([1, 8], tf.float32, name="x")])
    tf.saved_model.save(module, str(tmp_path / "saved"), signatures=module.f)
    path = tmp_path / "dense.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved")).convert())
    with pytest.raises(UnsupportedModelError) as info:
        mm.load(path)
    message = str(info.value)
    print(message)
    assert message.startswith(f"{path}: not a MoViNet stream model")
    assert "its signature has no 'image' input (inputs: ['x'])" in message
    assert "\n" not in message
    model = read_tflite(path)
    model.signature_defs = {}
    with pytest.raises(UnsupportedModelError, match="^<TFLiteModel>: not a MoViNet stream "
                                                    "model .*: it has no signature"):
        import_tflite(model)


# ---- the official file keeps its structure and fused kernels ----------------------------------

def test_official_a0_still_maps_onto_the_structure(shared_dir):
    model = mm.load(shared_dir / OFFICIAL)
    prog = model.program
    assert (model.config.model_id, model.config.variant) == ("a0", "mobile")
    kinds = {op.kind for op in prog.ops}
    assert not kinds & {"broadcast_to", "range", "sin", "cos"}
    assert all(op.layer and op.layer != "reshape" for op in prog.ops if op.kind != "reshape")
    assert len(prog.blocks) == len(list(model.config.layers()))
    # the ReZero MUL of every block fused with its residual ADD (its own runner a no-op)
    fused = sum(run.__name__ == "_noop" for run in model.runner.runners)
    assert fused == len(prog.blocks), (fused, len(prog.blocks))


def test_dequantized_view_keeps_the_positional_encoding_scale():
    """The float view of a file with positional encoding carries each block's encoding scale
    (the MUL constant): its logits stay near LiteRT's int8 logits, and far from them with the
    scales zeroed (so the scale is really used, with its sign)."""
    need("ai_edge_litert", "LiteRT is the reference")
    from int8_support import LiteRTStream
    from minimovinet.float32.model import Movinet
    path = DATA / "tf2.21-stream-pe-floatio-perchannel.tflite"
    model = mm.load(path)
    view = model.dequantize()
    scales = [k for k in view._params if k.endswith("pos_encoding/scale")]
    assert len(scales) == len(model.program.blocks)
    no_encoding = Movinet(view.config, {k: (np.zeros_like(v) if k in scales else v)
                                        for k, v in view._params.items()})
    reference = LiteRTStream(path, "builtin")
    reference.reset(model.init_states())
    clip = np.random.default_rng(0).random((1, 6, 64, 64, 3), dtype=np.float32)
    for t in range(clip.shape[1]):
        expected, _ = reference.step(clip[:, t:t + 1])
    near = float(np.abs(view(clip) - expected).max())
    far = float(np.abs(no_encoding(clip) - expected).max())
    print(f"maxdiff float view {near:.4f}, without the encoding {far:.4f}")
    assert near < 0.15 and far > 3 * near


# ---- the op-by-op fallback ------------------------------------------------------------------------

def _with_duplicated_first_hard_swish(path):
    """The parsed file with its first HARD_SWISH computed twice (two identical ops, the
    readers split between them): the same values, a structure the walk refuses."""
    model = read_tflite(path)
    g = model.subgraphs[0]
    g.tensors = list(g.tensors)
    hs = next(op for op in g.operators if op.name == "HARD_SWISH")
    x = g.tensors[hs.outputs[0]]
    twin = dataclasses.replace(x, index=len(g.tensors), name="test/twin")
    g.tensors.append(twin)
    readers = [op for op in g.operators if x.index in op.inputs]
    moved = readers[-1]                                    # one reader reads the twin
    ops = []
    for op in g.operators:
        if op is moved:
            op = dataclasses.replace(op, inputs=tuple(twin.index if t == x.index else t
                                                      for t in op.inputs))
        ops.append(op)
        if op is hs:
            ops.append(dataclasses.replace(hs, outputs=(twin.index,)))
    g.operators = [dataclasses.replace(op, index=i) for i, op in enumerate(ops)]
    return model, len(readers)


def test_unrecognised_structure_runs_op_by_op(tmp_path):
    """A graph the walk does not recognise loads (mm.load's path) and runs op by op: LiteRT's
    results on the file it was made from (the edit changes no value), every frame and state;
    describe() says why; no float view, no features; the int8 h5 file keeps it."""
    need("ai_edge_litert", "LiteRT is the reference")
    from int8_support import LiteRTStream
    from minimovinet.formats.int8_tflite import load_tflite
    path = DATA / "tf2.19-stream-floatio-perchannel.tflite"
    patched, readers = _with_duplicated_first_hard_swish(path)
    assert readers == 2
    with pytest.raises(UnsupportedModelError, match="not a MoViNet stream model"):
        import_tflite(patched)                             # the walk alone refuses it
    model = load_tflite(patched)
    assert model.config.model_id == "unrecognised"
    text = model.describe()
    print(text.splitlines()[0])
    assert "MoViNet structure not recognised, run op by op: " in text
    assert "found #13 HARD_SWISH, #14 HARD_SWISH" in model.program.unrecognised
    reference = LiteRTStream(path, "builtin")
    states = model.init_states()
    for t, frame in enumerate(_frames(reference.input_details["image"],
                                      np.random.default_rng(9))):
        expected, _ = reference.step(frame)
        logits, states = model(frame, states)
        np.testing.assert_array_equal(logits, expected, err_msg=f"frame {t}")
        for name, value in reference.states.items():
            np.testing.assert_array_equal(states[name], value, err_msg=f"frame {t} {name}")
    with pytest.raises(UnsupportedModelError, match="no float view: the MoViNet structure"):
        model.dequantize()
    with pytest.raises(UnsupportedModelError, match="no features"):
        model.features(np.zeros((1, 1, 64, 64, 3), np.float32))
    saved = tmp_path / "unrecognised.h5"
    mm.save(model, saved)
    again = mm.load(saved)
    assert again.program.unrecognised == model.program.unrecognised
    frame = np.random.default_rng(1).random((1, 2, 64, 64, 3), dtype=np.float32)
    np.testing.assert_array_equal(again(frame), model(frame))


def test_op_by_op_refuses_a_graph_it_cannot_run():
    """An operator reading a tensor nothing computes: one line naming op, tensor, file."""
    from minimovinet.formats.int8_tflite import load_tflite
    model = read_tflite(DATA / "tf2.21-mobile-floatio-perchannel.tflite")
    g = model.subgraphs[0]
    first_conv = next(op for op in g.operators if op.name == "CONV_2D")
    g.operators = [op for op in g.operators if op.index != first_conv.index - 1]  # its QUANTIZE
    g.operators = [dataclasses.replace(op, index=i) for i, op in enumerate(g.operators)]
    with pytest.raises(UnsupportedModelError, match=r"^<TFLiteModel>: operator #\d+ CONV_2D "
                                                    r"reads tensor '.*', which no earlier "
                                                    r"operator computes$"):
        load_tflite(model)
