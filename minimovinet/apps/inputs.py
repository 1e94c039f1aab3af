"""The videos a many-video run works on: files, folders searched recursively, ``@lists``.

    paths, notes = expand_inputs(["a.mp4", "holiday/", "@todo.txt"])

* a file is taken as it is (a missing one becomes that video's error, the others go on);
* a folder is searched recursively for files ending in a video extension (`VIDEO_EXTENSIONS`,
  case-insensitive), in sorted order; hidden files and folders (``.name``) are skipped;
* ``@FILE`` is a text file of paths, one a line (blank lines and ``#`` comments ignored); a
  relative path is relative to the list's folder (or, when nothing is there, to the current
  directory); a line may name a folder, which is searched as above.

The same video reached twice (a file and its folder) is kept once, where it came first.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple

from ..errors import FileError, InputError
from .dataset import VIDEO_EXTENSIONS

__all__ = ["expand_inputs", "is_many_input", "path_key"]


def path_key(path) -> str:
    """The key that says two paths are the same video (absolute, normalised, not resolved: two
    symlinks to one file are two videos)."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def is_many_input(item) -> bool:
    """True when `item` stands for several videos: a folder or an ``@list``."""
    text = os.fspath(item)
    return text.startswith("@") or os.path.isdir(text)


def _folder_videos(folder: Path, extensions: Sequence[str]) -> List[str]:
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))   # walk in a fixed order
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
                found.append(os.path.join(root, name))
    return found


def _list_lines(item: str) -> List[str]:
    list_path = Path(item[1:])
    try:
        text = list_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FileError(f"cannot read the list {list_path}: not a UTF-8 text file") from None
    except OSError as e:
        raise FileError(f"cannot read the list {list_path}: {e.strerror or e}") from None
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not os.path.isabs(line):
            beside = list_path.parent / line
            line = os.fspath(beside) if beside.exists() or not os.path.exists(line) else line
        entries.append(line)
    return entries


def expand_inputs(items: Iterable, extensions: Sequence[str] = VIDEO_EXTENSIONS
                  ) -> Tuple[List[str], List[str]]:
    """(the video paths, notes) of files / folders / ``@lists`` (see the module docstring).
    notes: one line per folder or list that held no video.  Nothing at all is an `InputError`."""
    if isinstance(items, (str, os.PathLike)):
        items = [items]
    extensions = tuple(e.lower() for e in extensions)
    paths, notes, seen = [], [], set()

    def add(path: str) -> None:
        key = path_key(path)
        if key not in seen:
            seen.add(key)
            paths.append(path)

    def expand(item: str, depth: int) -> None:
        if item.startswith("@") and depth < 8:        # lists of lists, not endless ones
            entries = _list_lines(item)
            if not entries:
                notes.append(f"{item[1:]}: the list names no video")
            for entry in entries:
                expand(entry, depth + 1)
        elif os.path.isdir(item):
            found = _folder_videos(Path(item), extensions)
            if not found:
                notes.append(f"{item}: is a directory with no video files in it (searched "
                             f"for files ending {', '.join(extensions[:6])}, ...)")
            for path in found:
                add(path)
        else:
            add(item)

    count = 0
    for item in items:
        count += 1
        expand(os.fspath(item), 0)
    if not paths:
        if count == 0:
            raise InputError("no videos given: name video files, folders or @lists of paths")
        raise InputError("; ".join(notes) if notes else "no videos found")
    return paths, notes
