"""Shared checks of minimovinet against the official Model Garden MoViNet (the oracle).

The tests live in test_official_a0.py .. test_official_a5.py, one file per model id, so that
`pytest -n 2 --dist loadfile` builds each official model once, on one worker.

For each (model id, variant) the official model is built with seeded random weights
(`oracle.py`: BN statistics, gamma/beta, biases, ReZero and positional-encoding scales all
randomized), written as an official checkpoint, converted into a minimovinet h5 file, loaded,
and both models run on the same clip:
  * stream models frame by frame, then in chunks: logits and EVERY output state after every step;
  * base models on the whole clip.
Tolerances: logits max |difference| / max |official logit| < 1e-4; states max |difference| /
max |official state| < 5e-4.  The state tolerance is looser because the deepest stream buffers
of these random models are badly conditioned in float32: `test_float32_noise_floor` runs the
official model in float64 and shows that TF's own float32 result is as far from it (up to
~1e-4) as minimovinet's.  The printed maxdiff lines are the measured agreement.
"""
import numpy as np


import minimovinet as mm
from conftest import relmax, need_tensorflow
from minimovinet.formats.official_checkpoint import convert_arrays

from conftest import need  # noqa: E402

tf = need_tensorflow("the official models are the oracle")
oracle = need("oracle", "the official models are the oracle")

TOL = 1e-4
STATE_TOL = 5e-4
MODEL_IDS = ["a0", "a1", "a2", "a3", "a4", "a5"]
VARIANTS = ["base", "stream", "stream3d", "mobile"]
SIZE = 40          # 40 -> 20 -> 10 -> 5 -> 3: odd sizes exercise TF's asymmetric SAME padding
FRAMES = 5


def convert_official(model, cfg, tmp_path):
    """Official checkpoint -> minimovinet h5 file -> loaded model (the user's path)."""
    _, arrays = oracle.checkpoint_arrays(model, tmp_path / "ckpt")
    out = tmp_path / f"{cfg.model_id}_{cfg.variant}.h5"
    convert_arrays(arrays, out, model_id=cfg.model_id, variant=cfg.variant)
    return mm.load(out)


def compare_states(official_states, mine, where):
    assert set(official_states) == set(mine), (where, set(official_states) ^ set(mine))
    worst = 0.0
    for name, value in official_states.items():
        assert mine[name].shape == value.shape and mine[name].dtype == value.dtype, name
        if value.dtype.kind == "i":
            np.testing.assert_array_equal(mine[name], value, err_msg=f"{where} {name}")
        else:
            err = relmax(value, mine[name])
            worst = max(worst, err)
            assert err < STATE_TOL, f"{where}: state {name} rel maxdiff {err:.2e}"
    return worst


def check_equals_official(model_id, variant, tmp_path):
    cfg = mm.ModelConfig.from_variant(model_id, variant, num_classes=600)
    official = oracle.get_official(cfg, seed=0)
    model = convert_official(official, cfg, tmp_path)
    rng = np.random.default_rng(7)
    clip = rng.random((1, FRAMES, SIZE, SIZE, 3), dtype=np.float32)
    if not cfg.causal:
        expected = oracle.run_clip(official, cfg, clip)
        err = relmax(expected, model(clip))
        print(f"{model_id} {variant}: whole clip, logits in [{expected.min():.3g}, "
              f"{expected.max():.3g}], maxdiff {err:.2e} (relative)")
        assert err < TOL
        return
    states = model.init_states(1, SIZE, SIZE)
    worst_logit = worst_state = 0.0
    steps = oracle.run_stream(official, cfg, clip, [1] * FRAMES)
    for t, (expected, official_states) in enumerate(steps):
        logits, states = model(clip[:, t:t + 1], states)
        err = relmax(expected, logits)
        assert err < TOL, f"frame {t}: logits rel maxdiff {err:.2e}"
        worst_logit = max(worst_logit, err)
        worst_state = max(worst_state, compare_states(official_states, states, f"frame {t}"))
    # the same clip again in uneven chunks, continuing from the current states
    official_from = steps[-1][1]
    chunked = oracle.run_stream(official, cfg, clip[:, ::-1].copy(), [2, 3], official_from)
    t = 0
    for size, (expected, official_states) in zip([2, 3], chunked):
        logits, states = model(clip[:, ::-1][:, t:t + size].copy(), states)
        t += size
        err = relmax(expected, logits)
        assert err < TOL, f"chunk of {size}: logits rel maxdiff {err:.2e}"
        worst_logit = max(worst_logit, err)
        worst_state = max(worst_state, compare_states(official_states, states, f"chunk {size}"))
    print(f"{model_id} {variant}: {len(states)} states, logits in [{expected.min():.3g}, "
          f"{expected.max():.3g}], maxdiff logits {worst_logit:.2e}, states {worst_state:.2e} "
          f"(relative, over {FRAMES} single frames + chunks 2, 3)")


def check_a0_stream_at_172(tmp_path):
    """The official stream model at its native resolution, frame by frame."""
    cfg = mm.ModelConfig.from_variant("a0", "stream", num_classes=600)
    official = oracle.get_official(cfg, seed=0)
    model = convert_official(official, cfg, tmp_path)
    clip = np.random.default_rng(8).random((1, 4, 172, 172, 3), dtype=np.float32)
    states = model.init_states(1, 172, 172)
    assert len(states) == 43
    worst_logit = worst_state = 0.0
    for t, (expected, official_states) in enumerate(
            oracle.run_stream(official, cfg, clip, [1] * 4)):
        logits, states = model(clip[:, t:t + 1], states)
        worst_logit = max(worst_logit, relmax(expected, logits))
        worst_state = max(worst_state, compare_states(official_states, states, f"frame {t}"))
    print(f"a0 stream 172x172: maxdiff logits {worst_logit:.2e}, states {worst_state:.2e}")
    assert worst_logit < TOL


def check_features_equal_official(model_id, variant, tmp_path):
    """`model.features`: the pooled head features before the classifier, equal to the official
    backbone's 'head' endpoint (frame by frame for stream models, the whole clip for base)."""
    cfg = mm.ModelConfig.from_variant(model_id, variant, num_classes=600)
    official = oracle.get_official(cfg, seed=0)
    model = convert_official(official, cfg, tmp_path)
    clip = np.random.default_rng(10).random((1, 3, SIZE, SIZE, 3), dtype=np.float32)
    if not cfg.causal:
        expected, _ = oracle.run_features(official, cfg, clip)
        got = model.features(clip)
        assert got.shape == (1, cfg.head.project_filters) and got.dtype == np.float32
        err = relmax(expected, got)
        print(f"{model_id} {variant} features: whole clip, maxdiff {err:.2e} (relative)")
        assert err < TOL
        return
    states, official_states, worst = model.init_states(1, SIZE, SIZE), None, 0.0
    for t in range(clip.shape[1]):
        expected, official_states = oracle.run_features(official, cfg, clip[:, t:t + 1],
                                                        official_states)
        got, states = model.features(clip[:, t:t + 1], states)
        assert got.shape == (1, cfg.head.project_filters) and got.dtype == np.float32
        worst = max(worst, relmax(expected, got))
        compare_states(official_states, states, f"features, frame {t}")
        if t == 0:   # the classifier on the features gives the logits of a plain call
            logits, _ = model(clip[:, :1], model.init_states(1, SIZE, SIZE))
            np.testing.assert_array_equal(model.classifier(got), logits)
    print(f"{model_id} {variant} features: maxdiff {worst:.2e} (relative, {clip.shape[1]} frames)")
    assert worst < TOL


def check_batch_of_two_equals_official():
    cfg = mm.ModelConfig.from_variant("a0", "stream", num_classes=600)
    official = oracle.get_official(cfg, seed=0)
    from minimovinet.formats.official_checkpoint import params_from_official
    import tempfile, pathlib
    with tempfile.TemporaryDirectory() as d:
        _, arrays = oracle.checkpoint_arrays(official, pathlib.Path(d))
    model = mm.Movinet(cfg, params_from_official(arrays, cfg))
    clips = np.random.default_rng(9).random((2, 3, SIZE, SIZE, 3), dtype=np.float32)
    expected, official_states = oracle.run_stream(official, cfg, clips, [3])[-1]
    logits, states = model(clips, model.init_states(2, SIZE, SIZE))
    assert relmax(expected, logits) < TOL
    compare_states(official_states, states, "batch 2")


def check_float32_noise_floor(tmp_path):
    """Against the official model run in float64 (the exact answer for these weights),
    minimovinet's float32 result is about as accurate as TensorFlow's own float32 result."""
    import tensorflow as tf
    import tf_keras
    cfg = mm.ModelConfig.from_variant("a3", "mobile", num_classes=600)
    official = oracle.get_official(cfg, seed=0)
    model = convert_official(official, cfg, tmp_path)
    clip = np.random.default_rng(7).random((1, 6, SIZE, SIZE, 3), dtype=np.float32)
    float32_steps = oracle.run_stream(official, cfg, clip, [1] * 6)
    previous = tf_keras.backend.floatx()
    tf_keras.backend.set_floatx("float64")
    try:
        official64 = oracle.build_raw(cfg)
        states64 = {k: tf.constant(v) for k, v in oracle.init_states(official64, cfg, 1, SIZE,
                                                                      SIZE).items()}
        official64({**states64, "image": tf.zeros([1, 1, SIZE, SIZE, 3], tf.float64)})
        assert [w.shape for w in official64.weights] == [w.shape for w in official.weights]
        for mine, theirs in zip(official64.weights, official.weights):
            mine.assign(theirs.numpy().astype(np.float64))
        states = model.init_states(1, SIZE, SIZE)
        for t in range(6):
            logits64, states64 = official64({**states64, "image": tf.constant(
                clip[:, t:t + 1].astype(np.float64))})
            logits, states = model(clip[:, t:t + 1], states)
            tf32_logits = relmax(logits64.numpy(), float32_steps[t][0])
            mm_logits = relmax(logits64.numpy(), logits)
            tf32_state = max(relmax(v.numpy(), float32_steps[t][1][k]) for k, v in states64.items()
                             if v.dtype == tf.float64)
            mm_state = max(relmax(v.numpy(), states[k]) for k, v in states64.items()
                           if v.dtype == tf.float64)
            print(f"frame {t}: distance to float64: logits TF32 {tf32_logits:.2e} minimovinet "
                  f"{mm_logits:.2e}; worst state TF32 {tf32_state:.2e} minimovinet {mm_state:.2e}")
            assert mm_logits < max(3 * tf32_logits, 1e-5)
            assert mm_state < max(3 * tf32_state, 1e-5)
    finally:
        tf_keras.backend.set_floatx(previous)


def check_checkpoint_reader_bit_exact(model_id, variant, tmp_path):
    """The TF-free checkpoint reader returns exactly what tf.train.load_checkpoint returns."""
    from minimovinet.formats.tf_checkpoint import CheckpointReader
    cfg = mm.ModelConfig.from_variant(model_id, variant, num_classes=600)
    official = oracle.get_official(cfg, seed=0)
    prefix, expected = oracle.checkpoint_arrays(official, tmp_path / f"{model_id}_{variant}")
    graph_key = "_CHECKPOINTABLE_OBJECT_GRAPH"
    with CheckpointReader(prefix) as reader:
        arrays = reader.arrays()
    assert sorted(arrays) == sorted(list(expected) + [graph_key])
    for name, value in expected.items():
        value = np.asarray(value)
        assert arrays[name].dtype == value.dtype and arrays[name].shape == value.shape, name
        assert arrays[name].tobytes() == value.tobytes(), name
    assert arrays[graph_key][()] == tf.train.load_checkpoint(prefix).get_tensor(graph_key)
    kernels = [a for n, a in arrays.items() if n.endswith("kernel/.ATTRIBUTES/VARIABLE_VALUE")]
    assert kernels and all(np.abs(a).max() > 0 for a in kernels)
