"""Post-training quantization without TensorFlow (`mm.quantize`, `minimovinet quantize`).

* The float graph the calibration streams is the float model (logits and every state equal
  minimovinet's float model, itself equal to the official one), for SE + hard-swish, relu6,
  positional-encoding (a3) and trained-head architectures; the int8 program runs on the int8
  path, saves and loads as an int8 h5 file, and dequantizes.
* Against TensorFlow's TFLite converter (TF 2.20, run in LiteRT's built-in kernels) on the same
  seeded random official model (a reduced A0-like spec with SE and hard-swish, 64x64) and the
  same calibration frames (two real clips streamed with the states carried, as the official
  quantize_movinet.py does), over held-back real clips longer than the calibration clips
  (top-1 agreement per frame, logit SNR; the table is printed): minimovinet with the
  converter's scheme (int8 running sums, pools='int8') agrees as well as the converter's file,
  and the default (float running sums) does measurably better, with any range method.  The
  same with real weights: the dequantized official A0 int8 model (relu6) at 172x172, loaded
  into the official Keras model for the converter (about 2.5 minutes, cached).
* The written .tflite (formats.tflite_writer) runs in LiteRT's built-in kernels bit for bit as
  minimovinet's int8 path: logits and every state at every frame.
* Requantizing the dequantized official A0 int8 model reproduces the official file's top-1 on
  every clip of ../shared/media (every frame fed, as the published checks do).
* Bad input: too few calibration frames, NaN, an int8 model, a bad array: one clear line.
"""
import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import need, need_tensorflow, relmax

SIZE = 64
NUM_CLASSES = 10
SEED = 3
# calibration: the first CALIB_FRAMES frames (5 fps) of these clips; held back: the others
CALIB_CLIPS = ("carving_ice_360.mp4", "rope_pushdown_400.mp4")
CALIB_FRAMES = 12
HELD_CLIPS = ("arm_wrestling.mp4", "carving_ice_172.mp4")
HELD_FRAMES = 30
REDUCED_SPEC = Path(__file__).resolve().parent / "data" / "tflite_matrix" / "manifest.json"


def _reduced_config(variant="stream"):
    import minimovinet as mm
    from minimovinet.config import GroupSpec, HeadSpec, StemSpec
    spec = json.loads(REDUCED_SPEC.read_text())["model"]["reduced_spec"]
    stem = StemSpec(spec["stem"]["filters"], tuple(spec["stem"]["kernel"]),
                    tuple(spec["stem"]["stride"]))
    groups = tuple(GroupSpec(g["out_filters"], tuple(b["expand"] for b in g["blocks"]),
                             tuple(tuple(b["kernel"]) for b in g["blocks"]),
                             tuple(tuple(b["stride"]) for b in g["blocks"]))
                   for g in spec["groups"])
    head = HeadSpec(spec["head"]["project_filters"], spec["head"]["hidden_filters"])
    cfg = mm.ModelConfig.from_variant("a0", variant, num_classes=NUM_CLASSES)
    return dataclasses.replace(cfg, model_id="custom", block_spec=(stem, groups, head))


def _clips(shared_dir, names, frames, size=SIZE):
    import minimovinet as mm
    need("av", "PyAV decodes the shared clips")
    out = []
    for name in names:
        video = [f for f in mm.read_video(shared_dir / "media" / name, fps=5, size=size,
                                          max_frames=frames)]
        out.append(np.stack(video).astype(np.float32) / np.float32(255.0))
    return out


def _stream(step, clip):
    """Logits after every frame of `clip` [T, H, W, 3]: [T, classes] float64."""
    return np.stack([np.asarray(step(clip[None, None, t]), np.float64).reshape(-1)
                     for t in range(clip.shape[0])])


def _agreement(reference, logits):
    """(top-1 agreement per frame, logit SNR in dB) of logits against the float reference."""
    agree = float(np.mean(np.argmax(reference, 1) == np.argmax(logits, 1)))
    snr = 10 * np.log10(np.sum(reference ** 2) / np.sum((reference - logits) ** 2))
    return agree, float(snr)


# ---- the official model and the converter's file (cached) ----------------------------------

def _register_spec(cfg):
    """The reduced spec in the official BLOCK_SPECS under the config's model id 'custom'."""
    import oracle
    movinet = oracle._mods()["movinet"]
    stem, groups, head = cfg.block_spec
    specs = [movinet.StemSpec(filters=stem.filters, kernel_size=stem.kernel, strides=stem.stride)]
    specs += [movinet.MovinetBlockSpec(base_filters=g.out_filters,
                                       expand_filters=g.expand_filters,
                                       kernel_sizes=g.kernels, strides=g.strides)
              for g in groups]
    specs.append(movinet.HeadSpec(project_filters=head.project_filters,
                                  head_filters=head.hidden_filters))
    movinet.BLOCK_SPECS["custom"] = tuple(specs)


def _tflite_int8(tf, model, serve, zero_states, calibration) -> bytes:
    """TensorFlow's converter, int8 with float interfaces, on the calibration clips streamed
    frame by frame with the states carried (quantize_movinet.py's representative dataset)."""
    def representative():
        for clip in calibration:
            states = dict(zero_states)
            for t in range(clip.shape[0]):
                frame = clip[None, None, t]
                yield {"image": frame, **states}
                out = serve({"image": tf.constant(frame),
                             **{k: tf.constant(v) for k, v in states.items()}})
                states = {k: np.asarray(out[k]) for k in states}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def _write(path: Path, data: bytes):
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def _convert(cfg, calibration, tflite_path, params_path):
    """Build the seeded official model, convert it to int8 with the TFLite converter on the
    calibration clips, and keep its parameters."""
    tf = need_tensorflow("the TFLite converter is the reference")
    import tempfile

    import oracle
    from minimovinet.formats.official_checkpoint import params_from_official
    _register_spec(cfg)
    model = oracle.build_official(cfg, seed=SEED)
    with tempfile.TemporaryDirectory() as tmp:
        _, arrays = oracle.checkpoint_arrays(model, Path(tmp) / "ckpt")
    params = params_from_official(arrays, cfg, source="oracle")
    serve, zero_states = oracle.stream_serving_fn(model, cfg, SIZE)
    data = _tflite_int8(tf, model, serve, zero_states, calibration)
    np.savez(params_path.with_suffix(".part.npz"), **params)
    params_path.with_suffix(".part.npz").replace(params_path)
    _write(tflite_path, data)


def _official_with(params, cfg, size):
    """The official Model Garden model of `cfg` with minimovinet `params` as its weights
    (official_checkpoint's names, written as a checkpoint and read into the model)."""
    tf = need_tensorflow("the TFLite converter is the reference")
    import tempfile

    import oracle
    from minimovinet.formats.official_checkpoint import official_names
    model = oracle.build_raw(cfg)
    serve, zero_states = oracle.stream_serving_fn(model, cfg, size)
    serve({"image": tf.zeros([1, 1, size, size, 3]),
           **{k: tf.constant(v) for k, v in zero_states.items()}})      # builds the variables
    with tempfile.TemporaryDirectory() as tmp:
        prefix = tf.train.Checkpoint(model=model).write(str(Path(tmp) / "ckpt"))
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        values = {k: reader.get_tensor(k) for k in shapes}
        for name, (key, _) in official_names(cfg).items():
            values[key] = np.reshape(params[name], shapes[key]).astype(values[key].dtype)
        keys = sorted(values)
        tf.raw_ops.SaveV2(prefix=prefix, tensor_names=keys, shape_and_slices=[""] * len(keys),
                          tensors=[tf.constant(values[k]) for k in keys])
        tf.train.Checkpoint(model=model).read(prefix).expect_partial()
    return tf, model, serve, zero_states


@pytest.fixture(scope="module")
def comparison(shared_dir, request):
    """(float model, converter's .tflite path, calibration clips, held-back clips)."""
    import oracle

    import minimovinet as mm
    tf = need_tensorflow("the TFLite converter is the reference")
    need("ai_edge_litert", "LiteRT runs the converter's file")
    cfg = _reduced_config()
    calibration = _clips(shared_dir, CALIB_CLIPS, CALIB_FRAMES)
    held = _clips(shared_dir, HELD_CLIPS, HELD_FRAMES)
    key = dict(tf=tf.__version__, weights=oracle.WEIGHTS_VERSION, seed=SEED, size=SIZE,
               spec=repr(cfg.block_spec), calib=hashlib.sha1(
                   b"".join(c.tobytes() for c in calibration)).hexdigest())
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    cache = Path(request.config.cache.mkdir("minimovinet-quantize"))
    tflite_path, params_path = cache / f"converter-{digest}.tflite", cache / f"params-{digest}.npz"
    if not (tflite_path.exists() and params_path.exists()):
        began = time.perf_counter()
        _convert(cfg, calibration, tflite_path, params_path)
        print(f"\nTFLite converter: {time.perf_counter() - began:.1f} s")
    with np.load(params_path) as f:
        params = {k: f[k] for k in f.files}
    return mm.Movinet(cfg, params), tflite_path, calibration, held


def test_float_graph_is_the_float_model(comparison):
    """What calibration streams (the graph as TFLite lays it out, in float32) equals the float
    model frame by frame: logits and every state."""
    from minimovinet.int8.float_graph import FloatGraphRunner
    from minimovinet.int8.graph import build_graph
    model, _, calibration, _ = comparison
    graph = build_graph(model.config, model.raw_params, SIZE, SIZE)
    runner = FloatGraphRunner(graph)
    states, float_states = runner.init_states(), model.init_states(1, SIZE, SIZE)
    for t in range(8):
        frame = calibration[0][None, None, t]
        logits, states, _ = runner.step(frame, states)
        expected, float_states = model(frame, float_states)
        print(f"frame {t}: logits maxdiff {np.abs(logits - expected).max():.2e}")
        assert relmax(expected, logits) < 1e-4
        for name, value in float_states.items():
            assert relmax(value, np.asarray(states[name]).reshape(value.shape)) < 1e-4, name


OPTIONS = {"minimovinet default (minmax, float pools)": dict(),
           "minimovinet ranges=mse": dict(ranges="mse"),
           "minimovinet ranges=percentile": dict(ranges="percentile"),
           "minimovinet pools=int8 (as the converter)": dict(pools="int8")}


def _table(model, tflite_path, calibration, held, size):
    """label -> (top-1 agreement, logit SNR) against the float `model` over the held-back
    clips, for the converter's file in LiteRT and minimovinet's options; printed."""
    import minimovinet as mm
    from int8_support import LiteRTStream
    reference = np.concatenate([_stream(lambda f, s=[model.init_states(1, size, size)]:
                                        _float_step(model, f, s), clip) for clip in held])
    lite = LiteRTStream(tflite_path, "builtin")

    def litert_logits(clip):
        lite.reset()
        return _stream(lambda f: lite.step(f)[0], clip)

    rows = {"TFLite converter (LiteRT)": ([litert_logits(c) for c in held], None)}
    for label, opts in OPTIONS.items():
        began = time.perf_counter()
        q = mm.quantize(model, calibration, **opts)
        seconds = time.perf_counter() - began
        rows[label] = ([_stream(lambda f, s=[q.init_states()]: _int8_step(q, f, s), c)
                        for c in held], seconds)
    print(f"\nheld-back frames: {sum(c.shape[0] for c in held)} of {HELD_CLIPS}, calibration "
          f"{calibration[0].shape[0]} frames of each of {CALIB_CLIPS} (5 fps, {size}x{size})")
    print(f"{'':<46} top-1 agreement   logit SNR   quantization")
    table = {}
    for label, (logits, seconds) in rows.items():
        table[label] = _agreement(reference, np.concatenate(logits))
        took = "" if seconds is None else f"{seconds:8.1f} s"
        print(f"{label:<46} {100 * table[label][0]:8.1f} %   {table[label][1]:8.2f} dB {took}")
    return table


def _check_table(table, margin_db):
    conv = table["TFLite converter (LiteRT)"]
    default = table["minimovinet default (minmax, float pools)"]
    as_converter = table["minimovinet pools=int8 (as the converter)"]
    # the converter's scheme (int8 running sums) is what the converter's file does
    assert as_converter[0] >= conv[0] - 0.05 and abs(as_converter[1] - conv[1]) < 1.0
    # float running sums (the default) keep what the int8 sums lose on streams longer than
    # the calibration clips, with any range method
    assert default[0] >= conv[0] and default[1] >= conv[1] + margin_db
    for label in ("minimovinet ranges=mse", "minimovinet ranges=percentile"):
        assert table[label][0] >= conv[0] - 0.05 and table[label][1] >= conv[1] + margin_db, \
            label


def test_against_the_tflite_converter(comparison):
    """Top-1 agreement per frame and logit SNR against the float model on held-back real
    clips: the converter's file in LiteRT, minimovinet's default and its options (seeded
    random official weights, SE and hard-swish)."""
    model, tflite_path, calibration, held = comparison
    table = _table(model, tflite_path, calibration, held, SIZE)
    _check_table(table, 6.0)
    assert table["minimovinet default (minmax, float pools)"][0] >= \
        table["TFLite converter (LiteRT)"][0] + 0.2


@pytest.fixture(scope="module")
def real_weights(shared_dir, request):
    """(the dequantized official A0 int8 model as a float model, the converter's int8 file
    of it, calibration clips, held-back clips), at 172x172."""
    import minimovinet as mm
    float_a0 = mm.load(shared_dir / "models" / "movinet_a0_stream_k600_int8.tflite").dequantize()
    need("ai_edge_litert", "LiteRT runs the converter's file")
    calibration = _clips(shared_dir, CALIB_CLIPS, CALIB_FRAMES, size=172)
    held = _clips(shared_dir, HELD_CLIPS, HELD_FRAMES, size=172)
    tf = need_tensorflow("the TFLite converter is the reference")
    key = dict(tf=tf.__version__, model="official-a0-dequantized", calib=hashlib.sha1(
        b"".join(c.tobytes() for c in calibration)).hexdigest())
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(request.config.cache.mkdir("minimovinet-quantize")) / f"a0-real-{digest}.tflite"
    if not path.exists():
        began = time.perf_counter()
        _write(path, _tflite_int8(*_official_with(float_a0.raw_params, float_a0.config, 172),
                                  calibration))
        print(f"\nTFLite converter (A0, 172x172): {time.perf_counter() - began:.1f} s")
    return float_a0, path, calibration, held


@pytest.mark.slow
def test_against_the_tflite_converter_real_weights(real_weights):
    """The same with real weights: the dequantized official A0 int8 model (relu6, no SE) as
    the float model, converted by TensorFlow and quantized by minimovinet on the same frames."""
    model, tflite_path, calibration, held = real_weights
    _check_table(_table(model, tflite_path, calibration, held, 172), 1.0)


def _float_step(model, frame, holder):
    logits, holder[0] = model(frame, holder[0])
    return logits


def _int8_step(model, frame, holder):
    logits, holder[0] = model(frame, holder[0])
    return model.float_logits(logits)


# ---- the official A0 int8 model, requantized -------------------------------------------------

def test_requantized_official_a0_keeps_its_top1(shared_dir, tmp_path):
    """The dequantized official A0 int8 model, quantized again on two of the clips (5 fps, the
    model's rate), gives the official file's top-1 on every clip of ../shared/media fed every
    frame; the quantization time of A0 at 172x172 is printed."""
    import minimovinet as mm
    from int8_support import read_clip
    from minimovinet.contract import softmax
    need("av", "PyAV decodes the shared clips")
    official = mm.load(shared_dir / "models" / "movinet_a0_stream_k600_int8.tflite")
    float_a0 = official.dequantize()
    calibration = [c for c in _clips(shared_dir, CALIB_CLIPS, None, size=172)]
    began = time.perf_counter()
    requantized = mm.quantize(float_a0, calibration)
    seconds = time.perf_counter() - began
    print(f"\nquantizing A0 172x172 on {sum(c.shape[0] for c in calibration)} frames: "
          f"{seconds:.1f} s")
    mm.save(requantized, tmp_path / "a0_requantized.h5")
    requantized = mm.load(tmp_path / "a0_requantized.h5")
    for path in sorted((shared_dir / "media").glob("*.mp4")):
        clip = read_clip(path, 172)[None]                           # [1, T, 172, 172, 3]
        tops = []
        for model in (official, requantized):
            states = model.init_states()
            for t in range(clip.shape[1]):
                logits, states = model(clip[:, t:t + 1], states)
            p = softmax(model.float_logits(logits))[0]
            tops.append((official.class_names[int(np.argmax(p))], float(np.max(p))))
        print(f"{path.name}: official {tops[0][0]} {tops[0][1]:.3f}, requantized "
              f"{tops[1][0]} {tops[1][1]:.3f}")
        assert tops[0][0] == tops[1][0], path.name


# ---- the written .tflite in LiteRT ------------------------------------------------------------

def _assert_litert_equal(q, path, clip):
    """LiteRT's built-in kernels on the written file and minimovinet's int8 path on the
    program, frame by frame from zero states: logits and every state bit-identical."""
    need("ai_edge_litert", "LiteRT is the reference")
    import minimovinet as mm
    from int8_support import LiteRTStream
    mm.save(q, path)
    lite = LiteRTStream(path, "builtin")
    assert sorted(lite.initial_states()) == sorted(q.init_states())
    states = q.init_states()
    for t in range(clip.shape[1]):
        frame = clip[:, t:t + 1]
        image = frame if q.image_quantization[0] == "float32" else q._check_frames(frame)
        expected, _ = lite.step(image)
        logits, states = q(frame, states)
        print(f"frame {t}: logits maxdiff "
              f"{np.abs(expected.astype(np.float64) - logits).max():.3g}")
        np.testing.assert_array_equal(logits, expected, err_msg=f"frame {t} logits")
        for name, value in lite.states.items():
            np.testing.assert_array_equal(states[name], value, err_msg=f"frame {t} {name}")


WRITTEN = [("a0", "stream", {}),
           ("a0", "stream", dict(input="int8", states="int8", output="int8", pools="int8")),
           ("a0", "mobile", dict(ranges="mse")),
           ("a3", "stream", {}),                            # positional encoding: SIN, COS
           ("a3", "stream", dict(states="int8", pools="int8"))]


@pytest.mark.parametrize("model_id,variant,opts", WRITTEN,
                         ids=[f"{m}-{v}-{'-'.join(f'{k}={x}' for k, x in o.items()) or 'default'}"
                              for m, v, o in WRITTEN])
def test_written_tflite_runs_in_litert_as_minimovinet(model_id, variant, opts, tmp_path):
    """The quantized program as a .tflite file (formats.tflite_writer): LiteRT's built-in
    kernels equal minimovinet's int8 path bit for bit, logits and every state at every step
    (A0 with SE and hard-swish, relu6, full int8 interfaces; A3 with its positional encoding)."""
    import minimovinet as mm
    model = mm.random_model(model_id, variant, num_classes=NUM_CLASSES, seed=1)
    rng = np.random.default_rng(0)
    base = rng.random((2, 1, 32, 32, 3), dtype=np.float32)
    clips = np.clip(base + 0.1 * rng.standard_normal((2, 10, 32, 32, 3)), 0, 1).astype(np.float32)
    q = mm.quantize(model, clips, size=32, **opts)
    test = np.clip(base[:1] + 0.1 * rng.standard_normal((1, 12, 32, 32, 3)), 0, 1)
    _assert_litert_equal(q, tmp_path / "q.tflite", test.astype(np.float32))
    # minimovinet reads the written file back: with the MoViNet structure recognised (the
    # converter's scheme) or op by op (float pools), the same bits either way
    again = mm.load(tmp_path / "q.tflite")
    print("read back:", again.program.unrecognised or "structure recognised")
    if opts.get("pools") == "int8" and model_id == "a0":
        assert not again.program.unrecognised
    frames = test[:, :6].astype(np.float32)
    for mine, theirs in zip(again(frames), q(frames)):
        for name in (mine if isinstance(mine, dict) else {"logits": mine}):
            a = mine[name] if isinstance(mine, dict) else mine
            b = theirs[name] if isinstance(theirs, dict) else theirs
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_written_tflite_real_weights(comparison, tmp_path):
    """The same on the official seeded model quantized on real clips, held-back frames."""
    import minimovinet as mm
    model, _, calibration, held = comparison
    q = mm.quantize(model, calibration)
    _assert_litert_equal(q, tmp_path / "q.tflite", held[0][None, :16])


# ---- architectures -------------------------------------------------------------------------------

@pytest.mark.parametrize("model_id,variant", [("a0", "stream"), ("a0", "mobile"),
                                               ("a3", "stream")])
def test_architectures_run_save_and_load(model_id, variant, tmp_path):
    """SE + hard-swish, relu6 without SE, the a3 positional encoding, int8 or float states
    and image: the program runs, its float view is the float model's architecture, the h5
    file keeps it bit for bit, and int8 tracks the float model (logit SNR printed)."""
    import minimovinet as mm
    model = mm.random_model(model_id, variant, num_classes=NUM_CLASSES, seed=1)
    rng = np.random.default_rng(0)
    base = rng.random((2, 1, 32, 32, 3), dtype=np.float32)
    clips = np.clip(base + 0.1 * rng.standard_normal((2, 10, 32, 32, 3)), 0, 1).astype(np.float32)
    for opts in (dict(), dict(input="int8", states="int8", output="int8", pools="int8")):
        q, report = mm.quantize(model, clips, size=32, report=True, **opts)
        print(model_id, variant, opts, f"logit SNR {report.logits_snr_db:.1f} dB")
        assert report.logits_snr_db > 10 and len(report.layers) > 20
        # the report's logits are the models' own: the held-back clip (the last one) streamed
        # through the float model and the int8 model
        held = clips[-1:]
        expected = _stream(lambda f, s=[model.init_states(1, 32, 32)]: _float_step(model, f, s),
                           held[0])
        got = _stream(lambda f, s=[q.init_states()]: _int8_step(q, f, s), held[0])
        agree, snr = _agreement(expected, got)
        assert abs(snr - report.logits_snr_db) < 0.05 and agree == report.top1_agreement
        assert q.dequantize().config == model.config
        mm.save(q, tmp_path / "q.h5")
        again = mm.load(tmp_path / "q.h5")
        frames = clips[:1, :3]
        np.testing.assert_array_equal(again(frames), q(frames))
        if opts.get("states") == "int8":
            dtypes = {n: a.dtype for n, a in q.init_states().items()}
            assert dtypes[next(n for n in dtypes if n.endswith("stream_buffer"))] == np.int8


def test_trained_head(tmp_path):
    """A model as `minimovinet train` makes it (the embedded A0 backbone, a new linear head)."""
    import minimovinet as mm
    from minimovinet.apps.head import ClassifierHead
    from minimovinet.apps.train import build_model
    backbone = mm.load("a0-stream-int8").dequantize()
    head = ClassifierHead.initialize(backbone.config.head.project_filters, 3,
                                     backbone.config.head.hidden_filters,
                                     backbone.config.classifier_activation, kind="linear",
                                     seed=2)
    model = build_model(backbone, head, ["a", "b", "c"])
    rng = np.random.default_rng(1)
    clips = rng.random((1, 10, 64, 64, 3), dtype=np.float32)
    q = mm.quantize(model, clips, size=64)
    assert q.class_names == ["a", "b", "c"] and q.config.num_classes == 3
    logits, _ = q(clips[:, :2], q.init_states())
    assert q.float_logits(logits).shape == (1, 3)


# ---- bad input -------------------------------------------------------------------------------------

def test_bad_input(tmp_path):
    import minimovinet as mm
    model = mm.random_model("a0", "mobile", num_classes=NUM_CLASSES, seed=1)
    rng = np.random.default_rng(0)
    good = rng.random((1, 10, 32, 32, 3), dtype=np.float32)
    with pytest.raises(mm.InputError, match=r"has 4 frame\(s\); at least 10 are needed"):
        mm.quantize(model, good[:, :4])
    nan = good.copy()
    nan[0, 3, 1, 1, 0] = np.nan
    with pytest.raises(mm.InputError, match="NaN or infinite values \\(frame 3\\)"):
        mm.quantize(model, nan)
    with pytest.raises(mm.InputError, match=r"shape \[N, T, H, W, 3\]"):
        mm.quantize(model, good[..., :2])
    with pytest.raises(mm.InputError, match="divide uint8 frames by 255"):
        mm.quantize(model, good * 255)
    with pytest.raises(mm.InputError, match="ranges must be one of"):
        mm.quantize(model, good, ranges="max")
    with pytest.raises(mm.UnsupportedModelError, match="already an int8 model: dequantize it "
                                                       "first.*--dequantize"):
        mm.quantize("a0-stream-int8", good)
    with pytest.raises(mm.FileError, match="calibration data not found"):
        mm.quantize(model, tmp_path / "nothing")
    with pytest.raises(mm.FileError, match="no video files"):
        mm.quantize(model, tmp_path)


def test_cli(tmp_path, capsys):
    """minimovinet quantize MODEL --calibration frames.npy -o OUT.h5 --report; an int8 model
    is refused with exit code 1 and one line."""
    import minimovinet as mm
    from minimovinet.cli import main
    model = mm.random_model("a0", "mobile", num_classes=NUM_CLASSES, seed=1)
    mm.save(model, tmp_path / "float.h5")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "frames.npy", (rng.random((2, 10, 32, 32, 3)) * 255).astype(np.uint8))
    code = main(["quantize", str(tmp_path / "float.h5"), "--calibration",
                 str(tmp_path / "frames.npy"), "-o", str(tmp_path / "out.h5"), "--report",
                 "--ranges", "mse"])
    out = capsys.readouterr().out
    assert code == 0 and "per layer, worst first" in out and "logits: SNR" in out
    print(out)
    assert isinstance(mm.load(tmp_path / "out.h5"), mm.Int8Movinet)
    # minimovinet's importer reads back the converter's scheme (int8 pools); the float pools
    # and the positional encoding run in LiteRT but are not imported yet
    for i, pools in enumerate(("int8", "float")):
        out = tmp_path / f"out{i}.tflite"
        code = main(["quantize", str(tmp_path / "float.h5"), "--calibration",
                     str(tmp_path / "frames.npy"), "-o", str(out), "--input", "int8",
                     "--states", "int8", "--pools", pools])
        assert code == 0 and out.exists()
    again = mm.load(tmp_path / "out0.tflite")
    assert isinstance(again, mm.Int8Movinet) and again.image_quantization[0] == "int8"
    capsys.readouterr()
    code = main(["quantize", "a0-stream-int8", "--calibration", str(tmp_path / "frames.npy"),
                 "-o", str(tmp_path / "x.h5")])
    err = capsys.readouterr().err
    assert code == 1 and "dequantize it first" in err and len(err.strip().splitlines()) == 1
