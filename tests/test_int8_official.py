"""The official int8 MoViNet-A0-Stream K600 TFLite model on real clips: minimovinet = LiteRT.

`../shared/models/movinet_a0_stream_k600_int8.tflite` (float32 image and states, int8 inside),
fed every frame of every clip in `../shared/media/` (decoded with PyAV, resized to 172x172 by
`minimovinet.apps.video`, bit-exact with cv2.resize INTER_LINEAR on uint8 frames, / 255),
one frame per call from the initial states, side by side with

* LiteRT's built-in kernels without delegates (`OpResolverType.BUILTIN_WITHOUT_DEFAULT_
  DELEGATES`): the logits and all 43 output states must be equal at every frame;
* LiteRT's default path (XNNPACK delegate): measured and reported, not asserted equal.

Then the published checks of the official TFLite example apps on minimovinet's own int8 path,
and the dequantized float view (`model.dequantize()`) on the carving-ice clips.
Skipped with the reason when ../shared, LiteRT or PyAV is absent.
"""
import time

import numpy as np
import pytest

import minimovinet as mm

from conftest import need  # noqa: E402

need("ai_edge_litert", "the reference is LiteRT (ai-edge-litert)")
need("av", "decoding the clips needs PyAV (pip install av)")
import int8_support as S  # noqa: E402


MODEL = "models/movinet_a0_stream_k600_int8.tflite"
CLIPS = ["carving_ice_172.mp4", "carving_ice_360.mp4", "arm_wrestling.mp4", "rope_pushdown_400.mp4"]
FLOAT_VIEW_CLIPS = ("carving_ice_172.mp4", "carving_ice_360.mp4")


@pytest.fixture(scope="session")
def runs(shared_dir, request):
    """Every clip through minimovinet, LiteRT (built-in kernels) and LiteRT (XNNPACK), once
    per test run (shared between pytest-xdist workers)."""
    return S.shared_result(request.config, request.config.cache.mkdir("minimovinet-int8"),
                           "official-clips", lambda: _run_clips(shared_dir))


def _run_clips(shared_dir):
    labels = S.read_labels(shared_dir)
    path = shared_dir / MODEL
    model = mm.load(path, class_names=labels)
    float_view = model.dequantize()
    results = {}
    for clip in CLIPS:
        frames = S.read_clip(shared_dir / "media" / clip, 172)
        ref = S.LiteRTStream(path, "builtin")
        xnn = S.LiteRTStream(path, "default")
        states = model.init_states()
        float_states = float_view.init_states(1, 172, 172)
        r = dict(frames=len(frames), logit_diff=0.0, state_diff=0.0, state_mismatch=[],
                 xnn_diff=0.0, xnn_state_diff=0.0, float_logits=None)
        t0 = time.perf_counter()
        for t, frame in enumerate(frames):
            image = frame[None, None]
            logits, states = model(image, states)
            ref_logits, ref_states = ref.step(image)
            xnn_logits, xnn_states = xnn.step(image)
            r["logit_diff"] = max(r["logit_diff"], float(np.abs(logits - ref_logits).max()))
            r["xnn_diff"] = max(r["xnn_diff"], float(np.abs(xnn_logits - ref_logits).max()))
            for name, value in states.items():
                d = float(np.abs(value.astype(np.float64) - ref_states[name]).max())
                r["state_diff"] = max(r["state_diff"], d)
                if d and len(r["state_mismatch"]) < 5:
                    r["state_mismatch"].append((t, name, d))
                r["xnn_state_diff"] = max(r["xnn_state_diff"], float(np.abs(
                    xnn_states[name].astype(np.float64) - ref_states[name]).max()))
            if clip in FLOAT_VIEW_CLIPS:
                r["float_logits"], float_states = float_view(image, float_states)
        r.update(seconds=time.perf_counter() - t0, probs=S.softmax(logits),
                 ref_probs=S.softmax(ref_logits), xnn_probs=S.softmax(xnn_logits))
        results[clip] = r
    return labels, results


@pytest.mark.parametrize("clip", CLIPS)
def test_bit_exact_with_litert_builtin_kernels(runs, clip):
    labels, results = runs
    r = results[clip]
    top = int(np.argmax(r["probs"]))
    print(f"{clip}: {r['frames']} frames, max |logits - LiteRT| = {r['logit_diff']}, max |state "
          f"- LiteRT| = {r['state_diff']} (43 states, every frame); top-1 {labels[top]!r} "
          f"{r['probs'][top]:.4f}; LiteRT default (XNNPACK) vs built-in: max |logits diff| "
          f"{r['xnn_diff']:.4f}, max |state diff| {r['xnn_state_diff']:.4f}, top-1 "
          f"{labels[int(np.argmax(r['xnn_probs']))]!r} {r['xnn_probs'].max():.4f}")
    assert r["frames"] >= min(100, {"rope_pushdown_400.mp4": 50}.get(clip, 100))
    assert r["logit_diff"] == 0.0
    assert r["state_diff"] == 0.0, r["state_mismatch"]


@pytest.mark.parametrize("clip,label,threshold", [
    ("carving_ice_172.mp4", "carving ice", 0.5),      # Raspberry Pi example test: >= 0.5
    ("carving_ice_360.mp4", "carving ice", 0.6),      # Android example test: > 0.6
    ("arm_wrestling.mp4", "arm wrestling", 0.0)])     # top-1
def test_published_checks(runs, clip, label, threshold):
    labels, results = runs
    probs = results[clip]["probs"]
    top = int(np.argmax(probs))
    print(f"{clip}: top-1 {labels[top]!r} {probs[top]:.4f}")
    assert labels[top] == label
    assert probs[top] >= threshold and (threshold < 0.6 or probs[top] > threshold)


@pytest.mark.parametrize("clip", FLOAT_VIEW_CLIPS)
def test_dequantized_float_view_ranks_carving_ice_first(runs, clip):
    labels, results = runs
    probs = S.softmax(results[clip]["float_logits"])
    top = int(np.argmax(probs))
    print(f"{clip}: dequantized float view top-1 {labels[top]!r} {probs[top]:.4f} "
          f"(int8: {results[clip]['probs'].max():.4f})")
    assert labels[top] == "carving ice"


def test_official_model_structure(shared_dir):
    model = mm.load(shared_dir / MODEL)
    cfg = model.config
    assert (cfg.model_id, cfg.variant, cfg.activation, cfg.se_type, cfg.num_classes) == \
        ("a0", "mobile", "relu6", "none", 600)
    states = model.init_states()
    assert len(states) == 43        # ../shared/README.md: "43 float32/int32 state tensors"
    # the oracle: the states LiteRT's signature declares (names, shapes, dtypes), and which of
    # them the graph passes through unchanged (output tensor = input tensor)
    ref = S.LiteRTStream(shared_dir / MODEL, "builtin")
    declared = {n: d for n, d in ref.input_details.items() if n != "image"}
    assert set(states) == set(declared)
    for name, d in declared.items():
        assert states[name].shape == tuple(d["shape"]) and states[name].dtype == d["dtype"], name
    assert sum(v.nbytes for v in states.values()) == sum(
        int(np.prod(d["shape"])) * np.dtype(d["dtype"]).itemsize for d in declared.values())
    passthrough = sorted(n for n, t in model.runner.passthrough.items() if t is not None)
    assert passthrough == sorted(n for n in declared
                                 if ref.output_details[n]["index"] == declared[n]["index"])
    # a model without SE passes through every SE pool buffer and frame count
    assert passthrough and all(n.endswith(("_pool_buffer", "_pool_frame_count"))
                               and not n.startswith("state_head") for n in passthrough)
    assert states["state_block1_layer0_stream_buffer"].shape == (1, 2, 22, 22, 80)


def test_official_input_spec(shared_dir):
    """172x172 frames, fixed (a TFLite file has fixed shapes), at 5 fps: what the TFLite video
    classification guide says the A0 stream model expects; the contract's describe() says so."""
    from minimovinet.contract import InputSpec
    model = mm.load(shared_dir / MODEL)
    assert model.input_spec == InputSpec(height=172, width=172, fixed_size=True, fps=5.0,
                                         dtype="float32")
    assert "stream states for batch 1, 172x172 frames:" in model.describe()
