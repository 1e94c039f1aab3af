"""The on-disk cache of backbone features, so that a second training run decodes no video and
runs no backbone.

An entry is the features of one clip [views, P] under a key made from what they depend on:
the video file's content (sha256), the backbone's identity (`features.backbone_identity`:
its config and weights) and the sampling (frame rate, frames, step, size, views, seed).
Layout: ``<root>/minimovinet-feature-cache.json`` (format and version) and
``<root>/<key[:2]>/<key>.npz`` holding ``features`` and ``meta`` (the key's inputs, JSON).

* Writing is atomic (`minimovinet.atomic`): a temporary file in the entry's folder, renamed
  when complete; an interruption (KeyboardInterrupt, a full disk) leaves no entry and no
  temporary file.
* A corrupt entry (truncated, not an npz, missing arrays) is **recomputed**: a warning names it
  and the new features replace it.
* A mismatched entry (readable, but its meta describes another video, model or sampling, or
  its features have another shape) is an **error** (`CacheError`) naming the entry and what
  differs: the cache holds something that this minimovinet did not write for this key, and
  silently overwriting it would hide the problem.  Delete the entry (or the cache) to go on.
* A folder that is not a feature cache (files but no marker) or of another version is refused.
"""
from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from ..atomic import atomic_open
from ..errors import CacheError

__all__ = ["FeatureCache", "FeatureCacheWarning", "file_sha256", "default_cache_dir",
           "FORMAT", "VERSION"]

FORMAT = "minimovinet-features"
VERSION = 1
MARKER = "minimovinet-feature-cache.json"


class FeatureCacheWarning(UserWarning):
    """A corrupt cache entry that is being recomputed."""


def file_sha256(path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``features/`` in the model cache ($MINIMOVINET_HOME, default ~/.cache/minimovinet)."""
    from .registry import cache_dir
    return cache_dir() / "features"


class FeatureCache:
    """Features of clips on disk, keyed by `key(meta)` (meta: a JSON-able dict)."""

    def __init__(self, root):
        self.root = Path(root)
        marker = self.root / MARKER
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if marker.exists():
                self._check_marker(marker)
            elif any(p for p in self.root.iterdir() if not p.name.startswith(".")):
                raise CacheError(f"{self.root} is not a minimovinet feature cache (it holds "
                                 f"other files and no {MARKER}); choose an empty or new folder")
            else:
                marker.write_text(json.dumps({"format": FORMAT, "version": VERSION}) + "\n")
        except OSError as e:
            raise CacheError(f"feature cache {self.root}: {e.strerror or e}") from None

    def _check_marker(self, marker: Path) -> None:
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError) as e:
            raise CacheError(f"{marker}: unreadable feature cache marker ({e})") from None
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise CacheError(f"{marker}: not a minimovinet feature cache marker")
        if info.get("version") != VERSION:
            raise CacheError(f"{self.root}: feature cache version {info.get('version')}, this "
                             f"minimovinet uses version {VERSION}; use another folder or delete "
                             f"this one")

    @staticmethod
    def key(meta: dict) -> str:
        return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, meta: dict, shape) -> Optional[np.ndarray]:
        """The cached features [views, P] for `meta`, or None when absent or corrupt."""
        meta = json.loads(json.dumps(meta, sort_keys=True))     # as stored: lists, not tuples
        path = self.path(self.key(meta))
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as entry:
                features = np.array(entry["features"])
                stored = json.loads(str(entry["meta"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            warnings.warn(f"feature cache entry {path} is unreadable ({type(e).__name__}: {e}); "
                          f"recomputing it", FeatureCacheWarning, stacklevel=2)
            return None
        if stored != meta:
            differ = sorted(k for k in set(stored) | set(meta) if stored.get(k) != meta.get(k))
            raise CacheError(f"feature cache entry {path} does not match its key: it was "
                             f"written for another {', '.join(differ)}; delete it (or the "
                             f"cache {self.root}) and run again")
        if features.shape != tuple(shape) or features.dtype != np.float32:
            raise CacheError(f"feature cache entry {path} holds {features.dtype} features of "
                             f"shape {features.shape}, expected float32 {tuple(shape)}; delete "
                             f"it (or the cache {self.root}) and run again")
        return features

    def put(self, meta: dict, features: np.ndarray) -> Path:
        """Store `features` [views, P] for `meta` atomically."""
        path = self.path(self.key(meta))
        try:
            path.parent.mkdir(exist_ok=True)
            with atomic_open(path, "wb") as f:
                np.savez(f, features=np.asarray(features, np.float32),
                         meta=np.array(json.dumps(meta, sort_keys=True)))
        except OSError as e:
            raise CacheError(f"cannot write feature cache entry {path}: {e.strerror or e}"
                             ) from None
        return path
