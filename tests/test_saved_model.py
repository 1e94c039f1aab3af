"""TF Hub / Kaggle SavedModels read without TensorFlow (minimovinet.formats.saved_model).

The SavedModels are exported here with TensorFlow from seeded random official models
(oracle.randomize_weights: BN statistics, biases, ReZero and positional-encoding scales), by the
Model Garden's own `export_saved_model` (official/projects/movinet/tools/export_saved_model.py,
as the TF Hub files were made), batch 1 at a non-square size.  minimovinet loads them without
TensorFlow, infers the model id and variant from the variables, and must equal the official
Keras model: logits and every state after every step, relative maxdiff <= 1e-4.  The exports
are built once per session (the slowest part of this file).
"""
import dataclasses
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import need_tensorflow, relmax

import minimovinet as mm
from minimovinet import cli
from minimovinet.apps import registry
from minimovinet.errors import CheckpointError, ModelNotAvailableError
from minimovinet.formats.saved_model import SavedModelReader, is_saved_model

ROOT = Path(__file__).resolve().parents[1]
H, W = 40, 56                  # non-square, small: the export cost does not depend on it
FRAMES = 4
TOL = 1e-4
NUM_CLASSES = 600              # as the TF Hub models: the registry entries need 600 classes
# (model id, variant): A0 whole-clip and stream, and a stream model with positional encoding.
CASES = {"a0-base": ("a0", "base"), "a0-stream": ("a0", "stream"), "a3-stream": ("a3", "stream")}
# A0 stream is exported exactly as export_saved_model.py does (with every layer's traced call
# functions, as the TF Hub files); the others without those traces (`save_traces=False`): the
# variables and their object graph are the same, the export minutes faster (a base model saved
# so has no serving signature: base or stream is then inferred from the variables alone).
FULL_TRACES = {"a0-stream"}

_EXPORTS = {}


def _export(name, root):
    """{dir, cfg, model, clip, expected}: the official model exported as a SavedModel, and the
    official outputs on a random clip (per step for stream models)."""
    if name in _EXPORTS:
        return _EXPORTS[name]
    need_tensorflow("the SavedModels are exported with TensorFlow")
    import oracle
    import tf_keras
    from official.projects.movinet.tools import export_saved_model as exporter
    model_id, variant = CASES[name]
    cfg = mm.ModelConfig.from_variant(model_id, variant, num_classes=NUM_CLASSES)
    model = oracle.build_raw(cfg, batch=1, height=H, width=W)
    oracle.randomize_weights(model, seed=5, cfg=cfg, calibration_shape=(1, 8, H, W, 3))
    directory = root / name
    shape = (1, 1, H, W, 3) if cfg.causal else (1, FRAMES, H, W, 3)
    save = tf_keras.models.save_model
    if name not in FULL_TRACES:
        exporter.tf_keras.models.save_model = lambda *a, **k: save(*a, save_traces=False, **k)
    try:
        exporter.export_saved_model(model, shape, str(directory), causal=cfg.causal)
    finally:
        exporter.tf_keras.models.save_model = save
    clip = np.random.default_rng(11).random((1, FRAMES, H, W, 3), dtype=np.float32)
    if cfg.causal:
        expected = oracle.run_stream(model, cfg, clip, [1] * FRAMES)
    else:
        expected = oracle.run_clip(model, cfg, clip)
    _EXPORTS[name] = dict(dir=directory, cfg=cfg, model=model, clip=clip, expected=expected)
    return _EXPORTS[name]


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved_models")
    return lambda name: _export(name, root)


def check_equals_official(model, export, where):
    """`model` against the official outputs of `export`: logits and every state, every step."""
    cfg, clip, expected = export["cfg"], export["clip"], export["expected"]
    assert (model.config.model_id, model.config.variant) == (cfg.model_id, cfg.variant)
    assert model.config.use_positional_encoding == cfg.use_positional_encoding
    assert model.config.num_classes == cfg.num_classes
    if not cfg.causal:
        err = relmax(expected, model(clip))
        print(f"{where}: whole clip, maxdiff {err:.2e} (relative)")
        assert err <= TOL
        return
    states = model.init_states(1, H, W)
    worst_logits = worst_state = 0.0
    for step, (official_logits, official_states) in enumerate(expected):
        logits, states = model(clip[:, step:step + 1], states)
        worst_logits = max(worst_logits, relmax(official_logits, logits))
        assert set(states) == set(official_states), set(states) ^ set(official_states)
        for key, value in official_states.items():
            assert states[key].shape == value.shape, (step, key)
            err = relmax(value, states[key])
            worst_state = max(worst_state, err)
            assert err <= TOL, f"{where}: step {step} state {key} maxdiff {err:.2e}"
    print(f"{where}: {len(expected)} steps, logits maxdiff {worst_logits:.2e}, states maxdiff "
          f"{worst_state:.2e} (relative)")
    assert worst_logits <= TOL


def tar_of(directory, path, at_root):
    """A .tar.gz of a SavedModel: the directory itself inside, or (Kaggle's and TF Hub's
    compressed download) saved_model.pb and variables/ at the archive root."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        if at_root:
            for child in sorted(directory.iterdir()):
                tar.add(child, arcname=child.name)
        else:
            tar.add(directory, arcname=directory.name)
    return path


# --------------------------------------------------------------------------------------------
# Equal to the official model.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_saved_model_equals_official(exports, name, tmp_path, capsys):
    export = exports(name)
    assert is_saved_model(export["dir"])
    model = mm.load(export["dir"])                       # no TensorFlow involved
    with capsys.disabled():
        check_equals_official(model, export, f"{name} SavedModel directory")
    # the command line: SavedModel -> h5 -> load
    out = tmp_path / "model.h5"
    code = cli.main(["convert", str(export["dir"]), "-o", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    model_id, variant = CASES[name]
    assert f"{model_id} {variant}" in printed.out and str(out) in printed.out
    with capsys.disabled():
        check_equals_official(mm.load(out), export, f"{name} converted h5")


@pytest.mark.parametrize("at_root", [False, True], ids=["tar.gz-of-dir", "kaggle-layout"])
def test_saved_model_archives(exports, tmp_path, at_root, capsys):
    export = exports("a0-stream")
    archive = tar_of(export["dir"], tmp_path / "movinet_a0_stream.tar.gz", at_root)
    assert is_saved_model(archive)
    check_equals_official(mm.load(archive), export, f"a0-stream {archive.name} "
                                                      f"({'files at root' if at_root else 'dir'})")
    out = tmp_path / "from_tar.h5"
    assert cli.main(["convert", str(archive), "-o", str(out)]) == 0
    check_equals_official(mm.load(out), export, "a0-stream archive -> h5")
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("minimovinet-savedmodel-*"))


def test_saved_model_without_tensorflow(exports, tmp_path):
    """A fresh interpreter where importing TensorFlow fails loads the SavedModel."""
    export = exports("a0-stream")
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'google'):\n"
        "        raise ImportError('no ' + name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import numpy as np, minimovinet as mm\n"
        f"m = mm.load({str(export['dir'])!r})\n"
        f"clip = np.load({str(tmp_path / 'clip.npy')!r})\n"
        "logits, _ = m(clip[:, :1], m.init_states(1, clip.shape[2], clip.shape[3]))\n"
        f"np.save({str(tmp_path / 'logits.npy')!r}, logits)\n")
    np.save(tmp_path / "clip.npy", export["clip"])
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=300)
    err = relmax(export["expected"][0][0], np.load(tmp_path / "logits.npy"))
    print(f"a0-stream without TensorFlow: first step logits maxdiff {err:.2e}")
    assert err <= TOL


def test_reader_names_every_variable_as_a_checkpoint(exports):
    """The recovered names are the training checkpoint's names (oracle: TensorFlow's own
    checkpoint of the same model), and the Keras bookkeeping is left out."""
    import oracle
    export = exports("a0-stream")
    with SavedModelReader(export["dir"]) as reader:
        arrays = reader.arrays()
        assert reader.causal
    _, official = oracle.checkpoint_arrays(export["model"], export["dir"].parent / "ckpt-a0s")
    weights = {k: v for k, v in official.items() if "optimizer" not in k
               and "save_counter" not in k}
    assert set(arrays) - {k for k in arrays if "optimizer" in k} == set(weights)
    worst = max(float(np.max(np.abs(arrays[k] - v))) for k, v in weights.items())
    print(f"a0-stream: {len(weights)} variables, maxdiff {worst:.1e} against the checkpoint")
    assert worst == 0.0


# --------------------------------------------------------------------------------------------
# Bad input: one clear line each, nothing written.
# --------------------------------------------------------------------------------------------
def broken_copy(export, tmp_path, edit):
    copy = tmp_path / "broken"
    shutil.copytree(export["dir"], copy)
    edit(copy)
    return copy


def cut(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def _not_a_movinet(directory):
    """A SavedModel of another network (a small Keras model), exported the same way."""
    tf = need_tensorflow("the foreign SavedModel is exported with TensorFlow")
    import tf_keras
    inputs = tf_keras.Input((8,))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(3)(tf_keras.layers.Dense(4)(inputs)))
    tf_keras.models.save_model(model, str(directory))
    assert tf.saved_model.contains_saved_model(str(directory))


BAD = {
    "pb-truncated": (lambda d: cut(d / "saved_model.pb", 0.6),
                     r"saved_model\.pb: truncated or not a TF2 SavedModel"),
    "data-truncated": (lambda d: cut(next(d.glob("variables/*.data-*")), 0.7),
                       r"variables\.data-00000-of-00001"),
    "shard-missing": (lambda d: next(d.glob("variables/*.data-*")).unlink(),
                      r"variables\.data-00000-of-00001"),
    "index-missing": (lambda d: (d / "variables" / "variables.index").unlink(),
                      r"variables\.index: missing"),
    "not-a-saved-model": (lambda d: (shutil.rmtree(d), d.mkdir(),
                                     (d / "notes.txt").write_text("x")),
                          r"not a SavedModel \(no saved_model\.pb"),
    "training-checkpoint": (lambda d: (d / "saved_model.pb").unlink(),
                            r"a TensorFlow training checkpoint, not a SavedModel"),
    "not-a-movinet": (None, r"not a MoViNet SavedModel"),
}


@pytest.mark.parametrize("fault", list(BAD))
def test_bad_saved_model(exports, tmp_path, capsys, fault):
    edit, message = BAD[fault]
    if edit is None:
        source = tmp_path / "dense"
        _not_a_movinet(source)
    else:
        source = broken_copy(exports("a0-stream"), tmp_path, edit)
    with pytest.raises(CheckpointError, match=message) as info:
        mm.load(source)
    assert "\n" not in str(info.value)
    print(f"{fault}: {info.value}")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = cli.main(["convert", str(source), "-o", str(out_dir / "model.h5")])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert list(out_dir.iterdir()) == []                # nothing half-written
    # the same fault inside an archive names the archive
    if fault in ("pb-truncated", "shard-missing"):
        archive = tar_of(source, tmp_path / "bad.tar.gz", at_root=True)
        with pytest.raises(CheckpointError, match=message) as info:
            mm.load(archive)
        assert str(archive) in str(info.value) and "minimovinet-savedmodel-" not in str(info.value)


# --------------------------------------------------------------------------------------------
# The registry: SavedModel and float32 TFLite entries, fetched from file:// URLs.
# --------------------------------------------------------------------------------------------
@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("MINIMOVINET_HOME", str(path))
    return path


def serve(monkeypatch, name, path):
    """Registry entry `name`, downloaded from the local file `path` (a file:// URL)."""
    entry = dataclasses.replace(registry.REGISTRY[name], url=Path(path).as_uri(), mirrors=())
    monkeypatch.setitem(registry.REGISTRY, name, entry)
    return entry


def test_registry_lists_saved_models_and_float_tflite(capsys, cache):
    assert cli.main(["models"]) == 0
    listing = capsys.readouterr().out
    for mid in ("a0", "a1", "a2", "a3", "a4", "a5"):
        for variant in ("base", "stream"):
            e = registry.get(f"{mid}-{variant}-savedmodel")
            assert (e.kind, e.model_id, e.variant) == ("saved_model", mid, variant)
            assert e.url == ("https://www.kaggle.com/api/v1/models/google/movinet/tensorFlow2/"
                             f"{mid}-{variant}-kinetics-600-classification/3/download")
            assert e.mirrors == (f"https://tfhub.dev/tensorflow/movinet/{mid}/{variant}/"
                                 "kinetics-600/classification/3?tf-hub-format=compressed",)
            assert registry.model_path(e).name == "model.h5" and e.url in listing
        e = registry.get(f"{mid}-stream-float32")
        assert (e.kind, e.precision, e.variant) == ("tflite", "float32", "stream")
        assert e.url == ("https://storage.googleapis.com/tf_model_garden/vision/movinet/"
                         f"movinet_{mid}_stream.tflite")
        assert e.filename == f"movinet_{mid}_stream.tflite" and e.url in listing
    sizes = [registry.get(f"a{i}-stream-float32").size for i in range(6)]
    assert sizes == ["13 MB", "45 MB", "53 MB", "73 MB", "101 MB", "153 MB"]   # the README's


def test_fetch_saved_model(exports, cache, tmp_path, monkeypatch):
    """fetch downloads Kaggle's .tar.gz, keeps it, converts it; mm.load(NAME) equals the
    official model.  A .tar.gz put by hand where the error message says is loaded too."""
    export = exports("a0-stream")
    kaggle = tar_of(export["dir"], tmp_path / "kaggle_download.tar.gz", at_root=True)
    name = "a0-stream-savedmodel"
    serve(monkeypatch, name, kaggle)
    h5 = registry.fetch(name, progress=False)
    assert h5 == registry.model_path(name) and h5.is_file()
    assert registry.download_path(name).read_bytes() == kaggle.read_bytes()
    assert sorted(p.name for p in h5.parent.iterdir()) == sorted(
        ["model.h5", registry.get(name).filename])
    model = mm.load(name)
    assert model.class_names == registry.class_names()
    check_equals_official(model, export, f"registry {name} (fetched)")
    # by hand: a fresh cache, the message names the path, the file put there is loaded
    monkeypatch.setenv("MINIMOVINET_HOME", str(tmp_path / "by-hand"))
    with pytest.raises(ModelNotAvailableError) as info:
        mm.load(name)
    target = registry.download_path(name)
    assert str(target) in str(info.value)
    target.parent.mkdir(parents=True)
    shutil.copy(kaggle, target)
    check_equals_official(mm.load(name), export, f"registry {name} (put by hand)")
    # the wrong model is refused and nothing is kept
    other = "a1-stream-savedmodel"
    serve(monkeypatch, other, kaggle)
    with pytest.raises(Exception, match="holds a MoViNet a0 stream SavedModel"):
        registry.fetch(other, progress=False)
    assert not registry.model_path(other).exists()
    assert not registry.download_path(other).exists()


def _tiny_float_tflite(size):
    """A float32 TFLite file with a [1, 1, size, size, 3] image input (not a MoViNet): enough
    for the registry plumbing, which checks the input size."""
    tf = need_tensorflow("the TFLite file is written by the TFLite converter")

    @tf.function(input_signature=[tf.TensorSpec([1, 1, size, size, 3], tf.float32,
                                                name="image")])
    def serve(image):
        return {"logits": tf.reduce_mean(image, axis=[1, 2, 3])}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], serve)
    return converter.convert()


def test_fetch_float_tflite(cache, tmp_path, monkeypatch):
    """A float32 stream TFLite entry: downloaded and kept as .tflite; Kaggle's .tar.gz around
    1.tflite put by hand is unwrapped; `mm.load(NAME)` loads that file.

    The file here is a tiny non-MoViNet, so the load is checked up to `minimovinet.load`
    being called with the cached file; tests/test_float_tflite.py
    (test_registry_float_entries_load_after_fetch) loads real A0 float32 / float16 files
    fetched the same way and compares them with LiteRT."""
    name = "a0-stream-float32"
    data = _tiny_float_tflite(registry.get(name).input_size)
    served = tmp_path / "movinet_a0_stream.tflite"
    served.write_bytes(data)
    serve(monkeypatch, name, served)
    path = registry.fetch(name, progress=False)
    assert path == registry.download_path(name) and path.read_bytes() == data
    loaded = []
    import minimovinet

    def spy(p):
        loaded.append(p)
        return mm.random_model("a0", "stream", num_classes=600)
    monkeypatch.setattr(minimovinet, "_load_file", spy)
    mm.load(name)
    assert loaded == [str(path)]
    # by hand, as Kaggle serves it: a .tar.gz holding 1.tflite, at the path the message names
    monkeypatch.setenv("MINIMOVINET_HOME", str(tmp_path / "by-hand"))
    for entry in (name, "a1-stream-float16"):
        monkeypatch.setitem(registry.REGISTRY, entry, dataclasses.replace(
            registry.REGISTRY[entry], sha256=None, size_bytes=None))
        with pytest.raises(ModelNotAvailableError) as info:
            mm.load(entry)
        target = registry.download_path(entry)
        assert str(target) in str(info.value)
        target.parent.mkdir(parents=True)
        payload = data if entry == name else _tiny_float_tflite(
            registry.get(entry).input_size)
        with tarfile.open(target, "w:gz") as tar:
            member = tarfile.TarInfo("1.tflite")
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
        loaded.clear()
        mm.load(entry)
        assert loaded == [str(target)] and target.read_bytes() == payload
