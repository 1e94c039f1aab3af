"""The TFLite writer (minimovinet/formats/tflite_writer.py): an int8 program written as a
.tflite file runs in LiteRT's built-in kernels bit for bit as the file it was imported from
(logits and every state after every frame), minimovinet's int8 path equals LiteRT on it, and
reading it back gives the same program.  Checked on the official A0 int8 file (real clip
frames), the committed int8 test models (tests/data/int8, with their rounding-case clips) and
files of the TFLite matrix that minimovinet loads.  Also `mm.save(..., "x.tflite")`,
`minimovinet convert model.h5 -o x.tflite` and the errors.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import need

OFFICIAL = "models/movinet_a0_stream_k600_int8.tflite"
CLIP = "media/carving_ice_172.mp4"
OFFICIAL_FRAMES = 6
DATA = Path(__file__).resolve().parent / "data"
INT8_MODELS = ["a0_mobile_float_64", "a0_mobile_int8_64", "a0_stream_float_64",
               "a0_stream_int8_64", "a0_stream_float-rounding_64", "a0_stream_int8-rounding_64"]
# matrix files minimovinet loads (tests/test_tflite_matrix.py): relu6 from three releases,
# SE + hard-swish from 2.21, float and int8 interfaces, per-channel and per-tensor weights
MATRIX_MODELS = ["tf2.12-mobile-int8io-perchannel", "tf2.17-mobile-floatio-perchannel",
                 "tf2.21-stream-floatio-perchannel", "tf2.21-stream-int8io-perchannel",
                 "tf2.21-stream-floatio-pertensor"]
FRAMES = 6


def _litert(path):
    need("ai_edge_litert", "LiteRT is the reference")
    from int8_support import LiteRTStream
    return LiteRTStream(path, "builtin")


def _frames_for(details, clip):
    """float frames [T, 1, 1, H, W, 3] as the file's image input takes them."""
    from minimovinet.int8.reference import quantize
    if details["dtype"] == np.int8:
        scale, zp = details["quantization"]
        return [quantize(clip[:, t:t + 1], scale, zp) for t in range(clip.shape[1])]
    return [clip[:, t:t + 1] for t in range(clip.shape[1])]


def _verified(path):
    """LiteRT given the file's bytes runs the FlatBuffers verifier on them (from a path it
    does not): it refuses a buffer that is not a valid TFLite flatbuffer."""
    need("ai_edge_litert", "LiteRT's FlatBuffers verifier checks the written file")
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    Interpreter(model_content=Path(path).read_bytes(), experimental_op_resolver_type=
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES).allocate_tensors()


def _assert_streams_equal(original, written, clip, model=None):
    """LiteRT on both files, and minimovinet's `model` when given, frame by frame: logits and
    every state bit-identical.  Returns the number of frames compared."""
    a, b = _litert(original), _litert(written)
    _verified(written)
    assert sorted(a.input_details) == sorted(b.input_details)
    assert sorted(a.output_details) == sorted(b.output_details)
    for name, d in a.input_details.items():
        e = b.input_details[name]
        assert (list(d["shape"]), d["dtype"], d["quantization"]) == \
            (list(e["shape"]), e["dtype"], e["quantization"]), name
    states = model.init_states() if model is not None else None
    frames = _frames_for(a.input_details["image"], clip)
    for t, frame in enumerate(frames):
        la, sa = a.step(frame)
        lb, sb = b.step(frame)
        maxdiff = np.abs(la.astype(np.float64) - lb).max()
        print(f"frame {t}: LiteRT original vs written logits maxdiff {maxdiff}")
        np.testing.assert_array_equal(lb, la, err_msg=f"frame {t} logits")
        assert set(sa) == set(sb)
        for name in sa:
            np.testing.assert_array_equal(sb[name], sa[name], err_msg=f"frame {t} {name}")
        if model is not None:
            logits, states = model(frame, states)
            print(f"frame {t}: minimovinet vs LiteRT on the written file logits maxdiff "
                  f"{np.abs(logits.astype(np.float64) - lb).max()}")
            np.testing.assert_array_equal(logits, lb, err_msg=f"frame {t} minimovinet logits")
            for name, value in b.states.items():
                np.testing.assert_array_equal(states[name], value,
                                              err_msg=f"frame {t} minimovinet {name}")
    return len(frames)


def _assert_same_program(written, original):
    """The re-read program equals the original: tensors (at the same indices; the extra ones
    are the int32 constants of RESHAPE / MEAN / STRIDED_SLICE, read by no op), quantization,
    constants, ops with their attributes, signature, architecture."""
    n = len(original.tensors)
    assert len(written.tensors) >= n
    for i, (a, b) in enumerate(zip(written.tensors, original.tensors)):
        what = f"tensor {i} {b.name!r}"
        assert (a.name, a.shape, a.dtype, a.zero_point, a.quantized_dimension) == \
            (b.name, b.shape, b.dtype, b.zero_point, b.quantized_dimension), what
        assert a.scale == b.scale, what
        assert (a.channel_scales is None) == (b.channel_scales is None), what
        if b.channel_scales is not None:
            np.testing.assert_array_equal(a.channel_scales, b.channel_scales, err_msg=what)
        assert (a.data is None) == (b.data is None), what
        if b.data is not None:
            assert a.data.dtype == b.data.dtype, what
            np.testing.assert_array_equal(a.data, b.data, err_msg=what)
    read = {t for op in written.ops for t in op.inputs}
    for i, t in enumerate(written.tensors[n:], n):
        assert t.dtype == "int32" and t.data is not None and i not in read, t.name
    assert len(written.ops) == len(original.ops)
    for a, b in zip(written.ops, original.ops):
        assert a.to_json() == b.to_json(), b.layer
    assert (written.image, written.logits) == (original.image, original.logits)
    assert written.states == original.states
    assert written.config == original.config
    assert written.blocks == original.blocks


@pytest.fixture(scope="module")
def official(shared_dir, tmp_path_factory):
    """(official file, the file written from its imported program, that program)."""
    from minimovinet.formats.tflite_import import import_tflite
    from minimovinet.formats.tflite_writer import write_tflite
    src = shared_dir / OFFICIAL
    program = import_tflite(src)
    out = tmp_path_factory.mktemp("tflite_writer") / "a0_written.tflite"
    write_tflite(program, out)
    return src, out, program


def test_official_a0_round_trip_bit_identical(official, shared_dir):
    """Real frames through LiteRT on the official file and on the written one, and through
    minimovinet on the written one: logits and all 43 states equal after every frame."""
    need("av", "the real clip is decoded with PyAV")
    import minimovinet as mm
    from int8_support import read_clip
    src, out, _ = official
    clip = read_clip(shared_dir / CLIP, 172, max_frames=OFFICIAL_FRAMES)[None]
    model = mm.load(out)
    assert len(model.program.states) == 43
    assert _assert_streams_equal(src, out, clip, model) == OFFICIAL_FRAMES
    assert model.class_names == mm.load(src).class_names            # the Kinetics-600 names


def test_official_a0_reread_is_the_same_program(official):
    from minimovinet.formats.tflite import read_tflite
    from minimovinet.formats.tflite_import import import_tflite
    _, out, program = official
    _assert_same_program(import_tflite(out), program)
    model = read_tflite(out)
    sig = model.signature_defs["serving_default"]
    assert list(sig.inputs) == ["image", *program.states]
    assert list(sig.outputs) == ["logits", *program.states]
    data = Path(out).read_bytes()                                     # 16-byte aligned data
    start = np.frombuffer(data, np.uint8).ctypes.data
    offsets = [buf.ctypes.data - start for buf in read_tflite(data).buffers if buf.size]
    assert offsets and all(o % 16 == 0 for o in offsets)
    broken = Path(out).with_name("broken.tflite")                     # the verifier can fail
    broken.write_bytes(data[:4] + b"TFL3" + data[8:len(data) // 2])
    with pytest.raises(ValueError):
        _verified(broken)


def _int8_paths():
    manifest = json.loads((DATA / "int8" / "manifest.json").read_text())
    entries = {e["file"].removesuffix(".tflite"): e for e in manifest["files"]}
    return entries


@pytest.mark.parametrize("name", INT8_MODELS + MATRIX_MODELS)
def test_test_models_round_trip(name, tmp_path):
    """The int8 test models (the regression ones on the clip that reaches their rounding
    case) and the matrix files: LiteRT bit-identical on the written file, minimovinet equal
    to it, the same program read back."""
    import minimovinet as mm
    from int8_support import test_clip
    from minimovinet.formats.tflite_import import import_tflite
    from minimovinet.formats.tflite_writer import write_tflite
    if name.startswith("tf2."):
        src = DATA / "tflite_matrix" / f"{name}.tflite"
        frames, seed = FRAMES, 5
    else:
        entry = _int8_paths()[name]
        src = DATA / "int8" / entry["file"]
        frames, seed = entry.get("test_clip", (FRAMES, 11))
    program = import_tflite(src)
    out = tmp_path / "written.tflite"
    write_tflite(program, out)
    _assert_same_program(import_tflite(out), program)
    model = mm.load(out)
    clip = test_clip(frames, model.height, seed=seed)
    assert _assert_streams_equal(src, out, clip, model) == frames


# ---- saving and converting to .tflite ---------------------------------------------------------

def test_save_and_convert_int8_h5_to_tflite(official, tmp_path):
    """mm.save(int8, "x.tflite") and `minimovinet convert x.h5 -o y.tflite`: both run in
    LiteRT as the official file, and keep the class names."""
    import minimovinet as mm
    from int8_support import test_clip
    from minimovinet.cli import main
    src, _, _ = official
    names = [f"class {i}" for i in range(600)]
    model = mm.load(src, class_names=names)
    mm.save(model, tmp_path / "saved.tflite")
    mm.save(model, tmp_path / "a0_int8.h5")
    assert main(["convert", str(tmp_path / "a0_int8.h5"), "-o",
                 str(tmp_path / "converted.tflite")]) == 0
    clip = test_clip(2, 172, seed=3)
    for path in (tmp_path / "saved.tflite", tmp_path / "converted.tflite"):
        assert mm.load(path).class_names == names
        assert _assert_streams_equal(src, path, clip) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["a0_int8.h5", "converted.tflite", "saved.tflite"]          # nothing left over


def test_float_model_is_refused(tmp_path, capsys):
    import minimovinet as mm
    from minimovinet.cli import main
    from minimovinet.formats.tflite_writer import write_tflite
    model = mm.random_model("a0", "stream", num_classes=10)
    out = tmp_path / "float.tflite"
    for write in (lambda: write_tflite(model, out), lambda: mm.save(model, out)):
        with pytest.raises(mm.UnsupportedModelError) as info:
            write()
        assert "float32 model" in str(info.value) and "quantize" in str(info.value)
    mm.save(model, tmp_path / "float.h5")
    assert main(["convert", str(tmp_path / "float.h5"), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "int8" in err and "float32 model" in err, err
    with pytest.raises(mm.InputError, match="Int8Movinet or an Int8Program"):
        write_tflite("model.h5", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["float.h5"]


def test_op_without_tflite_form_is_refused(official, tmp_path):
    import copy
    import dataclasses

    import minimovinet as mm
    from minimovinet.formats.tflite_writer import write_tflite
    _, _, program = official
    conv = next(i for i, op in enumerate(program.ops) if op.kind == "conv")
    bad = copy.copy(program)
    bad.ops = list(program.ops)
    bad.ops[conv] = dataclasses.replace(program.ops[conv], kind="frobnicate")
    out = tmp_path / "bad.tflite"
    with pytest.raises(mm.UnsupportedModelError) as info:
        write_tflite(bad, out)
    message = str(info.value)
    assert "'frobnicate'" in message and program.ops[conv].layer in message, message
    bad.ops[conv] = dataclasses.replace(program.ops[conv], attrs={})
    with pytest.raises(mm.UnsupportedModelError, match="conv op without its attribute"):
        write_tflite(bad, out)
    assert list(tmp_path.iterdir()) == []                     # nothing half-written


# ---- convert INT8 --dequantize -o FLOAT.h5 ----------------------------------------------------

def _stream(model, clip, states):
    out = []
    for t in range(clip.shape[1]):
        logits, states = model(clip[:, t:t + 1], states)
        out.append(logits)
    return np.concatenate(out), states


def test_dequantize_writes_the_float_view(official, tmp_path, capsys):
    """`convert INT8.tflite --dequantize -o FLOAT.h5`: a float Movinet whose parameters and
    outputs equal `Int8Movinet.dequantize()`'s bit for bit, with the class names."""
    import minimovinet as mm
    from int8_support import test_clip
    from minimovinet.cli import main
    src, _, _ = official
    out = tmp_path / "a0_float.h5"
    assert main(["convert", str(src), "--dequantize", "-o", str(out)]) == 0
    assert "dequantized" in capsys.readouterr().out
    loaded = mm.load(out)
    int8_model = mm.load(src)
    expected = int8_model.dequantize()
    assert isinstance(loaded, mm.Movinet) and loaded.config == expected.config
    assert loaded.config.variant == "mobile" and loaded.config.se_type == "none"
    assert loaded.class_names == int8_model.class_names
    a, b = loaded.raw_params, expected.raw_params
    assert sorted(a) == sorted(b)
    for name in b:
        assert a[name].dtype == b[name].dtype == np.float32, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    clip = test_clip(3, 172, seed=4)
    la, sa = _stream(loaded, clip, loaded.init_states(1, 172, 172))
    lb, sb = _stream(expected, clip, expected.init_states(1, 172, 172))
    print("file vs Int8Movinet.dequantize() logits maxdiff", np.abs(la - lb).max())
    np.testing.assert_array_equal(la, lb)
    for name in sb:
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)
    assert [k for k in mm.dequantize(int8_model).raw_params] == list(b)

    # from an int8 h5 file, with its own class names; the float model's stay
    names = [f"class {i}" for i in range(600)]
    mm.save(mm.load(src, class_names=names), tmp_path / "a0_int8.h5")
    assert main(["convert", str(tmp_path / "a0_int8.h5"), "--dequantize", "-o",
                 str(tmp_path / "b.h5")]) == 0
    assert mm.load(tmp_path / "b.h5").class_names == names


def test_dequantized_model_agrees_with_int8_on_real_clips(official, shared_dir):
    """The float view against the int8 model on the shared clips at the model's 5 fps: the
    same final top-1 on every clip, and the same top-1 after most frames (measured: 21/22,
    33/34, 50/50 and 44/50 frames; logits differ by up to ~2.7)."""
    need("av", "the clips are decoded with PyAV")
    import minimovinet as mm
    from minimovinet.apps.video import read_video, to_model_input
    src, _, _ = official
    int8_model = mm.load(src)
    float_model = int8_model.dequantize()
    for clip in sorted((shared_dir / "media").glob("*.mp4")):
        q_states, f_states = int8_model.init_states(), float_model.init_states(1, 172, 172)
        same = frames = 0
        for frame in read_video(clip, fps=5, size=(172, 172)):
            x = to_model_input(frame)
            lq, q_states = int8_model(x, q_states)
            lf, f_states = float_model(x, f_states)
            same += int(lq.argmax() == lf.argmax())
            frames += 1
        top_q, top_f = (int8_model.class_names[int(v.argmax())] for v in (lq, lf))
        print(f"{clip.name}: int8 {top_q!r}, float view {top_f!r}; same top-1 after "
              f"{same}/{frames} frames; final logits maxdiff {np.abs(lq - lf).max():.3f}")
        assert top_q == top_f, clip.name
        assert same >= 0.85 * frames, clip.name


def test_dequantize_errors(tmp_path, capsys):
    import minimovinet as mm
    from minimovinet.cli import main
    model = mm.random_model("a0", "stream", num_classes=10)
    mm.save(model, tmp_path / "float.h5")
    with pytest.raises(mm.InputError, match="int8 model"):
        mm.dequantize(model)
    assert main(["convert", str(tmp_path / "float.h5"), "--dequantize", "-o",
                 str(tmp_path / "x.h5")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs an int8 model" in err, err
    assert main(["convert", str(tmp_path / "float.h5"), "--dequantize", "-o",
                 str(tmp_path / "x.tflite")]) == 1
    assert "(.h5)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["float.h5"]


def test_small_float_program_with_a_scalar_constant(tmp_path):
    """A program that is no MoViNet (a float MUL by a 0-d constant, then a RESHAPE): LiteRT
    runs the written file, and float32 multiplication is exact IEEE arithmetic, so its output
    is NumPy's bit for bit."""
    from collections import OrderedDict

    from minimovinet.config import ModelConfig
    from minimovinet.formats.tflite_writer import write_tflite
    from minimovinet.int8.program import Int8Program, OpSpec, TensorSpec
    tensors = [TensorSpec("image", (1, 6), "float32"),
               TensorSpec("c", (), "float32", data=np.array(1.7, np.float32)),
               TensorSpec("product", (1, 6), "float32"),
               TensorSpec("logits", (2, 3), "float32")]
    ops = [OpSpec("mul", "scale", (0, 1), (2,), dict(activation="NONE")),
           OpSpec("reshape", "reshape", (2,), (3,))]
    program = Int8Program(tensors, ops, image=0, logits=3, states=OrderedDict(),
                          config=ModelConfig.from_variant("a0", "stream"), blocks=[])
    out = tmp_path / "small.tflite"
    write_tflite(program, out)
    _verified(out)
    need("ai_edge_litert", "LiteRT is the reference")
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    runner = Interpreter(model_path=str(out), experimental_op_resolver_type=
                         OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES).get_signature_runner()
    x = np.random.default_rng(0).standard_normal((1, 6)).astype(np.float32)
    logits = runner(image=x)["logits"]
    expected = (x * np.float32(1.7)).reshape(2, 3)
    print("maxdiff", np.abs(logits - expected).max())
    np.testing.assert_array_equal(logits, expected)
