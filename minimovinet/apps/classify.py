"""Video classification: a stream model fed frame by frame, its top-k over time.

    import minimovinet as mm
    clf = mm.VideoClassifier("a0-stream-int8")    # a registry name, a .tflite/.h5 file or a model
    for frame in mm.read_video("clip.mp4", fps=clf.fps):  # uint8 [H, W, 3] RGB, any size
        top = clf.step(frame)                             # [(label, probability), ...] so far
    clf.reset()
    result = clf.classify("clip.mp4")                     # result.top, result.timeline

Preprocessing is what the official TFLite video classification examples do: each RGB frame is
resized to the model's input size with bilinear interpolation (`resize.resize_bilinear`, equal to
``cv2.resize(..., interpolation=cv2.INTER_LINEAR)``) and divided by 255; the stream starts
from zero states and the prediction after frame ``t`` is the softmax of the logits after it.

Frame rate: MoViNet stream models were trained on clips at a fixed rate (5 fps for A0-A2; the
model's `input_spec.fps`, `VideoClassifier.fps`).  `classify(path)` resamples the video
to that rate by timestamps; ``every_frame=True`` feeds every decoded frame instead (what the
official example tests do), ``fps=N`` resamples to N.

Memory: a `ClassificationResult` keeps the full probability vector of every frame fed (float32,
2.4 KB per frame for 600 classes: 43 MB for an hour at 5 fps), for plotting and analysis.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..atomic import atomic_open
from ..contract import StreamModel, softmax
from ..errors import InputError, MinimovinetError, PlotError
from .resize import CROPS, center_crop, resize_bilinear, to_model_input

__all__ = ["VideoClassifier", "ClassificationResult", "Prediction", "DEFAULT_MODEL",
           "PLOT_INSTALL_HINT"]

DEFAULT_MODEL = "a0-stream-int8"
PLOT_INSTALL_HINT = 'pip install "minimovinet[plot]"'
PLOT_SIZE = (1000, 500)            # pixels (width, height) of `ClassificationResult.plot`
PLOT_DPI = 100

TopK = List[Tuple[str, float]]


@dataclass(frozen=True)
class Prediction:
    """The top-k after one frame: `frame` counts the frames fed to the model from 0 (with
    resampling, not the frame number in the file); `time` is the frame's timestamp in seconds."""
    frame: int
    time: Optional[float]
    top: TopK


@dataclass
class ClassificationResult:
    """What `VideoClassifier.classify` returns.

    top: the final top-k [(label, probability), ...] (after the last frame).
    timeline: one `Prediction` per frame fed.
    probabilities: float32 [frames, classes], the softmax after each frame.
    """
    top: TopK
    timeline: List[Prediction]
    probabilities: np.ndarray            # [N, C]
    class_names: List[str]
    model: str = ""
    source: str = ""
    fps: Optional[float] = None          # the resampling rate; None: every frame

    @property
    def frames(self) -> int:
        return len(self.timeline)

    @property
    def duration(self) -> Optional[float]:
        """Seconds from the first to the last frame fed (None without timestamps)."""
        if not self.timeline or self.timeline[0].time is None:
            return None
        return self.timeline[-1].time - self.timeline[0].time

    def to_dict(self) -> dict:
        def top_list(top):
            return [{"label": label, "probability": prob} for label, prob in top]
        return {"source": self.source, "model": self.model, "fps": self.fps,
                "frames": self.frames, "top_k": top_list(self.top),
                "timeline": [{"frame": p.frame, "time": p.time, "top_k": top_list(p.top)}
                             for p in self.timeline]}

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_csv(self) -> str:
        """The timeline in long form: ``frame,time,rank,label,probability`` (rank from 1); the
        last frame's rows are the final top-k."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["frame", "time", "rank", "label", "probability"])
        for p in self.timeline:
            time = "" if p.time is None else f"{p.time:.6f}"
            for rank, (label, prob) in enumerate(p.top, 1):
                writer.writerow([p.frame, time, rank, label, f"{prob:.6f}"])
        return out.getvalue()

    def plot(self, path, classes: int = 5, title: Optional[str] = None) -> Path:
        """Draw the probabilities over time of the final top `classes` classes into a PNG
        (`PLOT_SIZE` pixels), written atomically.  Needs matplotlib (``minimovinet[plot]``)."""
        Figure, FigureCanvasAgg = import_matplotlib()
        if not self.timeline:
            raise InputError("nothing to plot: the result holds no frames")
        path = Path(path)
        top = np.argsort(-self.probabilities[-1], kind="stable")[:classes]
        times = [p.time for p in self.timeline]
        if any(t is None for t in times):
            x, xlabel = np.arange(self.frames), "frame"
        else:
            x, xlabel = np.asarray(times), "time (s)"
        fig = Figure(figsize=(PLOT_SIZE[0] / PLOT_DPI, PLOT_SIZE[1] / PLOT_DPI), dpi=PLOT_DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for c in top:                                          # the final ranking, best first
            ax.plot(x, self.probabilities[:, c], linewidth=2,
                    label=f"{self.class_names[c]} ({self.probabilities[-1, c]:.2f})")
        ax.set_ylim(0, 1)
        ax.set_xlim(x[0], x[-1] if len(x) > 1 else x[0] + 1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("probability")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
        rate = "every frame" if self.fps is None else f"{self.fps:g} fps"
        ax.set_title(title or f"{Path(self.source).name or 'frames'}: {self.model}, {rate}")
        fig.tight_layout()
        # a fixed pixel size: no bbox_inches="tight", which would crop to the content
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=PLOT_DPI)
        return path


def import_matplotlib():
    """(Figure, FigureCanvasAgg), or a `PlotError` naming the extra to install.  The Agg canvas
    is used directly (no pyplot): no display needed, no global state."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(f"plotting needs matplotlib, which is not installed: "
                        f"{PLOT_INSTALL_HINT}") from None
    return Figure, FigureCanvasAgg


# ---------------------------------------------------------------------------------------------
# the classifier


def _label_key(label: str) -> str:
    return "".join(ch for ch in str(label).lower() if ch.isalnum())


class LabelFilter:
    """Which classes a top-k may show (as the TFLite Raspberry Pi example's wrapper offers):
    only those in `allow` (when given), none in `deny`, none below `threshold`.  Labels match
    the model's class names ignoring case, spaces and underscores; an unknown one is an
    `InputError` naming the closest class names."""

    def __init__(self, class_names: Sequence[str], allow=None, deny=None, threshold=0.0):
        keys = {_label_key(name): i for i, name in enumerate(class_names)}
        self.allow = None if allow is None else self._indices(allow, keys, class_names, "allow")
        self.deny = self._indices(deny or (), keys, class_names, "deny")
        if not (isinstance(threshold, (int, float, np.floating)) and 0 <= threshold <= 1):
            raise InputError(f"threshold must be a probability in [0, 1], got {threshold!r}")
        self.threshold = float(threshold)

    @staticmethod
    def _indices(labels, keys, class_names, what):
        import difflib
        found = set()
        for label in labels:
            index = keys.get(_label_key(label))
            if index is None:
                close = difflib.get_close_matches(str(label), list(class_names), n=3, cutoff=0.5)
                raise InputError(f"--{what}: {label!r} is not one of the model's classes"
                                 + (f" (closest: {', '.join(close)})" if close else ""))
            found.add(index)
        return found

    def keeps(self, index: int, probability: float) -> bool:
        return ((self.allow is None or index in self.allow) and index not in self.deny
                and probability >= self.threshold)


def _check_top_k(top_k) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise InputError(f"top_k must be an integer >= 1, got {top_k!r}")
    return int(top_k)


class VideoClassifier:
    """A stream model fed one RGB frame at a time, reporting the top-k classes.

    model: a registry name (``minimovinet models``; loaded from the cache, never downloaded:
    ``minimovinet fetch NAME``), a model file (.tflite / .h5), or a loaded model
    (`Int8Movinet` or a stream `Movinet`).  top_k: how many classes `step` and `classify`
    report.  cache: the registry cache directory (default ``$MINIMOVINET_HOME``).
    class_names: names of the classes when the model has none (else the cached Kinetics-600
    names are used, else ``class 0``, ``class 1``, ...).
    """

    def __init__(self, model=DEFAULT_MODEL, top_k: int = 5, cache=None,
                 class_names: Optional[Sequence[str]] = None, crop: str = "squash",
                 allow=None, deny=None, threshold: float = 0.0):
        self.top_k = _check_top_k(top_k)
        if crop not in CROPS:
            raise InputError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
        self.crop = crop            # 'squash': resize the whole frame; 'center': crop, then resize
        self.cache = cache
        self.model, self.name = self._load(model, cache)
        if not self.model.config.causal:
            raise InputError(f"model {self.name} is a whole-clip (base) model: it cannot classify "
                             f"a stream frame by frame; use a stream model (e.g. a0-stream-int8)")
        spec = self.model.input_spec                # the model's frame size and frame rate
        self.height, self.width = spec.height, spec.width
        self.fps = spec.fps                         # the rate the model was trained at
        self.class_names, self.has_class_names = self._class_names(
            class_names, self.model.config.num_classes)
        self.label_filter = LabelFilter(self.class_names, allow, deny, threshold)
        self.reset()

    @staticmethod
    def _load(model, cache):
        if isinstance(model, (str, os.PathLike)):
            from .registry import is_registry_name
            if isinstance(model, str) and is_registry_name(model):
                from .registry import get, load
                entry = get(model)
                return load(entry, cache), entry.name
            from .. import load as load_file
            return load_file(model), Path(model).name
        if isinstance(model, StreamModel):
            return model, model.name
        raise InputError(f"model must be a registry name, a model file or a loaded minimovinet "
                         f"model, got {type(model).__name__}")

    def _class_names(self, given, num_classes):
        names = given if given is not None else self.model.class_names
        if names is None:
            from .registry import NUM_LABELS, class_names as cached_names
            if num_classes in (None, NUM_LABELS):
                try:
                    names = cached_names(self.cache)
                except MinimovinetError:
                    names = None
        if names is None:
            return [f"class {i}" for i in range(num_classes or 0)], False
        names = [str(n) for n in names]
        if num_classes is not None and len(names) != num_classes:
            raise InputError(f"{len(names)} class names for a model of {num_classes} classes")
        return names, True

    # ---- compiling ------------------------------------------------------------------------------

    def warm_up(self) -> float:
        """Run one black frame through the model (compiling what is not cached); the stream is
        not touched.  Returns the seconds it took."""
        start = time.perf_counter()
        frame = np.zeros((1, 1, self.height, self.width, 3), np.float32)
        self.model(frame, self.model.init_states(batch=1, height=self.height, width=self.width))
        return time.perf_counter() - start

    # ---- streaming ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Start a new stream: zero states, no frames seen."""
        self.states = self.model.init_states(batch=1, height=self.height, width=self.width)
        self.frames_seen = 0
        self.probabilities: Optional[np.ndarray] = None     # [C] after the last frame, float64

    def preprocess(self, frame) -> np.ndarray:
        """uint8 RGB [H, W, 3] of any size -> float32 [1, 1, height, width, 3] in [0, 1]."""
        a = np.asarray(frame)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or min(a.shape) < 1:
            raise InputError(f"a frame must be uint8 RGB [H, W, 3], got {a.dtype} of shape "
                             f"{a.shape}")
        if self.crop == "center":
            a = center_crop(a, self.height, self.width)
        if a.shape[:2] != (self.height, self.width):
            a = resize_bilinear(a, self.height, self.width)
        return to_model_input(a)                                # [1, 1, H, W, 3]

    def step(self, frame) -> TopK:
        """Feed one uint8 RGB frame [H, W, 3]; the top-k [(label, probability), ...] after it."""
        x = self.preprocess(frame)                              # [1, 1, H, W, 3]
        logits, self.states = self.model(x, self.states)        # [1, C]
        self.probabilities = softmax(self.model.float_logits(logits))[0]   # [C] float64
        self.frames_seen += 1
        return self.top(self.probabilities)

    def top(self, probabilities, k: Optional[int] = None) -> TopK:
        """The k (default `top_k`) most probable classes of a probability vector [C] that the
        label filter keeps (allow / deny / threshold; fewer than k when it keeps fewer)."""
        p = np.asarray(probabilities)
        k = k or self.top_k
        best = []
        for i in np.argsort(-p, kind="stable"):
            if len(best) == k or p[i] < self.label_filter.threshold:
                break
            if self.label_filter.keeps(int(i), float(p[i])):
                best.append(i)
        names = self.class_names
        return [(names[i] if i < len(names) else f"class {i}", float(p[i])) for i in best]

    # ---- whole videos ---------------------------------------------------------------------------

    def frames_of(self, video, fps=None, every_frame: bool = False,
                  max_frames: Optional[int] = None):
        """(time, frame) pairs of a video file resampled as `classify` does (at most
        `max_frames` of them: the first ones)."""
        if every_frame and fps is not None:
            raise InputError("give fps or every_frame, not both")
        from .video import read_video
        rate = None if every_frame else (self.fps if fps is None else fps)
        size = (self.height, self.width) if self.crop == "squash" else None   # else in `step`
        return read_video(video, fps=rate, size=size, max_frames=max_frames,
                          with_times=True), rate

    def expected_frames(self, video, fps=None, every_frame: bool = False) -> Optional[int]:
        """How many frames `classify(video, fps, every_frame)` will feed, estimated from the
        container's header (for a progress bar); None when the header does not say, or the
        file cannot be read (`classify` then says why)."""
        from .video import video_info
        rate = None if every_frame else (self.fps if fps is None else fps)
        try:
            info = video_info(video)
        except MinimovinetError:
            return None
        if rate is None:
            return info.frames or None
        if info.duration:
            count = math.floor(info.duration * rate) + 1
            return min(count, info.frames) if info.frames else count
        return None

    def classify(self, video, fps=None, every_frame: bool = False,
                 on_frame: Optional[Callable[[Prediction], None]] = None,
                 max_frames: Optional[int] = None) -> ClassificationResult:
        """Classify a whole video from a fresh stream (the classifier is `reset` first and left
        at the end of the video).

        video: a file path (decoded and resampled: to `fps`, default the model's rate, or every
        frame with ``every_frame=True``), or frames already at the rate you want (a uint8 array
        [T, H, W, 3] or an iterable of [H, W, 3]; then `fps`, default the model's rate, only
        dates them: time = index / fps).  on_frame: called with each `Prediction` (progress).
        max_frames: feed only the first `max_frames` frames (of a video file).
        """
        if isinstance(video, (str, os.PathLike)):
            pairs, rate = self.frames_of(video, fps, every_frame, max_frames)
            source = os.fspath(video)
        else:
            if every_frame or max_frames is not None:
                raise InputError("every_frame and max_frames apply to video files; frames are "
                                 "fed as given")
            rate = self.fps if fps is None else fps
            if not (isinstance(rate, (int, float, np.integer, np.floating)) and rate > 0):
                raise InputError(f"fps must be a positive number, got {fps!r}")
            if isinstance(video, np.ndarray) and video.ndim != 4:
                raise InputError(f"frames must be a uint8 array [T, H, W, 3] or an iterable of "
                                 f"[H, W, 3] frames, got an array of shape {video.shape}")
            pairs = ((i / float(rate), frame) for i, frame in enumerate(video))
            source = ""
        self.reset()
        timeline: List[Prediction] = []
        rows: List[np.ndarray] = []
        for seconds, frame in pairs:
            top = self.step(frame)
            prediction = Prediction(len(timeline), float(seconds), top)
            timeline.append(prediction)
            rows.append(self.probabilities.astype(np.float32))
            if on_frame is not None:
                on_frame(prediction)
        if not timeline:
            raise InputError("no frames to classify")
        return ClassificationResult(
            top=timeline[-1].top, timeline=timeline, probabilities=np.stack(rows),
            class_names=self.class_names, model=self.name, source=source,
            fps=None if rate is None else float(rate))

    def __repr__(self):
        return (f"<minimovinet.VideoClassifier {self.name}, {self.height}x{self.width} at "
                f"{self.fps} fps, top {self.top_k}, {self.frames_seen} frames seen>")
