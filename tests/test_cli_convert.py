"""`minimovinet convert` on official checkpoints (TF-free reader) gives the official model."""
import subprocess
import sys
import tarfile

import numpy as np
import pytest

import minimovinet as mm
from conftest import relmax

from conftest import need  # noqa: E402

oracle = need("oracle", "the official checkpoints are built with TensorFlow")


def cli(*args):
    done = subprocess.run([sys.executable, "-m", "minimovinet.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def official_a0(tmp_path_factory):
    cfg = mm.ModelConfig.from_variant("a0", "stream", num_classes=600)
    model = oracle.get_official(cfg, seed=0)
    root = tmp_path_factory.mktemp("ckpt")
    prefix, _ = oracle.checkpoint_arrays(model, root / "movinet_a0_stream")
    tarball = root / "movinet_a0_stream.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(root / "movinet_a0_stream", arcname="movinet_a0_stream")
    return cfg, model, prefix, tarball


@pytest.mark.parametrize("form", ["prefix", "directory", "tarball"])
def test_convert_forms_match_official(official_a0, tmp_path, form):
    cfg, official, prefix, tarball = official_a0
    source = {"prefix": prefix, "directory": tarball.parent / "movinet_a0_stream",
              "tarball": tarball}[form]
    out = tmp_path / "a0.h5"
    code, stdout, stderr = cli("convert", source, "-o", out)
    assert code == 0, stderr
    assert "inferred model id and variant from the variables: a0 stream" in stdout
    model = mm.load(out)
    clip = np.random.default_rng(0).random((1, 3, 32, 32, 3), dtype=np.float32)
    expected, official_states = oracle.run_stream(official, cfg, clip, [3])[-1]
    logits, states = model(clip, model.init_states(1, 32, 32))
    print(f"{form}: rel maxdiff {relmax(expected, logits):.2e}")
    assert relmax(expected, logits) < 1e-4


def test_convert_wrong_model_id_names_the_variable(official_a0, tmp_path):
    _, _, prefix, _ = official_a0
    code, _, stderr = cli("convert", prefix, "--model-id", "a1", "--variant", "stream",
                          "-o", tmp_path / "x.h5")
    assert code == 1
    assert "does not match model a1 variant stream" in stderr and "variable" in stderr
    assert "Traceback" not in stderr
    assert not list(tmp_path.iterdir())          # nothing written


def test_convert_wrong_variant(official_a0, tmp_path):
    _, _, prefix, _ = official_a0
    code, _, stderr = cli("convert", prefix, "--variant", "base", "-o", tmp_path / "x.h5")
    assert code == 1 and "match no MoViNet model" in stderr and "Traceback" not in stderr


def test_convert_bad_sources(tmp_path):
    code, _, stderr = cli("convert", tmp_path / "nothing", "-o", tmp_path / "x.h5")
    assert code == 1 and "error" in stderr and "Traceback" not in stderr
    (tmp_path / "empty").mkdir()
    code, _, stderr = cli("convert", tmp_path / "empty", "-o", tmp_path / "x.h5")
    assert code == 1 and "Traceback" not in stderr
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball at all")
    code, _, stderr = cli("convert", junk, "-o", tmp_path / "x.h5")
    assert code == 1 and "Traceback" not in stderr
    assert not (tmp_path / "x.h5").exists()
