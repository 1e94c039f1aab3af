"""Helpers of the int8 tests: random-weight int8 TFLite MoViNets, LiteRT reference runs, clips.

* `converted_models(cache_dir)`: build the official stream model for each variant
  ('stream': SE + hard_swish; 'mobile': relu6, no SE) with seeded random weights
  (`oracle.build_official`), trace its streaming signature at batch 1 and one frame, and convert
  it with the TFLite converter to int8 (`TFLITE_BUILTINS_INT8`) with a *stateful* representative
  dataset: random clips streamed frame by frame through the float model, states carried
  forward, so that every state's calibration range is the one it has in streaming.
  io='float': float32 image/states/logits (QUANTIZE/DEQUANTIZE inside, like the official file);
  io='int8': int8 image, int8 states and int8 logits ("full int8"); frame counts stay int32.
  Files are cached in `cache_dir` (the tests use pytest's cache directory) keyed by settings.
* `LiteRTStream`: LiteRT (ai-edge-litert) on a .tflite file, one frame per call, states carried.
  resolver='builtin' pins `OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES` (TFLite's built-in
  optimized kernels, no XNNPACK): the reference minimovinet must equal bit for bit.
  resolver='default' is LiteRT's default (XNNPACK delegate applied).
* `read_clip(path, size)`: decode a clip with PyAV and resize every frame to size x size as
  OpenCV's INTER_LINEAR does on uint8 frames (`minimovinet.apps.video`, bit-exact with cv2: what
  the published expectations used), RGB float32 / 255.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from minimovinet.int8 import reference

# ---------------------------------------------------------------------------------------------
# Random-weight int8 TFLite models.

# The models the tests convert: (variant, io); 'float32' is a plain float TFLite file (the
# "float model where int8 is expected" case).
CONVERSIONS = (("mobile", "float"), ("mobile", "int8"), ("stream", "float"), ("stream", "int8"),
               ("mobile", "float32"))
SIZE = 64             # frames are SIZE x SIZE: small, so that conversion and runs are quick
NUM_CLASSES = 10
SEED = 3
CALIB_CLIPS, CALIB_FRAMES = 2, 6
CALIB_SEED = SEED + 1000
# Regression models: conversions of the same float model with another calibration, kept
# because they reach a rounding case the default ones do not.  io -> (variant, calibration
# seed, frames per calibration clip, the test clip (frames, seed) that reaches the case).
# 'float-rounding': an SE pool's cumulative ADD where LiteRT's 16-element NEON blocks and its
# reference tail round differently (frame 1, block3_layer3, element 5 of 184); found by
# converting with calibration seeds 100..130 and tracing every tensor for 16 frames.
# 'int8-rounding' (int8 interface): an SE scale MUL whose requantized product lies 1e-4
# above a rounding half, where TFLite's float32-computed multiplier rounds it down and a
# double-precision one up (frame 11, block4_layer2, one element of 1120).
REGRESSION = {"float-rounding": ("stream", 100, 4, (16, 100)),
              "int8-rounding": ("stream", 109, 8, (16, 109))}
REF_FRAMES = 8        # frames of the fixed test clip the float reference is run on


def test_clip(frames: int = REF_FRAMES, size: int = SIZE, seed: int = 11) -> np.ndarray:
    """A fixed smooth random clip [1, T, size, size, 3] in [0, 1] (a drifting image + noise)."""
    rng = np.random.default_rng(seed)
    base = rng.random((1, 1, size, size, 3), dtype=np.float32)
    clip = [np.clip(base + 0.1 * t / frames + 0.1 * rng.standard_normal(base.shape), 0, 1)
            for t in range(frames)]
    return np.concatenate(clip, axis=1).astype(np.float32)


class file_lock:
    """An exclusive lock between processes (pytest-xdist workers): a file created with
    O_EXCL; a lock older than `stale` seconds is taken to belong to a dead process."""

    def __init__(self, path, stale: float = 1800.0, poll: float = 0.5):
        self.path, self.stale, self.poll = Path(path), stale, poll

    def __enter__(self):
        import time
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                return self
            except FileExistsError:
                try:
                    if time.time() - self.path.stat().st_mtime > self.stale:
                        self.path.unlink()
                        continue
                except FileNotFoundError:
                    continue
                time.sleep(self.poll)

    def __exit__(self, *exc):
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def shared_result(config, cache_dir, name: str, compute):
    """`compute()` once per test run even across pytest-xdist workers: the first worker
    computes it and pickles it under the run's id, the others wait for it and read it.
    (xdist's loadgroup does not group tests with pytest 9 here, so expensive fixtures would
    otherwise run once per worker.)  Without xdist it is simply computed."""
    import pickle
    run = getattr(config, "workerinput", {}).get("testrunuid")
    if run is None:
        return compute()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{name}-{run}.pkl"
    with file_lock(cache_dir / f"{name}.lock"):
        if path.exists():
            with open(path, "rb") as f:
                return pickle.load(f)
        for old in cache_dir.glob(f"{name}-*.pkl"):          # earlier runs
            old.unlink()
        result = compute()
        tmp = path.with_suffix(f".{os.getpid()}.part")
        with open(tmp, "wb") as f:
            pickle.dump(result, f)
        tmp.replace(path)
        return result


DATA = Path(__file__).resolve().parent / "data" / "int8"
MANIFEST = DATA / "manifest.json"
REBUILD = "python tools/make_int8_test_models.py"


def converted_models(cache_dir=None, model_id: str = "a0", variants=("mobile", "stream")) -> dict:
    """{(variant, io): path} of the committed converted random-weight models (tests/data/int8,
    built once by tools/make_int8_test_models.py with the TensorFlow the manifest names), and
    {(variant, 'float_logits'): path of an .npz with the official float model's streaming
    logits on `test_clip()`}.

    The files are committed rather than converted in each run: the TFLite converter calibrates
    with TensorFlow's float kernels, whose last bits depend on the CPU, so a model converted on
    another machine has other scales and other rounding cases (and converting takes minutes).
    Each file's sha256 is checked against the manifest.  `cache_dir` is unused (kept for the
    callers' signature)."""
    import pytest
    if not MANIFEST.exists():
        pytest.fail(f"{MANIFEST} is missing: rebuild the int8 test models with `{REBUILD}`")
    manifest = json.loads(MANIFEST.read_text())
    out = {}
    for entry in manifest["files"]:
        if entry["model_id"] != model_id or entry["variant"] not in variants:
            continue
        path = DATA / entry["file"]
        if not path.exists():
            pytest.fail(f"{path} is missing: rebuild the int8 test models with `{REBUILD}`")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry["sha256"]:
            pytest.fail(f"{path}: sha256 {digest} differs from the manifest's {entry['sha256']}")
        out[(entry["variant"], entry["io"])] = path
    return out


def build_test_models(out_dir, model_id: str = "a0", variants=("mobile", "stream")) -> list:
    """Convert the test models into `out_dir` (what tools/make_int8_test_models.py runs):
    returns the manifest entries (file, variant, io, sha256)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for variant in variants:
        wanted = {io: out_dir / f"{model_id}_{variant}_{io}_{SIZE}.tflite"
                  for v, io in CONVERSIONS if v == variant}
        ref = out_dir / f"{model_id}_{variant}_float_logits_{SIZE}.npz"
        _convert_variant(model_id, variant, wanted, ref)
        for io, path in [*wanted.items(), ("float_logits", ref)]:
            entries.append(dict(file=path.name, model_id=model_id, variant=variant, io=io,
                                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                                bytes=path.stat().st_size))
    for io, (variant, calib_seed, frames, clip) in REGRESSION.items():
        path = out_dir / f"{model_id}_{variant}_{io}_{SIZE}.tflite"
        _convert_variant(model_id, variant, {io: path}, out_dir / "unused_logits.npz",
                         calib_seed=calib_seed, calib_frames=frames)
        (out_dir / "unused_logits.npz").unlink()
        entries.append(dict(file=path.name, model_id=model_id, variant=variant, io=io,
                            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                            bytes=path.stat().st_size, calibration_seed=calib_seed,
                            calibration_frames=frames, test_clip=list(clip)))
    return entries


def _convert_variant(model_id, variant, wanted, ref_path, calib_seed=CALIB_SEED,
                     calib_frames=CALIB_FRAMES):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import oracle
    from conftest import need_tensorflow
    tf = need_tensorflow("the int8 test models are converted with TensorFlow")

    import minimovinet as mm

    cfg = mm.ModelConfig.from_variant(model_id, variant, num_classes=NUM_CLASSES)
    model = oracle.build_official(cfg, seed=SEED)
    serve, zero_states = oracle.stream_serving_fn(model, cfg, SIZE)
    concrete = serve.get_concrete_function()

    def step(frame, states):
        out = serve({"image": tf.constant(frame), **{k: tf.constant(v) for k, v in states.items()}})
        return np.asarray(out["logits"]), {k: np.asarray(out[k]) for k in states}

    # the float model's streaming logits on the fixed test clip
    clip = test_clip()
    states, logits = dict(zero_states), []
    for t in range(clip.shape[1]):
        lg, states = step(clip[:, t:t + 1], states)
        logits.append(lg)
    tmp = ref_path.with_suffix(f".{os.getpid()}.part.npz")
    np.savez(tmp, logits=np.concatenate(logits, axis=0))
    tmp.replace(ref_path)

    def representative():
        rng = np.random.default_rng(calib_seed)
        for _ in range(CALIB_CLIPS):
            # smooth random videos: a random image drifting, plus noise (not pure noise)
            base = rng.random((1, 1, SIZE, SIZE, 3), dtype=np.float32)
            states = dict(zero_states)
            for _t in range(calib_frames):
                frame = np.clip(base + 0.15 * rng.standard_normal(base.shape), 0, 1)
                frame = frame.astype(np.float32)
                yield {"image": frame, **states}
                _, states = step(frame, states)

    for io, path in wanted.items():
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
        io = io.split("-")[0]                       # a regression model: its interface
        if io != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        data = converter.convert()
        tmp = path.with_suffix(f".{os.getpid()}.part")
        tmp.write_bytes(data)
        tmp.replace(path)


def float_model_h5(cache_dir, variant: str, model_id: str = "a0") -> Path:
    """The float model the converted `variant` files come from, as a minimovinet h5 file
    (official checkpoint -> converter), cached next to them."""
    import oracle
    key = dict(model_id=model_id, num_classes=NUM_CLASSES, seed=SEED,
               weights=getattr(oracle, "WEIGHTS_VERSION", 1))
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    path = Path(cache_dir) / f"{model_id}_{variant}_float_{digest}.h5"
    with file_lock(Path(cache_dir) / "convert.lock"):
        if not path.exists():
            _write_float_model(path, oracle, model_id, variant)
    return path


def _write_float_model(path, oracle, model_id, variant):
    import tempfile

    import minimovinet as mm
    from minimovinet.formats.official_checkpoint import convert_arrays
    cfg = mm.ModelConfig.from_variant(model_id, variant, num_classes=NUM_CLASSES)
    model = oracle.build_official(cfg, seed=SEED)
    with tempfile.TemporaryDirectory() as tmp:
        _, arrays = oracle.checkpoint_arrays(model, Path(tmp) / "ckpt")
    tmp_h5 = path.with_suffix(f".{os.getpid()}.part.h5")
    convert_arrays(arrays, tmp_h5, model_id=model_id, variant=variant)
    tmp_h5.replace(path)


# ---------------------------------------------------------------------------------------------
# LiteRT.

class LiteRTStream:
    """LiteRT on a stream .tflite: step(image) -> (logits, states), states carried forward.

    States start as the minimovinet int8 model starts them (each at its zero point for int8
    states, zeros otherwise) unless `states` is given to `reset`.
    """

    def __init__(self, path, resolver: str = "builtin", threads: int = 1,
                 preserve_all_tensors: bool = False):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        kwargs = dict(model_path=str(path), num_threads=threads,
                      experimental_preserve_all_tensors=preserve_all_tensors)
        if resolver == "builtin":
            kwargs["experimental_op_resolver_type"] = \
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        elif resolver != "default":
            raise ValueError(resolver)
        self.interpreter = Interpreter(**kwargs)
        self.runner = self.interpreter.get_signature_runner()
        self.input_details = self.runner.get_input_details()
        self.output_details = self.runner.get_output_details()
        self.states = None

    def initial_states(self):
        states = {}
        for name, d in self.input_details.items():
            if name == "image":
                continue
            zp = d["quantization_parameters"]["zero_points"]
            fill = int(zp[0]) if d["dtype"] == np.int8 and len(zp) else 0
            states[name] = np.full(d["shape"], fill, d["dtype"])
        return states

    def reset(self, states=None):
        self.states = self.initial_states() if states is None else dict(states)

    def step(self, image):
        """Run one frame; returns (logits, raw output states).  The states fed to the next
        call are the outputs, int8 ones requantized to the input's quantization when the file
        quantizes an output state differently from its input (what a LiteRT user must do)."""
        if self.states is None:
            self.reset()
        out = self.runner(image=image, **self.states)
        self.raw = {name: np.array(out[name]) for name in self.states}
        self.states = {name: self._feedback(name, value) for name, value in self.raw.items()}
        return np.array(out["logits"]), dict(self.raw)

    def _feedback(self, name, value):
        di = self.input_details[name]
        do = self.output_details[name]
        if di["dtype"] != np.int8:
            return value
        qi, qo = di["quantization"], do["quantization"]
        if qi == qo:
            return value
        return reference.quantize(reference.dequantize(value, *qo), *qi)


# ---------------------------------------------------------------------------------------------
# Clips.

def read_clip(path, size: int = 172, max_frames=None) -> np.ndarray:
    """All frames of `path` as float32 [T, size, size, 3] RGB in [0, 1]: decoded with PyAV and
    resized like cv2.resize(INTER_LINEAR) on uint8 frames, bit for bit
    (`minimovinet.apps.video.read_video`), then / 255 -- what the published expectations did."""
    from minimovinet.apps.video import read_video, to_model_input
    frames = [to_model_input(f)[0, 0]
              for f in read_video(path, size=(size, size), max_frames=max_frames)]
    return np.stack(frames).astype(np.float32)


def read_labels(shared_dir):
    text = (Path(shared_dir) / "labels" / "kinetics600_label_map.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def softmax(logits):
    z = np.asarray(logits, np.float64).reshape(-1)
    z = np.exp(z - z.max())
    return z / z.sum()


def first_mismatch(path, steps: int = 16, clip_seed: int = 0):
    """Stream `test_clip(steps, seed=clip_seed)` through minimovinet and LiteRT's built-in
    kernels (all tensors preserved), each side feeding back its own states, and compare every
    tensor of the program at every step.  Returns None when all are equal, else (frame, op,
    output tensor, max |diff|, whether the op's inputs were equal)."""
    from minimovinet.formats.int8_tflite import load_tflite
    from minimovinet.int8 import runner
    old = runner.FUSE_REZERO_ADD
    runner.FUSE_REZERO_ADD = False              # every TFLite operator keeps its own output
    try:
        model = load_tflite(path)
    finally:
        runner.FUSE_REZERO_ADD = old
    prog = model.program
    clip = test_clip(steps, model.height, seed=clip_seed)
    dtype, s, z = model.image_quantization
    frames = reference.quantize(clip, s, z) if dtype == "int8" else clip
    litert = LiteRTStream(path, "builtin", preserve_all_tensors=True)
    states = model.init_states()
    litert.reset(states)
    for t in range(steps):
        frame = frames[:, t:t + 1]
        _, raw = model(frame, states, raw_states=True)
        ws = model.runner.workspace()
        states = model.runner.feedback(raw)
        litert.step(frame)
        for op in prog.ops:
            for o in op.outputs:
                mine, theirs = ws[o], litert.interpreter.get_tensor(o)
                if mine is None or np.array_equal(np.asarray(mine).reshape(theirs.shape), theirs):
                    continue
                theirs_of = litert.interpreter.get_tensor
                inputs_equal = all(
                    np.array_equal(np.asarray(ws[i]).reshape(theirs_of(i).shape), theirs_of(i))
                    for i in op.inputs if prog.tensors[i].data is None and ws[i] is not None)
                diff = np.abs(np.asarray(mine, np.float64).reshape(theirs.shape) - theirs).max()
                return t, f"#{op.tflite_index} {op.tflite_op} ({op.layer})", o, diff, inputs_equal
    return None
