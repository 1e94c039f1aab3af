"""`minimovinet.atomic`: a file appears complete under its name, or not at all (the h5 files, the
outputs of `minimovinet classify`, the downloads of the registry all go through it)."""
import os

import numpy as np
import pytest

import minimovinet as mm
from minimovinet.atomic import atomic_open, atomic_path
from minimovinet.errors import FileError, InputError


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_open_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target, "w") as f:
            f.write("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    with atomic_open(target, "w") as f:
        f.write("new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert (target.stat().st_mode & 0o777) == 0o666 & ~_umask()
    with atomic_open(tmp_path / "b.bin", "wb") as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(InputError, match="mode must be"):
        with atomic_open(target, "a"):
            pass


def test_atomic_path_is_a_new_file_next_to_the_destination(tmp_path):
    target = tmp_path / "model.h5"
    with atomic_path(target, prefix=".x-", suffix=".h5.part") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".x-")
        assert tmp.name.endswith(".h5.part") and tmp.exists() and tmp.stat().st_size == 0
        assert not target.exists()                       # nothing under the name yet
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done" and sorted(tmp_path.iterdir()) == [target]
    with pytest.raises(ZeroDivisionError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            1 / 0
    assert target.read_bytes() == b"done" and sorted(tmp_path.iterdir()) == [target]
    # the block may remove or rename the temporary file itself before failing
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.unlink()
            raise RuntimeError
    assert sorted(tmp_path.iterdir()) == [target]


def test_bad_destinations_fail_before_anything_is_written(tmp_path):
    with pytest.raises(FileError, match="the directory .*no does not exist"):
        with atomic_open(tmp_path / "no" / "out.txt"):
            pass
    (tmp_path / "d").mkdir()
    with pytest.raises(FileError, match="d: it is a directory"):
        with atomic_path(tmp_path / "d"):
            pass
    assert [p.name for p in tmp_path.iterdir()] == ["d"] and not any((tmp_path / "d").iterdir())


def test_h5_files_are_written_through_it(tmp_path):
    """The weights writer (`formats.h5.writing`): the usual mode, nothing left on failure."""
    model = mm.random_model("a0", "stream", num_classes=3, seed=0)
    path = tmp_path / "m.h5"
    mm.save(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]
    assert (path.stat().st_mode & 0o777) == 0o666 & ~_umask()
    x = np.zeros((1, 1, 16, 16, 3), np.float32)
    again = mm.load(path)
    np.testing.assert_array_equal(again(x, again.init_states(1, 16, 16))[0],
                                  model(x, model.init_states(1, 16, 16))[0])
