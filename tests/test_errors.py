"""Bad input gets a clear minimovinet error naming the problem, never a Numba traceback."""
import h5py
import numpy as np
import pytest

import minimovinet as mm
from conftest import random_model, random_params


@pytest.fixture(scope="module")
def model():
    return random_model("a0", "stream")


@pytest.fixture(scope="module")
def good(model):
    return np.random.default_rng(0).random((1, 2, 24, 24, 3), dtype=np.float32)


@pytest.mark.parametrize("frames,match", [
    (np.zeros((24, 24, 3), np.float32), "rank 5.*frames\\[None, None\\]"),
    (np.zeros((2, 24, 24, 3), np.float32), "rank 5.*batch axis"),
    (np.zeros((1, 2, 24, 24, 1), np.float32), "3 RGB channels"),
    (np.zeros((1, 2, 24, 24, 4), np.float32), "3 RGB channels"),
    (np.zeros((1, 0, 24, 24, 3), np.float32), "empty"),
    (np.zeros((1, 2, 24, 24, 3), np.uint8), "uint8.*/ 255"),
    (np.zeros((1, 2, 24, 24, 3), np.int32), "int32"),
    (np.zeros((1, 2, 24, 24, 3), np.float64), "float64.*astype"),
    ([[0.0]], "numpy array"),
])
def test_bad_frames(model, frames, match):
    with pytest.raises(mm.InputError, match=match):
        model(frames, model.init_states(1, 24, 24))


def test_nan_frames(model, good):
    bad = good.copy()
    bad[0, 1, 3, 4, 2] = np.nan
    with pytest.raises(mm.InputError, match="NaN"):
        model(bad, model.init_states(1, 24, 24))


def test_frames_in_0_255_are_refused(model, good):
    """A forgotten / 255 is refused with the fix; values a little above 1 still pass."""
    with pytest.raises(mm.InputError, match=r"0\.\.255 .*maximum 25.*divide by 255"):
        model(good * 254, model.init_states(1, 24, 24))
    with pytest.raises(mm.InputError, match="divide by 255"):
        model.predict_proba(good * 254)
    model(np.minimum(good * 1.5, 1.9).astype(np.float32), model.init_states(1, 24, 24))


def test_states_missing_extra_wrong(model, good):
    states = model.init_states(1, 24, 24)
    missing = dict(states)
    del missing["state_block1_layer0_stream_buffer"]
    with pytest.raises(mm.StateError, match="missing.*state_block1_layer0_stream_buffer"):
        model(good, missing)
    extra = dict(states, state_block9_layer9_stream_buffer=np.zeros(1, np.float32))
    with pytest.raises(mm.StateError, match="unexpected.*state_block9_layer9"):
        model(good, extra)
    with pytest.raises(mm.StateError, match="state_head_pool_buffer.*shape"):
        model(good, dict(states, state_head_pool_buffer=np.zeros((1, 1, 1, 1, 7), np.float32)))
    with pytest.raises(mm.StateError, match="pool_frame_count.*dtype"):
        model(good, dict(states, state_head_pool_frame_count=np.zeros(1, np.float32)))
    with pytest.raises(mm.StateError, match="shape.*batch 1 and size 32x32"):
        model(np.zeros((1, 1, 32, 32, 3), np.float32), states)   # states made for 24x24
    with pytest.raises(mm.StateError, match="NaN"):
        model(good, dict(states, state_head_pool_buffer=np.full((1, 1, 1, 1, 480), np.nan,
                                                                np.float32)))
    with pytest.raises(mm.StateError, match="dict"):
        model(good, [1, 2])


def test_states_from_another_model(model, good):
    other = random_model("a1", "stream")
    with pytest.raises(mm.StateError, match="do not match model a0-stream"):
        model(good, other.init_states(1, 24, 24))
    mobile = random_model("a0", "mobile")
    with pytest.raises(mm.StateError, match="do not match"):
        model(good, mobile.init_states(1, 24, 24))


def test_frame_count_overflow(model, good):
    states = model.init_states(1, 24, 24)
    states["state_head_pool_frame_count"] = np.array([2**31 - 2], np.int32)
    with pytest.raises(mm.StateError, match="overflow int32"):
        model(good, states)


def test_init_states_arguments(model):
    with pytest.raises(mm.InputError, match="height"):
        model.init_states(1, 0, 24)
    with pytest.raises(mm.InputError, match="batch"):
        model.init_states(1.5, 24, 24)


def test_h5_roundtrip_and_bad_files(tmp_path, model, good):
    path = tmp_path / "a0.h5"
    mm.save(model, path)
    loaded = mm.load(path)
    states = model.init_states(1, 24, 24)
    np.testing.assert_array_equal(loaded(good, states)[0], model(good, states)[0])
    assert not list(tmp_path.glob("*.part"))          # nothing half-written left behind

    with pytest.raises(mm.WeightsFileError, match="no such file"):
        mm.load(tmp_path / "missing.h5")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(mm.WeightsFileError, match="truncated"):
        mm.load(truncated)
    not_h5 = tmp_path / "video.h5"
    not_h5.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    with pytest.raises(mm.WeightsFileError, match="not a readable HDF5"):
        mm.load(not_h5)
    foreign = tmp_path / "keras.h5"
    with h5py.File(foreign, "w") as f:
        f.create_dataset("model_weights/dense/kernel", data=np.zeros((3, 3)))
    with pytest.raises(mm.WeightsFileError, match="not a minimovinet weights file"):
        mm.load(foreign)
    # a file whose arrays do not fit its config
    broken = tmp_path / "broken.h5"
    mm.save(model, broken)
    with h5py.File(broken, "a") as f:
        del f["params/head/project/conv/kernel"]
        f["params/head/project/conv/kernel"] = np.zeros((3, 3), np.float32)
    with pytest.raises(mm.WeightsFileError, match="head/project/conv/kernel.*shape"):
        mm.load(broken)
    with h5py.File(broken, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(mm.WeightsFileError, match="format_version 99"):
        mm.load(broken)


def test_save_failure_leaves_nothing(tmp_path, model):
    params = dict(model._params)
    params["head/project/conv/kernel"] = np.zeros((2, 2), np.float32)
    from minimovinet.formats.h5 import save
    with pytest.raises(mm.WeightsFileError):
        save(tmp_path / "x.h5", model.config, params)
    assert list(tmp_path.iterdir()) == []


def test_check_params_rejects_bad_values():
    cfg = mm.ModelConfig.from_variant("a0", "stream", num_classes=10)
    params = random_params(cfg)
    params["stem/bn/moving_variance"] = -params["stem/bn/moving_variance"]
    with pytest.raises(mm.WeightsFileError, match="negative variances"):
        mm.Movinet(cfg, params)
    params = random_params(cfg)
    params["stem/conv/kernel"][0, 0, 0, 0, 0] = np.inf
    with pytest.raises(mm.WeightsFileError, match="non-finite"):
        mm.Movinet(cfg, params)
