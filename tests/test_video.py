"""The video input layer (minimovinet.apps.video): decoding, frame-rate resampling by timestamps,
the bilinear resize against OpenCV, and the edge cases (missing, not a video, still image,
no frames, truncated, unsupported codec, no camera).

Needs PyAV (`pip install 'minimovinet[video]'`); the OpenCV comparisons need
opencv-python-headless and skip without it.  Real clips come from ../shared/media (skipped when
absent); everything else is synthesised with PyAV in a temporary directory.  No network.
"""
import bisect
import hashlib
import os
import subprocess
import sys
import tracemalloc
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import missing, need  # noqa: E402

av = need("av", "PyAV is not installed: pip install 'minimovinet[video]'")

from minimovinet.errors import InputError, MinimovinetError, VideoError  # noqa: E402
from minimovinet.apps.video import (VideoWarning, read_camera, read_video, resize_bilinear,  # noqa: E402
                               to_model_input, video_info)

try:
    import cv2
except ImportError:
    cv2 = None
needs_cv2 = pytest.mark.skipif(cv2 is None, reason="OpenCV is not installed "
                               "(pip install opencv-python-headless): no cv2 reference")

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
# name: (frames, width, height, fps and duration as the container reports them)
CLIPS = {
    "carving_ice_172.mp4": (131, 172, 172, 29.59, 4.36),
    "carving_ice_360.mp4": (200, 360, 360, 30.0, 6.667),
    "arm_wrestling.mp4": (280, 340, 256, 28.0, 10.0),
    "rope_pushdown_400.mp4": (50, 400, 400, 5.0, 10.0),
}


@pytest.fixture(scope="module")
def media():
    if not all((MEDIA / name).is_file() for name in CLIPS):
        missing(f"the shared clips are absent ({MEDIA}): real-video tests need ../shared/media")
    return MEDIA


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    """A VideoWarning where none is expected (a false 'truncated') fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoWarning)
        yield


# ---------------------------------------------------------------------------------------------
# references computed with PyAV directly


_DIRECT = {}


def direct_decode(path):
    """(times, frame hashes) of every frame, decoded by PyAV without minimovinet (cached)."""
    key = str(path)
    if key not in _DIRECT:
        times, hashes = [], []
        with av.open(key) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                times.append(frame.pts * Fraction(frame.time_base))
                hashes.append(digest(frame.to_ndarray(format="rgb24")))
        _DIRECT[key] = times, hashes
    return _DIRECT[key]


def digest(a):
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()


def rule_picks(times, fps):
    """The documented rule, literally: for each tick t0 + k/fps, the first frame at or after it."""
    fps = Fraction(fps)
    assert times == sorted(times)
    picks, k = set(), 0
    while times[0] + k / fps <= times[-1]:
        picks.add(bisect.bisect_left(times, times[0] + k / fps))
        k += 1
    return sorted(picks)


# ---------------------------------------------------------------------------------------------
# real clips


@pytest.mark.parametrize("name", CLIPS)
def test_video_info_real_clips(media, name):
    frames, width, height, fps, duration = CLIPS[name]
    info = video_info(media / name)
    assert (info.frames, info.width, info.height, info.codec) == (frames, width, height, "h264")
    assert info.fps == pytest.approx(fps, abs=0.01)
    assert info.duration == pytest.approx(duration, abs=0.001)
    assert info.rotation == 0


@pytest.mark.parametrize("name", CLIPS)
def test_read_every_frame_real_clips(media, name):
    times, hashes = direct_decode(media / name)
    got = list(read_video(media / name, with_times=True))
    assert len(got) == CLIPS[name][0] == len(times)
    assert all(f.dtype == np.uint8 and f.shape == (CLIPS[name][2], CLIPS[name][1], 3)
               and f.flags["C_CONTIGUOUS"] for _, f in got)
    assert [t for t, _ in got] == [float(t) for t in times]
    assert [digest(f) for _, f in got] == hashes


@needs_cv2
@pytest.mark.parametrize("name", ["carving_ice_360.mp4", "arm_wrestling.mp4"])
def test_frames_equal_opencv_videocapture(media, name):
    """PyAV's RGB conversion gives the pixels cv2.VideoCapture gives (the published pipeline)."""
    cap = cv2.VideoCapture(str(media / name))
    try:
        for frame in read_video(media / name, max_frames=8):
            ok, bgr = cap.read()
            assert ok
            np.testing.assert_array_equal(frame, bgr[:, :, ::-1])
    finally:
        cap.release()


@pytest.mark.parametrize("name,fps", [
    ("carving_ice_360.mp4", 5), ("carving_ice_360.mp4", 30), ("carving_ice_172.mp4", 5),
    ("arm_wrestling.mp4", 5), ("arm_wrestling.mp4", 12), ("rope_pushdown_400.mp4", 5),
    ("rope_pushdown_400.mp4", 2), ("rope_pushdown_400.mp4", 24),
])
def test_resampling_follows_timestamps_real_clips(media, name, fps):
    times, hashes = direct_decode(media / name)
    picks = rule_picks(times, fps)
    got = list(read_video(media / name, fps=fps, with_times=True))
    assert [t for t, _ in got] == [float(times[i]) for i in picks]
    assert [digest(f) for _, f in got] == [hashes[i] for i in picks]
    if name.startswith("carving_ice") and fps == 5:        # 30 fps timestamps: every sixth
        assert picks == list(range(0, len(times), 6))
    if name.startswith("rope") and fps >= 5:               # a 5 fps source: every frame, once
        assert picks == list(range(len(times)))
    if fps == 30 and name == "carving_ice_360.mp4":
        assert picks == list(range(len(times)))


def test_start_and_max_frames_real_clip(media):
    path = media / "arm_wrestling.mp4"
    times, hashes = direct_decode(path)
    first = bisect.bisect_left(times, Fraction(1))          # the first frame at or after 1 s
    got = list(read_video(path, start=1.0, max_frames=5, with_times=True))
    assert [t for t, _ in got] == [float(t) for t in times[first:first + 5]]
    assert [digest(f) for _, f in got] == hashes[first:first + 5]
    # start + fps: the ticks start at the first frame read
    picks = [first + i for i in rule_picks(times[first:], 5)]
    got = list(read_video(path, start=1.0, fps=5, with_times=True))
    assert [t for t, _ in got] == [float(times[i]) for i in picks]
    assert list(read_video(path, max_frames=0)) == []
    with pytest.raises(VideoError, match="past the end"):
        list(read_video(path, start=60))


@needs_cv2
def test_read_video_size_is_opencv_resize(media):
    path = media / "carving_ice_360.mp4"
    plain = read_video(path, max_frames=4)
    for small in read_video(path, size=172, max_frames=4):
        np.testing.assert_array_equal(
            small, cv2.resize(next(plain), (172, 172), interpolation=cv2.INTER_LINEAR))


# ---------------------------------------------------------------------------------------------
# the resize against OpenCV

SIZES = [(172, 172), (224, 224), (100, 300), (401, 399), (86, 86), (180, 180), (120, 120),
         (37, 511), (1, 1), (5, 700)]


@needs_cv2
def test_resize_matches_opencv_on_real_frames(media, capsys):
    frames = []
    for name in CLIPS:
        for i, frame in enumerate(read_video(media / name, fps=1, max_frames=3)):
            frames.append(frame)
    worst, differing, total = 0, 0, 0
    for frame in frames:
        for height, width in SIZES + [frame.shape[:2][::-1], (frame.shape[0] * 2, frame.shape[1])]:
            ours = resize_bilinear(frame, height, width)
            ref = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)
            assert ours.shape == ref.shape and ours.dtype == np.uint8
            diff = np.abs(ours.astype(np.int16) - ref)
            worst, differing, total = max(worst, int(diff.max())), differing + int(
                np.count_nonzero(diff)), total + diff.size
    with capsys.disabled():
        print(f"\n[resize vs cv2 INTER_LINEAR, uint8] {len(frames)} real frames x "
              f"{len(SIZES) + 2} sizes: max |diff| = {worst}, differing values "
              f"{differing}/{total}")
    assert worst <= 1
    assert differing <= total * 1e-4            # plain float rounding would differ on ~10%


@needs_cv2
def test_resize_matches_opencv_on_noise_and_floats():
    rng = np.random.default_rng(0)
    for shape in [(97, 131, 3), (64, 64, 1), (33, 20), (360, 360, 4)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        for height, width in [(50, 70), (172, 172), (200, 31), (shape[0] // 2, shape[1] // 2)]:
            ref = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
            ours = resize_bilinear(img, height, width)
            ref = ref.reshape(ours.shape)          # cv2 drops a trailing channel axis of 1
            assert np.abs(ours.astype(np.int16) - ref).max() <= 1
            assert np.count_nonzero(ours != ref) <= ours.size * 1e-3
            flt = img.astype(np.float32) / 255
            reff = cv2.resize(flt, (width, height), interpolation=cv2.INTER_LINEAR)
            oursf = resize_bilinear(flt, height, width)
            assert oursf.dtype == np.float32
            np.testing.assert_allclose(oursf, reff.reshape(oursf.shape), rtol=0, atol=1e-6)


def test_resize_properties_without_opencv():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    same = resize_bilinear(img, 40, 60)
    assert np.array_equal(same, img) and same is not img
    flat = np.full((31, 17, 3), 200, np.uint8)
    assert np.all(resize_bilinear(flat, 90, 7) == 200)
    # exact 2x downscale: the mean of each 2x2 block, rounded half up
    blocks = img.reshape(20, 2, 30, 2, 3).astype(np.int32).sum(axis=(1, 3))
    np.testing.assert_array_equal(resize_bilinear(img, 20, 30), (blocks + 2) >> 2)
    # 2-D input, float input
    assert resize_bilinear(img[:, :, 0], 10, 11).shape == (10, 11)
    up = resize_bilinear(img.astype(np.float64), 80, 120)
    assert up.dtype == np.float32 and up.shape == (80, 120, 3)
    for bad in [(img, 0, 5), (img, 5, 2.5), (img.astype(np.int32), 5, 5),
                (np.zeros((2, 2, 2, 3), np.uint8), 5, 5)]:
        with pytest.raises(InputError):
            resize_bilinear(*bad)


def test_to_model_input():
    frame = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4
    x = to_model_input(frame)
    assert x.shape == (1, 1, 4, 5, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, 0], frame.astype(np.float32) / np.float32(255))
    assert to_model_input(np.full((2, 2, 3), 255, np.uint8)).max() == 1.0
    for bad in [frame.astype(np.float32), frame[:, :, :2], frame[None]]:
        with pytest.raises(InputError, match="uint8 RGB frame"):
            to_model_input(bad)


# ---------------------------------------------------------------------------------------------
# synthetic videos


W, H = 64, 48


def grey_frames(n, step=4):
    return [np.full((H, W, 3), (i * step) % 256, np.uint8) for i in range(n)]


def write_video(path, frames, codec="libx264", rate=30, pix_fmt="yuv420p", pts_ms=None,
                options=None, rotation=None):
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        if pts_ms is not None:
            stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def grey_index(frame, step=4):
    return int(round(float(frame.mean()) / step))


VFR_MS = [0, 40, 50, 130, 135, 300, 310, 320, 330, 700, 701, 1000, 1033, 1066, 1400]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    noise = [np.random.default_rng(i).integers(0, 256, (H, W, 3), dtype=np.uint8)
             for i in range(30)]
    rgb = [np.zeros((H, W, 3), np.uint8) for _ in range(12)]
    for i, a in enumerate(rgb):
        a[..., i % 3] = 255                                 # red, green, blue, red, ...
    corner = [np.zeros((H, W, 3), np.uint8) for _ in range(3)]
    for a in corner:
        a[:8, :8] = 255                                     # a white top-left corner
    paths = {
        "cfr30.mp4": write_video(d / "cfr30.mp4", grey_frames(60)),
        "vfr.mp4": write_video(d / "vfr.mp4", grey_frames(len(VFR_MS), 16), pts_ms=VFR_MS),
        "anim.gif": write_video(d / "anim.gif", rgb, codec="gif", rate=10, pix_fmt="rgb8"),
        "clip.webm": write_video(d / "clip.webm", grey_frames(20, 12), codec="libvpx-vp9",
                                 rate=10),
        "clip.avi": write_video(d / "clip.avi", grey_frames(20, 12), codec="mpeg4", rate=10),
        "clip.mov": write_video(d / "clip.mov", grey_frames(20, 12), rate=10),
        "rot90.mp4": write_video(d / "rot90.mp4", corner, rate=10, rotation=90),
        "noise_faststart.mp4": write_video(d / "noise_faststart.mp4", noise,
                                           options={"movflags": "faststart"}),
        "noise.mp4": write_video(d / "noise.mp4", noise),
        "header_only.avi": d / "header_only.avi",
        "audio.m4a": d / "audio.m4a",
        "still.png": d / "still.png",
        "text.txt": d / "text.txt",
        "unsupported.avi": d / "unsupported.avi",
    }
    with av.open(str(paths["header_only.avi"]), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height = W, H
        container.start_encoding()
    with av.open(str(paths["audio.m4a"]), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(paths["still.png"]), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = W, H, "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(noise[0], format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    paths["text.txt"].write_text("not a video\n" * 20)
    data = write_video(d / "tmp.avi", grey_frames(10), codec="mpeg4").read_bytes()
    assert b"FMP4" in data                                  # the codec tag: unknown to FFmpeg
    paths["unsupported.avi"].write_bytes(data.replace(b"FMP4", b"ZQZQ"))
    return paths


@pytest.mark.parametrize("name,codec,n,fps", [
    ("cfr30.mp4", "h264", 60, 30), ("clip.webm", "vp9", 20, 10), ("clip.avi", "mpeg4", 20, 10),
    ("clip.mov", "h264", 20, 10), ("anim.gif", "gif", 12, 10)])
def test_synthetic_formats(synth, name, codec, n, fps):
    info = video_info(synth[name])
    assert (info.width, info.height, info.codec, info.fps) == (W, H, codec, fps)
    assert info.frames in (n, None)                         # webm headers have no frame count
    assert info.duration == pytest.approx(n / fps, abs=0.02)
    frames = list(read_video(synth[name]))
    assert len(frames) == n and all(f.shape == (H, W, 3) and f.dtype == np.uint8
                                    for f in frames)
    if name == "anim.gif":                                  # channel order: R, G, B cycling
        for i, f in enumerate(frames):
            assert np.argmax(f.reshape(-1, 3).mean(axis=0)) == i % 3 and f.max() >= 250
    else:
        assert [grey_index(f, 4 if n == 60 else 12) for f in frames] == list(range(n))


def test_constant_rate_resampling(synth):
    path = synth["cfr30.mp4"]
    times, _ = direct_decode(path)
    assert times == [Fraction(i, 30) for i in range(60)]
    indices = lambda fps: [grey_index(f) for f in read_video(path, fps=fps)]  # noqa: E731
    assert indices(5) == list(range(0, 60, 6))              # every sixth
    assert indices(30) == list(range(60))
    assert indices(60) == list(range(60))                   # never duplicated
    assert indices(7) == rule_picks(times, 7)
    assert indices(29.97) == rule_picks(times, Fraction(2997, 100))
    assert indices(Fraction(15, 2)) == rule_picks(times, Fraction(15, 2))


def test_variable_frame_rate_follows_timestamps(synth):
    path = synth["vfr.mp4"]
    times, _ = direct_decode(path)
    assert times == [Fraction(ms, 1000) for ms in VFR_MS]
    got = list(read_video(path, with_times=True))
    assert [t for t, _ in got] == [ms / 1000 for ms in VFR_MS]
    assert [grey_index(f, 16) for _, f in got] == list(range(len(VFR_MS)))
    ten = [grey_index(f, 16) for f in read_video(path, fps=10)]
    # ticks 0, .1, .2, ..., 1.4 s -> first frame at or after each: 0 ms, 130, 300, 700, 1000,
    # 1400 (the ticks .4 .5 .6 fall in the gap before 700 ms: that frame is taken once)
    assert ten == rule_picks(times, 10) == [0, 3, 5, 9, 11, 14]


def test_rotation_is_applied(synth):
    info = video_info(synth["rot90.mp4"])
    assert (info.width, info.height, info.rotation) == (H, W, 90)
    frames = list(read_video(synth["rot90.mp4"], size=(32, 24)))
    assert len(frames) == 3 and frames[0].shape == (32, 24, 3)
    upright = list(read_video(synth["rot90.mp4"]))[0]
    assert upright.shape == (W, H, 3)
    assert upright[-4:, :4].min() > 200 and upright[:4, :4].max() < 50   # corner moved (ccw)
    if cv2 is not None:                                     # cv2 applies it the same way
        cap = cv2.VideoCapture(str(synth["rot90.mp4"]))
        ok, bgr = cap.read()
        cap.release()
        assert ok and np.array_equal(upright, bgr[:, :, ::-1])


@pytest.mark.parametrize("name", ["anim.gif", "clip.webm", "clip.avi", "clip.mov", "vfr.mp4"])
def test_start_seeks_in_every_format(synth, name):
    times, hashes = direct_decode(synth[name])
    for start in (0.3, 0.55, 1.0):
        first = bisect.bisect_left(times, Fraction(start).limit_denominator(1000))
        got = list(read_video(synth[name], start=start, max_frames=2, with_times=True))
        assert [t for t, _ in got] == [float(t) for t in times[first:first + 2]]
        assert [digest(f) for _, f in got] == hashes[first:first + 2]
    video_error(lambda: list(read_video(synth[name], start=float(times[-1]) + 0.01)),
                "past the end")


class _BadSeek:
    """A container whose seek fails, or lands after the target (a demuxer without an index)."""

    def __init__(self, container, mode):
        self._container, self._mode = container, mode

    def __getattr__(self, name):
        return getattr(self._container, name)

    def seek(self, offset, stream=None, **kwargs):
        if self._mode == "fail":
            raise av.error.FFmpegError(-1, "seek not supported")
        self._container.seek(offset + int(0.4 / stream.time_base), stream=stream, any_frame=True)


@pytest.mark.parametrize("mode", ["fail", "overshoot"])
def test_start_when_seeking_fails_or_overshoots(synth, monkeypatch, mode):
    import minimovinet.apps.video as video
    real_open = video._open_container
    monkeypatch.setattr(video, "_open_container",
                        lambda *a, **k: _BadSeek(real_open(*a, **k), mode))
    times, hashes = direct_decode(synth["clip.avi"])
    got = list(read_video(synth["clip.avi"], start=1.0, with_times=True))   # decodes from 0
    assert [t for t, _ in got] == [float(t) for t in times[10:]]
    assert [digest(f) for _, f in got] == hashes[10:]


# ---------------------------------------------------------------------------------------------
# errors: one clear line, never an FFmpeg traceback


def video_error(call, match):
    with pytest.raises(VideoError, match=match) as info:
        call()
    err = info.value
    assert isinstance(err, MinimovinetError) and "\n" not in str(err)
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    return str(err)


@pytest.mark.parametrize("name,match", [
    ("missing.mp4", "video file not found"),
    ("text.txt", "is not a video FFmpeg can read"),
    ("still.png", "is a still image"),
    ("audio.m4a", r"has no video stream \(streams: audio \(aac\)\)"),
    ("unsupported.avi", "unsupported video codec"),
])
def test_files_that_are_not_videos(synth, tmp_path, name, match):
    path = synth.get(name, tmp_path / name)
    video_error(lambda: read_video(path), match)            # raised at the call, not later
    video_error(lambda: video_info(path), match)


def test_directory_and_zero_frame_video(synth, tmp_path):
    video_error(lambda: read_video(tmp_path), "is a directory")
    assert video_info(synth["header_only.avi"]).frames == 0
    video_error(lambda: list(read_video(synth["header_only.avi"])),
                "contains no decodable video frames")


def test_truncated_video_warns_and_keeps_the_decodable_frames(synth, tmp_path):
    full = dict(read_video(synth["noise_faststart.mp4"], with_times=True))
    assert len(full) == 30
    data = synth["noise_faststart.mp4"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.warns(VideoWarning, match="ended early after .* truncated or corrupt"):
        got = list(read_video(cut, with_times=True))
    assert 0 < len(got) < 30
    assert all(np.array_equal(f, full[t]) for t, f in got)      # every frame intact
    # an mp4 whose index ('moov') is at the end cannot be opened once cut
    data = synth["noise.mp4"].read_bytes()
    assert data.index(b"moov") > data.index(b"mdat")
    cut.write_bytes(data[:len(data) // 2])
    video_error(lambda: read_video(cut), "cannot read.*|not a video FFmpeg can read.*moov")


def test_truncated_real_clip(media, tmp_path):
    data = (media / "carving_ice_360.mp4").read_bytes()    # its 'moov' is at the front
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.warns(VideoWarning, match="header announces 200 frames"):
        got = list(read_video(cut, with_times=True))
    times, hashes = direct_decode(media / "carving_ice_360.mp4")
    assert 80 < len(got) < 110
    # the frames that decode are intact (the partial packet's frame is missing, not garbage)
    by_time = dict(zip((float(t) for t in times), hashes))
    assert all(digest(f) == by_time[t] for t, f in got)
    assert [t for t, _ in got][:80] == [float(t) for t in times[:80]]


def test_bad_arguments(synth):
    path = synth["cfr30.mp4"]
    for kwargs in [dict(fps=0), dict(fps=-5), dict(fps="5"), dict(fps=float("nan")),
                   dict(size=(0, 5)), dict(size=(5,)), dict(size=2.5), dict(start=-1),
                   dict(max_frames=-1), dict(max_frames=1.5)]:
        with pytest.raises(InputError):
            read_video(path, **kwargs)


# ---------------------------------------------------------------------------------------------
# memory, optional dependencies, cameras


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_long_video_streams_in_flat_memory(tmp_path):
    size, n = 96, 3000
    texture = np.random.default_rng(0).integers(0, 256, (size, 2 * size, 3), dtype=np.uint8)
    path = tmp_path / "long.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width = stream.height = size
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(texture[:, i % size:i % size + size]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    frame_bytes = size * size * 3                           # all frames: 83 MB
    count, rss = 0, {}
    tracemalloc.start()
    try:
        for frame in read_video(path):
            count += 1
            if count in (300, n):
                rss[count] = _rss_bytes() if os.path.exists("/proc/self/statm") else 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == n
    assert peak < 40 * frame_bytes, f"peak Python allocations {peak} bytes"
    assert rss[n] - rss[300] < 20 * 2**20, f"RSS grew by {rss[n] - rss[300]} bytes"


def test_missing_pyav_is_a_clear_error(monkeypatch, synth):
    monkeypatch.setitem(sys.modules, "av", None)            # import av -> ImportError
    for call in (lambda: read_video(synth["cfr30.mp4"]), lambda: video_info(synth["cfr30.mp4"])):
        video_error(call, r"pip install 'minimovinet\[video\]'")


def test_importing_minimovinet_does_not_import_av():
    code = ("import sys, minimovinet, minimovinet.apps.video; "
            "assert 'av' not in sys.modules and 'cv2' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   cwd=Path(__file__).resolve().parents[1])


ABSENT = 63     # no machine running the tests has 64 cameras


def test_camera_errors(monkeypatch):
    with pytest.raises(InputError):
        read_camera(-1)
    if cv2 is not None:
        video_error(lambda: read_camera(ABSENT), f"no camera at index {ABSENT}")
    monkeypatch.setitem(sys.modules, "cv2", None)           # the PyAV (v4l2) fallback
    if sys.platform.startswith("linux"):
        video_error(lambda: read_camera(ABSENT), f"/dev/video{ABSENT} does not exist")
    monkeypatch.setitem(sys.modules, "av", None)
    video_error(lambda: read_camera(ABSENT), "needs OpenCV .* or PyAV")
