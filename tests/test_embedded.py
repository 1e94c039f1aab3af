"""The embedded default (minimovinet/data): the official files byte for byte, shipped in the wheel."""
import hashlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from minimovinet import data

FILES = {data.DEFAULT_MODEL: "models", data.LABELS: "labels", data.SAMPLE_CLIP: "media"}


@pytest.mark.parametrize("path", list(FILES), ids=lambda p: p.name)
def test_embedded_file_is_the_official_one(path, shared_dir):
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == data.SHA256[path.name]
    official = shared_dir / FILES[path] / path.name
    assert path.read_bytes() == official.read_bytes(), f"{path.name} differs from {official}"


def test_labels():
    names = data.kinetics600_labels()
    assert len(names) == 600 and names[0] == "abseiling" and "carving ice" in names


def test_the_wheel_ships_them(tmp_path):
    """A non-editable install gets the files (package data in pyproject.toml)."""
    from conftest import need
    import importlib.util
    if importlib.util.find_spec("setuptools.command.bdist_wheel") is None:   # setuptools < 70.1
        need("wheel", "building a wheel with this setuptools needs the wheel package")
    root = data.HERE.parents[1]
    source = tmp_path / "source"               # a copy: building writes build/ beside the code
    shutil.copytree(root / "minimovinet", source / "minimovinet",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(root / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    wheel = next(tmp_path.glob("minimovinet-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in FILES:
        assert f"minimovinet/data/{path.name}" in names
    assert "minimovinet/int8/kernels.py" in names and "minimovinet/formats/h5.py" in names
