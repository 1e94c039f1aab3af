"""Progress on stderr for downloads, video classification, feature extraction, evaluation.

    bar = Progress("classify clip.mp4", total=120, unit="frames")     # or unit="bytes"
    for ...:
        bar.update(1)
    bar.close(ok=True)

With tqdm installed (the extras ``progress`` and ``video``) it is a bar redrawn in place,
``classify clip.mp4 [##########..........]  50%  60/120 frames``; without it, one plain line
when the work starts and one when it ends.  Drawn only on a terminal (`enabled=None` asks the
stream's isatty()); a disabled bar writes nothing, and nothing is written before the first
update, so an error before any work leaves stderr to the error message.
"""
from __future__ import annotations

import sys
from typing import Optional

from ..errors import InputError

__all__ = ["Progress", "is_terminal"]

UNITS = ("frames", "bytes", "videos")
BAR_WIDTH = 30
# tqdm formats: a known total draws the bar, an unknown one only counts
_FORMATS = {
    ("frames", True): "{desc} [{bar:%d}] {percentage:3.0f}%%  {n_fmt}/{total_fmt} frames"
                      % BAR_WIDTH,
    ("frames", False): "{desc} {n_fmt} frames",
    ("bytes", True): "{desc} [{bar:%d}] {percentage:3.0f}%%  {n_fmt}B/{total_fmt}B  {rate_fmt}"
                     % BAR_WIDTH,
    ("bytes", False): "{desc} {n_fmt}B  {rate_fmt}",
    ("videos", True): "{desc} [{bar:%d}] {percentage:3.0f}%%  {n_fmt}/{total_fmt} videos  "
                      "{rate_fmt}  ETA {remaining}" % BAR_WIDTH,
    ("videos", False): "{desc} {n_fmt} videos  {rate_fmt}",
}


def is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _tqdm():
    """The tqdm class, or None when the optional package is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class Progress:
    """Progress of `label` towards `total` units (None: unknown), on `stream` (default
    stderr).  A total that turns out short (an estimate) grows with the count."""

    def __init__(self, label: str, total: Optional[int] = None, unit: str = "frames",
                 stream=None, enabled: Optional[bool] = None):
        if unit not in UNITS:
            raise InputError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
        self.label, self.total, self.unit = label, total or None, unit
        self.count = 0
        self.stream = sys.stderr if stream is None else stream
        self.enabled = is_terminal(self.stream) if enabled is None else bool(enabled)
        self._started = self._closed = False
        self._bar = None                                  # the tqdm bar, once started

    def update(self, n: int = 1) -> None:
        self.count += n
        if not self.enabled or self._closed:
            return
        if not self._started:
            self._start()
        if self._bar is not None:
            if self.total and self.count > self._bar.total:
                self._bar.total = self.count              # past the estimate: stay at 100%
            self._bar.update(n)

    def _start(self) -> None:
        self._started = True
        tqdm = _tqdm()
        if tqdm is None:
            expected = f" ({self._amount(self.total)})" if self.total else ""
            self._line(f"{self.label}: started{expected}")
            return
        in_bytes = self.unit == "bytes"
        self._bar = tqdm(total=self.total, desc=self.label, file=self.stream, ascii=".#",
                         bar_format=_FORMATS[self.unit, self.total is not None],
                         unit="B" if in_bytes else f" {self.unit}", unit_scale=in_bytes,
                         unit_divisor=1000, mininterval=0.1, leave=True)

    def write(self, text: str) -> None:
        """A line of text on the stream, above the bar (the bar is redrawn below it)."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            self._line(text)

    def close(self, ok: bool = True) -> None:
        """End the bar (a last redraw and a newline); ok=False marks it stopped."""
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        if self._bar is not None:
            if not ok:
                self._bar.bar_format += "  (stopped)"
            self._bar.close()
        elif ok:
            self._line(f"{self.label}: done, {self._amount(self.count)}")
        else:
            self._line(f"{self.label}: stopped after {self._amount(self.count)}")

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(ok=kind is None)

    def _amount(self, n: int) -> str:
        if self.unit != "bytes":
            return f"{n} {self.unit}"
        return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
