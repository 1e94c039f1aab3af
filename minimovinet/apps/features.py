"""Backbone features of labelled videos: what a new classifier head trains on.

Each clip is decoded at the model's frame rate (or every frame, keeping every `frame_step`-th
as the MoViNet transfer-learning tutorial does), resized to the model's input size (bilinear,
like cv2 INTER_LINEAR), divided by 255 and streamed through the frozen backbone from zero
states, a chunk of frames per call; `features()` after the last frame (the head's pooled
features [P]) is the clip's training input.  Streaming in chunks gives the same features as
frame by frame (the stream states carry everything), in bounded memory.

An int8 backbone is used through its dequantized float view (`Int8Movinet.dequantize()`), so
the features and the model that is finally saved are the same float network.  Whole-clip
(base) backbones are refused: the trained model must stream.

Temporal augmentation: ``views=V`` extracts V windows per clip; view 0 starts at the first
frame, the others at random starts (seeded by `seed` and the file's content), and training
draws one view per clip and epoch.  A clip shorter than ``frames`` gives the frames it has
(the tutorial pads with black frames instead, which would change the stream's answer).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from ..errors import FileError, InputError, VideoError
from .dataset import VideoSet
from .feature_cache import FeatureCache, file_sha256
from .progress import Progress

__all__ = ["Sampling", "make_sampling", "load_model", "float_backbone", "input_geometry",
           "backbone_identity", "decode_clip", "view_indices", "stream_features",
           "FeatureExtractor", "ExtractedFeatures"]

CHUNK_FRAMES = 16              # frames per backbone call while streaming a clip


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How clips become frames: decode at `fps` (None: every frame), keep every
    `frame_step`-th, at most `frames` per view, resized to `size`; `views` windows per clip."""
    fps: Optional[float]
    frames: Optional[int]
    frame_step: int
    size: Tuple[int, int]
    views: int = 1
    seed: int = 0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        if self.views == 1:
            d["seed"] = 0          # one view has no random start: the seed does not matter
        return d


def _positive(name, value, kind=int):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or value <= 0 or (kind is int and int(value) != value):
        raise InputError(f"{name} must be a positive {'integer' if kind is int else 'number'}, "
                         f"got {value!r}")
    return kind(value)


def make_sampling(model, fps=None, frames=None, frame_step=None, size=None, views=1,
                  seed=0) -> Sampling:
    """The sampling for `model`: its frame rate and input size unless given.  With
    `frame_step` and no `fps`, every decoded frame is a candidate (the tutorial's sampling)."""
    height, width, model_fps = input_geometry(model)
    fps = _positive("fps", fps, float)
    if fps is None and frame_step is None:
        fps = model_fps
    if size is not None:
        size = (size, size) if np.isscalar(size) else tuple(size)
        if len(size) != 2:
            raise InputError(f"size must be an int or (height, width), got {size!r}")
        height, width = (_positive("size", s) for s in size)
    return Sampling(fps, _positive("frames", frames), _positive("frame_step", frame_step) or 1,
                    (height, width), _positive("views", views), int(seed))


# ---- the backbone ----------------------------------------------------------------------------

def load_model(model):
    """A loaded model as it is; a path or registry name loaded with `minimovinet.load`."""
    if isinstance(model, (str, Path)):
        from .. import load
        return load(model)
    if callable(model) and hasattr(model, "init_states") and hasattr(model, "config"):
        return model
    raise InputError(f"model must be a model file, a registry name or a loaded minimovinet "
                     f"model, got {type(model).__name__}")


def float_backbone(model):
    """The float stream `Movinet` whose features train a head (int8: the dequantized view)."""
    from ..float32.model import Movinet
    model = load_model(model)
    if not isinstance(model, Movinet) and hasattr(model, "dequantize"):
        model = model.dequantize()
    if not isinstance(model, Movinet):
        raise InputError(f"a backbone must be a minimovinet model, got {type(model).__name__}")
    if not model.config.causal:
        raise InputError(f"backbone {model.name} is a whole-clip (base) model: a head trained "
                         f"on it could not classify a stream frame by frame; use a stream "
                         f"model (e.g. the a0-stream-int8 default)")
    return model


def input_geometry(model) -> Tuple[int, int, float]:
    """(height, width, frame rate) the model expects (int8 files: their fixed size)."""
    spec = model.input_spec
    return int(spec.height), int(spec.width), float(spec.fps)


def backbone_identity(backbone) -> str:
    """sha256 of what the features depend on: the config (without the classifier's classes
    and activation) and every weight outside the classifier."""
    config = backbone.config.to_dict()
    for name in ("num_classes", "classifier_activation"):
        config.pop(name)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    params = backbone.raw_params
    for name in sorted(params):
        if not name.startswith("classifier/"):
            value = np.ascontiguousarray(params[name], np.float32)
            digest.update(f"{name}{value.shape}".encode())
            digest.update(value.tobytes())
    return digest.hexdigest()


# ---- clips -----------------------------------------------------------------------------------

def decode_clip(path, sampling: Sampling, max_frames: Optional[int] = None) -> np.ndarray:
    """uint8 RGB frames [T, height, width, 3] of a video at the sampling's rate and size."""
    from .video import read_video
    frames = list(read_video(path, fps=sampling.fps, size=sampling.size,
                             max_frames=max_frames))
    if not frames:
        raise VideoError(f"{path}: no frames decoded")
    return np.stack(frames)                                    # [T, h, w, 3]


def view_indices(count: int, sampling: Sampling, rng: np.random.Generator) -> List[np.ndarray]:
    """The frame indices of every view of a clip of `count` decoded frames."""
    step, length = sampling.frame_step, sampling.frames
    span = count if length is None else 1 + (length - 1) * step
    views = []
    for view in range(sampling.views):
        latest = max(count - span, 0) if length is not None else (count - 1) // 2
        start = 0 if view == 0 else int(rng.integers(0, latest + 1))
        views.append(np.arange(start, count, step)[:length])
    return views


def stream_features(backbone, frames: np.ndarray, chunk: int = CHUNK_FRAMES) -> np.ndarray:
    """Stream uint8 frames [T, h, w, 3] through the backbone from zero states: the pooled
    features after the last frame, float32 [P]."""
    T, height, width, _ = frames.shape
    states = backbone.init_states(batch=1, height=height, width=width)
    for start in range(0, T, chunk):
        x = frames[None, start:start + chunk].astype(np.float32) / np.float32(255)
        pooled, states = backbone.features(x, states)          # x [1, t, h, w, 3] -> [1, P]
    return pooled[0]


# ---- a whole set -----------------------------------------------------------------------------

@dataclasses.dataclass
class ExtractedFeatures:
    """features [N, views, P] and labels [N] of the videos that could be read (`videos`);
    `skipped`: (path, reason) of those that could not."""
    features: np.ndarray
    labels: np.ndarray
    videos: VideoSet
    skipped: List[Tuple[str, str]]


class FeatureExtractor:
    """Features of clips for one backbone and sampling, through an optional `FeatureCache`."""

    def __init__(self, backbone, sampling: Sampling, cache: Optional[FeatureCache] = None):
        self.backbone = float_backbone(backbone)
        self.sampling = sampling
        self.cache = cache
        self.identity = backbone_identity(self.backbone)
        self.width = self.backbone.config.head.project_filters        # P
        self.computed = self.cached = 0          # clips run through the backbone / from cache
        self.seconds = 0.0                       # spent decoding and running the backbone

    def meta(self, path) -> dict:
        """What the features of the video at `path` depend on (the cache key's inputs)."""
        try:
            video_hash = file_sha256(path)
        except OSError as e:
            raise FileError(f"{path}: cannot read: {e.strerror or e}") from None
        return {"video_sha256": video_hash, "backbone": self.identity,
                "sampling": self.sampling.to_dict()}

    def clip(self, path) -> np.ndarray:
        """float32 [views, P] for one video (from the cache when there)."""
        meta = self.meta(path)
        shape = (self.sampling.views, self.width)
        cached = self.cache.get(meta, shape) if self.cache is not None else None
        if cached is not None:
            self.cached += 1
            return cached
        began = time.perf_counter()
        s = self.sampling
        needed = (1 + (s.frames - 1) * s.frame_step) if s.frames and s.views == 1 else None
        frames = decode_clip(path, s, needed)                       # [T, h, w, 3]
        rng = np.random.default_rng([s.seed, int(meta["video_sha256"][:15], 16)])
        features = np.stack([stream_features(self.backbone, frames[idx])
                             for idx in view_indices(len(frames), s, rng)])   # [views, P]
        self.seconds += time.perf_counter() - began
        self.computed += 1
        if self.cache is not None:
            self.cache.put(meta, features)
        return features

    def extract(self, videos: VideoSet, show_progress: Optional[bool] = None
                ) -> ExtractedFeatures:
        """Features of every video; unreadable ones are skipped and listed.  show_progress
        None: a bar on stderr when it is a terminal."""
        kept, rows, skipped = [], [], []
        with Progress("features", len(videos.videos), unit="videos",
                      enabled=show_progress) as bar:
            for i, video in enumerate(videos.videos):
                try:
                    rows.append(self.clip(video.path))
                    kept.append(i)
                except (VideoError, FileError) as e:
                    skipped.append((str(video.path), " ".join(str(e).split())))
                bar.update(1)
        sub = videos.subset(kept)
        features = (np.stack(rows) if rows else
                    np.zeros((0, self.sampling.views, self.width), np.float32))  # [N, V, P]
        return ExtractedFeatures(features, sub.labels(), sub, skipped)
