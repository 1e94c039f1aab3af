"""Atomic file writes: a file appears under its name complete, or not at all.

    with atomic_path("model.h5") as tmp:            # a new empty file next to model.h5
        write_h5(tmp)                               # renamed onto model.h5 when the block ends
    with atomic_open("result.json", "w") as f:      # the same, with the file opened
        f.write(text)

The temporary file is created in the destination's directory (so the final rename is atomic:
same file system), named ``<prefix><random><suffix>``, and made with the usual mode of new
files (0666 less the umask, like `open`).  When the block raises anything (an error,
KeyboardInterrupt) it is deleted and the destination is left as it was.  A destination that
is a directory, or in a directory that does not exist, is a `FileError`.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import IO, Iterator, Optional

from .errors import FileError, InputError

__all__ = ["atomic_path", "atomic_open"]


def _create_temporary(directory: Path, prefix: str, suffix: str) -> Path:
    # os.open applies the umask itself (tempfile.mkstemp would make the file 0600)
    for _ in range(100):
        path = directory / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name {prefix}*{suffix} in {directory}")


@contextlib.contextmanager
def atomic_path(path, *, prefix: Optional[str] = None, suffix: str = ".part") -> Iterator[Path]:
    """Yield the path of a new empty file next to `path`; renamed onto `path` when the block
    ends normally, deleted when it raises.  prefix: default ``.<name>.`` (a hidden file)."""
    path = Path(path)
    if path.is_dir():
        raise FileError(f"cannot write {path}: it is a directory")
    try:
        temporary = _create_temporary(path.parent,
                                      f".{path.name}." if prefix is None else prefix, suffix)
    except (FileNotFoundError, NotADirectoryError):
        raise FileError(f"cannot write {path}: the directory {path.parent} does not "
                        f"exist") from None
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_open(path, mode: str = "w", *, encoding: Optional[str] = None,
                prefix: Optional[str] = None, suffix: str = ".part") -> Iterator[IO]:
    """`open(path, mode)` through `atomic_path`: the file is closed, then renamed.  Text modes
    default to UTF-8."""
    if not mode.startswith("w"):
        raise InputError(f"atomic_open writes a new file: mode must be 'w' or 'wb', not {mode!r}")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(path, prefix=prefix, suffix=suffix) as temporary:
        with open(temporary, mode, encoding=encoding) as f:
            yield f
