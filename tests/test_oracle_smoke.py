"""Smoke tests of the oracle harness (tests/oracle.py) against the official models.

Fast: A0 stream and base, plus one A3 stream model for the positional encoding.
"""
import numpy as np
import pytest

from minimovinet.config import ModelConfig

import oracle

A0_STREAM = ModelConfig.from_variant("a0", "stream")
A0_BASE = ModelConfig.from_variant("a0", "base")
A3_STREAM = ModelConfig.from_variant("a3", "stream")


def _clip(shape, seed=1):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(a).max(), np.abs(b).max(), 1e-30)
    return np.abs(a - b).max() / scale


@pytest.fixture(scope="module")
def a0_stream():
    return oracle.get_official(A0_STREAM, seed=0)


def test_a0_stream_zero_states(a0_stream):
    states = oracle.init_states(a0_stream, A0_STREAM, 1, 172, 172)
    assert len(states) == 43
    assert set(states) == set(a0_stream.input) - {"image"}
    assert states["state_block1_layer0_stream_buffer"].shape == (1, 2, 22, 22, 80)
    assert states["state_block4_layer0_stream_buffer"].shape == (1, 4, 6, 6, 384)
    assert states["state_block0_layer0_pool_buffer"].shape == (1, 1, 1, 1, 24)
    assert states["state_head_pool_buffer"].shape == (1, 1, 1, 1, 480)
    for name, value in states.items():
        if "frame_count" in name:
            assert value.dtype == np.int32 and value.shape == (1,), name
        else:
            assert value.dtype == np.float32, name
        assert not value.any(), name
    # no positional encoding below a3
    assert not any("pos_enc" in name for name in states)


def test_a0_stream_chunks_equal_clip(a0_stream):
    frames = _clip((2, 6, 40, 48, 3))
    clip_logits, clip_states = oracle.run_clip(a0_stream, A0_STREAM, frames, return_states=True)
    assert clip_logits.shape == (2, 600) and clip_logits.dtype == np.float32
    assert np.isfinite(clip_logits).all()
    # the two clips of the batch must give clearly different logits
    assert _rel(clip_logits[0], clip_logits[1]) > 0.05
    for chunks in ([1] * 6, [2, 3, 1]):
        outputs = oracle.run_stream(a0_stream, A0_STREAM, frames, chunks)
        assert len(outputs) == len(chunks)
        logits, states = outputs[-1]
        assert _rel(logits, clip_logits) < 1e-5, chunks
        assert set(states) == set(clip_states)
        for name in states:
            np.testing.assert_allclose(states[name], clip_states[name], rtol=1e-4,
                                       atol=1e-5 * np.abs(clip_states[name]).max() + 1e-6,
                                       err_msg=name)
        assert states["state_head_pool_frame_count"].tolist() == [6]
    # carrying states by hand equals one run over the whole clip
    first = oracle.run_stream(a0_stream, A0_STREAM, frames[:, :4], [4])
    rest = oracle.run_stream(a0_stream, A0_STREAM, frames[:, 4:], [1, 1], states=first[-1][1])
    assert _rel(rest[-1][0], clip_logits) < 1e-5


def test_a0_stream_checkpoint(a0_stream, tmp_path):
    prefix, arrays = oracle.checkpoint_arrays(a0_stream, tmp_path)
    assert prefix.endswith("ckpt-1")
    assert len(arrays) == len(a0_stream.variables)
    key = ("model/layer_with_weights-0/layer_with_weights-1/_feature/_conv/_conv/"
           "depthwise_kernel/.ATTRIBUTES/VARIABLE_VALUE")
    assert arrays[key].shape == (5, 5, 24, 1)
    rezero = [k for k in arrays if k.endswith("_mobile_bottleneck/_rezero/scale/.ATTRIBUTES/VARIABLE_VALUE")]
    assert len(rezero) == 15
    assert all(arrays[k] != 0 for k in rezero)
    for key, value in arrays.items():
        leaf = key.split("/")[-3]
        if leaf in ("moving_variance",):
            assert (value > 0).all(), key
        if leaf in ("gamma", "moving_variance"):
            assert not np.all(value == 1), key
        else:
            assert not np.all(value == 0), key


def test_a0_randomization_changes_everything(a0_stream):
    variables = a0_stream.variables
    seed0 = [v.numpy().copy() for v in variables]
    try:
        oracle.randomize_weights(a0_stream, seed=5)
        seed5 = [v.numpy().copy() for v in variables]
        for var, a, b in zip(variables, seed0, seed5):
            assert np.isfinite(b).all(), var.name
            # every element of every variable is drawn (or calibrated) afresh
            assert np.all(a != b), var.name
        # seeded: the same seed gives the same weights again
        oracle.randomize_weights(a0_stream, seed=0)
        for var, a in zip(variables, seed0):
            np.testing.assert_allclose(var.numpy(), a, rtol=1e-5, atol=1e-6, err_msg=var.name)
    finally:
        for var, a in zip(variables, seed0):   # leave the cached model exactly as built
            var.assign(a)


def test_a0_base_takes_only_the_image():
    model = oracle.get_official(A0_BASE, seed=0)
    assert set(model.input) == {"image"}
    assert oracle.init_states(model, A0_BASE, 1, 32, 32) == {}
    logits = oracle.run_clip(model, A0_BASE, _clip((2, 4, 32, 32, 3)), eager=True)
    assert logits.shape == (2, 600) and np.isfinite(logits).all()
    assert 0.5 < np.abs(logits).max() < 1e3
    assert _rel(logits[0], logits[1]) > 0.05
    with pytest.raises(ValueError):
        oracle.run_stream(model, A0_BASE, _clip((1, 2, 32, 32, 3)), [1, 1])


def test_a3_stream_positional_encoding():
    model = oracle.get_official(A3_STREAM, seed=0)
    states = oracle.init_states(model, A3_STREAM, 1, 32, 32)
    pos = [n for n in states if n.endswith("_pos_enc_frame_count")]
    assert len(pos) == sum(len(g.expand_filters) for g in A3_STREAM.groups)
    scales = [layer._rezero._scale for layer in model.submodules
              if type(layer).__name__ == "PositionalEncoding"]
    assert len(scales) == len(pos) and all(float(s.numpy()) != 0 for s in scales)

    frames = _clip((1, 5, 32, 32, 3), seed=2)
    # eager: cheaper than tracing a3 for a handful of calls
    clip_logits = oracle.run_clip(model, A3_STREAM, frames, eager=True)
    assert np.isfinite(clip_logits).all() and 0.5 < np.abs(clip_logits).max() < 1e3
    stream = oracle.run_stream(model, A3_STREAM, frames, [1, 1, 3], eager=True)
    assert _rel(stream[-1][0], clip_logits) < 1e-5
    assert stream[-1][1][pos[0]].tolist() == [5]
    # the positional encoding contributes to the output
    saved = [s.numpy() for s in scales]
    try:
        for s in scales:
            s.assign(0.0)
        without = oracle.run_clip(model, A3_STREAM, frames, eager=True)
    finally:
        for s, v in zip(scales, saved):
            s.assign(v)
    assert _rel(without, clip_logits) > 1e-3
