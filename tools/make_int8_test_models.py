"""Build the int8 TFLite test models committed under tests/data/int8 (run once, by hand).

    python tools/make_int8_test_models.py            # in the test venv (TensorFlow 2.20)

Random-weight official A0 stream models (seeded, tests/oracle.py), in both variants
('stream': SE + hard-swish; 'mobile': relu6, no SE), converted by TensorFlow's TFLite
converter with a stateful representative dataset (tests/int8_support.py: 2 clips of 6 frames,
so that the quantized frame counts saturate after frame 6 and the tests run 10), with float
and int8 interfaces, plus a plain float32 conversion.  Writes the files, their float
reference logits and manifest.json (versions, CPU, settings, sha256 of each file) to a
temporary directory and moves them in place only when all are written.

Why committed: the converter calibrates with TensorFlow's float kernels, whose rounding
depends on the CPU (oneDNN picks its code by instruction set), so a model converted on
another machine has other scales, other rounding cases, and tests that pass on one machine
need not pass on another; converting also took 7 minutes of every CI run.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(1, str(ROOT))            # this checkout's minimovinet, not an installed one
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    import int8_support as S
    import tensorflow as tf
    from importlib.metadata import version
    target = S.DATA
    with tempfile.TemporaryDirectory(dir=target.parent if target.parent.exists() else None) \
            as tmp:
        entries = S.build_test_models(tmp)
        manifest = dict(
            made_by="tools/make_int8_test_models.py",
            tensorflow=tf.__version__, tf_models_official=version("tf-models-official"),
            ai_edge_litert=version("ai-edge-litert"), python=platform.python_version(),
            cpu=cpu_name(), size=S.SIZE, num_classes=S.NUM_CLASSES, weight_seed=S.SEED,
            calibration=dict(clips=S.CALIB_CLIPS, frames=S.CALIB_FRAMES),
            files=entries)
        (Path(tmp) / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(tmp, target)
    for e in entries:
        print(f"{e['file']:<40} {e['bytes']:>10,}  {e['sha256'][:16]}")
    print(f"wrote {len(entries)} files and manifest.json to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
