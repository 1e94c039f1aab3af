"""The TFLite matrix (tests/data/tflite_matrix): int8 MoViNet stream models converted by
several TensorFlow releases (tools/make_tflite_matrix.py).  Each file is the one the manifest
names (sha256, signature) and runs in LiteRT's built-in kernels for a few frames from the
zero states, its output states fed back.

Every file loads with its MoViNet structure recognised and equals LiteRT frame by frame
(logits and every state); run op by op (the structure walk skipped: the fallback for graphs
it does not recognise) it equals LiteRT too.
`python tools/tflite_matrix_report.py` prints the whole picture.
"""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import missing, need

DATA = Path(__file__).resolve().parent / "data" / "tflite_matrix"
MANIFEST = DATA / "manifest.json"
REBUILD = "python tools/make_tflite_matrix.py"
FRAMES = 4


def _entries():
    if not MANIFEST.exists():
        return []
    return json.loads(MANIFEST.read_text())["files"]


ENTRIES = _entries()


def _manifest():
    if not MANIFEST.exists():
        pytest.fail(f"{MANIFEST} is missing: rebuild the matrix with `{REBUILD}`")
    return json.loads(MANIFEST.read_text())


def _ids(entries):
    return [e["file"].removesuffix(".tflite") for e in entries]


def test_manifest_lists_the_directory():
    manifest = _manifest()
    assert manifest["files"], "the manifest lists no files"
    listed = {e["file"] for e in manifest["files"]}
    present = {p.name for p in DATA.glob("*.tflite")}
    assert present == listed, (f"not in the manifest: {sorted(present - listed)}; "
                               f"missing: {sorted(listed - present)}")
    releases = {e["release"] for e in manifest["files"]}
    assert len(releases) >= 4, f"only releases {sorted(releases)}"
    for key in ("stem", "groups", "head"):
        assert key in manifest["model"]["reduced_spec"]


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_sha256(entry):
    path = DATA / entry["file"]
    if not path.exists():
        pytest.fail(f"{path} is missing: rebuild the matrix with `{REBUILD}`")
    data = path.read_bytes()
    assert len(data) == entry["bytes"]
    assert hashlib.sha256(data).hexdigest() == entry["sha256"], \
        f"{path.name} differs from the manifest: rebuild with `{REBUILD}`"


def _frames(entry, details, rng):
    shape = details["shape"]
    clip = rng.random((FRAMES, *shape), dtype=np.float32)
    if details["dtype"] == np.int8:
        from minimovinet.int8.reference import quantize as quantize_like_litert
        scale, zp = details["quantization"]
        return [quantize_like_litert(f, scale, zp) for f in clip]
    return list(clip)


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_litert_runs(entry):
    need("ai_edge_litert", "LiteRT runs the matrix files")
    from int8_support import LiteRTStream
    path = DATA / entry["file"]
    if not path.exists():
        missing(f"{path} is missing: rebuild the matrix with `{REBUILD}`")
    ref = LiteRTStream(path, "builtin")
    sig = entry["signature"]
    assert sorted(ref.input_details) == sorted(sig["inputs"])
    assert sorted(ref.output_details) == sorted(sig["outputs"])
    assert set(ref.output_details) == set(ref.input_details) - {"image"} | {"logits"}
    image = ref.input_details["image"]
    assert (image["dtype"] == np.int8) == (entry["io"] == "int8")
    ref.reset()
    for name, value in ref.states.items():     # int8 states start at their zero point
        d = ref.input_details[name]
        if d["dtype"] == np.int8:
            assert np.all(value == d["quantization"][1]), name
        else:
            assert not np.any(value), name
    rng = np.random.default_rng(7)
    outputs = []
    for frame in _frames(entry, image, rng):
        logits, raw = ref.step(frame)
        assert logits.shape == (1, 10)
        assert logits.dtype == (np.int8 if entry["io"] == "int8" else np.float32)
        if logits.dtype == np.float32:
            assert np.all(np.isfinite(logits))
        assert set(raw) == set(ref.states)
        outputs.append(logits.astype(np.float64))
    # the states are carried: the frame counts advanced, the logits moved
    counts = [n for n in ref.states if n.endswith("frame_count")]
    assert counts, "no frame-count states"
    for name in counts:
        assert int(np.asarray(ref.states[name]).reshape(-1)[0]) == FRAMES, name
    assert any(not np.array_equal(outputs[0], o) for o in outputs[1:]), \
        "the logits do not change over the frames"


# ---- what minimovinet loads ------------------------------------------------------------------
# The reduced spec is none of A0..A5: minimovinet reads it off the graph (model_id "custom").
# Every file loads, with its structure recognised (the converter's variations are normalized
# or run op by op: formats/tflite_import/normalize.py, pos_encoding.py).

def _spec(manifest):
    """The manifest's reduced spec as `ModelConfig.block_spec` holds it."""
    from minimovinet.config import GroupSpec, HeadSpec, StemSpec
    spec = manifest["model"]["reduced_spec"]
    stem = StemSpec(spec["stem"]["filters"], tuple(spec["stem"]["kernel"]),
                    tuple(spec["stem"]["stride"]))
    groups = tuple(GroupSpec(g["out_filters"], tuple(b["expand"] for b in g["blocks"]),
                             tuple(tuple(b["kernel"]) for b in g["blocks"]),
                             tuple(tuple(b["stride"]) for b in g["blocks"]))
                   for g in spec["groups"])
    return stem, groups, HeadSpec(spec["head"]["project_filters"], spec["head"]["hidden_filters"])


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_minimovinet_loads_and_equals_litert(entry, tmp_path):
    """A file minimovinet loads runs bit-exactly as LiteRT's built-in kernels: logits and
    every state after every frame; its architecture is the manifest's reduced spec; the int8
    h5 file keeps it.  The others are refused with the one line expected today."""
    need("ai_edge_litert", "LiteRT is the reference")
    import minimovinet as mm
    from int8_support import LiteRTStream
    path = DATA / entry["file"]
    model = mm.load(path)
    assert model.config.model_id == "custom" and model.config.spec == _spec(_manifest())
    assert model.config.use_positional_encoding == entry["positional_encoding"]
    assert model.config.se_type == ("2plus3d" if entry["variant"] == "stream" else "none")
    assert model.config.num_classes == 10
    reference = LiteRTStream(path, "builtin")
    image = reference.input_details["image"]
    states = model.init_states()
    for t, frame in enumerate(_frames(entry, image, np.random.default_rng(5))):
        expected_logits, _ = reference.step(frame)
        logits, states = model(frame, states)            # the states fed back, as LiteRT's
        np.testing.assert_array_equal(logits, expected_logits, err_msg=f"frame {t} logits")
        assert set(states) == set(reference.states)
        for name, value in reference.states.items():
            np.testing.assert_array_equal(states[name], value, err_msg=f"frame {t} {name}")
    # the int8 h5 file keeps the custom architecture
    saved = tmp_path / "model.h5"
    mm.save(model, saved)
    again = mm.load(saved)
    assert again.config == model.config
    frame = _frames(entry, image, np.random.default_rng(6))[0]
    np.testing.assert_array_equal(again(frame), model(frame))
    assert model.dequantize().config.spec == model.config.spec      # the float view too


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_op_by_op_equals_litert(entry):
    """The same files with the structure walk skipped (every op as it is in the file, the
    fallback for graphs the walk does not recognise): LiteRT's logits and states, every
    frame."""
    need("ai_edge_litert", "LiteRT is the reference")
    from int8_support import LiteRTStream
    from minimovinet.formats.tflite_import import import_tflite
    from minimovinet.int8.model import Int8Movinet
    path = DATA / entry["file"]
    model = Int8Movinet(import_tflite(path, recognise=False))
    assert model.config.model_id == "unrecognised" and model.program.blocks == []
    reference = LiteRTStream(path, "builtin")
    states = model.init_states()
    for t, frame in enumerate(_frames(entry, reference.input_details["image"],
                                      np.random.default_rng(5))):
        expected_logits, _ = reference.step(frame)
        logits, states = model(frame, states)
        np.testing.assert_array_equal(logits, expected_logits, err_msg=f"frame {t} logits")
        for name, value in reference.states.items():
            np.testing.assert_array_equal(states[name], value, err_msg=f"frame {t} {name}")
