"""Labelled videos for training and evaluation: where they are and which class each one is.

    videos = load_video_set("clips/")          # clips/<class name>/<video>, one folder per class
    videos = load_video_set("labels.csv")      # lines "path,label" (paths relative to the CSV)
    train, val = stratified_split(videos, 0.2, seed=0)

A folder name is its class's name.  Files are videos by their extension (VIDEO_EXTENSIONS);
other files and hidden files (``.name``, e.g. a half-written ``.clip.mp4.part``) are ignored.
Whether a video decodes is found out when it is read (`features.py`, `evaluate.py`): unreadable
videos are reported and skipped there.  `match_classes` maps class names onto a model's
(ignoring case, spaces and underscores), for evaluating a model on folders named after its
classes.
"""
from __future__ import annotations

import csv
import dataclasses
import difflib
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..errors import FileError, InputError

__all__ = ["VIDEO_EXTENSIONS", "LabelledVideo", "VideoSet", "load_video_set", "from_folder",
           "from_csv", "stratified_split", "normalize_class_name", "match_classes"]

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".gif", ".mpg", ".mpeg",
                    ".wmv", ".flv", ".3gp", ".ogv", ".ts")


@dataclasses.dataclass(frozen=True)
class LabelledVideo:
    path: Path
    label: str


@dataclasses.dataclass(frozen=True)
class VideoSet:
    """Videos and their class names; `classes` is sorted and holds every label used."""
    videos: Tuple[LabelledVideo, ...]
    classes: Tuple[str, ...]
    source: str

    def labels(self) -> np.ndarray:
        """The class index of every video, int64 [N]."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[v.label] for v in self.videos], np.int64)

    def counts(self) -> Dict[str, int]:
        return {c: sum(v.label == c for v in self.videos) for c in self.classes}

    def subset(self, keep: Sequence[int], source: str = "") -> "VideoSet":
        """The videos at `keep`, with the same class list."""
        return VideoSet(tuple(self.videos[i] for i in keep), self.classes,
                        source or self.source)


def is_video_file(path: Path) -> bool:
    return (path.is_file() and not path.name.startswith(".")
            and path.suffix.lower() in VIDEO_EXTENSIONS)


def from_folder(root) -> VideoSet:
    """One sub-folder per class, its videos inside (not searched deeper)."""
    root = Path(root)
    if not root.is_dir():
        raise FileError(f"{root}: not a folder of class folders")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError(f"{root} holds no class folders: put each class's videos in a "
                         f"sub-folder named after the class ({root}/<class>/<video>)")
    videos = []
    for folder in folders:
        found = sorted(p for p in folder.iterdir() if is_video_file(p))
        if not found:
            raise InputError(f"class folder {folder} holds no videos (files ending "
                             f"{', '.join(VIDEO_EXTENSIONS[:6])}, ...)")
        videos += [LabelledVideo(p, folder.name) for p in found]
    return VideoSet(tuple(videos), tuple(f.name for f in folders), str(root))


def from_csv(path) -> VideoSet:
    """Lines ``path,label`` (an optional header ``path,label``); relative paths are relative
    to the CSV file's folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise FileError(f"{path}: cannot read: {e.strerror or e}") from None
    videos = []
    for number, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise InputError(f"{path}:{number}: expected 'path,label', got {len(row)} fields")
        where, label = row[0].strip(), row[1].strip()
        if number == 1 and (where.lower(), label.lower()) == ("path", "label"):
            continue
        if not where or not label:
            raise InputError(f"{path}:{number}: empty path or label")
        video = Path(where) if Path(where).is_absolute() else path.parent / where
        videos.append(LabelledVideo(video, label))
    if not videos:
        raise InputError(f"{path}: no 'path,label' lines")
    return VideoSet(tuple(videos), tuple(sorted({v.label for v in videos})), str(path))


def load_video_set(data) -> VideoSet:
    """A folder of class folders, a CSV file of ``path,label``, or a `VideoSet` as it is."""
    if isinstance(data, VideoSet):
        return data
    path = Path(data)
    if path.is_dir():
        return from_folder(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return from_csv(path)
    if not path.exists():
        raise FileError(f"{path}: no such folder or CSV file")
    raise InputError(f"{path}: expected a folder of class folders or a .csv file of "
                     f"'path,label' lines")


def check_trainable(videos: VideoSet, what: str = "training data") -> None:
    """At least two classes, each with at least one video."""
    counts = videos.counts()
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise InputError(f"{what} ({videos.source}): no usable video of class "
                         f"{', '.join(repr(c) for c in empty)}")
    if len(counts) < 2:
        raise InputError(f"{what} ({videos.source}) has only one class "
                         f"({', '.join(map(repr, counts)) or 'none'}): a classifier needs at "
                         f"least two")


def stratified_split(videos: VideoSet, fraction: float, seed: int = 0
                     ) -> Tuple[VideoSet, VideoSet]:
    """(train, validation): round(fraction * n) of each class's n videos, drawn with `seed`,
    go to validation (at least one when fraction > 0); every class keeps one for training."""
    if not 0.0 < float(fraction) < 1.0:
        raise InputError(f"the validation fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    labels = videos.labels()
    train, val = [], []
    for c, name in enumerate(videos.classes):
        members = np.flatnonzero(labels == c)                         # [n_c]
        if len(members) < 2:
            raise InputError(f"class {name!r} has {len(members)} video: a validation split "
                             f"needs at least 2 per class (or give validation videos)")
        count = min(max(1, int(round(fraction * len(members)))), len(members) - 1)
        chosen = rng.permutation(members)
        val += chosen[:count].tolist()
        train += chosen[count:].tolist()
    return (videos.subset(sorted(train), f"{videos.source} (training part)"),
            videos.subset(sorted(val), f"{videos.source} (validation part)"))


def normalize_class_name(name: str) -> str:
    """Case, spaces, underscores and hyphens do not count: 'Carving_Ice' -> 'carvingice'."""
    return "".join(ch for ch in str(name).lower() if ch not in " _-\t")


def match_classes(names: Sequence[str], model_classes: Sequence[str], what: str = "folder",
                  among: str = "the model's classes") -> List[int]:
    """The index in `model_classes` of every name, or one InputError naming every name that
    matches none, with the closest model class names (difflib)."""
    index: Dict[str, int] = {}
    for i, c in enumerate(model_classes):
        index.setdefault(normalize_class_name(c), i)
    keys = list(index)
    unknown = [n for n in names if normalize_class_name(n) not in index]
    if unknown:
        lines = []
        for name in unknown:
            close = difflib.get_close_matches(normalize_class_name(name), keys, n=3, cutoff=0.5)
            hint = (", ".join(repr(model_classes[index[k]]) for k in close) if close
                    else "none close")
            lines.append(f"{name!r} (closest: {hint})")
        raise InputError(f"{len(unknown)} {what} name(s) match none of {among}: "
                         f"{'; '.join(lines)}")
    return [index[normalize_class_name(n)] for n in names]
