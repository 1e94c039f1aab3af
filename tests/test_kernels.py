"""Numba kernels (serial and parallel builds) against the plain NumPy reference."""
import numba
import numpy as np
import pytest

from minimovinet import threads
from minimovinet.float32 import kernels
from minimovinet.float32 import reference
from minimovinet.float32.kernels import ACT_CODES, EMPTY_SCALE
from minimovinet.structure import same_padding

BUILDS = {"serial": kernels.SERIAL, "parallel": kernels.PARALLEL}
RTOL, ATOL = 2e-5, 2e-5


def close(a, b, what):
    maxdiff = float(np.max(np.abs(a - b))) if a.size else 0.0
    print(f"{what}: maxdiff {maxdiff:.3g}")
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=what)


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("act", list(ACT_CODES))
def test_pointwise(build, act):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (37, 13)).astype(np.float32)
    w = rng.normal(0, 0.5, (13, 21)).astype(np.float32)
    b = rng.normal(0, 1, 21).astype(np.float32)
    out = np.empty((37, 21), np.float32)
    BUILDS[build].pointwise(x, np.ascontiguousarray(w.T), b, ACT_CODES[act], EMPTY_SCALE, out)
    close(out, reference.pointwise(x, w, b, act), f"pointwise {act}")


def test_pointwise_layer_fused_scale_and_residual(monkeypatch):
    from minimovinet.float32 import kernels
    from minimovinet.float32.layers import Pointwise
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (3, 10, 8)).astype(np.float32)          # 3 frames of 10 pixels
    scale = rng.uniform(0, 1, (3, 8)).astype(np.float32)
    res = rng.normal(0, 1, (3, 10, 5)).astype(np.float32)
    w = rng.normal(0, 1, (8, 5)).astype(np.float32)
    b = rng.normal(0, 1, 5).astype(np.float32)
    expected = reference.pointwise(x.reshape(30, 8), w, b, "hard_swish", scale, 10,
                                   res.reshape(30, 5))
    layer = Pointwise(w, b, "hard_swish")
    for n_threads in (1, 2):
        monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 0)
        threads.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
        try:
            out = layer(x, in_scale=scale, rows_per_scale=10, residual=res)
        finally:
            threads.set_num_threads(None)
        close(out.reshape(30, 5), expected, f"pointwise layer fused, {n_threads} threads")


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("kernel,stride,size", [
    ((1, 3, 3), 1, (7, 9)), ((1, 3, 3), 2, (7, 9)), ((1, 5, 5), 2, (8, 8)),
    ((1, 5, 5), 2, (11, 6)), ((3, 1, 1), 1, (5, 5)), ((5, 3, 3), 2, (9, 10)),
    ((3, 3, 3), 1, (4, 3))])
def test_depthwise3d(build, kernel, stride, size):
    rng = np.random.default_rng(3)
    kt, kh, kw = kernel
    x = rng.normal(0, 1, (2, kt + 2) + size + (6,)).astype(np.float32)
    w = rng.normal(0, 1, (kt, kh, kw, 6)).astype(np.float32)
    b = rng.normal(0, 1, 6).astype(np.float32)
    ref = reference.depthwise3d(x, w, b, stride, "relu6")
    Ho, top = same_padding(size[0], kh, stride)
    Wo, left = same_padding(size[1], kw, stride)
    out = np.empty(ref.shape, np.float32)
    BUILDS[build].depthwise3d(x, w, b, stride, stride, top, left, ACT_CODES["relu6"], out)
    assert out.shape == (2, 3, Ho, Wo, 6)
    close(out, ref, f"depthwise {kernel} stride {stride} size {size}")


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("size", [(9, 9), (10, 7), (2, 2)])
def test_conv3d(build, size):
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, (2, 3) + size + (3,)).astype(np.float32)
    w = rng.normal(0, 1, (1, 3, 3, 3, 8)).astype(np.float32)
    b = rng.normal(0, 1, 8).astype(np.float32)
    ref = reference.conv3d(x, w, b, 2, "swish")
    Ho, top = same_padding(size[0], 3, 2)
    Wo, left = same_padding(size[1], 3, 2)
    out = np.empty(ref.shape, np.float32)
    BUILDS[build].conv3d(x, w, b, 2, 2, top, left, ACT_CODES["swish"], out)
    close(out, ref, f"conv3d {size}")


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("size", [(86, 86), (43, 43), (11, 11), (6, 5), (1, 1)])
def test_avg_pool_excludes_padding(build, size):
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (2,) + size + (4,)).astype(np.float32)
    ref = reference.avg_pool(x, 3, 2)
    Ho, top = same_padding(size[0], 3, 2)
    Wo, left = same_padding(size[1], 3, 2)
    out = np.empty((2, Ho, Wo, 4), np.float32)
    BUILDS[build].avg_pool(x, 3, 2, top, left, out)
    close(out, ref, f"avg_pool {size}")
    # A constant image stays constant only if padded cells are excluded from the mean.
    ones = np.ones_like(x)
    BUILDS[build].avg_pool(ones, 3, 2, top, left, out)
    assert np.all(out == 1.0)


@pytest.mark.parametrize("build", BUILDS)
def test_spatial_mean(build):
    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, (5, 1849, 7)).astype(np.float32)
    out = np.empty((5, 7), np.float32)
    BUILDS[build].spatial_mean(x, out)
    close(out, reference.spatial_mean(x), "spatial_mean")


def test_same_padding_matches_tf_rule():
    # TF SAME: out = ceil(n / s), pad_total = max((out - 1) * s + k - n, 0), pad_before = total // 2
    assert same_padding(86, 3, 2) == (43, 0)
    assert same_padding(43, 3, 2) == (22, 1)
    assert same_padding(172, 3, 2) == (86, 0)
    assert same_padding(11, 5, 1) == (11, 2)


def test_thread_setting():
    big = 10 * kernels.PARALLEL_MIN_WORK
    try:
        threads.set_num_threads(1)
        assert threads.get_num_threads() == 1
        assert kernels.impl(big) is kernels.SERIAL          # one thread: the serial builds
        with pytest.raises(ValueError, match="threads"):
            threads.set_num_threads(0)
        with pytest.raises(ValueError, match="threads"):
            threads.set_num_threads(numba.config.NUMBA_NUM_THREADS + 1)
        assert threads.get_num_threads() == 1               # a refused value changes nothing
        assert kernels.impl(big) is kernels.SERIAL
    finally:
        threads.set_num_threads(None)
    # None restores numba's default: every thread NUMBA_NUM_THREADS allows, used by the kernels
    assert threads.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    if numba.config.NUMBA_NUM_THREADS > 1:
        assert kernels.impl(big) is kernels.PARALLEL
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    assert kernels.impl(kernels.PARALLEL_MIN_WORK - 1) is kernels.SERIAL   # too small for threads
