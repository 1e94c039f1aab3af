"""Transfer learning (`minimovinet.train_classifier`): the head and Adam against Keras, the fit
loop, the feature cache, bad input, interruptions, and the whole loop on the synthetic set.

Oracle: the same head (dense P -> 2048 + activation, dropout as a given mask, dense -> C),
the same initial weights, features and batches trained by tf_keras (Adam, the tutorial's
`SparseCategoricalCrossentropy(from_logits=True)`; with label smoothing
`CategoricalCrossentropy(from_logits=True, label_smoothing=s)`; `weight_decay`) step by step.
In float64 (Keras floatx float64) loss and weights must agree to 1e-5 relative at every step
(they agree to about 1e-12); in float32 both sides round differently (summation order) and
Adam's normalization amplifies that on near-zero gradients, so float32 is only reported,
with a loose bound.

End to end: the synthetic motion set (apps/synthetic.py, 5 classes, 8 training and 6 test
clips per class, 10 frames at 5 fps), features of the official A0 int8 model through its
dequantized float view at the model's 172x172, the official head; the test clips are never
seen in training.
"""
import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import need, need_tensorflow, relmax  # noqa: E402

import minimovinet as mm  # noqa: E402
from minimovinet.apps import feature_cache, features, fit, synthetic, train  # noqa: E402
from minimovinet.apps.adam import Adam  # noqa: E402
from minimovinet.apps.dataset import from_csv, from_folder, stratified_split  # noqa: E402
from minimovinet.apps.head import (HIDDEN_BIAS, HIDDEN_KERNEL, LOGITS_BIAS,  # noqa: E402
                                   LOGITS_KERNEL, ClassifierHead, dropout_mask)
from minimovinet.data import DEFAULT_MODEL  # noqa: E402
from minimovinet.errors import CacheError, FileError, InputError, MinimovinetError  # noqa: E402

P, H, C, B = 480, 2048, 5, 16
NAMES = (HIDDEN_KERNEL, HIDDEN_BIAS, LOGITS_KERNEL, LOGITS_BIAS)


# ---------------------------------------------------------------------------------------------
# the oracle: Keras, step by step

def keras_head(tf, tf_keras, activation, label_smoothing, weight_decay, head):
    act = {"relu6": tf.nn.relu6, "swish": tf.nn.silu}[activation]
    x_in, mask_in = tf_keras.Input((P,)), tf_keras.Input((H,))
    hidden = tf_keras.layers.Dense(H, activation=act)(x_in)
    logits = tf_keras.layers.Dense(C)(tf_keras.layers.Multiply()([hidden, mask_in]))
    model = tf_keras.Model([x_in, mask_in], logits)
    loss = (tf_keras.losses.CategoricalCrossentropy(from_logits=True,
                                                    label_smoothing=label_smoothing)
            if label_smoothing else
            tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3, weight_decay=weight_decay or None),
                  loss=loss)
    model.set_weights([head.params[k] for k in NAMES])
    return model


def run_against_keras(activation, label_smoothing, weight_decay, dropout, dtype, steps=24):
    """Max relative differences (loss, weights) over `steps` Adam steps."""
    tf = need_tensorflow("Keras is the oracle of the head and Adam")
    import tf_keras
    rng = np.random.default_rng(0)
    xs = rng.uniform(0.0, 3.0, (steps, B, P)).astype(dtype)            # [steps, B, P]
    ys = rng.integers(0, C, (steps, B))
    masks = [dropout_mask(rng, (B, H), dropout, dtype) if dropout else np.ones((B, H), dtype)
             for _ in range(steps)]
    head = ClassifierHead.initialize(P, C, H, activation, seed=1, dtype=dtype)
    previous = tf_keras.backend.floatx()
    tf_keras.backend.set_floatx(np.dtype(dtype).name)
    try:
        model = keras_head(tf, tf_keras, activation, label_smoothing, weight_decay, head)
        optimizer = Adam(weight_decay=weight_decay)
        worst_loss = worst_weights = 0.0
        for step in range(steps):
            target = np.eye(C)[ys[step]] if label_smoothing else ys[step]
            keras_loss = model.train_on_batch([xs[step], masks[step]], target)
            loss, _, grads = head.loss_and_gradients(xs[step], ys[step], label_smoothing,
                                                     masks[step] if dropout else None)
            optimizer.apply(head.params, grads)
            worst_loss = max(worst_loss, abs(loss - keras_loss) / abs(keras_loss))
            for name, theirs in zip(NAMES, model.get_weights()):
                worst_weights = max(worst_weights, relmax(theirs, head.params[name]))
    finally:
        tf_keras.backend.set_floatx(previous)
    return worst_loss, worst_weights


CASES = [("relu6", 0.0, 0.0, 0.0), ("relu6", 0.1, 0.0, 0.0), ("relu6", 0.0, 0.004, 0.0),
         ("relu6", 0.1, 0.01, 0.3), ("swish", 0.1, 0.01, 0.3)]


@pytest.mark.parametrize("activation,smoothing,decay,dropout", CASES)
def test_head_and_adam_equal_keras_float64(activation, smoothing, decay, dropout):
    loss, weights = run_against_keras(activation, smoothing, decay, dropout, np.float64)
    print(f"float64 {activation} label_smoothing={smoothing} weight_decay={decay} "
          f"dropout={dropout}: max relative difference loss {loss:.2e}, weights {weights:.2e}")
    assert loss < 1e-5 and weights < 1e-5


@pytest.mark.parametrize("activation,smoothing,decay,dropout", [CASES[0], CASES[3]])
def test_head_and_adam_float32_close_to_keras(activation, smoothing, decay, dropout):
    loss, weights = run_against_keras(activation, smoothing, decay, dropout, np.float32)
    print(f"float32 {activation} label_smoothing={smoothing} weight_decay={decay} "
          f"dropout={dropout}: max relative difference loss {loss:.2e}, weights {weights:.2e}")
    assert loss < 1e-5 and weights < 1e-3


def test_linear_head_equals_keras_and_is_stored_exactly():
    tf = need_tensorflow("Keras is the oracle of the linear head")
    import tf_keras
    rng = np.random.default_rng(2)
    head = ClassifierHead.initialize(P, C, H, "relu6", "linear", seed=3, dtype=np.float64)
    tf_keras.backend.set_floatx("float64")
    try:
        x_in = tf_keras.Input((P,))
        model = tf_keras.Model(x_in, tf_keras.layers.Dense(C)(x_in))
        model.compile(optimizer=tf_keras.optimizers.Adam(1e-3),
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.set_weights([head.params[LOGITS_KERNEL], head.params[LOGITS_BIAS]])
        optimizer = Adam()
        for _ in range(20):
            x, y = rng.uniform(0, 3, (B, P)), rng.integers(0, C, B)
            keras_loss = model.train_on_batch(x, y)
            loss, _, grads = head.loss_and_gradients(x, y)
            optimizer.apply(head.params, grads)
            assert abs(loss - keras_loss) <= 1e-5 * abs(keras_loss)
        assert relmax(model.get_weights()[0], head.params[LOGITS_KERNEL]) < 1e-5
    finally:
        tf_keras.backend.set_floatx("float32")
    del tf
    # stored in the float model format: hidden [I | 0] with activation "linear", exact
    backbone = mm.random_model("a0", "mobile", num_classes=600)
    built = train.build_model(backbone, head, [f"c{i}" for i in range(C)])
    assert built.config.classifier_activation == "linear"
    x = rng.uniform(0, 3, (4, P)).astype(np.float32)
    f32 = ClassifierHead({k: v.astype(np.float32) for k, v in head.params.items()}, "relu6",
                         "linear")
    assert np.array_equal(built.classifier.hidden(x)[:, :P], x)        # passed through exactly
    assert relmax(f32.logits(x), built.classifier(x)) < 1e-6            # summation order only


# ---------------------------------------------------------------------------------------------
# the fit loop

def toy_features(seed=0, n=40, views=1):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    centres = rng.normal(0, 1, (3, 16))
    x = centres[labels][:, None] + rng.normal(0, 0.7, (n, views, 16))       # [n, views, 16]
    return x.astype(np.float32), labels


def test_fit_is_seeded_and_logs_one_line_per_epoch():
    x, y = toy_features(views=3)
    lines = []
    runs = []
    for _ in range(2):
        head = ClassifierHead.initialize(16, 3, 32, "relu6", seed=0, dtype=np.float64)
        history = fit.fit_head(head, x, y, fit.FitOptions(epochs=6, batch_size=8, seed=4),
                               log=lines.append)
        runs.append(head.params[LOGITS_KERNEL])
    assert np.array_equal(runs[0], runs[1])
    assert len(history) == 6 and len(lines) == 12
    assert lines[0].startswith("epoch 1/6  loss ") and "accuracy" in lines[0]
    assert history[-1].loss < history[0].loss


def test_early_stopping_restores_the_best_epoch():
    x, y = toy_features()
    vx, vy = toy_features(seed=1, n=12)
    vy = (vy + 1) % 3                               # validation labels that training contradicts
    head = ClassifierHead.initialize(16, 3, 32, "relu6", seed=0, dtype=np.float64)
    kept = {}

    def log(line):
        kept.setdefault("lines", []).append(line)

    history = fit.fit_head(head, x, y, fit.FitOptions(epochs=50, patience=3, seed=0),
                           vx[:, 0], vy, log)
    best = min(history, key=lambda r: r.val_loss)
    assert len(history) == best.epoch + 3 < 50
    loss, _ = fit.evaluate_head(head, vx[:, 0].astype(np.float64), vy)
    assert loss == pytest.approx(best.val_loss, rel=1e-12)
    assert any("early stop" in line for line in kept["lines"])
    assert "val loss" in kept["lines"][0]


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(batch_size=-1), dict(dropout=1.0),
                                 dict(label_smoothing=1.5), dict(learning_rate=0),
                                 dict(weight_decay=-1)])
def test_bad_fit_options(bad):
    with pytest.raises(InputError):
        fit.FitOptions(**bad).check()


# ---------------------------------------------------------------------------------------------
# data sets and their errors

def write_clips(folder: Path, motion: str, count: int, seed: int = 0, frames: int = 6):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        synthetic.write_video(folder / f"{motion}_{i}.mp4",
                              synthetic.render_clip(motion, rng, frames, 64))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two classes of three 6-frame 64x64 clips."""
    need("av", "PyAV writes and reads the synthetic clips")
    root = tmp_path_factory.mktemp("tiny")
    write_clips(root / "turning", "turning", 3, 0)
    write_clips(root / "sideways", "sideways", 3, 1)
    return root


def test_folder_and_csv_sets(tiny, tmp_path):
    videos = from_folder(tiny)
    assert videos.classes == ("sideways", "turning") and len(videos.videos) == 6
    (tiny / "turning" / "notes.txt").write_text("not a video")       # ignored
    assert len(from_folder(tiny).videos) == 6
    lines = ["path,label"] + [f"{v.path},{v.label}" for v in videos.videos]
    (tmp_path / "set.csv").write_text("\n".join(lines) + "\n")
    assert from_csv(tmp_path / "set.csv").videos == videos.videos
    train_part, val_part = stratified_split(videos, 0.34, seed=1)
    assert len(val_part.videos) == 2 and val_part.counts() == {"sideways": 1, "turning": 1}
    assert not set(train_part.videos) & set(val_part.videos)
    (tiny / "turning" / "notes.txt").unlink()


def test_empty_class_folder_is_an_error(tiny, tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    (tmp_path / "dogs" / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="holds no videos"):
        mm.train_classifier(tmp_path, None, tmp_path / "out.h5")


def test_only_one_class_is_an_error(tiny, tmp_path):
    write_clips(tmp_path / "only", "turning", 2)
    with pytest.raises(InputError, match="only one class"):
        mm.train_classifier(tmp_path, None, tmp_path / "out.h5")
    with pytest.raises(InputError, match="no class folders"):
        mm.train_classifier(tmp_path / "only", None, tmp_path / "out.h5")


def test_bad_csv_lines(tmp_path):
    (tmp_path / "a.csv").write_text("a.mp4,cat,extra\n")
    with pytest.raises(InputError, match="a.csv:1: expected 'path,label'"):
        from_csv(tmp_path / "a.csv")
    with pytest.raises(FileError, match="no such folder or CSV"):
        mm.train_classifier(tmp_path / "missing", None, None)


def test_whole_clip_backbone_is_refused(tiny, tmp_path):
    base = mm.random_model("a0", "base")
    with pytest.raises(InputError, match="whole-clip"):
        mm.train_classifier(tiny, base, tmp_path / "out.h5")
    mm.save(base, tmp_path / "base.h5")
    with pytest.raises(InputError, match="whole-clip"):
        mm.train_classifier(tiny, tmp_path / "base.h5", tmp_path / "out.h5")


def test_validation_folder_classes_must_be_training_classes(tiny, tmp_path):
    write_clips(tmp_path / "turnin", "turning", 1)
    write_clips(tmp_path / "sideways", "sideways", 1)
    with pytest.raises(InputError, match=r"'turnin' \(closest: 'turning'\)"):
        mm.train_classifier(tiny, None, None, val=tmp_path)


def test_unreadable_videos_are_skipped_and_counted(tiny, tmp_path):
    data = tmp_path / "data"
    for name in ("turning", "sideways"):
        (data / name).mkdir(parents=True)
        for clip in sorted((tiny / name).glob("*.mp4"))[:2]:
            (data / name / clip.name).write_bytes(clip.read_bytes())
    (data / "turning" / "broken.mp4").write_bytes(b"this is not a video")
    lines = []
    result = mm.train_classifier(data, None, None, epochs=1, cache=None, log=lines.append)
    assert [Path(p).name for p, _ in result.skipped] == ["broken.mp4"]
    assert any("skipped 1 unreadable video(s) of 5" in line for line in lines)
    assert result.train_clips == 4
    # a class left without readable videos is an error
    for clip in (data / "sideways").glob("*.mp4"):
        clip.write_bytes(b"junk")
    with pytest.raises(InputError, match="no usable video of class 'sideways'"):
        mm.train_classifier(data, None, None, epochs=1, cache=None, log=None)


# ---------------------------------------------------------------------------------------------
# the feature cache

def test_cache_second_run_decodes_nothing(tiny, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = mm.train_classifier(tiny, None, None, epochs=2, cache=cache, log=None, views=2)
    assert first.computed_clips == 6
    monkeypatch.setattr(features, "decode_clip", lambda *a, **k: pytest.fail("decoded"))
    second = mm.train_classifier(tiny, None, None, epochs=2, cache=cache, log=None, views=2)
    assert second.computed_clips == 0
    assert np.array_equal(first.head.params[LOGITS_KERNEL], second.head.params[LOGITS_KERNEL])
    entries = sorted(cache.glob("*/*.npz"))
    assert len(entries) == 6 and not list(cache.rglob("*.part"))


def test_cache_corrupt_entry_is_recomputed_and_mismatch_is_an_error(tiny, tmp_path):
    cache = feature_cache.FeatureCache(tmp_path / "cache")
    sampling = features.make_sampling(mm.load(DEFAULT_MODEL).dequantize(), size=64)
    extractor = features.FeatureExtractor(DEFAULT_MODEL, sampling, cache)
    clip = sorted((tiny / "turning").glob("*.mp4"))[0]
    other = sorted((tiny / "turning").glob("*.mp4"))[1]
    reference = extractor.clip(clip)                                     # [1, 480]
    entry = sorted((tmp_path / "cache").glob("*/*.npz"))[0]
    entry.write_bytes(entry.read_bytes()[:100])                          # truncated
    with pytest.warns(feature_cache.FeatureCacheWarning, match="unreadable.*recomputing"):
        again = extractor.clip(clip)
    assert np.array_equal(again, reference) and extractor.computed == 2
    extractor.clip(other)
    entry = cache.path(cache.key(extractor.meta(clip)))
    entry.write_bytes(cache.path(cache.key(extractor.meta(other))).read_bytes())  # another's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CacheError, match="does not match its key.*video_sha256"):
            extractor.clip(clip)


def test_cache_folder_must_be_a_feature_cache(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"x")
    with pytest.raises(CacheError, match="not a minimovinet feature cache"):
        feature_cache.FeatureCache(tmp_path / "photos")
    feature_cache.FeatureCache(tmp_path / "new")
    marker = tmp_path / "new" / feature_cache.MARKER
    marker.write_text(json.dumps({"format": feature_cache.FORMAT, "version": 99}))
    with pytest.raises(CacheError, match="version 99"):
        feature_cache.FeatureCache(tmp_path / "new")


def test_interrupted_cache_write_leaves_no_entry(tmp_path, monkeypatch):
    cache = feature_cache.FeatureCache(tmp_path)

    def savez_then_interrupt(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(feature_cache.np, "savez", savez_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        cache.put({"video_sha256": "0"}, np.zeros((1, 4), np.float32))
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [feature_cache.MARKER]


# ---------------------------------------------------------------------------------------------
# interruptions leave no model behind

def test_interrupted_training_and_saving_leave_no_model(tiny, tmp_path, monkeypatch):
    out = tmp_path / "model.h5"
    original = Adam.apply
    calls = []

    def interrupt_on_third_step(self, params, grads):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        original(self, params, grads)

    monkeypatch.setattr(Adam, "apply", interrupt_on_third_step)
    with pytest.raises(KeyboardInterrupt):
        mm.train_classifier(tiny, None, out, epochs=5, batch_size=2, cache=tmp_path / "c",
                            log=None)
    assert not out.exists() and list(tmp_path.glob("*.h5*")) == []
    monkeypatch.setattr(Adam, "apply", original)

    import h5py
    created = []
    create = h5py.Group.create_dataset

    def interrupt_mid_file(self, name, *args, **kwargs):
        created.append(name)
        if len(created) == 20:
            raise KeyboardInterrupt
        return create(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", interrupt_mid_file)
    with pytest.raises(KeyboardInterrupt):
        mm.train_classifier(tiny, None, out, epochs=1, cache=tmp_path / "c", log=None)
    assert len(created) == 20
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["c"]


# ---------------------------------------------------------------------------------------------
# end to end on the synthetic set

@pytest.fixture(scope="module")
def motions(tmp_path_factory):
    need("av", "PyAV writes and reads the synthetic clips")
    root = tmp_path_factory.mktemp("motions")
    return synthetic.make_motion_dataset(root / "data", clips_per_class=8,
                                         test_clips_per_class=6, seed=1)


@pytest.fixture(scope="module")
def trained(motions):
    out = motions.root / "motions.h5"
    result = mm.train_classifier(motions.train, DEFAULT_MODEL, out, cache=motions.root / "cache")
    per_clip = result.feature_seconds / result.computed_clips
    print(f"features: {result.computed_clips} clips, {per_clip:.3f} s per clip (10 frames "
          f"172x172: decode + A0 float view)")
    return result


def test_trained_model_reaches_90_percent_on_unseen_clips(motions, trained):
    report = mm.evaluate(motions.test, trained.output)
    print(report.text())
    d = report.to_dict()
    assert d["classes"] == sorted(motions.classes)
    assert len(d["videos"]) == 30 and all("/test/" in v["path"] for v in d["videos"])
    print(f"synthetic test accuracy {d['accuracy']:.4f}")
    assert d["accuracy"] >= 0.9


def test_trained_model_streams_like_the_whole_clip(motions, trained):
    model = mm.load(trained.output)
    assert isinstance(model, mm.Movinet) and model.class_names == sorted(motions.classes)
    clip = sorted((motions.test / "turning").glob("*.mp4"))[0]
    frames = np.stack(list(mm.read_video(clip, fps=5, size=172))).astype(np.float32) / 255
    states = model.init_states(1, 172, 172)
    for t in range(len(frames)):                                # frame by frame
        logits, states = model(frames[None, t:t + 1], states)
    backbone = mm.load(DEFAULT_MODEL).dequantize()
    whole = trained.head.logits(backbone.features(frames[None]))             # [1, C]
    print(f"streamed vs whole clip + head: max relative difference {relmax(whole, logits):.2e}")
    assert relmax(whole, logits) < 1e-4
    assert mm.VideoClassifier(model).classify(clip).top[0][0] == "turning"


def test_cli_handlers_train_and_evaluate(motions, trained, tmp_path, capsys):
    from minimovinet.apps import evaluate
    parser = argparse.ArgumentParser(prog="minimovinet")
    sub = parser.add_subparsers(dest="command", required=True)
    train.add_parser(sub)
    evaluate.add_parser(sub)
    out = tmp_path / "cli.h5"
    args = parser.parse_args(["train", str(motions.train), "--backbone", str(DEFAULT_MODEL),
                              "-o", str(out), "--cache", str(motions.root / "cache"),
                              "--epochs", "3", "--val-split", "0.25", "--lr", "0.002",
                              "--label-smoothing", "0.1", "--weight-decay", "0.004",
                              "--dropout", "0.1", "--patience", "2", "--no-progress"])
    assert args.run(args) == 0
    text = capsys.readouterr().out
    assert "epoch 1/3  loss" in text and "val accuracy" in text and out.exists()
    report = tmp_path / "report.json"
    args = parser.parse_args(["evaluate", str(motions.test), "--model", str(out), "--json",
                              "-o", str(report), "--frames", "4", "--no-progress"])
    assert args.run(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(report.read_text())
    assert [e["frames"] for e in printed["accuracy_by_frame"]] == [1, 2, 3, 4]
    bad = parser.parse_args(["train", str(motions.train), "-o", str(tmp_path / "x.h5"),
                             "--frames", "0", "--no-cache"])
    with pytest.raises(MinimovinetError, match="frames must be a positive integer"):
        bad.run(bad)


def test_linear_head_model_file_and_synthetic_command(tiny, tmp_path, capsys):
    out = tmp_path / "linear.h5"
    result = mm.train_classifier(tiny, None, out, head="linear", epochs=3, cache=None,
                                 log=None, size=64, frames=4)
    model = mm.load(out)
    assert model.config.classifier_activation == "linear"
    assert model.class_names == ["sideways", "turning"]
    clip = sorted((tiny / "turning").glob("*.mp4"))[0]
    frames = np.stack(list(mm.read_video(clip, fps=5, size=64)))[:4].astype(np.float32) / 255
    backbone = mm.load(DEFAULT_MODEL).dequantize()
    assert relmax(result.head.logits(backbone.features(frames[None])),
                  model(frames[None])) < 1e-4
    with pytest.raises(InputError, match="dtype must be"):
        mm.train_classifier(tiny, None, None, dtype="int8")
    assert synthetic.main([str(tmp_path / "s"), "--clips-per-class", "1",
                           "--test-clips-per-class", "0", "--frames", "3", "--size", "32"]) == 0
    assert "5 classes" in capsys.readouterr().out
    assert len(list((tmp_path / "s" / "train").glob("*/*.mp4"))) == 5


def test_train_and_evaluate_need_neither_tensorflow_nor_scikit_learn(tiny, tmp_path):
    import os
    import subprocess
    import sys
    import textwrap
    script = tmp_path / "no_tf.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        for name in ("tensorflow", "tf_keras", "keras", "sklearn", "ai_edge_litert"):
            sys.modules[name] = None          # any import of these now raises ImportError
        import minimovinet as mm
        mm.train_classifier(r"{tiny}", None, r"{tmp_path / 'm.h5'}", epochs=2, size=64,
                            frames=3, cache=None, log=None)
        report = mm.evaluate(r"{tiny}", r"{tmp_path / 'm.h5'}", size=64, frames=3)
        print(report.to_dict()["accuracy"])
    """))
    root = str(Path(__file__).resolve().parents[1])           # this checkout's package
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=root, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 0.0 <= float(done.stdout.strip()) <= 1.0
