"""Live classification: a camera, or a video file played as if it were one, classified at the
model's frame rate while the frames are captured on a thread of their own.

    from minimovinet.apps.live import LiveClassifier
    with LiveClassifier("a0-stream-int8", source=0) as live:         # camera 0
        for update in live.updates(duration=30):                      # one per classified frame
            print(f"{update.time:6.2f} s", update.top[0], "dropped", update.dropped)
    print(live.summary())
    # or: live.run(on_update=callback), and live.stop() from the callback or another thread

Sources: a camera index, a video file (its frames delivered at their timestamps, or `speed`
times faster), or any iterable of (seconds, uint8 RGB frame) pairs (delivered at those times).
Files and cameras are resampled to the model's rate (`fps`).  When inference falls behind,
the newest frame is classified and the older ones are dropped and counted (`LatestFrame`).

Also here: `LiveDisplay`, the rolling top-k as `minimovinet live` prints it.
"""
from __future__ import annotations

import collections
import math
import numbers
import os
import shutil
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np

from ..contract import softmax
from ..errors import InputError, VideoError
from .classify import DEFAULT_MODEL, TopK, VideoClassifier
from .video import VideoWarning

BEHIND_WINDOW = 10     # frames averaged to tell that inference cannot keep up

__all__ = ["LiveClassifier", "LiveUpdate", "LiveSummary", "LatestFrame", "LiveDisplay",
           "ResettingStreams"]


class LatestFrame:
    """A one-frame mailbox between the capture thread and the model.  A frame put while the
    previous one is still waiting replaces it (the older one is dropped and counted): when
    inference falls behind, the model always gets the newest frame."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item = None
        self._done = False
        self._error = None
        self.delivered = 0
        self.dropped = 0

    def put(self, item) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.delivered += 1
            self._cond.notify()

    def finish(self, error=None) -> None:
        with self._cond:
            self._done = True
            self._error = self._error if error is None else error
            self._cond.notify()

    def take(self):
        """The newest frame not yet taken; None at the end of the source (its error, if any,
        is raised once the frames before it are taken)."""
        with self._cond:
            while self._item is None and not self._done:
                self._cond.wait()
            item, self._item = self._item, None
            if item is None and self._error is not None:
                error, self._error = self._error, None
                raise error
            return item


def _capture(frames, mailbox, stop, paced, speed):
    """Thread body: put the source's (time, frame) pairs into `mailbox` as (index, seconds
    since the first frame, frame); paced sources wait for their timestamps (divided by
    `speed`), cameras deliver at their own pace."""
    error = None
    try:
        start, first = time.monotonic(), None
        for index, (t, frame) in enumerate(frames):
            if stop.is_set():
                break
            first = t if first is None else first
            if paced:
                delay = start + (t - first) / speed - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    break
            mailbox.put((index, t - first, frame))
    except VideoWarning as e:           # made an error by a strict LiveClassifier
        error = VideoError(str(e))
    except BaseException as e:          # noqa: BLE001 (handed to the consuming thread)
        error = e
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            try:
                close()
            except Exception:           # noqa: BLE001
                pass
        mailbox.finish(error)


@dataclass(frozen=True)
class LiveUpdate:
    """One classified frame: `index` counts the source's frames at the model's rate (a gap
    is dropped frames), `time` is seconds since the first frame, `top` the top-k after it,
    `dropped` the frames dropped so far, `inference` the seconds this frame took, `behind`
    whether inference has recently taken longer than the time between frames (1 / fps)."""
    index: int
    time: float
    top: TopK
    dropped: int
    inference: float
    behind: bool = False
    frame: Optional[np.ndarray] = None      # the frame classified, uint8 RGB as delivered


@dataclass(frozen=True)
class LiveSummary:
    """What a run did: frames classified, dropped and delivered at `fps`; `busy` seconds of
    inference in all."""
    classified: int
    dropped: int
    delivered: int
    fps: float
    busy: float

    @property
    def ms_per_frame(self) -> Optional[float]:
        return 1000 * self.busy / self.classified if self.classified else None


class ResettingStreams:
    """A camera left running should follow the action in front of it, not average over the
    whole session: the stream is started afresh every `every` seconds (of the source's time).

    A fresh stream knows little, so two streams run staggered by half a period: stream A
    restarts at 0, R, 2R, ..., stream B at R/2, 3R/2, ...; the top-k shown is always the older
    one's, which has seen between R/2 and R seconds.  That costs two model calls per frame
    (`staggered=False`: one stream, restarted every R seconds, half the work).  `reset()`
    restarts both now (a key, a signal)."""

    def __init__(self, classifier: VideoClassifier, every: float, staggered: bool = True):
        self.classifier = classifier
        self.every = _positive(every, "reset_every")
        self.offsets = (0.0, self.every / 2) if staggered else (0.0,)
        self.epoch = None                               # source time the schedule starts at
        self.started = [None] * len(self.offsets)      # source time each stream started at
        self.states = [None] * len(self.offsets)
        self._reset_requested = threading.Event()

    def reset(self) -> None:
        """Restart every stream at the next frame (safe from any thread or a signal)."""
        self._reset_requested.set()

    def _scheduled_start(self, stream: int, t: float) -> float:
        """When stream `stream` last (re)started on the schedule, at source time `t`."""
        k = math.floor((t - self.epoch - self.offsets[stream]) / self.every)
        return self.epoch if k < 0 else self.epoch + self.offsets[stream] + k * self.every

    def step(self, t: float, frame) -> TopK:
        """Feed the frame at source time `t` to every stream; the oldest stream's top-k."""
        clf = self.classifier
        if self.epoch is None or self._reset_requested.is_set():
            self._reset_requested.clear()
            self.epoch, self.started = t, [None] * len(self.offsets)
        for i in range(len(self.offsets)):
            start = self._scheduled_start(i, t)
            if self.started[i] is None or start > self.started[i]:
                self.started[i] = start
                self.states[i] = clf.model.init_states(batch=1, height=clf.height,
                                                       width=clf.width)
        oldest = min(range(len(self.started)), key=lambda i: (self.started[i], i))
        x = clf.preprocess(frame)                                   # [1, 1, H, W, 3]
        for i in range(len(self.offsets)):
            logits, self.states[i] = clf.model(x, self.states[i])   # [1, C]
            if i == oldest:
                clf.probabilities = softmax(clf.model.float_logits(logits))[0]   # [C]
        clf.frames_seen += 1
        return clf.top(clf.probabilities)


def _positive(value, name: str, allow_none: bool = False):
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class LiveClassifier:
    """Classify a live source with a stream model, the capture on its own thread.

    model: a `VideoClassifier`, or what it takes (a registry name, a .tflite/.h5 file, a
    loaded model; with `top_k` and `cache`).  source: a camera index (int), a video file
    played as a camera, or an iterable of (seconds, frame) pairs.  fps: the rate files and
    cameras are resampled to (default the model's, 5 for A0-A2).  speed: files and iterables
    are delivered this many times faster than their timestamps.  strict: a source that ends
    early (a truncated file, a camera that stops) raises `VideoError` instead of warning
    (`VideoWarning`); while it runs, VideoWarning is an error for the whole process, as
    Python's warning filters are.

    The source is opened here (a missing camera or file fails now) and consumed by one run:
    `updates` / `run` / iterating.  `stop` ends a run from any thread; leaving a ``with``
    block stops it and closes the source.
    """

    def __init__(self, model=DEFAULT_MODEL, source=0, *, fps=None, speed: float = 1.0,
                 top_k: int = 5, cache=None, strict: bool = False,
                 reset_every: Optional[float] = None, staggered: bool = True,
                 capture_size=None, native_frames: bool = False):
        self.classifier = (model if isinstance(model, VideoClassifier)
                           else VideoClassifier(model, top_k=top_k, cache=cache))
        self.fps = _positive(fps, "fps", allow_none=True) or float(self.classifier.fps)
        self.speed = _positive(speed, "speed")
        self.strict = bool(strict)
        self.capture_size = capture_size          # (width, height) asked of a camera
        # frames delivered at the source's size (for a preview / a recording, or a center crop)
        # instead of resized to the model's on the capture thread
        self.native_frames = bool(native_frames) or self.classifier.crop != "squash"
        self.streams = (None if reset_every is None
                        else ResettingStreams(self.classifier, reset_every, staggered))
        self._reset_requested = threading.Event()
        self._recent = collections.deque(maxlen=BEHIND_WINDOW)   # last inference times
        self._frames, self._paced, self.description = self._open(source)
        self._mailbox, self._stop = LatestFrame(), threading.Event()
        self._ran = False
        self.classified, self.busy = 0, 0.0

    def _open(self, source):
        from .video import read_camera, read_video
        size = None if self.native_frames else (self.classifier.height, self.classifier.width)
        if isinstance(source, bool):
            raise InputError(f"source must be a camera index, a video file or an iterable of "
                             f"(seconds, frame) pairs, got {source!r}")
        if isinstance(source, int):
            return (read_camera(source, fps=self.fps, size=size, with_times=True,
                                capture_size=self.capture_size), False, f"camera {source}")
        if isinstance(source, (str, os.PathLike)):
            return (read_video(source, fps=self.fps, size=size, with_times=True), True,
                    f"{os.fspath(source)} (played as live at {self.speed:g}x)")
        try:
            return iter(source), True, "frames"
        except TypeError:
            raise InputError(f"source must be a camera index, a video file or an iterable of "
                             f"(seconds, frame) pairs, got {type(source).__name__}") from None

    # ---- running ----------------------------------------------------------------------------

    def updates(self, duration: Optional[float] = None) -> Iterator[LiveUpdate]:
        """Run: a `LiveUpdate` for each classified frame, until the source ends, `duration`
        seconds have passed or `stop` is called.  The classifier starts a fresh stream."""
        duration = _positive(duration, "duration", allow_none=True)
        if self._ran:
            raise InputError("this LiveClassifier has run: its source is consumed (make a new "
                             "one)")
        self._ran = True
        self.classifier.reset()
        thread = threading.Thread(target=_capture, name="minimovinet-capture", daemon=True,
                                  args=(self._frames, self._mailbox, self._stop, self._paced,
                                        self.speed))
        with warnings.catch_warnings():
            if self.strict:
                warnings.simplefilter("error", VideoWarning)
            started = time.monotonic()
            thread.start()
            try:
                while True:
                    item = self._mailbox.take()
                    if item is None or self._stop.is_set() or (
                            duration is not None and time.monotonic() - started >= duration):
                        break
                    index, t, frame = item
                    tick = time.perf_counter()
                    top = self._step(t, frame)
                    took = time.perf_counter() - tick
                    self.busy += took
                    self.classified += 1
                    self._recent.append(took)
                    yield LiveUpdate(index, t, top, self._mailbox.dropped, took, self.behind,
                                     frame)
            finally:
                self._stop.set()
                thread.join(timeout=5)

    __iter__ = updates

    def _step(self, t, frame) -> TopK:
        if self.streams is not None:
            return self.streams.step(t, frame)
        if self._reset_requested.is_set():
            self._reset_requested.clear()
            self.classifier.reset()
        return self.classifier.step(frame)

    def reset(self) -> None:
        """Start the stream afresh at the next frame (from any thread, or a signal handler)."""
        if self.streams is not None:
            self.streams.reset()
        else:
            self._reset_requested.set()

    @property
    def behind(self) -> bool:
        """Inference takes longer than the time between frames (the last few on average):
        frames are being dropped, the model sees a lower frame rate than it was trained at."""
        full = len(self._recent) == self._recent.maxlen
        return full and sum(self._recent) / len(self._recent) > 1.0 / self.fps

    def run(self, on_update: Optional[Callable[[LiveUpdate], None]] = None,
            duration: Optional[float] = None) -> LiveSummary:
        """`updates`, each passed to `on_update`; returns the summary."""
        for update in self.updates(duration):
            if on_update is not None:
                on_update(update)
        return self.summary()

    def stop(self) -> None:
        """End the run (from any thread): the frame being classified is the last."""
        self._stop.set()
        self._mailbox.finish()           # wakes a run waiting for a frame

    def summary(self) -> LiveSummary:
        return LiveSummary(self.classified, self._mailbox.dropped, self._mailbox.delivered,
                           self.fps, self.busy)

    def close(self) -> None:
        """Stop, and release the source when it never ran (a run closes it itself)."""
        self.stop()
        if not self._ran:
            self._ran = True
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> "LiveClassifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self):
        return (f"<minimovinet LiveClassifier {self.description}, model {self.classifier.name}, "
                f"{self.fps:g} fps, {self.classified} frames classified>")


class LiveDisplay:
    """The rolling top-k: redrawn in place on a terminal, one line per frame otherwise."""

    def __init__(self, top_k: int, stream=None):
        self.stream = sys.stdout if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.terminal = bool(isatty and isatty())
        self.lines = 0

    def show(self, index, t, top, dropped, ms):
        """Frame `index` (of the source, at the model's rate) at `t` seconds, its top-k, the
        frames dropped so far and this frame's inference time."""
        if not self.terminal:
            classes = " | ".join(f"{label} {prob:.3f}" for label, prob in top)
            self.stream.write(f"{t:8.2f} s  frame {index:5d}  {classes}  "
                              f"(dropped {dropped}, {ms:.0f} ms)\n")
            self.stream.flush()
            return
        width = max(20, shutil.get_terminal_size().columns - 1)
        rows = [f"{t:8.2f} s  frame {index}  dropped {dropped}  inference {ms:.0f} ms"]
        label_width = max(len(label) for label, _ in top)
        bar_width = max(0, min(30, width - label_width - 14))
        for label, prob in top:
            bar = "#" * int(round(prob * bar_width))
            rows.append(f"  {label:<{label_width}}  {prob:.3f}  {bar}")
        up = f"\x1b[{self.lines}F" if self.lines else ""
        self.stream.write(up + "".join(row[:width] + "\x1b[K\n" for row in rows))
        self.stream.flush()
        self.lines = len(rows)
