"""Streaming equals whole-clip inference; batches are independent; states are never mutated.

These are properties of the algorithm (the official model has them too: see the oracle tests),
checked here on minimovinet alone with random weights, for every stream variant.
"""
import numpy as np
import pytest

from conftest import expected_skip  # noqa: E402

from conftest import random_model, relmax

TOL = 1e-5
CHUNKINGS = {"frame_by_frame": [1] * 12, "pairs": [2] * 6, "threes": [3] * 4,
             "uneven": [5, 1, 4, 2], "whole": [12]}


def stream(model, clip, chunks, states=None):
    states = states if states is not None else model.init_states(*_bhw(clip))
    outputs, t = [], 0
    for n in chunks:
        logits, states = model(clip[:, t:t + n], states)
        outputs.append(logits)
        t += n
    return outputs, states


def _bhw(clip):
    return clip.shape[0], clip.shape[2], clip.shape[3]


@pytest.mark.parametrize("model_id,variant", [("a0", "stream"), ("a0", "stream3d"),
                                              ("a0", "mobile"), ("a3", "stream")])
@pytest.mark.parametrize("chunking", list(CHUNKINGS))
def test_stream_equals_whole_clip(model_id, variant, chunking):
    model = random_model(model_id, variant)
    clip = np.random.default_rng(0).random((1, 12, 24, 24, 3), dtype=np.float32)
    whole = model(clip)                                  # states from zero, whole clip
    outs, states = stream(model, clip, CHUNKINGS[chunking])
    err = relmax(whole, outs[-1])
    print(f"{model_id} {variant} {chunking}: rel maxdiff {err:.2e}")
    assert err < TOL
    # every state after the chunks equals the state after the whole clip in one call
    _, whole_states = stream(model, clip, [12])
    for name in whole_states:
        assert relmax(whole_states[name], states[name]) < TOL, name


def test_batch_of_two_equals_two_single_runs():
    model = random_model("a0", "stream")
    rng = np.random.default_rng(1)
    clips = rng.random((2, 6, 24, 24, 3), dtype=np.float32)
    both, both_states = stream(model, clips, [2, 1, 3])
    for b in range(2):
        single, single_states = stream(model, clips[b:b + 1], [2, 1, 3])
        assert relmax(single[-1], both[-1][b:b + 1]) < TOL
        for name, value in single_states.items():
            per_stream = value if "frame_count" in name else both_states[name][b:b + 1]
            assert relmax(value, per_stream) < TOL, name


def test_states_are_never_mutated_and_rewind_works():
    model = random_model("a0", "stream")
    rng = np.random.default_rng(2)
    clip = rng.random((1, 6, 24, 24, 3), dtype=np.float32)
    _, states = stream(model, clip, [3])
    saved = {k: v.copy() for k, v in states.items()}
    first, _ = model(clip[:, 3:4], states)
    for name in saved:
        np.testing.assert_array_equal(states[name], saved[name], err_msg=name)
    again, _ = model(clip[:, 3:4], states)            # rewinding to an old dict repeats exactly
    np.testing.assert_array_equal(first, again)


def test_frame_counts_and_buffers_hold_what_they_say():
    model = random_model("a0", "stream")
    clip = np.random.default_rng(3).random((1, 7, 24, 24, 3), dtype=np.float32)
    _, states = stream(model, clip, [3, 4])
    counts = {k: int(v[0]) for k, v in states.items() if k.endswith("frame_count")}
    assert counts and set(counts.values()) == {7}
    buffers = [k for k in states if k.endswith("stream_buffer")]
    assert buffers and all(states[k].shape[1] in (2, 4) for k in buffers)   # kt - 1 for kt 3, 5


def test_base_model_whole_clip_only():
    import minimovinet as mm
    model = random_model("a0", "base")
    clip = np.random.default_rng(4).random((1, 4, 24, 24, 3), dtype=np.float32)
    logits = model(clip)
    assert logits.shape == (1, 10) and np.isfinite(logits).all()
    with pytest.raises(mm.StateError, match="whole-clip"):
        model.init_states()
    with pytest.raises(mm.StateError, match="whole-clip"):
        model(clip, {})


def test_parallel_kernels_give_the_serial_result(monkeypatch):
    """Every layer forced onto the parallel builds (2 threads) gives the serial model's output."""
    import minimovinet as mm
    from minimovinet.float32 import kernels
    if __import__("numba").config.NUMBA_NUM_THREADS < 2:
        expected_skip("numba sees a single CPU")
    model = random_model("a0", "stream")
    clip = np.random.default_rng(5).random((2, 3, 24, 24, 3), dtype=np.float32)
    try:
        mm.set_num_threads(1)
        serial, serial_states = model(clip, model.init_states(2, 24, 24))
        monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 0)
        mm.set_num_threads(2)
        parallel, parallel_states = model(clip, model.init_states(2, 24, 24))
    finally:
        mm.set_num_threads(None)
    np.testing.assert_allclose(parallel, serial, rtol=1e-6, atol=1e-6)
    for name in serial_states:
        np.testing.assert_allclose(parallel_states[name], serial_states[name], rtol=1e-6,
                                   atol=1e-6, err_msg=name)
