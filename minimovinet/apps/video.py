"""Video input: decode files and cameras into RGB uint8 frames, resize them, feed the models.

    from minimovinet.apps.video import read_video, to_model_input
    states = model.init_states(batch=1, height=172, width=172)
    for frame in read_video("clip.mp4", fps=5, size=(172, 172)):     # uint8 [172, 172, 3] RGB
        logits, states = model(to_model_input(frame), states)         # float32 [1, 1, 172, 172, 3]

Files are decoded by PyAV (FFmpeg in its wheels: mp4, mov, avi, mkv, webm, animated gif, ...),
an optional dependency: ``pip install 'minimovinet[video]'``.  ``import minimovinet`` never
imports it; the functions here import it when called and say what to install when it is missing.
Frames are streamed: one decoded frame at a time, never the whole video in memory.  The RGB
conversion is FFmpeg's (swscale, the file's colour matrix), the same pixels as
``cv2.VideoCapture`` returns (BGR there).  A rotation stored in the file (phone videos) is applied,
as ``cv2.VideoCapture`` does: frames come out upright and ``size`` is the upright size.

Frame-rate resampling (``fps=``)
    A frame's time is its presentation timestamp, ``pts * time_base`` of its stream, as an exact
    fraction (no float rounding).  With ``t0`` the time of the first frame read (the first at or
    after ``start``), the target ticks are ``t0 + k / fps`` for k = 0, 1, 2, ...  A frame is kept
    iff it is the first frame at or after some tick not yet served, i.e. iff
    ``floor((t - t0) * fps)`` is larger than for every frame kept before (the first frame is always
    kept).  So a 30 fps clip at ``fps=5`` gives frames 0, 6, 12, ...; a variable-frame-rate file
    follows its timestamps; a source slower than ``fps`` gives each of its frames once (frames are
    never duplicated to fill ticks, so the output rate is then the source's); ``fps=None`` keeps
    every frame.  ``fps`` may be an int, a float (made a fraction with denominator <= 10**6:
    29.97 -> 2997/100) or a ``fractions.Fraction``.  Cameras use the same rule on capture times.

Resizing (``size=(height, width)``, or an int for a square)
    ``resize.resize_bilinear``, equal to ``cv2.resize(..., INTER_LINEAR)``; the frame is resized
    after rotation and only when its size differs.

Edge cases (every failure is a ``VideoError`` with one line saying what is wrong, never an FFmpeg
traceback)
    * missing file, a directory, a file FFmpeg cannot read (text, random bytes): ``VideoError``.
    * a still image (a PNG, JPEG, ... that FFmpeg would read as a 1-frame video): refused with
      ``VideoError`` -- a video classifier needs frames over time and a single image is almost
      always a mistake; an animated GIF (or any image file holding >= 2 frames) is a video.
    * no video stream (audio-only file) or no decodable frame (header-only file): ``VideoError``.
    * a video codec this FFmpeg build has no decoder for: ``VideoError`` (with a conversion hint).
    * a truncated or corrupt file: every frame that decodes is yielded (packets that fail to
      decode are skipped), then one ``VideoWarning`` says the file ended early (packets failed to
      decode, or fewer packets than the header announces) and the generator stops normally.
      A warning, not an error, because a stream consumer has already used those frames; make it
      an error with ``warnings.simplefilter("error", VideoWarning)``.  An mp4 cut before its index
      (the 'moov' box at the end of the file) cannot be opened at all: ``VideoError``.
    * ``start`` at or past the last frame: ``VideoError``.  ``max_frames=0`` yields nothing.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Optional, Tuple

import numpy as np

from ..errors import InputError, VideoError
from .resize import is_int, resize_bilinear, to_model_input  # noqa: F401 (re-exported)

__all__ = ["read_video", "read_camera", "video_info", "resize_bilinear", "to_model_input",
           "VideoInfo", "VideoWarning", "VideoError"]

INSTALL_HINT = "pip install 'minimovinet[video]'"


class VideoWarning(UserWarning):
    """A video that ended early: truncated or corrupt after some frames were decoded."""


# ---------------------------------------------------------------------------------------------
# argument checks


def import_av():
    try:
        import av  # noqa: PLC0415 (optional dependency, imported on use)
    except ImportError:
        raise VideoError(f"reading videos needs PyAV (FFmpeg), which is not installed: "
                         f"{INSTALL_HINT}") from None
    return av


def _parse_size(size) -> Optional[Tuple[int, int]]:
    if size is None:
        return None
    pair = (size, size) if is_int(size) else size
    try:
        height, width = pair
    except (TypeError, ValueError):
        raise InputError(f"size must be (height, width) or an int, got {size!r}") from None
    if not (is_int(height) and is_int(width) and height > 0 and width > 0):
        raise InputError(f"size must be positive integers (height, width), got {size!r}")
    return int(height), int(width)


def _parse_fps(fps) -> Optional[Fraction]:
    if fps is None:
        return None
    if isinstance(fps, Fraction) or is_int(fps):
        value = Fraction(int(fps)) if is_int(fps) else fps
    elif isinstance(fps, (float, np.floating)) and math.isfinite(fps):
        value = Fraction(float(fps)).limit_denominator(1_000_000)
    else:
        raise InputError(f"fps must be a positive number or None, got {fps!r}")
    if value <= 0:
        raise InputError(f"fps must be positive, got {fps!r}")
    return value


def _parse_start(start) -> Fraction:
    if isinstance(start, (bool, np.bool_)) or not isinstance(start, (int, float, Fraction,
                                                                     np.integer, np.floating)):
        raise InputError(f"start must be a number of seconds, got {start!r}")
    if isinstance(start, (float, np.floating)) and not math.isfinite(start):
        raise InputError(f"start must be finite, got {start!r}")
    if start < 0:
        raise InputError(f"start must be >= 0 seconds, got {start!r}")
    return Fraction(start) if not isinstance(start, (float, np.floating)) else \
        Fraction(float(start)).limit_denominator(1_000_000)


def _parse_max_frames(max_frames) -> Optional[int]:
    if max_frames is None:
        return None
    if not is_int(max_frames) or max_frames < 0:
        raise InputError(f"max_frames must be an integer >= 0 or None, got {max_frames!r}")
    return int(max_frames)


# ---------------------------------------------------------------------------------------------
# frame-rate resampling


class _TickSampler:
    """Keeps the first frame at or after each tick ``t0 + k / fps`` (exact fractions)."""

    def __init__(self, fps: Optional[Fraction]):
        self.fps = fps
        self.t0 = None
        self.next_tick = 0

    def keep(self, t: Fraction) -> bool:
        if self.fps is None:
            return True
        if self.t0 is None:
            self.t0, self.next_tick = t, 1
            return True
        tick = math.floor((t - self.t0) * self.fps)     # the last tick at or before t
        if tick < self.next_tick:                       # that tick is already served
            return False
        self.next_tick = tick + 1
        return True


# ---------------------------------------------------------------------------------------------
# opening files


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_IMAGE_DEMUXERS = re.compile(r"^(image2|.*_pipe)$")


def _reason(err) -> str:
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return text.rstrip(".")


def _pick_video_stream(container):
    streams = list(container.streams.video)
    moving = [s for s in streams if not (int(getattr(s, "disposition", 0) or 0) & 0x400)]
    return (moving or streams or [None])[0]          # 0x400: AV_DISPOSITION_ATTACHED_PIC


def _open_container(av, where: str, **kwargs):
    try:
        return av.open(where, mode="r", **kwargs)
    except av.error.EOFError:
        raise VideoError(f"{where} contains no video frames (an empty or header-only file)") \
            from None
    except av.error.InvalidDataError:
        raise VideoError(f"{where} is not a video FFmpeg can read (invalid data; an mp4 cut "
                         f"short before its index, the 'moov' box, fails this way too)") from None
    except PermissionError:
        raise VideoError(f"cannot read {where}: permission denied") from None
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise VideoError(f"cannot open {where}: {_reason(err)}") from None


def _open_file(path):
    """Open ``path``; return (av, its name, container, video stream) after the checks of the
    module doc."""
    av = import_av()
    try:
        where = os.fspath(path)
    except TypeError:
        raise InputError(f"path must be a file path, got {path!r}") from None
    if isinstance(where, bytes):
        where = os.fsdecode(where)
    if not _URL.match(where):
        if not os.path.exists(where):
            raise VideoError(f"video file not found: {where}")
        if os.path.isdir(where):
            raise VideoError(f"{where} is a directory, not a video file")
    container = _open_container(av, where)
    try:
        stream = _check_stream(container, where)
        if _IMAGE_DEMUXERS.match(container.format.name or ""):
            if _count_frames(av, container, stream, limit=2) == 1:
                raise VideoError(f"{where} is a still image ({stream.codec_context.name}), not a "
                                 f"video: a video classifier needs frames over time")
            container.close()                        # rewind by reopening
            container = _open_container(av, where)
            stream = _check_stream(container, where)
    except BaseException:
        container.close()
        raise
    return av, where, container, stream


def _check_stream(container, where):
    stream = _pick_video_stream(container)
    if stream is None:
        kinds = ", ".join(f"{s.type} ({s.codec_context.name if s.codec_context else '?'})"
                          for s in container.streams) or "none"
        raise VideoError(f"{where} has no video stream (streams: {kinds})")
    if stream.codec_context is None:
        raise VideoError(f"{where}: unsupported video codec, this FFmpeg build has no decoder for "
                         f"it (convert it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)")
    return stream


def _count_frames(av, container, stream, limit):
    n = 0
    try:
        for _ in container.decode(stream):
            n += 1
            if n >= limit:
                break
    except (av.error.FFmpegError, OSError):
        pass
    return n


def _rotation_turns(frame) -> int:
    """Counter-clockwise quarter turns that make the frame upright (its display matrix)."""
    rot = getattr(frame, "rotation", 0) or 0
    turns = round(rot / 90)
    return int(turns) % 4 if abs(rot - 90 * turns) < 1e-3 else 0


# ---------------------------------------------------------------------------------------------
# decoding


class _Stats:
    def __init__(self):
        self.packets = 0            # non-empty packets demuxed
        self.decoded = 0            # frames out of the decoder
        self.failed = 0             # packets that failed to decode
        self.corrupt = 0            # frames the decoder flagged corrupt (skipped)
        self.error = None           # first demux/decode error
        self.demux_error = False


def _decode(av, container, stream, stats: _Stats):
    """Yield the decoded frames of ``stream``; corrupt packets are skipped and counted, a demux
    error ends the stream; the decoder is drained at the end."""
    demux = container.demux(stream)
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            break
        except (av.error.FFmpegError, OSError) as err:
            stats.error = stats.error or err
            stats.demux_error = True
            break
        if packet.size:
            stats.packets += 1
        try:
            frames = packet.decode()
        except (av.error.FFmpegError, OSError) as err:
            stats.error = stats.error or err
            stats.failed += 1
            continue
        for frame in frames:
            if getattr(frame, "is_corrupt", False):
                stats.corrupt += 1
                continue
            stats.decoded += 1
            yield frame
    if stats.demux_error:           # the flush packet was not reached: drain the decoder
        try:
            frames = stream.codec_context.decode(None)
        except (av.error.FFmpegError, OSError):
            frames = []
        for frame in frames:
            if not getattr(frame, "is_corrupt", False):
                stats.decoded += 1
                yield frame


def _frames(av, where, container, stream, fps, size, start, max_frames, with_times, live=False):
    """The generator behind read_video (and read_camera's PyAV fallback)."""
    try:
        if max_frames == 0:
            return
        sampler = _TickSampler(fps)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or 25
        step = 1 / Fraction(rate)           # only for frames without a timestamp
        target = None                       # drop frames before this time
        seeked = False
        if start > 0 and stream.start_time is not None:
            target = stream.start_time * stream.time_base + start
            try:
                container.seek(math.floor(target / stream.time_base), stream=stream,
                               backward=True, any_frame=False)
                seeked = True
            except (av.error.FFmpegError, OSError):
                container.close()
                _, _, container, stream = _open_file(where)
        stats, yielded, prev_t = _Stats(), 0, None
        frames = _decode(av, container, stream, stats)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            if frame.pts is not None:
                t = frame.pts * Fraction(frame.time_base or stream.time_base)
            else:
                t = Fraction(0) if prev_t is None else prev_t + step
            prev_t = t
            if target is None and start > 0:            # no stream start time: from 1st frame
                target = t + start
            if seeked and stats.decoded == 1 and t > target:
                # the demuxer seeked past the target: decode from the beginning instead
                frames.close()
                container.close()
                _, _, container, stream = _open_file(where)
                stats, seeked, prev_t = _Stats(), False, None
                frames = _decode(av, container, stream, stats)
                continue
            if target is not None and t < target:
                continue
            if not sampler.keep(t):
                continue
            img = frame.to_ndarray(format="rgb24")
            turns = _rotation_turns(frame)
            if turns:
                img = np.rot90(img, turns)
            img = np.ascontiguousarray(img)
            if size is not None and img.shape[:2] != size:
                img = resize_bilinear(img, *size)
            yield (float(t), img) if with_times else img
            yielded += 1
            if max_frames is not None and yielded >= max_frames:
                return
        what = "camera" if live else "video"
        if stats.decoded == 0:
            if seeked:
                raise VideoError(f"start={float(start)}s is past the end of {where}")
            why = (f": {_reason(stats.error)}" if stats.error is not None else
                   f": {stats.corrupt} corrupt frame(s)" if stats.corrupt else "")
            raise VideoError(f"{where} contains no decodable {what} frames{why}")
        if yielded == 0:
            raise VideoError(f"start={float(start)}s is past the end of {where} (last frame at "
                             f"{float(prev_t):.3f}s)")
        problems = []
        if stats.failed:
            problems.append(f"{stats.failed} packet(s) failed to decode ({_reason(stats.error)})")
        elif stats.demux_error:
            problems.append(f"reading stopped: {_reason(stats.error)}")
        if stats.corrupt:
            problems.append(f"{stats.corrupt} corrupt frame(s) skipped")
        if not seeked and not live and stream.frames and stats.packets < stream.frames:
            problems.append(f"the header announces {stream.frames} frames, the file holds "
                            f"{stats.packets}")
        if problems:
            warnings.warn(f"{where} ended early after {stats.decoded} decoded frames, truncated "
                          f"or corrupt: {'; '.join(problems)}", VideoWarning, stacklevel=2)
    finally:
        container.close()


def read_video(path, fps=None, size=None, start=0.0, max_frames=None, *,
               with_times: bool = False) -> Iterator[np.ndarray]:
    """Stream the frames of a video file as RGB uint8 arrays [H, W, 3].

    ``fps``: resample to this frame rate by timestamps (rule in the module doc; None: every
    frame).  ``size``: (height, width) or an int, resized like cv2 INTER_LINEAR.  ``start``:
    seconds from the beginning of the stream (seeks to the keyframe before, drops the frames
    before).  ``max_frames``: stop after that many frames.  ``with_times``: yield
    ``(seconds, frame)`` pairs, seconds being the frame's ``pts * time_base``.

    The file is opened and checked when this is called (errors are raised here); the frames
    are decoded one at a time as the generator is consumed.  Needs PyAV.
    """
    fps, size = _parse_fps(fps), _parse_size(size)
    start, max_frames = _parse_start(start), _parse_max_frames(max_frames)
    av, where, container, stream = _open_file(path)
    return _frames(av, where, container, stream, fps, size, start, max_frames, with_times)


# ---------------------------------------------------------------------------------------------
# file information


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (``frames`` and ``duration`` None if unknown)."""
    frames: Optional[int]
    fps: Optional[float]
    duration: Optional[float]        # seconds
    width: int                       # upright (after the stored rotation)
    height: int
    codec: str
    rotation: int = 0                # degrees counter-clockwise applied to the stored frames
    format: str = ""                 # FFmpeg demuxer name


def video_info(path) -> VideoInfo:
    """Frame count, frame rate, duration, size and codec of a video file (decodes one frame, for
    the upright size; nothing else is decoded, so ``frames`` is None when the header lacks it)."""
    av, _, container, stream = _open_file(path)
    try:
        frame = None
        stats = _Stats()
        for frame in _decode(av, container, stream, stats):
            break
        ctx = stream.codec_context
        width, height, turns = ctx.width, ctx.height, 0
        if frame is not None:
            turns = _rotation_turns(frame)
            width, height = (frame.height, frame.width) if turns % 2 else (frame.width,
                                                                           frame.height)
        rate = stream.average_rate or stream.guessed_rate
        if stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000          # AV_TIME_BASE
        else:
            duration = None
        frames = int(stream.frames) if stream.frames else (0 if frame is None else None)
        return VideoInfo(frames=frames, fps=float(rate) if rate else None, duration=duration,
                         width=int(width), height=int(height), codec=ctx.name,
                         rotation=90 * turns, format=container.format.name)
    finally:
        container.close()


# ---------------------------------------------------------------------------------------------
# cameras


@contextlib.contextmanager
def _quiet_opencv(cv2):
    """Silence OpenCV's log lines (a missing camera prints warnings on stderr)."""
    try:
        log = cv2.utils.logging
        old = log.getLogLevel()
        log.setLogLevel(log.LOG_LEVEL_SILENT)
    except Exception:           # noqa: BLE001 (an OpenCV without the logging API)
        yield
        return
    try:
        yield
    finally:
        log.setLogLevel(old)


def read_camera(index: int = 0, fps=None, size=None, *, with_times: bool = False,
                capture_size=None) -> Iterator[np.ndarray]:
    """Stream RGB uint8 frames [H, W, 3] from camera ``index`` until it stops (never on its own).

    Uses OpenCV (``cv2.VideoCapture(index)``) when installed, else PyAV's capture input (v4l2
    ``/dev/video{index}`` on Linux, avfoundation on macOS).  ``fps`` resamples by capture time
    with the rule of ``read_video``; ``size`` resizes.  ``capture_size=(width, height)`` asks
    the camera for that resolution (cameras deliver the nearest one they support).  A missing
    camera raises ``VideoError`` here; a camera that stops delivering ends the generator with a
    ``VideoWarning``.
    """
    if not is_int(index) or index < 0:
        raise InputError(f"camera index must be an integer >= 0, got {index!r}")
    index, fps, size = int(index), _parse_fps(fps), _parse_size(size)
    if capture_size is not None:
        try:
            height, width = _parse_size(tuple(capture_size)[::-1])   # checked like `size`
        except TypeError:
            raise InputError(f"capture_size must be (width, height), got {capture_size!r}") \
                from None
        capture_size = (width, height)
    try:
        import cv2  # noqa: PLC0415
    except ImportError:
        cv2 = None
    if cv2 is not None:
        with _quiet_opencv(cv2):
            cap = cv2.VideoCapture(index)
            opened = cap.isOpened()
            if opened and capture_size is not None:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, capture_size[0])
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, capture_size[1])
            ok, first = cap.read() if opened else (False, None)
        if not opened:
            cap.release()
            raise VideoError(f"no camera at index {index} (OpenCV cannot open it)")
        if not ok or first is None:
            cap.release()
            raise VideoError(f"camera {index} opened but delivered no frame")
        return _opencv_frames(cap, index, first, time.monotonic(), fps, size, with_times)
    try:
        av = import_av()
    except VideoError:
        raise VideoError("read_camera needs OpenCV (pip install opencv-python-headless) or PyAV "
                         f"({INSTALL_HINT})") from None
    if sys.platform.startswith("linux"):
        device, fmt = f"/dev/video{index}", "v4l2"
        if not os.path.exists(device):
            raise VideoError(f"no camera at index {index}: {device} does not exist")
    elif sys.platform == "darwin":
        device, fmt = str(index), "avfoundation"
    else:
        raise VideoError("without OpenCV, cameras are read only on Linux (v4l2) and macOS "
                         "(avfoundation): pip install opencv-python-headless")
    try:
        options = {} if capture_size is None else {"video_size": "%dx%d" % capture_size}
        container = av.open(device, mode="r", format=fmt, options=options)
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise VideoError(f"cannot open camera {index} ({device}, {fmt}): {_reason(err)}") \
            from None
    try:
        stream = _check_stream(container, device)
    except BaseException:
        container.close()
        raise
    return _frames(av, device, container, stream, fps, size, Fraction(0), None, with_times,
                   live=True)


def _opencv_frames(cap, index, first, first_time, fps, size, with_times):
    sampler = _TickSampler(fps)
    bgr, t, n = first, first_time, 0
    try:
        while True:
            n += 1
            if sampler.keep(Fraction(t)):
                if bgr.ndim == 2:
                    img = np.repeat(bgr[:, :, None], 3, axis=2)
                else:
                    img = np.ascontiguousarray(bgr[:, :, 2::-1])     # BGR(A) -> RGB
                if img.dtype != np.uint8:                              # 16-bit cameras
                    img = (img >> 8).astype(np.uint8)
                if size is not None and img.shape[:2] != size:
                    img = resize_bilinear(img, *size)
                yield (t, img) if with_times else img
            ok, bgr = cap.read()
            t = time.monotonic()
            if not ok or bgr is None:
                warnings.warn(f"camera {index} stopped delivering frames after {n}",
                              VideoWarning, stacklevel=2)
                return
    finally:
        cap.release()
