"""Bad input to the int8 path gets a clear error, never a traceback from deep inside.

* a float model where an int8 model is expected (a float TFLite MoViNet, a float .h5);
* a truncated .tflite and a truncated int8 .h5;
* a .tflite that is not a MoViNet stream model (a small Keras graph; the official graph with
  one operator cut out of the structure);
* states from a different model, frames of the wrong size;
* a bad MINIMOVINET_INT8_FORM (SettingError), an operator form minimovinet does not run
  (UnsupportedModelError).
"""
import numpy as np
import pytest

from conftest import need_tensorflow  # noqa: E402

import minimovinet as mm
from minimovinet import TFLiteError
from minimovinet import WeightsFileError
from minimovinet.errors import InputError, SettingError, StateError, UnsupportedModelError
from minimovinet.formats.h5_int8 import read_int8, save_int8
from minimovinet.formats.int8_tflite import load_tflite

OFFICIAL = "models/movinet_a0_stream_k600_int8.tflite"


@pytest.fixture(scope="module")
def official(shared_dir):
    return mm.load(shared_dir / OFFICIAL)


def test_truncated_tflite(shared_dir, tmp_path):
    data = (shared_dir / OFFICIAL).read_bytes()
    for cut in (6, 100, len(data) // 2, len(data) - 1000):
        path = tmp_path / f"cut{cut}.tflite"
        path.write_bytes(data[:cut])
        with pytest.raises(TFLiteError, match="truncated|corrupt|not a TFLite"):
            mm.load(path)


def test_truncated_int8_h5(official, tmp_path):
    path = tmp_path / "a0_int8.h5"
    save_int8(path, official)
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsFileError, match="truncated|readable|corrupted"):
        mm.load(cut)


def test_float_h5_is_not_int8_and_int8_h5_is_not_float(official, tmp_path):
    from minimovinet.formats.h5 import read
    float_path = tmp_path / "float.h5"
    mm.save(mm.random_model("a0", "mobile", num_classes=10), float_path)
    with pytest.raises(WeightsFileError, match="'float32' model, not an int8 model"):
        read_int8(float_path)
    int8_path = tmp_path / "int8.h5"
    save_int8(int8_path, official)
    with pytest.raises(WeightsFileError, match="'int8' model, not a float32 model"):
        read(int8_path)


def _edited(shared_dir, edit):
    """The official graph, parsed, with `edit(subgraph)` applied to its operators."""
    import dataclasses

    from minimovinet.formats.tflite import read_tflite
    model = read_tflite(shared_dir / OFFICIAL)
    g = model.subgraphs[0]
    g.operators = [dataclasses.replace(op) for op in g.operators]
    edit(g)
    return model


def test_official_graph_edited_is_refused_with_what_did_not_match(shared_dir):
    from minimovinet.formats.tflite_import import import_tflite

    def swap_buffer_state(g):
        # block1_layer0's stream buffer reads block1_layer1's state
        a = g.tensor_by_name("serving_default_state_block1_layer0_stream_buffer:0").index
        b = g.tensor_by_name("serving_default_state_block1_layer1_stream_buffer:0").index
        for op in g.operators:
            if op.name == "QUANTIZE" and op.inputs[0] in (a, b):
                op.inputs = (b if op.inputs[0] == a else a,)

    with pytest.raises(UnsupportedModelError, match="state_block1_layer1_stream_buffer"):
        import_tflite(_edited(shared_dir, swap_buffer_state))

    def extra_operator(g):
        add = next(op for op in g.operators if op.name == "ADD" and
                   g.tensors[op.outputs[0]].type_name == "INT8")
        g.operators.append(dataclasses.replace(add, index=len(g.operators),
                                               outputs=(add.inputs[0],)))

    import dataclasses
    with pytest.raises(UnsupportedModelError, match="not a MoViNet stream model"):
        import_tflite(_edited(shared_dir, extra_operator))

    def drop_head_sum(g):
        g.operators = [op for op in g.operators if op.name != "SUM"]
        for i, op in enumerate(g.operators):
            op.index = i

    with pytest.raises(UnsupportedModelError, match="head|SUM|MEAN"):
        import_tflite(_edited(shared_dir, drop_head_sum))


def test_states_from_another_model(official):
    frame = np.zeros((1, 1, 172, 172, 3), np.float32)
    float_states = mm.random_model("a0", "mobile", num_classes=10).init_states(1, 172, 172)
    with pytest.raises(StateError, match="missing .* unexpected|do not match"):
        official(frame, float_states)
    stream_states = mm.random_model("a0", "stream").init_states(1, 172, 172)
    stream_states["state_block1_layer0_stream_buffer"] = np.zeros((1, 2, 22, 22, 8), np.float32)
    with pytest.raises(StateError, match="stream_buffer.*shape"):
        official(frame, stream_states)
    states = official.init_states()
    states["state_head_pool_frame_count"] = np.zeros(1, np.int64)
    with pytest.raises(StateError, match="dtype"):
        official(frame, states)
    states = official.init_states()
    with pytest.raises(StateError, match="shape"):
        official(np.zeros((2, 1, 172, 172, 3), np.float32), states)    # batch 2, states batch 1


def test_nan_state(official):
    states = official.init_states()
    states["state_block2_layer1_stream_buffer"] = states[
        "state_block2_layer1_stream_buffer"].copy()
    states["state_block2_layer1_stream_buffer"][0, 1, 3, 4, 5] = np.nan
    with pytest.raises(StateError, match="state_block2_layer1_stream_buffer.*NaN"):
        official(np.zeros((1, 1, 172, 172, 3), np.float32), states)
    frame = np.zeros((1, 1, 172, 172, 3), np.float32)
    frame[0, 0, 5, 5, 1] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        official(frame, official.init_states())


def test_frames_of_the_wrong_size_or_type(official):
    states = official.init_states()
    with pytest.raises(InputError, match="converted for 172x172"):
        official(np.zeros((1, 1, 64, 64, 3), np.float32), states)
    with pytest.raises(InputError, match="float32"):
        official(np.zeros((1, 1, 172, 172, 3), np.uint8), states)
    with pytest.raises(InputError, match="converted for 172x172"):
        official.init_states(1, 224, 224)


def test_not_a_movinet_tflite(tmp_path):
    tf = need_tensorflow("building a small TFLite graph needs TF")
    inp = tf.keras.Input((16, 16, 3), batch_size=1)
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(inp)
    out = tf.keras.layers.Dense(5)(tf.keras.layers.GlobalAveragePooling2D()(x))
    data = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inp, out)).convert()
    path = tmp_path / "small.tflite"
    path.write_bytes(data)
    with pytest.raises(UnsupportedModelError, match="not a MoViNet stream model"):
        mm.load(path)


def test_float_tflite_movinet_is_refused(request):
    import int8_support as S
    path = S.converted_models(request.config.cache.mkdir("minimovinet-int8"))[
        ("mobile", "float32")]
    with pytest.raises(UnsupportedModelError, match="expected int8"):
        load_tflite(path)


def test_bad_int8_form_setting(request, monkeypatch):
    import int8_support as S
    path = S.converted_models(request.config.cache.mkdir("minimovinet-int8"))[("mobile", "float")]
    monkeypatch.setenv("MINIMOVINET_INT8_FORM", "fastest")
    with pytest.raises(SettingError, match="MINIMOVINET_INT8_FORM='fastest': expected one of"):
        load_tflite(path)
    from minimovinet.int8 import vnni
    if not vnni.AVAILABLE:
        monkeypatch.setenv("MINIMOVINET_INT8_FORM", "vnni")
        with pytest.raises(SettingError, match="no AVX-VNNI"):
            load_tflite(path)
    from minimovinet.int8 import avx2
    if not avx2.AVAILABLE:
        monkeypatch.setenv("MINIMOVINET_INT8_FORM", "avx2")
        with pytest.raises(SettingError, match="no AVX2"):
            load_tflite(path)
    monkeypatch.setenv("MINIMOVINET_INT8_FORM", "reduce")
    load_tflite(path)
    monkeypatch.setenv("MINIMOVINET_INT8_FORM", "avx2" if avx2.AVAILABLE else "rows")
    load_tflite(path)


def _one_op(kind, shape_a, shape_b, dtype="int8"):
    from minimovinet.int8.program import OpSpec, TensorSpec
    shapes = [shape_a, shape_b, tuple(np.broadcast_shapes(shape_a, shape_b))]
    tensors = [TensorSpec(name=n, shape=shape, dtype=dtype, scale=0.1, zero_point=-3)
               for n, shape in zip("abo", shapes)]
    return OpSpec(kind=kind, layer=f"test/{kind}", inputs=(0, 1), outputs=(2,),
                  attrs=dict(activation="NONE")), tensors


@pytest.mark.parametrize("kind,shape_a,shape_b,match", [
    ("add", (1, 4, 4, 8), (1, 1, 1, 8), "ADD with broadcasting"),
    ("add", (1, 4, 4, 8), (1, 1, 1, 1), "ADD with broadcasting"),
    ("mul", (1, 4, 1, 8), (1, 1, 4, 8), "broadcasting both operands"),
    ("mul", (1, 4, 4, 8), (1, 4, 1, 8), "unsupported broadcast"),
    ("div", (1, 1, 1, 8), (1, 1, 1, 8), "DIV by a tensor"),
])
def test_operator_forms_minimovinet_does_not_run(kind, shape_a, shape_b, match):
    """Refused when the program is compiled, as a model minimovinet does not run (not a file
    problem)."""
    from minimovinet.int8.ops import CompileContext, compile_op
    op, tensors = _one_op(kind, shape_a, shape_b)
    with pytest.raises(UnsupportedModelError, match=match) as info:
        compile_op(op, CompileContext(tensors))
    assert not isinstance(info.value, WeightsFileError)
    op.kind = "gather"
    with pytest.raises(UnsupportedModelError, match="unknown op kind 'gather'"):
        compile_op(op, CompileContext(tensors))
