"""The library, the converter and the CLI import and run with TensorFlow absent."""
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCK_TF = textwrap.dedent("""
    import sys
    for name in ("tensorflow", "tf_keras", "keras", "official", "ai_edge_litert", "tflite_runtime",
                 "flatbuffers", "tflite"):
        sys.modules[name] = None          # any import of these now raises ImportError
""")


def run_without_tf(code, tmp_path):
    script = tmp_path / "no_tf.py"
    script.write_text(BLOCK_TF + textwrap.dedent(code))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_float_model_and_h5_without_tensorflow(tmp_path):
    out = run_without_tf(f"""
        import numpy as np, minimovinet as mm
        model = mm.random_model("a0", "stream", num_classes=5)
        mm.save(model, r"{tmp_path / 'm.h5'}")
        model = mm.load(r"{tmp_path / 'm.h5'}")
        x = np.random.default_rng(0).random((1, 2, 24, 24, 3), dtype=np.float32)
        logits, states = model(x, model.init_states(1, 24, 24))
        assert "tensorflow" not in sys.modules or sys.modules["tensorflow"] is None
        print("ok", logits.shape)
    """, tmp_path)
    assert "ok (1, 5)" in out


def test_converter_without_tensorflow(tmp_path):
    # official-style arrays made by minimovinet's own name map, converted without TF (3D
    # variant: every official layout is a plain reshape of ours, so flat arrays are valid input)
    out = run_without_tf(f"""
        import numpy as np, minimovinet as mm
        from minimovinet.formats.official_checkpoint import official_names, convert_arrays
        from minimovinet.float32.params import random_params
        cfg = mm.ModelConfig.from_variant("a1", "stream3d", num_classes=7)
        params = random_params(cfg)
        arrays = {{}}
        for name, (key, _) in official_names(cfg).items():
            arrays[key] = params[name].reshape(-1)   # layouts are checked by size and reshaped
        print(convert_arrays(arrays, r"{tmp_path / 'c.h5'}"))
        model = mm.load(r"{tmp_path / 'c.h5'}")
        assert model.config.model_id == "a1" and model.config.num_classes == 7
    """, tmp_path)
    assert "inferred model id and variant from the variables: a1 base" in out
    assert "the same variables also fit: a1 stream3d; pass --variant" in out


def test_tflite_writer_without_tensorflow(tmp_path):
    # the embedded int8 model read, written as .tflite and read back with no TensorFlow,
    # LiteRT or flatbuffers package (LiteRT runs the written files in test_tflite_writer.py)
    out = run_without_tf(f"""
        import numpy as np, minimovinet as mm
        from minimovinet.data import DEFAULT_MODEL
        model = mm.load(DEFAULT_MODEL)
        mm.save(model, r"{tmp_path / 'w.tflite'}")
        again = mm.load(r"{tmp_path / 'w.tflite'}")
        x = np.random.default_rng(0).random((1, 1, 172, 172, 3), dtype=np.float32)
        assert np.array_equal(again(x), model(x))
        assert again.class_names == model.class_names
        print("ok", len(again.program.ops))
    """, tmp_path)
    assert "ok 227" in out
