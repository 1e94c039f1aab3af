"""The int8 kernels against plain NumPy / Python-integer references of TFLite's arithmetic
(`minimovinet.int8.reference`, written from TFLite's definitions).

These need neither TensorFlow nor LiteRT: they pin the integer semantics (rounding of every
requantization, zero-point folding, padding, broadcasting) op by op on random data, with
parameter ranges wider than a real model's (positive and negative shifts, odd sizes, -128
weights).  Bit-exactness against LiteRT itself is tested in test_int8_litert.py and
test_int8_official.py.
"""
import numpy as np
import pytest

from minimovinet.int8 import arith as A
from minimovinet.int8 import avx2 as X
from minimovinet.int8 import kernels as K
from minimovinet.int8 import neon as N
from minimovinet.int8 import reference as ref
from minimovinet.int8 import vnni as V
from minimovinet.structure import same_padding

KERNELS = [pytest.param(K.SERIAL, id="serial"), pytest.param(K.PARALLEL, id="parallel")]


def quant_params(rng, c, shifts=(-12, 2)):
    mult = rng.integers(1 << 30, (1 << 31) - 1, c).astype(np.int64)
    shift = rng.integers(shifts[0], shifts[1], c).astype(np.int64)
    return mult, shift


def split(mult, shift):
    """The conv kernels' requantization arguments: mult, left, offset, total."""
    return (mult.astype(np.int32),) + A.upward_params(shift)


# ---- parameters ------------------------------------------------------------------------------

def test_upward_requantization_is_one_add_and_shift():
    """SRDHM + the halves-upward shift equals (a*m + offset) >> total, on edge values too."""
    rng = np.random.default_rng(9)
    a = np.concatenate([rng.integers(-(1 << 31), (1 << 31) - 1, 20000),
                        np.arange(-3000, 3000), [-(1 << 31), (1 << 31) - 1, 0, 1, -1]])
    for shift in (-20, -9, -1, 0, 1, 3):
        m = np.int64(rng.integers(1 << 30, (1 << 31) - 1))
        left, offset, total = A.upward_params(np.array([shift]))
        aa = (a << int(left[0])).astype(np.int32).astype(np.int64)      # int32 wrap, as C
        v = ref.srdhm(aa, m)
        r = max(-shift, 0)
        expected = (v + ((1 << r) >> 1)) >> r
        got = (aa * m + offset[0]) >> total[0]
        np.testing.assert_array_equal(got, expected)
    # products exactly at ties of the first and of the second rounding
    m = np.int64(1 << 30)
    for a_val in range(-40, 41):
        for r in (0, 1, 2, 3):
            left, offset, total = A.upward_params(np.array([-r]))
            v = int(ref.srdhm(np.array([a_val], np.int64), m)[0])
            assert (a_val * m + offset[0]) >> total[0] == (v + ((1 << r) >> 1)) >> r


def test_quantize_multiplier():
    assert A.quantize_multiplier(0.0) == (0, 0)
    assert A.quantize_multiplier(0.5) == (1 << 30, 0)
    assert A.quantize_multiplier(1.0) == (1 << 30, 1)
    assert A.quantize_multiplier(2.0 ** -40) == (0, 0)          # too small: TFLite flushes to 0
    assert A.quantize_multiplier(1 - 2.0 ** -40) == (1 << 30, 1)  # mantissa rounds up to 2^31
    rng = np.random.default_rng(0)
    for real in rng.uniform(1e-6, 8.0, 200):
        m, s = A.quantize_multiplier(real)
        assert (1 << 30) <= m < (1 << 31)
        assert abs(m * 2.0 ** (s - 31) - real) <= real * 2.0 ** -31


def test_activation_range():
    assert A.activation_range("NONE", 0.1, 3) == (-128, 127)
    assert A.activation_range("RELU6", 6 / 255, -128) == (-128, 127)
    assert A.activation_range("RELU6", 0.05, -10) == (-10, 110)
    assert A.activation_range("RELU", 0.05, -10) == (-10, 127)


# ---- convs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("ki", KERNELS)
@pytest.mark.parametrize("shifts", [(-12, 2), (-12, -1)], ids=["some-left-shifts", "right-only"])
@pytest.mark.parametrize("P,Cin,Cout", [(1, 1, 1), (7, 8, 24), (45, 33, 17), (16, 80, 32),
                                        (3, 480, 64), (37, 5, 4), (9, 12, 8), (21, 20, 47)])
def test_pointwise_forms(ki, P, Cin, Cout, shifts, monkeypatch):
    rng = np.random.default_rng(P * 1000 + Cin)
    x = rng.integers(-128, 128, (P, Cin)).astype(np.int8)
    w = rng.integers(-127, 128, (Cout, Cin)).astype(np.int8)
    bias = rng.integers(-5000, 5000, Cout).astype(np.int64)
    mult, shift = quant_params(rng, Cout, shifts)
    x_zp, out_zp, lo, hi = int(rng.integers(-128, 128)), 5, -100, 120
    expected = ref.pointwise_conv(x, w, bias, x_zp, mult, shift, out_zp, lo, hi)
    bias_eff = (bias - x_zp * w.astype(np.int64).sum(axis=1)).astype(np.int32)
    rq = split(mult, shift)
    out = np.empty((P, Cout), np.int8)
    ki.pointwise(x, w, bias_eff, *rq, out_zp, lo, hi, out)
    np.testing.assert_array_equal(out, expected)
    wt = np.ascontiguousarray(w.T).astype(np.int16)
    for pairs in (True, False):
        out = np.empty((P, Cout), np.int8)
        ki.pointwise_rows(x, wt, pairs, bias_eff, *rq, out_zp, lo, hi, out)
        np.testing.assert_array_equal(out, expected)
    # a -128 weight: products up to 128 * 128, pairs would overflow int16 -> unpaired path
    w[0, 0] = -128
    x[:, 0] = -128
    expected = ref.pointwise_conv(x, w, bias, x_zp, mult, shift, out_zp, lo, hi)
    bias_eff = (bias - x_zp * w.astype(np.int64).sum(axis=1)).astype(np.int32)
    ki.pointwise_rows(x, np.ascontiguousarray(w.T).astype(np.int16), False, bias_eff, *rq,
                      out_zp, lo, hi, out)
    np.testing.assert_array_equal(out, expected)
    if V.AVAILABLE:                               # the x86 VNNI form, on the same -128 case
        for block in (4, 4 * Cout, V.REQUANT_BLOCK):     # 1, several or many pixels per pass
            monkeypatch.setattr(V, "REQUANT_BLOCK", block)
            packed = V.pack_weights(w, bias_eff, *rq)
            xu = np.full(V.input_shape(P, Cin), 128, np.uint8)
            out = np.empty((P, Cout), np.int8)
            V.pointwise_vnni(x, xu, *packed, out_zp, lo, hi, out)
            np.testing.assert_array_equal(out, expected, err_msg=f"block {block}")
    if X.AVAILABLE:                               # the x86 AVX2 form, on the same -128 case
        w[:, 1 % Cin] = -128                      # (a pair of -128 * -128 products: 2^15)
        x[:, 1 % Cin] = -128
        expected = ref.pointwise_conv(x, w, bias, x_zp, mult, shift, out_zp, lo, hi)
        bias_eff = (bias - x_zp * w.astype(np.int64).sum(axis=1)).astype(np.int32)
        for block in (4, 4 * Cout, X.REQUANT_BLOCK):     # 1, several or many pixels per pass
            monkeypatch.setattr(X, "REQUANT_BLOCK", block)
            packed = X.pack_weights(w, bias_eff, *rq)
            xs = np.zeros(X.input_shape(P, Cin), np.int16)
            out = np.empty((P, Cout), np.int8)
            X.pointwise_avx2(x, xs, *packed, out_zp, lo, hi, out)
            print(f"avx2 block {block}: maxdiff",
                  np.abs(out.astype(int) - expected.astype(int)).max())
            np.testing.assert_array_equal(out, expected, err_msg=f"block {block}")


def run_neon(ki, x, w, bias_eff, rq, out_zp, lo, hi, pairs):
    """The neon form as conv.py calls it: packed weights, the input itself when Cin is a
    multiple of 8, else a zero-filled padded copy."""
    P, Cin = x.shape
    packed = N.pack_weights(w, bias_eff, *rq)
    xw = np.zeros(N.input_shape(P, Cin) if Cin % N.CHANNEL_ALIGN else (4, Cin), np.int8)
    out = np.empty((P, w.shape[0]), np.int8)
    ki.pointwise_neon(x, xw, packed[0], pairs, *packed[1:], out_zp, lo, hi, out)
    return out


@pytest.mark.parametrize("ki", KERNELS)
@pytest.mark.parametrize("variant", N.VARIANTS)
@pytest.mark.parametrize("P,Cin,Cout", [(4, 8, 4), (7, 8, 24), (45, 33, 17), (16, 80, 32),
                                        (6, 480, 64), (37, 5, 4), (9, 12, 8), (21, 20, 47),
                                        (130, 184, 56), (5, 27, 8), (11, 16, 3), (1030, 8, 1)])
def test_pointwise_neon(ki, variant, P, Cin, Cout, monkeypatch):
    """The neon form (4 x 4 tiles over 16 / 8 input channels a step) equals the portable
    reduction, for Cin and Cout not multiples of the tile, P not a multiple of 4, one or many
    requantization passes, in both variants; the "dot" variant also with -128 weights."""
    rng = np.random.default_rng(P * 7 + Cin * 3 + Cout)
    x = rng.integers(-128, 128, (P, Cin)).astype(np.int8)
    w = rng.integers(-127, 128, (Cout, Cin)).astype(np.int8)
    x[0] = -128                                   # extreme products: -128 * +-127
    w[0] = -127
    w[-1] = 127
    bias = rng.integers(-(1 << 20), 1 << 20, Cout).astype(np.int64)
    mult, shift = quant_params(rng, Cout)
    x_zp, out_zp, lo, hi = int(rng.integers(-128, 128)), -3, -128, 127
    bias_eff = (bias - x_zp * w.astype(np.int64).sum(axis=1)).astype(np.int32)
    rq = split(mult, shift)
    expected = np.empty((P, Cout), np.int8)
    K.SERIAL.pointwise(x, w, bias_eff, *rq, out_zp, lo, hi, expected)
    np.testing.assert_array_equal(
        expected, ref.pointwise_conv(x, w, bias, x_zp, mult, shift, out_zp, lo, hi))
    for block in (4, 4 * Cout, N.REQUANT_BLOCK):  # 1, several or many pixels per pass
        monkeypatch.setattr(N, "REQUANT_BLOCK", block)
        out = run_neon(ki, x, w, bias_eff, rq, out_zp, lo, hi, variant == "pairs")
        np.testing.assert_array_equal(out, expected, err_msg=f"{variant} block {block}")
    if variant == "dot":                          # -128 weights and inputs: 128 * 128 products
        w[:, ::3] = -128
        x[:, ::3] = -128
        bias_eff = (bias - x_zp * w.astype(np.int64).sum(axis=1)).astype(np.int32)
        K.SERIAL.pointwise(x, w, bias_eff, *rq, out_zp, lo, hi, expected)
        out = run_neon(ki, x, w, bias_eff, rq, out_zp, lo, hi, False)
        np.testing.assert_array_equal(out, expected)


def test_neon_accumulators_wrap_like_int32():
    """Sums past int32 wrap as TFLite's (and the portable kernels') do: 480 products of
    128 * 127 plus a bias near 2^31."""
    P, Cin, Cout = 8, 480, 4
    x = np.full((P, Cin), -128, np.int8)
    w = np.full((Cout, Cin), -127, np.int8)
    bias_eff = np.full(Cout, (1 << 31) - 1000, np.int64).astype(np.int32)
    rq = split(np.full(Cout, 1 << 30, np.int64), np.full(Cout, -20, np.int64))
    expected = np.empty((P, Cout), np.int8)
    K.SERIAL.pointwise(x, w, bias_eff, *rq, 0, -128, 127, expected)
    for pairs in (False, True):
        np.testing.assert_array_equal(run_neon(K.SERIAL, x, w, bias_eff, rq, 0, -128, 127,
                                               pairs), expected)


def test_neon_variant_choice(monkeypatch):
    """"pairs" only without -128 weights and without SDOT; "dot" otherwise."""
    w = np.full((4, 8), -127, np.int8)
    monkeypatch.setattr(N, "SDOT", False)
    assert N.variant(w) == "pairs"
    w[1, 3] = -128
    assert N.variant(w) == "dot"
    monkeypatch.setattr(N, "SDOT", True)
    assert N.variant(np.zeros((4, 8), np.int8)) == "dot"


@pytest.mark.parametrize("ki", KERNELS)
@pytest.mark.parametrize("H,W,C,k,stride,padding", [
    (9, 9, 24, (5, 5), 2, "SAME"), (11, 7, 16, (3, 3), 1, "SAME"), (22, 22, 8, (3, 3), 2, "SAME"),
    (3, 121, 24, (3, 1), 1, "VALID"), (5, 36, 8, (5, 1), 1, "VALID"),
    (10, 13, 5, (3, 3), 2, "SAME"), (8, 8, 7, (5, 5), 1, "SAME")])
def test_depthwise(ki, H, W, C, k, stride, padding, monkeypatch):
    rng = np.random.default_rng(H * W + C)
    x = rng.integers(-128, 128, (1, H, W, C)).astype(np.int8)
    w = rng.integers(-127, 128, k + (C,)).astype(np.int8)
    bias = rng.integers(-3000, 3000, C).astype(np.int64)
    mult, shift = quant_params(rng, C)
    x_zp, out_zp, lo, hi = -7, -3, -128, 127
    expected = ref.depthwise_conv(x, w, bias, x_zp, stride, padding, mult, shift, out_zp, lo, hi)
    Ho, Wo = expected.shape[1:3]
    pt = pl = 0
    if padding == "SAME":
        pt, pl = same_padding(H, k[0], stride)[1], same_padding(W, k[1], stride)[1]
    Hp, Wp = max(H + pt, (Ho - 1) * stride + k[0]), max(W + pl, (Wo - 1) * stride + k[1])
    Wq = -(-Wp // stride)
    xq = np.full((1, Hp, stride, Wq, C), x_zp, np.int8)     # padded, split by column phase
    ki.pad_copy(x, pt, pl, xq)
    # the phase-split copy holds the padded image: padded column j at [j % S, j // S]
    padded = np.full((Hp, Wq * stride, C), x_zp, np.int8)
    padded[pt:pt + H, pl:pl + W] = x[0]
    np.testing.assert_array_equal(xq[0].transpose(0, 2, 1, 3).reshape(Hp, -1, C), padded)
    bias_eff = (bias - x_zp * w.astype(np.int64).sum(axis=(0, 1))).astype(np.int32)
    mult, left, offset, total = split(mult, shift)
    kh, kw = k
    for block in (C, 3 * C, K.DEPTHWISE_BLOCK):          # column blocks of 1, 3 and many
        monkeypatch.setattr(K, "DEPTHWISE_BLOCK", block)
        tiles = K.depthwise_tiles(w, bias_eff, mult, left, offset, total, Wo)
        wt, bt, mt, lt, ot, tt = tiles
        assert wt.shape[0] % 3 == 0 and wt.shape[1] == bt.size
        out = np.empty_like(expected)
        ki.depthwise(xq, wt, bt, kh, kw, stride, mt, lt, ot, tt, out_zp, lo, hi, out)
        np.testing.assert_array_equal(out, expected, err_msg=f"block {block}")
    # -128 weights with -128 inputs: products of 128 * 128 (int16 holds them, exactly)
    w[0, 0, :] = -128
    w[-1, -1, :] = -128
    x[..., :] = -128
    expected = ref.depthwise_conv(x, w, bias, x_zp, stride, padding, mult, shift, out_zp, lo, hi)
    ki.pad_copy(x, pt, pl, xq)
    bias_eff = (bias - x_zp * w.astype(np.int64).sum(axis=(0, 1))).astype(np.int32)
    wt, bt, mt, lt, ot, tt = K.depthwise_tiles(w, bias_eff, mult, left, offset, total, Wo)
    out = np.empty_like(expected)
    ki.depthwise(xq, wt, bt, kh, kw, stride, mt, lt, ot, tt, out_zp, lo, hi, out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("ki", KERNELS)
@pytest.mark.parametrize("x_zp", [-128, 37])
def test_im2col_dense_conv(ki, x_zp):
    """The stem: a 3x3 stride-2 SAME conv through patches + the pointwise kernel (the padding
    reads as x_zp)."""
    rng = np.random.default_rng(3)
    H, W, Cin, Cout, k, s = 17, 12, 3, 8, 3, 2
    x = rng.integers(-128, 128, (H, W, Cin)).astype(np.int8)
    w = rng.integers(-127, 128, (Cout, k, k, Cin)).astype(np.int8)
    bias = rng.integers(-3000, 3000, Cout).astype(np.int64)
    mult, shift = quant_params(rng, Cout)
    Ho, pt = same_padding(H, k, s)
    Wo, pl = same_padding(W, k, s)
    expected = ref.dense_conv(x, w, bias, x_zp, s, mult, shift, 2, -128, 127)
    cols = np.empty((Ho * Wo, k * k * Cin), np.int8)
    ki.im2col(x, k, k, s, s, pt, pl, x_zp, Wo, cols)
    bias_eff = (bias - x_zp * w.astype(np.int64).reshape(Cout, -1).sum(axis=1)).astype(np.int32)
    out = np.empty((Ho * Wo, Cout), np.int8)
    ki.pointwise_rows(cols, np.ascontiguousarray(w.reshape(Cout, -1).T).astype(np.int16), True,
                      bias_eff, *split(mult, shift), 2, -128, 127, out)
    np.testing.assert_array_equal(out.reshape(Ho, Wo, Cout), expected)
    if V.AVAILABLE:                               # the x86 VNNI form: patches in uint8
        packed = V.pack_weights(w.reshape(Cout, -1), bias_eff, *split(mult, shift))
        xu = np.full(V.input_shape(Ho * Wo, k * k * Cin), 128, np.uint8)
        out = np.empty((Ho * Wo, Cout), np.int8)
        Hp, Wp = max(H + pt, (Ho - 1) * s + k), max(W + pl, (Wo - 1) * s + k)
        xpad = np.full((Hp, Wp, Cin), (x_zp + 128) % 256, np.uint8)
        V.conv_vnni(x, k, k, s, s, pt, pl, x_zp, Wo, xpad, xu, *packed, 2, -128, 127, out)
        np.testing.assert_array_equal(out.reshape(Ho, Wo, Cout), expected)
    if X.AVAILABLE:                               # the x86 AVX2 form: patches in int16
        packed = X.pack_weights(w.reshape(Cout, -1), bias_eff, *split(mult, shift))
        xs = np.zeros(X.input_shape(Ho * Wo, k * k * Cin), np.int16)
        out = np.empty((Ho * Wo, Cout), np.int8)
        Hp, Wp = max(H + pt, (Ho - 1) * s + k), max(W + pl, (Wo - 1) * s + k)
        xpad = np.full((Hp, Wp, Cin), x_zp, np.int16)
        X.conv_avx2(x, k, k, s, s, pt, pl, Wo, xpad, xs, *packed, 2, -128, 127, out)
        print("avx2 stem: maxdiff", np.abs(out.reshape(Ho, Wo, Cout).astype(int) - expected).max())
        np.testing.assert_array_equal(out.reshape(Ho, Wo, Cout), expected)
    # the neon form: patches into rows of K8 int8 values (27 -> 32), both variants
    packed = N.pack_weights(w.reshape(Cout, -1), bias_eff, *split(mult, shift))
    Hp, Wp = max(H + pt, (Ho - 1) * s + k), max(W + pl, (Wo - 1) * s + k)
    for pairs in (False, True):
        P4, K8 = N.input_shape(Ho * Wo, k * k * Cin)
        cols = np.zeros((P4 // 4, 4, K8), np.int8)
        xpad = np.full((Hp, Wp, Cin), x_zp, np.int8)
        out = np.empty((Ho * Wo, Cout), np.int8)
        ki.conv_neon(x, k, k, s, s, pt, pl, Wo, xpad, cols, packed[0], pairs, *packed[1:], 2,
                     -128, 127, out)
        np.testing.assert_array_equal(out.reshape(Ho, Wo, Cout), expected, err_msg=str(pairs))


# ---- elementwise -----------------------------------------------------------------------------

@pytest.mark.parametrize("ki", KERNELS)
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_add_mul(ki, mode):
    rng = np.random.default_rng(mode)
    R, C = 37, 24
    a = rng.integers(-128, 128, (R, C)).astype(np.int8)
    b = rng.integers(-128, 128, [(R, C), (1, C), (1, 1)][mode]).astype(np.int8)
    bb = np.broadcast_to(b, a.shape)
    mask = ref.simd_mask(a.shape, mode)
    n_simd, c_simd = (R * C, C - C % 16) if mode == 1 else (R * C - (R * C) % 16, C)
    for s1, z1, s2, z2, so, zo in [(0.31, -7, 0.12, 11, 0.4, 3),
                                   (0.011244264431297779, -95, 0.02054954133927822, -84, 0.02848176658153534, -84)]:
        simd = ref.add(a, bb, s1, z1, s2, z2, so, zo, simd=True)
        tail = ref.add(a, bb, s1, z1, s2, z2, so, zo)
        expected = np.where(mask, simd, tail)
        twice = 2.0 * float(max(np.float32(s1), np.float32(s2)))
        m1, e1 = A.quantize_multiplier(s1 / twice)
        m2, e2 = A.quantize_multiplier(s2 / twice)
        mo, eo = A.quantize_multiplier(twice / ((1 << 20) * so))
        out = np.empty_like(a)
        ki.add(a, b, mode, z1, z2, m1, e1, m2, e2, mo, eo, zo, -128, 127, n_simd, c_simd, out)
        np.testing.assert_array_equal(out, expected)
        m, e = A.quantize_multiplier(s1 * s2 / so)
        expected = np.where(mask, ref.mul(a, bb, z1, z2, m, e, zo, simd=True),
                            ref.mul(a, bb, z1, z2, m, e, zo))
        ki.mul(a, b, mode, z1, z2, m, e, zo, -128, 127, n_simd, c_simd, out)
        np.testing.assert_array_equal(out, expected)


def test_add_block_and_tail_formulas_differ_where_litert_does():
    """The case that broke bit-exactness on another machine's converted model (an SE pool's
    cumulative ADD, element 5 of 184): LiteRT's output was -79; the reference formula gives
    -78, the block formula -79.  Over all operand pairs the two formulas differ somewhere."""
    q = (0.011244264431297779, -95, 0.02054954133927822, -84, 0.02848176658153534, -84)
    a, b = np.array([[-50]], np.int8), np.array([[-101]], np.int8)
    assert ref.add(a, b, *q)[0, 0] == -78
    assert ref.add(a, b, *q, simd=True)[0, 0] == -79
    aa = np.repeat(np.arange(-128, 128), 256).astype(np.int8).reshape(256, 256)
    bb = aa.T.copy()
    differ = ref.add(aa, bb, *q) != ref.add(aa, bb, *q, simd=True)
    assert 0 < differ.sum() < 1000, differ.sum()


@pytest.mark.parametrize("ki", KERNELS)
def test_avg_pool_rounds_half_away_from_zero(ki):
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, (1, 11, 10, 5)).astype(np.int8)
    pt, pl = same_padding(11, 3, 2)[1], same_padding(10, 3, 2)[1]
    expected = ref.avg_pool(x, 3, 2, "SAME")          # half away from zero, on exact rationals
    out = np.empty_like(expected)
    ki.avg_pool(x, 3, 2, pt, pl, -128, 127, out)
    np.testing.assert_array_equal(out, expected)


def test_div_by_frame_count():
    """int8 DIV by a quantized count: within one quantum of the real quotient, and exactly
    the same as a Python-integer transcription of TFLite's DivElementwise."""
    s1, z1, s2, z2, so, zo = 0.04, -83, 6 / 255, -128, 0.0075, -78
    real = float(np.float32(s1) / (np.float32(s2) * np.float32(so)))
    m, e = A.quantize_multiplier(real)
    a = np.arange(-128, 128, dtype=np.int8)
    for count in range(1, 7):
        q = np.int8(round(count / s2) + z2)
        out = np.empty_like(a)
        K.SERIAL.div(a, q, z1, z2, m, e, zo, -128, 127, out)
        exact = s1 * (a.astype(np.float64) - z1) / (s2 * (float(q) - z2)) / so + zo
        assert np.all(np.abs(out - np.clip(exact, -128, 127)) <= 1.0)
        np.testing.assert_array_equal(out, [ref.div(int(v), int(q), z1, z2, m, e, zo)
                                            for v in a])


def test_mean_and_sum():
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (2, 36, 40)).astype(np.int8)
    si, zi, so, zo = 0.05, -100, 0.007, -70
    m, s = A.quantize_multiplier(si / so)
    k = min(36 .bit_length() - 1, 32, 31 + s)
    out = np.empty((2, 40), np.int8)
    K.SERIAL.mean(x, zi, (m << k) // 36, s - k, zo, out)
    real = si * (x.astype(np.float64) - zi).mean(axis=1) / so + zo
    assert np.abs(out - np.clip(real, -128, 127)).max() <= 1.0
    scale = np.float32(np.float32(si) / np.float32(so))
    bias = np.float32(np.float32(np.float32(-zi) * scale) * np.float32(36))
    K.SERIAL.sum(x, scale, bias, zo, out)
    np.testing.assert_array_equal(out, ref.reduce_sum(x, scale, bias, zo))   # float32 as TFLite


def test_lookup_tables():
    """HARD_SWISH and LOGISTIC tables stay within one quantum of the real functions."""
    q = np.arange(-128, 128)
    si, zi, so, zo = 0.076, -4, 0.04, -119
    x = si * (q - zi)
    hs = x * np.clip(x + 3, 0, 6) / 6
    lut = A.hard_swish_lut(si, zi, so, zo).astype(np.int64)
    assert np.abs(lut - np.clip(hs / so + zo, -128, 127)).max() <= 1.0
    lut = A.logistic_lut(0.099, 3, 1 / 256, -128).astype(np.int64)
    sig = 1 / (1 + np.exp(-0.099 * (q - 3)))
    assert np.abs(lut - np.clip(sig * 256 - 128, -128, 127)).max() <= 1.0


@pytest.mark.parametrize("ki", KERNELS)
def test_quantize_dequantize_blocks_of_eight(ki):
    """LiteRT's QUANTIZE/DEQUANTIZE: float32 blocks of 8 (ties to even), the n % 8 tail in
    double (ties away from zero)."""
    s, z = np.float32(1 / 255), -128
    x = ((np.arange(19) + 0.5) / 255).astype(np.float32)        # many exact ties at x / s
    inv = np.float32(1.0 / float(s))
    out = np.empty(19, np.int8)
    ki.quantize(x, float(s), inv, z, out)
    np.testing.assert_array_equal(out, ref.quantize(x, s, z))
    q = np.arange(-128, 127, 7).astype(np.int8)                  # 37 values: 32 + 5
    s, z = 0.18998, -52
    deq = np.empty(q.size, np.float32)
    ki.dequantize(q, np.float32(s), np.float32(-z * float(np.float32(s))), float(np.float32(s)),
                  z, deq)
    np.testing.assert_array_equal(deq, ref.dequantize(q, s, z))


@pytest.mark.parametrize("ki", KERNELS)
@pytest.mark.parametrize("mode", [0, 2])
def test_fused_mul_add_equals_mul_then_add(ki, mode):
    """A block's ReZero MUL and residual ADD in one kernel give the two ops' bits."""
    rng = np.random.default_rng(10 + mode)
    R, C = 29, 32
    a = rng.integers(-128, 128, (R, C)).astype(np.int8)
    b = rng.integers(-128, 128, [(R, C), (1, C), (1, 1)][mode]).astype(np.int8)
    skip = rng.integers(-128, 128, (R, C)).astype(np.int8)
    sa, za, sb, zb, st, zt, sk, zk, so, zo = 0.2, -6, 0.009, 127, 0.44, 5, 0.28, 0, 0.44, 6
    m, e = A.quantize_multiplier(sa * sb / st)
    t = np.empty_like(a)
    n = R * C
    ki.mul(a, b, mode, za, zb, m, e, zt, -128, 127, n - n % 16, C, t)
    twice = 2.0 * float(max(np.float32(st), np.float32(sk)))
    tm, ts = A.quantize_multiplier(st / twice)
    km, ks = A.quantize_multiplier(sk / twice)
    om, oe = A.quantize_multiplier(twice / ((1 << 20) * so))
    expected = np.empty_like(a)
    ki.add(t, skip, 0, zt, zk, tm, ts, km, ks, om, oe, zo, -128, 127, n - n % 16, C, expected)
    out = np.empty_like(a)
    ki.mul_add(a, b, mode, za, zb, m, e, zt, -128, 127, skip, zt, zk, tm, ts, km, ks, om, oe,
               zo, -128, 127, n - n % 16, out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("ki", KERNELS)
@pytest.mark.parametrize("b_row", [False, True])
def test_tabulated_binary_ops(ki, b_row):
    """ADD / MUL of two int8 tensors run as 256 x 256 tables filled by the exact kernels."""
    from minimovinet.int8.ops.binary import pair_table
    rng = np.random.default_rng(20 + b_row)
    a = rng.integers(-128, 128, (33, 24)).astype(np.int8)
    b = rng.integers(-128, 128, (1 if b_row else 33, 24)).astype(np.int8)
    m, e = A.quantize_multiplier(0.031 * 0.0039 / 0.017)

    def exact(x, y, mode, out):
        K.SERIAL.mul(x, y, mode, -116, -128, m, e, -107, -128, 127, 0, 0, out)

    table = pair_table(lambda x, y, out: exact(x, y, 0, out))
    expected = np.empty_like(a)
    exact(a, b, 1 if b_row else 0, expected)
    out = np.empty_like(a)
    ki.lut2(a, b, b_row, table, out)
    np.testing.assert_array_equal(out, expected)
