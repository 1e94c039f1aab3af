"""Numba kernels (serial and parallel builds) against the plain NumPy reference."""
import numba
import numpy as np
import pytest

from minimovinet import threads
from minimovinet.float32 import kernels
from minimovinet.float32 import reference
from minimovinet.float32.kernels import ACT_CODES, EMPTY_SCALE
from minimovinet.structure import same_padding

from conftest import need

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


@pytest.mark.parametrize("path", ["blas", "numba"])
def test_pointwise_layer_fused_scale_and_residual(monkeypatch, path):
    """The 1x1 conv layer, both forms: NumPy's BLAS + the bias/act epilogue, and the Numba loop."""
    from minimovinet.float32 import blas, kernels
    from minimovinet.float32.layers import Pointwise
    use_blas(blas, path)
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
        close(out.reshape(30, 5), expected, f"pointwise layer fused, {path}, {n_threads} threads")


def use_blas(blas, path):
    """Select the BLAS or the Numba form of the float layers (BLAS needs threadpoolctl)."""
    blas.disable(path == "numba")
    if path == "blas":
        need("threadpoolctl", "the BLAS form of the float 1x1 convs")
        assert blas.usable(), "threadpoolctl found no BLAS under NumPy"


@pytest.fixture(autouse=True)
def _blas_back_to_default():
    yield
    from minimovinet.float32 import blas
    blas.disable(False)


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("act", list(ACT_CODES))
@pytest.mark.parametrize("with_residual", [False, True])
def test_bias_act(build, act, with_residual):
    rng = np.random.default_rng(7)
    x = rng.normal(0, 3, (29, 19)).astype(np.float32)
    b = rng.normal(0, 1, 19).astype(np.float32)
    res = rng.normal(0, 1, (29, 19)).astype(np.float32) if with_residual else None
    out = x.copy()
    BUILDS[build].bias_act(out, b, ACT_CODES[act], EMPTY_SCALE if res is None else res)
    expected = reference.activate(x + b, act) + (0 if res is None else res)
    close(out, expected, f"bias_act {act} residual {with_residual}")


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("kt,frames", [(3, 1), (5, 1), (3, 2), (3, 4), (5, 3)])
def test_temporal_stream(build, kt, frames):
    """The causal temporal conv reading [buffer, new frames] without concatenating them."""
    rng = np.random.default_rng(8)
    prev = rng.normal(0, 1, (2, kt - 1, 5, 7, 6)).astype(np.float32)
    x = rng.normal(0, 1, (2, frames, 5, 7, 6)).astype(np.float32)
    w = rng.normal(0, 1, (kt, 1, 1, 6)).astype(np.float32)
    b = rng.normal(0, 1, 6).astype(np.float32)
    ref = reference.depthwise3d(np.concatenate([prev, x], axis=1), w, b, 1, "hard_swish")
    out = np.empty_like(x)
    BUILDS[build].temporal_stream(prev.reshape(2, kt - 1, 35, 6), x.reshape(2, frames, 35, 6),
                                  w.reshape(kt, 6), b, ACT_CODES["hard_swish"],
                                  out.reshape(2, frames, 35, 6))
    close(out, ref, f"temporal_stream kt {kt} frames {frames}")


@pytest.mark.parametrize("kt,frames", [(3, 1), (5, 2), (3, 4)])
def test_temporal_conv_layer_writes_the_next_buffer(kt, frames):
    from minimovinet.float32.layers import DepthwiseConv
    rng = np.random.default_rng(9)
    prev = rng.normal(0, 1, (1, kt - 1, 4, 4, 3)).astype(np.float32)
    x = rng.normal(0, 1, (1, frames, 4, 4, 3)).astype(np.float32)
    layer = DepthwiseConv(rng.normal(0, 1, (kt, 1, 1, 3)), rng.normal(0, 1, 3))
    states, new_states = {"buf": prev}, {}
    out = layer.stream("buf", x, states, new_states)
    full = np.concatenate([prev, x], axis=1)
    close(out, reference.depthwise3d(full, layer.kernel, layer.bias), "temporal layer")
    np.testing.assert_array_equal(new_states["buf"], full[:, -(kt - 1):])
    assert states["buf"] is prev and np.shares_memory(new_states["buf"], prev) is False


@pytest.mark.parametrize("path", ["blas", "numba"])
@pytest.mark.parametrize("size", [(9, 9), (10, 7), (2, 2)])
def test_stem_layer(path, size):
    """The stem both ways: patches as rows times the kernel (BLAS), and the direct Numba loop."""
    from minimovinet.float32 import blas
    from minimovinet.float32.layers import DenseConv
    use_blas(blas, path)
    rng = np.random.default_rng(10)
    x = rng.normal(0, 1, (2, 3) + size + (3,)).astype(np.float32)
    w = rng.normal(0, 1, (1, 3, 3, 3, 8)).astype(np.float32)
    b = rng.normal(0, 1, 8).astype(np.float32)
    out = DenseConv(w, b, 2, "hard_swish")(x)
    close(out, reference.conv3d(x, w, b, 2, "hard_swish"), f"stem layer {path} {size}")


def test_blas_runs_on_one_thread():
    """With BLAS in use, its pool has 1 thread whatever set_num_threads says (blas.py: why)."""
    threadpoolctl = need("threadpoolctl", "the BLAS form of the float 1x1 convs")
    from minimovinet.float32 import blas
    blas.disable(False)
    try:
        threads.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        assert blas.usable()
        counts = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                  if lib["user_api"] == "blas"]
        print("BLAS thread counts:", counts)
        assert counts and all(n == 1 for n in counts)
    finally:
        threads.set_num_threads(None)


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
