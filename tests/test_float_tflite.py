"""Float TFLite MoViNet stream files (float32, float16, dynamic-range) load as float32 `Movinet`
models and compute what LiteRT computes, every step, logits and every state.

The files are exported here with the venv's TensorFlow from seeded random official models
(tests/float_tflite_support.py: a reduced A0-like stream architecture, and the same with the
A3..A5 positional encoding, in every form; the full A0 stream model as float16; 64x80 frames,
batch 1), once across xdist workers (a file lock), and kept in pytest's cache keyed by
everything that makes them.

Tolerance: max |minimovinet - LiteRT| <= REL x max |LiteRT| per tensor (logits and each
state), REL = 1e-4, for float32 and float16 files.  A dynamic-range file runs in minimovinet
as float with its int8 weights dequantized, while LiteRT's hybrid kernels also quantize the
activations on the fly: their distance is measured and printed, bounded by DYNAMIC_REL.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import need, need_tensorflow

import float_tflite_support as S

REL = 1e-4
DYNAMIC_REL = 0.05          # measured 1-2.5 % (worst tensor, 4 steps); 5 % leaves headroom
STEPS = 4
MODELS = {"a0like": False, "a3like": True}      # name -> positional encoding
EXPORT_VERSION = 2          # bump when float_tflite_support changes what it exports


def _export_all(cache: Path) -> dict:
    """{(model, form): path}: exported once, reused while the key is the same.  The reduced
    models in every form; the full A0 stream model as float16 (the registry's form)."""
    import minimovinet as mm
    tf = need_tensorflow("the float TFLite test files are exported with TensorFlow")
    out = {}
    jobs = [(name, S.reduced_config(pos), S.FORMS) for name, pos in MODELS.items()]
    jobs.append(("a0", mm.ModelConfig.from_variant("a0", "stream", num_classes=S.NUM_CLASSES),
                 ("float16",)))
    for name, cfg, forms in jobs:
        key = dict(config=cfg.to_dict(), seed=S.SEED, size=[S.HEIGHT, S.WIDTH],
                   tf=tf.__version__, version=EXPORT_VERSION)
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
        paths = {form: cache / f"{name}_{form}_{digest}.tflite" for form in forms}
        todo = {form: p for form, p in paths.items() if not p.exists()}
        if todo:
            S.export_stream_tflites(cfg, todo)
        out.update({(name, form): p for form, p in paths.items()})
    return out


@pytest.fixture(scope="session")
def float_files(request):
    need("ai_edge_litert", "LiteRT is the reference")
    from int8_support import file_lock
    cache = Path(request.config.cache.mkdir("minimovinet-float-tflite"))
    with file_lock(cache / "export.lock"):             # one exporter across xdist workers
        return _export_all(cache)


def _relative_distances(model, path, frames):
    """Per step: {tensor: max |minimovinet - LiteRT| / max |LiteRT|} for the logits and
    every state, each side carrying its own states."""
    reference = S.stream_litert(path, frames)
    states = model.init_states(1, frames.shape[2], frames.shape[3])
    assert set(states) == set(reference[0][1])
    steps = []
    for t, (ref_logits, ref_states) in enumerate(reference):
        logits, states = model(frames[:, t:t + 1], states)
        dist = {"logits": _rel(logits, ref_logits)}
        for name, value in ref_states.items():
            assert states[name].dtype == value.dtype and states[name].shape == value.shape
            dist[name] = _rel(states[name], value)
        steps.append(dist)
    return steps


def _rel(mine, theirs) -> float:
    theirs = np.asarray(theirs, np.float64)
    diff = np.abs(np.asarray(mine, np.float64).reshape(theirs.shape) - theirs).max()
    scale = np.abs(theirs).max()
    return float(diff / scale) if scale > 0 else float(diff)


@pytest.mark.parametrize("form", ["float32", "float16"])
@pytest.mark.parametrize("name", list(MODELS))
def test_float_file_equals_litert(float_files, name, form):
    import minimovinet as mm
    from minimovinet.float32.model import Movinet
    path = float_files[(name, form)]
    model = mm.load(path)
    assert isinstance(model, Movinet)
    expected = S.reduced_config(MODELS[name])
    assert model.config.spec == expected.spec and model.config.model_id == "custom"
    assert model.config.uses_positional_encoding == MODELS[name]
    assert (model.config.activation, model.config.se_type, model.config.num_classes) == \
        ("hard_swish", "2plus3d", S.NUM_CLASSES)
    assert f"{form} TFLite file {path}" in model.describe()
    steps = _relative_distances(model, path, S.test_frames(STEPS))
    for t, dist in enumerate(steps):
        worst = max(dist, key=dist.get)
        print(f"{name} {form} step {t}: maxdiff logits {dist['logits']:.2e} relative, "
              f"worst {worst} {dist[worst]:.2e}")
        assert dist[worst] <= REL, (t, worst, dist[worst])


def test_a0_stream_float16_file_equals_litert(float_files):
    """The full A0 stream architecture (SE, hard swish) as float16: recognised as a0."""
    import minimovinet as mm
    path = float_files[("a0", "float16")]
    model = mm.load(path)
    assert (model.config.model_id, model.config.variant) == ("a0", "stream")
    assert model.config.block_spec is None and not model.config.uses_positional_encoding
    for t, dist in enumerate(_relative_distances(model, path, S.test_frames(STEPS))):
        worst = max(dist, key=dist.get)
        print(f"a0 stream float16 step {t}: maxdiff logits {dist['logits']:.2e} relative, "
              f"worst {worst} {dist[worst]:.2e}")
        assert dist[worst] <= REL, (t, worst, dist[worst])


@pytest.mark.parametrize("name", list(MODELS))
def test_dynamic_range_file_distance_to_litert(float_files, name):
    """Run as float with the dequantized int8 weights; LiteRT's hybrid convs quantize their
    input too.  The distance is printed and bounded; the file has hybrid convs."""
    import minimovinet as mm
    from minimovinet.formats.tflite import read_tflite
    path = float_files[(name, "dynamic-range")]
    graph = read_tflite(path).subgraphs[0]
    hybrid = [op for op in graph.operators if op.name == "CONV_2D"
              and graph.tensors[op.inputs[1]].type_name == "INT8"]
    assert hybrid, "the dynamic-range file has no int8-weight conv"
    model = mm.load(path)
    assert "dynamic-range TFLite" in model.describe() and "dequantized" in model.describe()
    assert model.config.uses_positional_encoding == MODELS[name]
    steps = _relative_distances(model, path, S.test_frames(STEPS))
    for t, dist in enumerate(steps):
        worst = max(dist, key=dist.get)
        print(f"{name} dynamic-range ({len(hybrid)} hybrid convs) step {t}: maxdiff logits "
              f"{dist['logits']:.2e} relative, worst {worst} {dist[worst]:.2e} "
              f"(bound {DYNAMIC_REL})")
        assert dist[worst] <= DYNAMIC_REL, (t, worst, dist[worst])


def test_committed_a0_mobile_float32_file(request):
    """The float32 conversion of the full A0 mobile stream model (relu6, no SE; committed
    under tests/data/int8 as the "float model where int8 is expected" case) loads as the a0
    architecture and equals LiteRT."""
    need("ai_edge_litert", "LiteRT is the reference")
    import int8_support
    import minimovinet as mm
    path = int8_support.converted_models(None)[("mobile", "float32")]
    model = mm.load(path)
    assert (model.config.model_id, model.config.variant) == ("a0", "mobile")
    size = int8_support.SIZE
    frames = S.test_frames(STEPS, size, size)
    reference = S.stream_litert(path, frames)
    states = model.init_states(1, size, size)
    for t, (ref_logits, ref_states) in enumerate(reference):
        logits, states = model(frames[:, t:t + 1], states)
        dist = {"logits": _rel(logits, ref_logits),
                **{name: _rel(states[name], v) for name, v in ref_states.items()}}
        worst = max(dist, key=dist.get)
        print(f"a0 mobile float32 step {t}: maxdiff logits {dist['logits']:.2e} relative, "
              f"worst {worst} {dist[worst]:.2e}")
        assert dist[worst] <= REL, (t, worst, dist[worst])


def test_dynamic_range_weights_are_the_float_models(float_files):
    """The dequantized int8 weights are the float32 file's to within one quantization step
    (per-channel scale = max |w| / 127): the same model, quantized."""
    import minimovinet as mm
    exact = mm.load(float_files[("a0like", "float32")]).raw_params
    dynamic = mm.load(float_files[("a0like", "dynamic-range")]).raw_params
    assert exact.keys() == dynamic.keys()
    differ = [n for n in exact if not np.array_equal(exact[n], dynamic[n])]
    assert differ, "no weight was quantized"
    for n in differ:
        step = np.abs(exact[n]).max() / 127
        diff = np.abs(exact[n] - dynamic[n]).max()
        print(f"{n}: maxdiff {diff:.2e} (quantization step {step:.2e})")
        assert diff <= 0.51 * step + 1e-7


def test_convert_float_tflite_to_h5(float_files, tmp_path, capsys):
    """`minimovinet convert` writes a float h5 file computing what the loaded file does."""
    import minimovinet as mm
    from minimovinet.cli import main
    path = float_files[("a3like", "float32")]
    out = tmp_path / "a3like.h5"
    assert main(["convert", str(path), "-o", str(out)]) == 0
    print(capsys.readouterr().out)
    direct, saved = mm.load(path), mm.load(out)
    assert saved.config == direct.config
    frames = S.test_frames(2)
    a, b = direct.init_states(1, S.HEIGHT, S.WIDTH), saved.init_states(1, S.HEIGHT, S.WIDTH)
    for t in range(2):
        (la, a), (lb, b) = direct(frames[:, t:t + 1], a), saved(frames[:, t:t + 1], b)
        print(f"step {t}: maxdiff {np.abs(la - lb).max():.2e}")
        assert _rel(la, lb) <= REL          # the h5 computes the encoding's angles itself


def test_not_a_movinet_float_tflite(tmp_path):
    import minimovinet as mm
    tf = need_tensorflow("building a small TFLite graph needs TF")
    inp = tf.keras.Input((12, 16, 3), batch_size=1)
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(inp)
    out = tf.keras.layers.Dense(5)(tf.keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path / "small_float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inp, out)).convert())
    with pytest.raises(mm.UnsupportedModelError) as info:
        mm.load(path)
    message = str(info.value)
    print(message)
    assert str(path) in message and "not a MoViNet stream model" in message
    assert "float32 TFLite" in message and "\n" not in message


def test_truncated_float_tflite(float_files, tmp_path):
    import minimovinet as mm
    data = float_files[("a0like", "float32")].read_bytes()
    for fraction in (0.3, 0.9):
        path = tmp_path / f"truncated_{fraction}.tflite"
        path.write_bytes(data[:int(len(data) * fraction)])
        with pytest.raises(mm.MinimovinetError) as info:
            mm.load(path)
        message = str(info.value)
        print(message)
        assert str(path) in message and "truncated" in message and "\n" not in message


@pytest.fixture(scope="session")
def registry_a0_files(request):
    """The full A0 stream model at the registry's input (172x172, 600 classes) as float32 and
    float16 TFLite files: what `a0-stream-float32` / `a0-stream-float16` download."""
    need("ai_edge_litert", "LiteRT is the reference")
    import minimovinet as mm
    from int8_support import file_lock
    tf = need_tensorflow("the float TFLite test files are exported with TensorFlow")
    cache = Path(request.config.cache.mkdir("minimovinet-float-tflite"))
    cfg = mm.ModelConfig.from_variant("a0", "stream", num_classes=600)
    key = dict(config=cfg.to_dict(), seed=S.SEED, size=[172, 172], tf=tf.__version__,
               version=EXPORT_VERSION)
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    paths = {form: cache / f"a0_172_{form}_{digest}.tflite" for form in ("float32", "float16")}
    with file_lock(cache / "export.lock"):
        todo = {form: p for form, p in paths.items() if not p.exists()}
        if todo:
            S.export_stream_tflites(cfg, todo, height=172, width=172)
    return paths


@pytest.mark.parametrize("form", ["float32", "float16"])
def test_registry_float_entries_load_after_fetch(registry_a0_files, form, tmp_path,
                                                 monkeypatch):
    """`fetch a0-stream-<form>` from a local URL, then `mm.load(NAME)`: a float Movinet equal
    to LiteRT on the same file (logits and every state, 2 steps); and the same file as Kaggle
    serves it (a .tar.gz around 1.tflite) put by hand where the error message says."""
    import dataclasses
    import io
    import tarfile
    import minimovinet as mm
    from minimovinet.apps import registry
    from minimovinet.errors import ModelNotAvailableError
    name, path = f"a0-stream-{form}", registry_a0_files[form]
    monkeypatch.setenv("MINIMOVINET_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(registry.REGISTRY, name, dataclasses.replace(
        registry.REGISTRY[name], url=path.as_uri(), mirrors=(), sha256=None, size_bytes=None))
    frames = S.test_frames(2, 172, 172)

    def check(model):
        assert isinstance(model, mm.Movinet) and model.config.model_id == "a0"
        assert len(model.class_names) == 600               # the Kinetics-600 names
        for t, dist in enumerate(_relative_distances(model, path, frames)):
            worst = max(dist, key=dist.get)
            print(f"{name} step {t}: maxdiff logits {dist['logits']:.2e} relative, "
                  f"worst {worst} {dist[worst]:.2e}")
            assert dist[worst] <= REL, (t, worst, dist[worst])
    registry.fetch(name, progress=False)
    check(mm.load(name))
    # by hand: Kaggle's .tar.gz around 1.tflite, at the path ModelNotAvailableError names
    monkeypatch.setenv("MINIMOVINET_HOME", str(tmp_path / "by-hand"))
    with pytest.raises(ModelNotAvailableError) as info:
        mm.load(name)
    target = registry.download_path(name)
    assert str(target) in str(info.value)
    target.parent.mkdir(parents=True)
    payload = path.read_bytes()
    with tarfile.open(target, "w:gz") as tar:
        member = tarfile.TarInfo("1.tflite")
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload))
    check(mm.load(name))
