"""What `minimovinet live --show / --save-video` draws and writes: the top-k, the frame rate and
the time per inference over the camera's frame, as the TFLite Raspberry Pi example shows them.

    frame = draw_overlay(rgb, top, fps=4.9, ms=12.3)   # uint8 RGB [H, W, 3] -> a new one
    with VideoWriter("out.mp4", fps=5) as out:          # PyAV (H.264), written atomically
        out.write(frame)
    window = PreviewWindow("minimovinet")              # OpenCV; window.show(frame) -> key

Text is drawn with OpenCV (`pip install opencv-python-headless`; `--show` needs a build with
GUI support, `opencv-python`).  The video is written with PyAV.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError, MissingDependencyError, VideoError
from .classify import TopK

OPENCV_HINT = "pip install opencv-python-headless (opencv-python for --show)"
MIN_WIDTH = 480            # small frames (the model's 172x172) are enlarged before drawing


def _cv2():
    try:
        import cv2
    except ImportError:
        raise MissingDependencyError(f"drawing the overlay needs OpenCV: {OPENCV_HINT}") from None
    return cv2


def draw_overlay(frame, top: TopK, fps: Optional[float], ms: Optional[float]) -> np.ndarray:
    """A copy of the uint8 RGB frame [H, W, 3] (enlarged to at least MIN_WIDTH wide) with the
    top-k (label, probability) and a line 'fps, ms per inference' in its top-left corner."""
    cv2 = _cv2()
    a = np.asarray(frame)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"the overlay is drawn on a uint8 RGB frame [H, W, 3], got {a.dtype} "
                         f"of shape {a.shape}")
    scale = max(1, -(-MIN_WIDTH // a.shape[1]))
    out = np.ascontiguousarray(np.repeat(np.repeat(a, scale, axis=0), scale, axis=1))
    lines = [f"{label}  {p:.2f}" for label, p in top]
    lines.append(("-" if fps is None else f"{fps:.1f} fps") + "   "
                 + ("-" if ms is None else f"{ms:.0f} ms per inference"))
    font, size, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    line_height = 20
    width = max(cv2.getTextSize(t, font, size, thick)[0][0] for t in lines) + 16
    height = line_height * len(lines) + 10
    box = out[:height, :width]                      # a darkened panel behind the text
    box[:] = box // 3
    for row, text in enumerate(lines):
        cv2.putText(out, text, (8, 20 + row * line_height), font, size, (255, 255, 255), thick,
                    cv2.LINE_AA)
    return out


class VideoWriter:
    """Frames (uint8 RGB, all of one size) into a video file, H.264 in an mp4 (or what the
    suffix says), at `fps`.  Written to a temporary name and renamed when closed without error:
    an interrupted run leaves no half-written video."""

    def __init__(self, path, fps: float):
        from .video import import_av
        self.av = import_av()
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise VideoError(f"cannot write the video {path}: the directory "
                             f"{self.path.parent} does not exist")
        if self.path.is_dir():
            raise VideoError(f"cannot write the video {path}: it is a directory")
        self.fps = fps
        self.part = self.path.with_name(f".{self.path.name}.{os.getpid()}.part{self.path.suffix}")
        self.container = None
        self.stream = None
        self.frames = 0

    def write(self, frame) -> None:
        a = np.ascontiguousarray(frame)
        if self.container is None:
            from fractions import Fraction
            self.container = self.av.open(str(self.part), mode="w")
            rate = Fraction(self.fps).limit_denominator(1000)
            self.stream = self.container.add_stream("libx264", rate=rate)
            self.stream.width, self.stream.height = a.shape[1] // 2 * 2, a.shape[0] // 2 * 2
            self.stream.pix_fmt = "yuv420p"
            self.stream.options = {"crf": "18"}       # near-lossless: the overlay stays readable
        a = a[:self.stream.height, :self.stream.width]
        packet_frame = self.av.VideoFrame.from_ndarray(a, format="rgb24")
        for packet in self.stream.encode(packet_frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        if self.container is None:
            return
        try:
            if keep:
                for packet in self.stream.encode():
                    self.container.mux(packet)
        finally:
            self.container.close()
            self.container = None
            if keep:
                os.replace(self.part, self.path)
            elif self.part.exists():
                self.part.unlink()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(keep=exc_type is None)


class PreviewWindow:
    """An OpenCV window showing frames; `show` returns the key pressed ('' for none)."""

    def __init__(self, title: str = "minimovinet"):
        self.cv2 = _cv2()
        self.title = title
        try:
            self.cv2.namedWindow(title, self.cv2.WINDOW_AUTOSIZE)
        except self.cv2.error as e:
            reason = " ".join(str(e).split())[:120]
            raise MissingDependencyError(f"--show cannot open a window ({reason}): is there a "
                                         f"display, and OpenCV with GUI support (pip install "
                                         f"opencv-python)?") from None

    def show(self, frame) -> str:
        self.cv2.imshow(self.title, self.cv2.cvtColor(np.asarray(frame), self.cv2.COLOR_RGB2BGR))
        key = self.cv2.waitKey(1) & 0xFF
        return "" if key == 0xFF else chr(key)

    def close(self) -> None:
        self.cv2.destroyWindow(self.title)
