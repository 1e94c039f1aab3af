"""int8 models the tests convert: minimovinet equals LiteRT bit for bit, op by op and end to end.

Random-weight official A0 stream models (tests/oracle.py), converted with the TFLite converter
and a stateful representative dataset (tests/int8_support.py) at 64x64, in both variants
('stream': SE + hard_swish + swish classifier; 'mobile': relu6, no SE) and both interfaces
('float': float32 image/states/logits around an int8 graph; 'int8': int8 image, states and
logits).  Converted files are cached in pytest's cache directory (first run: a few minutes).

Reference: LiteRT (ai-edge-litert) with `OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`:
TFLite's built-in optimized kernels, no XNNPACK delegate.  Every step compares the logits and
every output state exactly (np.array_equal), including the int8 states of full-int8 models
and the frame counts, for more frames than the calibration saw (so that the quantized frame
counts saturate, as they do in LiteRT).
"""
import numpy as np
import pytest

import minimovinet as mm
from minimovinet.contract import softmax
from minimovinet.formats.h5_int8 import read_int8
from minimovinet.formats.int8_tflite import load_tflite
from minimovinet.int8 import arith as A
from minimovinet.int8 import avx2 as int8_avx2
from minimovinet.int8 import kernels as K
from minimovinet.int8 import reference
from minimovinet.int8 import runner as int8_runner
from minimovinet.int8 import vnni as int8_vnni
from minimovinet.int8.model import Int8Movinet
from minimovinet.int8.ops import binary as int8_binary
from minimovinet.int8.ops import conv as int8_conv
from minimovinet.int8.ops.common import quantization

from conftest import expected_skip, need  # noqa: E402

need("ai_edge_litert", "the reference is LiteRT (ai-edge-litert)")
import int8_support as S  # noqa: E402

MODELS = [("mobile", "float"), ("mobile", "int8"), ("stream", "float"), ("stream", "int8"),
          ("stream", "float-rounding"), ("stream", "int8-rounding")]
STEPS = 10


def steps_for(io):
    """A regression model runs its whole test clip (its case is reached at frame 1 or 11)."""
    return S.REGRESSION[io][3][0] if io in S.REGRESSION else STEPS


@pytest.fixture(scope="session")
def converted(request):
    return S.converted_models(request.config.cache.mkdir("minimovinet-int8"))


def frames_for(model, steps=STEPS, seed=0, io=None):
    """Smooth random frames in the model's input dtype (int8 images quantized with LiteRT's
    QUANTIZE arithmetic: `minimovinet.int8.reference`, written apart from the kernels).  A
    regression model gets the clip that reaches its rounding case (int8_support.REGRESSION)."""
    if io in S.REGRESSION:
        frames, seed = S.REGRESSION[io][3]
        clip = S.test_clip(frames, model.height, seed=seed)[:, :steps]
    else:
        clip = S.test_clip(steps, model.height, seed=seed)
    dtype, s, z = model.image_quantization
    if dtype == "int8":
        return reference.quantize(clip, s, z)
    return clip


def run_both(path, model, frames):
    """Stream `frames` through minimovinet and LiteRT; yields (t, mine, reference)."""
    ref = S.LiteRTStream(path, "builtin")
    states = model.init_states()
    ref.reset(states)
    for t in range(frames.shape[1]):
        frame = frames[:, t:t + 1]
        logits, raw = model(frame, states, raw_states=True)
        states = model.runner.feedback(raw)
        ref_logits, ref_raw = ref.step(frame)
        yield t, (logits, raw), (ref_logits, ref_raw)


@pytest.mark.parametrize("variant,io", MODELS, ids=[f"{v}-{i}" for v, i in MODELS])
def test_bit_exact_with_litert(converted, variant, io):
    path = converted[(variant, io)]
    model = mm.load(path)
    assert isinstance(model, Int8Movinet)
    assert model.config.variant == variant and model.config.model_id == "a0"
    steps = steps_for(io)
    for t, (logits, raw), (ref_logits, ref_raw) in run_both(path, model,
                                                            frames_for(model, steps, io=io)):
        assert logits.dtype == ref_logits.dtype
        np.testing.assert_array_equal(logits, ref_logits, err_msg=f"frame {t}: logits")
        assert set(raw) == set(ref_raw)
        for name, value in raw.items():
            assert value.dtype == ref_raw[name].dtype, name
            np.testing.assert_array_equal(value, ref_raw[name], err_msg=f"frame {t}: {name}")
    print(f"{variant}-{io}: {steps} frames, logits and {len(raw)} states equal LiteRT's "
          f"(max |diff| 0)")


def _tensor_name(prog, t):
    return f"tensor {t} {prog.tensors[t].name!r}"


def _equal(mine, ref):
    mine = np.asarray(mine)
    return mine.size == ref.size and np.array_equal(mine.reshape(ref.shape), ref)


@pytest.mark.parametrize("variant,io", MODELS, ids=[f"{v}-{i}" for v, i in MODELS])
def test_every_tensor_at_every_step_equals_litert(converted, variant, io, monkeypatch):
    """Localises any mismatch: at every step of the stream (each side feeding back its own
    states, as a user does, past the frames the calibration saw), checks
      1. LiteRT itself: the outputs with all tensors preserved equal a plain LiteRT run's;
      2. every op of the program, fed LiteRT's own inputs of this step, computes LiteRT's
         output (so an op's arithmetic is checked on every step's data);
      3. every tensor of minimovinet's own stream (graph inputs after feedback, every op's
         output, the logits and the output states) equals LiteRT's, in execution order: the
         first that differs is named with its op and whether that op's inputs were equal.
    (Without the MUL + ADD fusion, so that every TFLite operator has its own output.)"""
    monkeypatch.setattr(int8_runner, "FUSE_REZERO_ADD", False)
    path = converted[(variant, io)]
    model = load_tflite(path)
    prog = model.program
    preserved = S.LiteRTStream(path, "builtin", preserve_all_tensors=True)
    plain = S.LiteRTStream(path, "builtin")
    states = model.init_states()
    preserved.reset(states)
    plain.reset(states)
    steps = steps_for(io)
    frames = frames_for(model, steps, io=io)
    graph_inputs = [prog.image] + [ti for ti, _ in prog.states.values()]
    for t in range(steps):
        frame = frames[:, t:t + 1]
        fed = dict(states)                                  # this step's inputs, after feedback
        logits, raw = model(frame, states, raw_states=True)
        ws = list(model.runner.workspace())                        # every tensor of this step
        for name, (ti, _) in prog.states.items():
            ws[ti] = fed[name]
        ws[prog.image] = model._check_frames(frame)
        states = model.runner.feedback(raw)
        ref_logits, ref_raw = preserved.step(frame)
        plain_logits, plain_raw = plain.step(frame)
        interp = preserved.interpreter
        # 1. the oracle agrees with itself
        np.testing.assert_array_equal(ref_logits, plain_logits,
                                      err_msg=f"frame {t}: LiteRT's logits change with "
                                              f"preserve_all_tensors")
        for name in ref_raw:
            np.testing.assert_array_equal(ref_raw[name], plain_raw[name],
                                          err_msg=f"frame {t}: LiteRT's {name} changes with "
                                                  f"preserve_all_tensors")
        # 2. each op on LiteRT's inputs
        scratch = [None] * (len(prog.tensors) + len(model.runner.scratch))
        for i, (shape, dtype, fill) in enumerate(model.runner.scratch):
            scratch[len(prog.tensors) + i] = np.full(shape, fill, dtype)
        for i, spec in enumerate(prog.tensors):
            if spec.data is not None:
                scratch[i] = spec.data
        for op, run in zip(prog.ops, model.runner.runners):
            for i in op.inputs:
                if prog.tensors[i].data is None:
                    scratch[i] = np.array(interp.get_tensor(i))
            for o in op.outputs:
                scratch[o] = np.empty(prog.tensors[o].shape, prog.tensors[o].numpy_dtype)
            run(scratch, K.SERIAL)
            for o in op.outputs:
                assert _equal(scratch[o], interp.get_tensor(o)), (
                    f"frame {t}: op #{op.tflite_index} {op.tflite_op} ({op.layer}) fed LiteRT's "
                    f"inputs differs from LiteRT's output {_tensor_name(prog, o)}")
        # 3. the stream's own tensors, in execution order
        for i in graph_inputs:
            assert _equal(ws[i], interp.get_tensor(i)), (
                f"frame {t}: graph input {_tensor_name(prog, i)} differs from LiteRT's "
                f"(state feedback or input quantization)")
        for op in prog.ops:
            for o in op.outputs:
                ref = interp.get_tensor(o)
                if _equal(ws[o], ref):
                    continue
                inputs_equal = {i: _equal(ws[i], interp.get_tensor(i)) for i in op.inputs
                                if prog.tensors[i].data is None}
                diff = np.abs(np.asarray(ws[o], np.float64).reshape(ref.shape) - ref).max()
                pytest.fail(f"frame {t}: first differing tensor: op #{op.tflite_index} "
                            f"{op.tflite_op} ({op.layer}) output {_tensor_name(prog, o)}, max "
                            f"|diff| {diff}; its inputs equal LiteRT's: {inputs_equal}")
        np.testing.assert_array_equal(logits, ref_logits, err_msg=f"frame {t}: logits")
        for name, value in raw.items():
            np.testing.assert_array_equal(value, ref_raw[name], err_msg=f"frame {t}: {name}")
    print(f"{variant}-{io}: {steps} steps, {len(prog.ops)} ops; every tensor equals LiteRT's "
          f"(max |diff| 0), LiteRT preserved == plain")


def test_regression_model_reaches_the_block_rounding_case(converted, monkeypatch):
    """The 'float-rounding' model is kept because it reaches the case where LiteRT's int8 ADD
    rounds differently in its 16-element NEON blocks and in its reference tail: with every
    element computed by the tail formula (what minimovinet did before), some ADD output of
    the stream differs.  (test_bit_exact_with_litert checks that the outputs with both
    formulas, as minimovinet runs them, equal LiteRT's.)"""
    monkeypatch.setattr(int8_runner, "FUSE_REZERO_ADD", False)
    path = converted[("stream", "float-rounding")]
    model = load_tflite(path)
    prog, T = model.program, model.program.tensors
    adds = [op for op in prog.ops if op.kind == "add" and T[op.outputs[0]].dtype == "int8"]
    states = model.init_states()
    differing = []
    for t, frame in enumerate(np.split(frames_for(model, 4, io="float-rounding"), 4, axis=1)):
        _, raw = model(frame, states, raw_states=True)
        ws = model.runner.workspace()
        for op in adds:
            a_t, b_t = op.inputs
            o = op.outputs[0]
            (s1, z1), (s2, z2), (so, zo) = (quantization(T[i]) for i in (a_t, b_t, o))
            m1, e1, m2, e2, mo, eo = int8_binary.add_multipliers(s1, s2, so)
            a, b = ws[a_t].reshape(1, -1), ws[b_t].reshape(1, -1)
            tail_only = np.empty_like(a)
            K.SERIAL.add(a, b, 0, z1, z2, m1, e1, m2, e2, mo, eo, zo, -128, 127, 0, 0, tail_only)
            n = int((tail_only != ws[o].reshape(1, -1)).sum())
            if n:
                differing.append((t, op.layer, n))
        states = model.runner.feedback(raw)
    print("ADD outputs where the tail formula alone would differ:", differing)
    assert differing


def test_regression_model_reaches_the_float32_multiplier_case(converted, monkeypatch):
    """The 'int8-rounding' model is kept because it reaches a MUL whose result depends on
    computing the rescale s1 * s2 / s_out in float32 as TFLite does: with the multiplier
    computed in double (what minimovinet did before), some MUL output of the stream
    differs.  (The bit-exact tests check the float32 multiplier against LiteRT.)"""
    monkeypatch.setattr(int8_runner, "FUSE_REZERO_ADD", False)
    path = converted[("stream", "int8-rounding")]
    model = load_tflite(path)
    prog, T = model.program, model.program.tensors
    muls = []
    for op in prog.ops:
        if op.kind != "mul" or T[op.outputs[0]].dtype != "int8":
            continue
        a_t, b_t = op.inputs
        if int(np.prod(T[a_t].shape)) != int(np.prod(T[op.outputs[0]].shape)):
            a_t, b_t = b_t, a_t
        muls.append((op, a_t, b_t))
    steps = steps_for("int8-rounding")
    states = model.init_states()
    differing = []
    for t, frame in enumerate(np.split(frames_for(model, steps, io="int8-rounding"), steps,
                                       axis=1)):
        _, raw = model(frame, states, raw_states=True)
        ws = model.runner.workspace()
        for op, a_t, b_t in muls:
            o = op.outputs[0]
            (s1, z1), (s2, z2), (so, zo) = (quantization(T[i]) for i in (a_t, b_t, o))
            m64, e64 = A.quantize_multiplier(s1 * s2 / so)            # double precision
            C = T[o].shape[-1] if T[o].shape else 1
            a = ws[a_t].reshape(-1, C)
            b = np.broadcast_to(ws[b_t].reshape((1,) * (a.ndim - 1) + (-1,))
                                if ws[b_t].size == C else ws[b_t].reshape(-1, 1) if
                                ws[b_t].size == 1 else ws[b_t].reshape(-1, C), a.shape)
            lo, hi = A.activation_range(op.attrs.get("activation", "NONE"), so, zo)
            double = np.empty_like(a)
            K.SERIAL.mul(a, np.ascontiguousarray(b), 0, z1, z2, m64, e64, zo, lo, hi, 0, 0,
                         double)
            n = int((double != ws[o].reshape(a.shape)).sum())
            if n:
                differing.append((t, op.layer, n))
        states = model.runner.feedback(raw)
    print("MUL outputs where a double-precision multiplier would differ:", differing)
    assert differing


@pytest.mark.parametrize("form", ["reduce", "rows", "avx2", "vnni"])
def test_every_pointwise_form_is_exact(converted, form, monkeypatch):
    """Each 1x1-conv form ('reduce' for ARM, 'rows' for x86 without AVX2, 'avx2' for x86 with
    AVX2, 'vnni' for x86 with VNNI; the stem's dense conv follows the same choice) gives
    LiteRT's logits and states bit for bit after each of 4 frames, on an SE + hard-swish and a
    relu6 model."""
    if form == "vnni" and not int8_vnni.AVAILABLE:
        expected_skip("this CPU has no AVX-VNNI / AVX-512 VNNI: the vnni form cannot run")
    if form == "avx2" and not int8_avx2.AVAILABLE:
        expected_skip("this CPU has no AVX2: the avx2 form cannot run")
    monkeypatch.setattr(int8_conv, "POINTWISE_FORM", form)
    for key in (("stream", "float"), ("mobile", "int8")):
        path = converted[key]
        model = load_tflite(path)
        for t, (logits, raw), (ref_logits, ref_raw) in run_both(path, model,
                                                                frames_for(model, 4)):
            np.testing.assert_array_equal(logits, ref_logits, err_msg=f"{form} {key} {t}")
            for name, value in raw.items():
                np.testing.assert_array_equal(value, ref_raw[name],
                                              err_msg=f"{form} {key} frame {t}: {name}")


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_do_not_change_results(converted, threads, monkeypatch):
    path = converted[("stream", "int8")]
    model = load_tflite(path)
    frames = frames_for(model, 3)
    expected = model(frames)
    monkeypatch.setattr(int8_runner, "PARALLEL_MIN_WORK", 0)      # every conv on the threads
    model = load_tflite(path)
    old = mm.get_num_threads()
    try:
        mm.set_num_threads(threads)
        np.testing.assert_array_equal(model(frames), expected)
    finally:
        mm.set_num_threads(old)


# ---- the h5 file and the API -------------------------------------------------------------------

@pytest.mark.parametrize("variant,io", [("stream", "int8"), ("mobile", "float")])
def test_h5_roundtrip_and_cli(converted, variant, io, tmp_path):
    from minimovinet.cli import main
    path = converted[(variant, io)]
    out = tmp_path / "model_int8.h5"
    assert main(["convert", str(path), "-o", str(out)]) == 0
    a, b = load_tflite(path), mm.load(out)
    assert isinstance(b, Int8Movinet) and b.config == a.config
    assert list(b.program.states) == list(a.program.states)
    frames = frames_for(a, 3)
    np.testing.assert_array_equal(a(frames), b(frames))
    again = tmp_path / "again.h5"
    mm.save(b, again)
    np.testing.assert_array_equal(read_int8(again)(frames), a(frames))
    assert main(["describe", str(out)]) == 0


def test_int8_states_start_at_zero_point_and_are_fed_back_requantized(converted):
    path = converted[("stream", "int8")]
    model = load_tflite(path)
    states = model.init_states()
    quant = model.state_quantization()
    for name, value in states.items():
        dtype, scale, zp, _, _ = quant[name]
        assert value.dtype == np.dtype(dtype)
        assert np.all(value == (zp if dtype == "int8" else 0)), name
    # full int8 conversions may quantize an output state unlike its input: the returned
    # states are in the input's quantization (raw_states=True gives the file's outputs)
    requantized = [n for n, (d, si, zi, so, zo) in quant.items() if (si, zi) != (so, zo)]
    frame = frames_for(model, 1)
    _, raw = model(frame, states, raw_states=True)
    _, fed = model(frame, states)
    for name in raw:
        if name in requantized:
            _, si, zi, so, zo = quant[name]
            real = (raw[name].astype(np.float64) - zo) * so
            assert np.abs((fed[name].astype(np.float64) - zi) * si - real).max() <= si
        else:
            np.testing.assert_array_equal(raw[name], fed[name])


def test_call_forms(converted):
    """T frames in one call = T calls of one frame; a batch = separate streams; inputs are
    never modified; model(frames) without states returns only the logits."""
    model = load_tflite(converted[("mobile", "float")])
    frames = frames_for(model, 4)
    states = model.init_states()
    snapshot = {k: v.copy() for k, v in states.items()}
    whole, whole_states = model(frames, states)
    for k in states:
        np.testing.assert_array_equal(states[k], snapshot[k])
    s = model.init_states()
    for t in range(4):
        logits, s = model(frames[:, t:t + 1], s)
    np.testing.assert_array_equal(whole, logits)
    for k in s:
        np.testing.assert_array_equal(whole_states[k], s[k])
    np.testing.assert_array_equal(model(frames), whole)
    other = frames_for(model, 4, seed=5)
    batch = np.concatenate([frames, other], axis=0)
    logits2, states2 = model(batch, model.init_states(batch=2))
    np.testing.assert_array_equal(logits2[0:1], whole)
    np.testing.assert_array_equal(logits2[1:2], model(other))
    for k, v in states2.items():
        if k.endswith("_buffer"):
            assert v.shape[0] == 2
            np.testing.assert_array_equal(v[0:1], whole_states[k])
    probs = model.predict_proba(frames)
    assert probs.shape == (1, 10) and abs(float(probs.sum()) - 1) < 1e-5
    text = model.describe()
    assert "block4_layer3" in text and "state_head_pool_buffer" in text


# ---- the contract: features, probabilities ---------------------------------------------------

def _classifier_input(prog):
    """The tensor the classifier's hidden conv reads (through RESHAPE views: any of them holds
    the same values)."""
    return next(op for op in prog.ops if op.layer == "classifier/hidden/conv").inputs[0]


@pytest.mark.parametrize("variant,io", MODELS, ids=[f"{v}-{i}" for v, i in MODELS])
def test_features_are_litert_s_pooled_tensor_dequantized(converted, variant, io):
    """`features` after each frame equals the tensor LiteRT's classifier hidden conv reads at
    that step (all tensors preserved), dequantized with LiteRT's DEQUANTIZE arithmetic; the
    states it returns are `__call__`'s."""
    path = converted[(variant, io)]
    model = load_tflite(path)
    prog = model.program
    pooled_t = prog.tensors[_classifier_input(prog)]
    P = model.config.head.project_filters
    preserved = S.LiteRTStream(path, "builtin", preserve_all_tensors=True)
    states = model.init_states()
    call_states = model.init_states()
    preserved.reset(states)
    steps = steps_for(io)
    frames = frames_for(model, steps, io=io)
    for t in range(steps):
        frame = frames[:, t:t + 1]
        pooled, states = model.features(frame, states)
        _, call_states = model(frame, call_states)
        preserved.step(frame)
        theirs = preserved.interpreter.get_tensor(_classifier_input(prog))
        if pooled_t.dtype == "int8":
            theirs = reference.dequantize(theirs, pooled_t.scale, pooled_t.zero_point)
        assert pooled.dtype == np.float32 and pooled.shape == (1, P)
        np.testing.assert_array_equal(pooled, theirs.reshape(1, P), err_msg=f"frame {t}")
        for name in states:
            np.testing.assert_array_equal(states[name], call_states[name],
                                          err_msg=f"frame {t}: {name}")
    print(f"{variant}-{io}: features [1, {P}] equal LiteRT's pooled tensor at each of "
          f"{steps} frames")


def test_features_call_forms(converted):
    """Without states: the features alone, from init_states; a batch is separate streams;
    T frames in one call = T calls of one frame."""
    model = load_tflite(converted[("stream", "int8")])
    frames = frames_for(model, 3)
    other = frames_for(model, 3, seed=5)
    whole = model.features(frames)
    states = model.init_states()
    for t in range(3):
        pooled, states = model.features(frames[:, t:t + 1], states)
    np.testing.assert_array_equal(whole, pooled)
    batch, batch_states = model.features(np.concatenate([frames, other]), model.init_states(2))
    assert batch.shape == (2, model.config.head.project_filters)
    np.testing.assert_array_equal(batch[:1], whole)
    np.testing.assert_array_equal(batch[1:], model.features(other))
    _, call_states = model(np.concatenate([frames, other]), model.init_states(2))
    for name, value in call_states.items():
        np.testing.assert_array_equal(batch_states[name], value, err_msg=name)


@pytest.mark.parametrize("key", [("stream", "int8"), ("mobile", "float")])
def test_predict_proba_is_the_softmax_of_float_logits(converted, key):
    """predict_proba = the contract's softmax of `float_logits` (int8 logits dequantized with
    LiteRT's DEQUANTIZE arithmetic), in both call forms."""
    model = load_tflite(converted[key])
    frames = frames_for(model, 3)
    logits, states = model(frames, model.init_states())
    dtype, scale, zp = model.logits_quantization
    expected_float = (reference.dequantize(logits, scale, zp) if dtype == "int8"
                      else np.asarray(logits, np.float32))
    np.testing.assert_array_equal(model.float_logits(logits), expected_float)
    np.testing.assert_array_equal(model.dequantize_logits(logits), expected_float)
    expected = softmax(expected_float).astype(np.float32)
    np.testing.assert_array_equal(model.predict_proba(frames), expected)
    probs, proba_states = model.predict_proba(frames, model.init_states())
    np.testing.assert_array_equal(probs, expected)
    for name, value in states.items():
        np.testing.assert_array_equal(proba_states[name], value, err_msg=name)


# ---- the dequantized float view ------------------------------------------------------------------

def _folded_layers(model):
    """Every conv of a float Movinet after BN (and ReZero) folding: name -> (kernel, bias)."""
    out = {"stem": (model.stem.kernel, model.stem.bias)}
    for b in model.blocks:
        p = b.prefix
        parts = dict(expansion=b.expansion, spatial=b.feature.spatial,
                     temporal=b.feature.temporal, projection=b.projection, skip=b.skip_conv)
        if b.se is not None:
            parts.update(se_reduce=b.se.reduce, se_expand=b.se.expand)
        out.update({f"{p}/{k}": (v.kernel, v.bias) for k, v in parts.items() if v is not None})
    out["head"] = (model.head.project.kernel, model.head.project.bias)
    out["hidden"] = (model.classifier.hidden.kernel, model.classifier.hidden.bias)
    out["logits"] = (model.classifier.logits.kernel, model.classifier.logits.bias)
    return out


@pytest.mark.parametrize("variant", ["mobile", "stream"])
def test_dequantized_view_has_the_float_models_weights(converted, request, variant):
    """`dequantize()` maps the int8 weights back onto the float architecture (BN folded into
    the convs, ReZero scales, the SE gate's +3, the classifier): after folding, every conv of
    the float view equals the original float model's within the int8 rounding of its weights
    (half a step of the per-channel scale, 1/254 of the channel's largest weight)."""
    model = load_tflite(converted[(variant, "float")])
    float_view = model.dequantize()
    assert isinstance(float_view, mm.Movinet)
    assert float_view.config.se_type == ("2plus3d" if variant == "stream" else "none")
    original = mm.load(S.float_model_h5(request.config.cache.mkdir("minimovinet-int8"), variant))
    mine, theirs = _folded_layers(float_view), _folded_layers(original)
    assert set(mine) == set(theirs)
    worst_kernel = worst_bias = 0.0
    for name, (k, b) in theirs.items():
        kv, bv = mine[name]
        axes = tuple(range(k.ndim - 1))                  # per output channel
        step = np.abs(k).max(axis=axes) / 127            # the int8 per-channel scale
        assert np.all(np.abs(kv - k) <= 0.5 * step * (1 + 1e-3) + 1e-7), name
        worst_kernel = max(worst_kernel, float(np.abs(kv - k).max() / np.abs(k).max()))
        worst_bias = max(worst_bias, float(np.abs(bv - b).max() / max(np.abs(b).max(), 1e-6)))
    assert worst_bias < 0.01
    # and on a clip: the float view tracks the original float model (the int8 model itself
    # is further off: activations quantized, frame counts calibrated on 6 frames)
    reference = np.load(converted[(variant, "float_logits")])["logits"]      # [T, classes]
    clip = S.test_clip()
    states = float_view.init_states(1, S.SIZE, S.SIZE)
    int8_states = model.init_states()
    worst = worst_int8 = 0.0
    for t in range(clip.shape[1]):
        logits, states = float_view(clip[:, t:t + 1], states)
        q_logits, int8_states = model(clip[:, t:t + 1], int8_states)
        scale = np.abs(reference[t]).max()
        worst = max(worst, float(np.abs(logits[0] - reference[t]).max() / scale))
        worst_int8 = max(worst_int8, float(np.abs(q_logits[0] - reference[t]).max() / scale))
    print(f"{variant}: folded conv weights within int8 rounding (max rel {worst_kernel:.4f}, "
          f"biases {worst_bias:.4f}); logits vs the original float model: float view "
          f"{worst:.3f}, int8 {worst_int8:.3f} of max |logit|")
    assert worst < 0.3
