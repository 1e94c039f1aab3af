"""Offline from the first command (the embedded default), and the live options of the TFLite
Raspberry Pi example: --reset-every, --save-video, --allow / --deny / --threshold, --crop,
--threads, --camera-width / --camera-height, --version, help on every command."""
import argparse
import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import need

av = need("av", "PyAV is not installed: pip install 'minimovinet[video]'")

import minimovinet as mm  # noqa: E402
from minimovinet import cli, data  # noqa: E402
from minimovinet.apps import registry  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MINIMOVINET_HOME", str(cache))
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    return cache


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


# ---- the embedded default ------------------------------------------------------------------

def test_embedded_model_loads_on_an_empty_cache(empty_cache):
    assert registry.resolve("a0-stream-int8") == data.DEFAULT_MODEL
    model = mm.load("a0-stream-int8")
    assert isinstance(model, mm.Int8Movinet) and "carving ice" in model.class_names
    clf = mm.VideoClassifier()
    assert clf.has_class_names and clf.class_names == data.kinetics600_labels()
    assert not empty_cache.exists() or not any(empty_cache.rglob("*.tflite"))


def test_a_tflite_file_without_cached_labels_gets_kinetics_names(empty_cache, tmp_path):
    model = tmp_path / "mine.tflite"
    model.write_bytes(data.DEFAULT_MODEL.read_bytes())
    code, out, err = run_cli("classify", data.SAMPLE_CLIP, "--model", model, "--no-progress")
    assert code == 0, err
    assert out.splitlines()[1].split()[:3] == ["1.", "carving", "ice"]
    assert "class 72" not in out


def test_labels_file_overrides(empty_cache, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"my class {i}" for i in range(600)) + "\n")
    code, out, err = run_cli("classify", "--sample", "--labels", labels, "--top-k", "1")
    assert code == 0, err
    index = data.kinetics600_labels().index("carving ice")
    assert f"my class {index}" in out.splitlines()[1]


def test_convert_stores_the_kinetics_names(empty_cache, tmp_path):
    out_h5 = tmp_path / "a0_int8.h5"
    code, _, err = run_cli("convert", data.DEFAULT_MODEL, "-o", out_h5)
    assert code == 0, err
    assert mm.load(out_h5).class_names == data.kinetics600_labels()
    assert (out_h5.stat().st_mode & 0o777) == 0o666 & ~_umask()     # the usual mode


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_fetch_offline(empty_cache):
    """The embedded files are copied, the others are all listed at once with URL and path."""
    code, out, err = run_cli("fetch", "a0-stream-int8", "kinetics600-labels", "--no-progress")
    assert code == 0, err
    cached = registry.download_path("a0-stream-int8")
    assert cached.read_bytes() == data.DEFAULT_MODEL.read_bytes()
    code, out, err = run_cli("fetch", "a1-stream-int8", "a0-stream", "--no-progress")
    assert code == 1
    assert "2 of 2 file(s) could not be downloaded" in err
    for name in ("a1-stream-int8", "a0-stream"):
        entry = registry.get(name)
        assert f"{name}: download {entry.url} and save it as {registry.download_path(name)}" in err
    assert not any(p.suffix == ".part" for p in empty_cache.rglob("*"))


def test_output_naming_a_directory(empty_cache, tmp_path):
    code, out, err = run_cli("classify", "--sample", "-o", tmp_path)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "directory" in err and ".part" not in err


def test_sample_or_a_video(empty_cache):
    code, _, err = run_cli("classify")
    assert code == 1 and "--sample" in err
    code, _, err = run_cli("classify", "--sample", data.SAMPLE_CLIP)
    assert code == 1 and "not both" in err


def test_first_run_says_it_compiles(tmp_path):
    """With an empty Numba cache the first classify says it compiles and how long it took; the
    second one, from the cache, says nothing."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               MINIMOVINET_HOME=str(tmp_path / "cache"), **OFFLINE)
    command = [sys.executable, "-m", "minimovinet", "classify", "--sample", "--no-progress"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600,
                           cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert "compiling the kernels for this CPU (first run only" in first.stderr
    assert "kernels compiled in" in first.stderr
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600,
                            cwd=ROOT)
    assert second.returncode == 0 and "compiling" not in second.stderr
    assert second.stdout == first.stdout


# ---- options ---------------------------------------------------------------------------------

def test_version_and_help_on_every_command():
    code, out, _ = run_cli_exit("--version")
    assert code == 0 and out.strip() == f"minimovinet {mm.__version__}"
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) >= {"classify", "live", "convert", "describe", "models",
                                     "fetch"}
    for name, sub in commands.choices.items():
        assert commands._choices_actions and any(c.dest == name and c.help
                                                 for c in commands._choices_actions), name
        for action in sub._actions:
            assert action.help, f"minimovinet {name}: {action.option_strings or action.dest} " \
                                f"has no help text"


def run_cli_exit(*argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        cli.main(list(argv))
    return done.value.code, out.getvalue(), ""


def test_allow_deny_threshold():
    clf = mm.VideoClassifier(top_k=5)
    labels = data.kinetics600_labels()
    p = np.zeros(600)
    for name, value in (("carving ice", 0.6), ("ice climbing", 0.25), ("sawing wood", 0.1),
                        ("making snowman", 0.05)):
        p[labels.index(name)] = value
    assert [n for n, _ in clf.top(p)][:4] == ["carving ice", "ice climbing", "sawing wood",
                                              "making snowman"]
    allow = mm.VideoClassifier(allow=["Ice_Climbing", "sawing wood"])
    assert [n for n, _ in allow.top(p)] == ["ice climbing", "sawing wood"]
    deny = mm.VideoClassifier(deny=["carving ice"])
    assert "carving ice" not in [n for n, _ in deny.top(p)]
    threshold = mm.VideoClassifier(threshold=0.2)
    assert threshold.top(p) == [("carving ice", 0.6), ("ice climbing", 0.25)]
    with pytest.raises(mm.InputError, match="'carving icee' is not one of .*closest: carving ice"):
        mm.VideoClassifier(allow=["carving icee"])
    with pytest.raises(mm.InputError, match="threshold"):
        mm.VideoClassifier(threshold=1.5)


def test_allow_on_the_command_line(empty_cache):
    code, out, err = run_cli("classify", "--sample", "--allow", "ice climbing,sawing wood")
    assert code == 0, err
    shown = [line.split(".", 1)[1].rsplit(None, 1)[0].strip() for line in out.splitlines()[1:]]
    assert shown == ["ice climbing", "sawing wood"]
    code, _, _ = run_cli_exit("classify", "--sample", "--threshold", "2")     # bad usage
    assert code == 2
    code, _, err = run_cli("classify", "--sample", "--deny", "no such class")
    assert code == 1 and "is not one of the model's classes" in err


def test_center_crop():
    from minimovinet.apps.resize import center_crop, resize_bilinear
    clf = mm.VideoClassifier(crop="center")
    frame = np.random.default_rng(0).integers(0, 256, (100, 200, 3), dtype=np.uint8)
    expected = resize_bilinear(frame[:, 50:150], 172, 172).astype(np.float32) / 255
    np.testing.assert_array_equal(clf.preprocess(frame)[0, 0], expected)
    assert center_crop(frame, 172, 172).shape == (100, 100, 3)
    assert center_crop(frame.transpose(1, 0, 2), 172, 172).shape == (100, 100, 3)
    with pytest.raises(mm.InputError, match="crop"):
        mm.VideoClassifier(crop="middle")


def test_threads_option(empty_cache):
    code, out, err = run_cli("classify", "--sample", "--threads", "1")
    try:
        assert code == 0, err and mm.get_num_threads() == 1
    finally:
        mm.set_num_threads(None)
    import numba
    code, _, err = run_cli("classify", "--sample", "--threads", numba.config.NUMBA_NUM_THREADS + 1)
    mm.set_num_threads(None)
    assert code == 1 and "threads must be in 1.." in err


def test_camera_capture_size(monkeypatch):
    """--camera-width/--camera-height are asked of the camera (OpenCV's capture properties)."""
    cv2 = need("cv2", "the camera test fakes OpenCV's VideoCapture")
    calls = []

    class FakeCapture:
        def __init__(self, index):
            self.index = index

        def isOpened(self):
            return True

        def set(self, prop, value):
            calls.append((prop, value))
            return True

        def read(self):
            return True, np.zeros((48, 64, 3), np.uint8)

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    from minimovinet.apps.video import read_camera
    frames = read_camera(0, capture_size=(640, 480))
    assert (cv2.CAP_PROP_FRAME_WIDTH, 640) in calls and (cv2.CAP_PROP_FRAME_HEIGHT, 480) in calls
    frames.close()
    code, _, err = run_cli("live", "--camera", "0", "--camera-width", "640")
    assert code == 1 and "go together" in err
    code, _, err = run_cli("live", "--file", data.SAMPLE_CLIP, "--camera-width", "640",
                           "--camera-height", "480")
    assert code == 1 and "apply to --camera" in err


# ---- live: restarting the stream, recording -------------------------------------------------

@pytest.fixture(scope="module")
def two_actions(shared_dir, tmp_path_factory):
    """10 s of arm wrestling then 6.6 s of ice carving, 172x172 at 30 fps (the issue's case:
    without restarts the stream still says arm wrestling during the ice carving)."""
    from minimovinet.apps.video import read_video
    path = tmp_path_factory.mktemp("live") / "two_actions.mp4"
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=30)
    stream.width = stream.height = 172
    stream.pix_fmt, stream.options = "yuv420p", {"crf": "16"}
    for clip in ("arm_wrestling.mp4", "carving_ice_360.mp4"):
        for frame in read_video(shared_dir / "media" / clip, fps=30, size=(172, 172)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path, 280 / 30          # the second action starts at 9.33 s


def live_top1(*options):
    code, out, err = run_cli("live", *options)
    assert code == 0, err
    rows = []
    for line in out.splitlines():
        if line.strip().endswith(")") and " s  frame " in line:
            seconds = float(line.split()[0])
            label = line.split("frame", 1)[1].split(None, 1)[1].split(" | ")[0].rsplit(None, 1)[0]
            rows.append((seconds, label))
    return rows


def test_reset_every_follows_the_action(two_actions, empty_cache):
    path, second = two_actions
    rows = live_top1("--file", path, "--speed", "4", "--reset-every", "2")
    first_part = [label for t, label in rows if 2 <= t < second - 1.5]
    second_part = [label for t, label in rows if second + 2 <= t < second + 5.5]
    assert first_part and first_part.count("arm wrestling") >= 0.8 * len(first_part), first_part
    assert second_part and second_part.count("carving ice") >= 0.8 * len(second_part), second_part
    # without restarts the stream keeps the first action (what --reset-every is for)
    plain = live_top1("--file", path, "--speed", "4")
    assert [label for t, label in plain if t >= second + 5][-1] == "arm wrestling"


def test_resetting_streams_schedule():
    from minimovinet.apps.live import ResettingStreams
    clf = mm.VideoClassifier(top_k=1)
    streams = ResettingStreams(clf, every=2.0)
    frame = np.zeros((172, 172, 3), np.uint8)
    oldest_start = []
    for t in np.arange(0, 6, 0.2):
        streams.step(float(t), frame)
        oldest_start.append((float(t), min(streams.started)))
    for t, start in oldest_start:
        if t >= 1.0:                                    # the shown stream has 1..2 s of history
            assert 1.0 - 1e-9 <= t - start < 2.0 + 1e-9, (t, start)
    streams.reset()
    streams.step(6.0, frame)
    assert streams.started == [6.0, 6.0]


def test_save_video_holds_the_overlay(tmp_path, empty_cache):
    need("cv2", "the overlay text is drawn with OpenCV")
    from minimovinet.apps.live import LiveClassifier
    from minimovinet.apps.overlay import VideoWriter, draw_overlay
    from minimovinet.apps.video import read_video
    drawn = []
    with LiveClassifier(mm.VideoClassifier(), data.SAMPLE_CLIP, speed=8,
                        native_frames=True) as live, \
            VideoWriter(tmp_path / "api.mp4", live.fps) as writer:
        for update in live.updates():
            picture = draw_overlay(update.frame, update.top, 5.0, 1000 * update.inference)
            writer.write(picture)
            drawn.append((update.frame, picture))
    decoded = list(read_video(tmp_path / "api.mp4"))
    assert len(decoded) == len(drawn) > 10
    for got, (raw, picture) in zip(decoded, drawn):
        assert got.shape == picture.shape
        diff = np.abs(got.astype(int) - picture.astype(int))
        assert diff.mean() < 2.0                              # the codec's loss only
        enlarged = np.repeat(np.repeat(raw, picture.shape[0] // raw.shape[0], 0),
                             picture.shape[1] // raw.shape[1], 1)
        panel = (slice(0, 60), slice(0, 150))                  # where the text is
        assert np.abs(got[panel].astype(int) - enlarged[panel].astype(int)).mean() > 20
    # the command line records as many frames as it classified
    code, out, err = run_cli("live", "--file", data.SAMPLE_CLIP, "--speed", "8",
                             "--save-video", tmp_path / "cli.mp4")
    assert code == 0, err
    classified = int(out.strip().splitlines()[-1].split()[1])
    assert len(list(read_video(tmp_path / "cli.mp4"))) == classified
    assert not list(tmp_path.glob(".*.part*"))


def test_behind_warning(empty_cache, monkeypatch):
    """Inference slower than the frame interval: one warning that says so."""
    import time
    from minimovinet.apps import classify
    real_step = classify.VideoClassifier.step

    def slow_step(self, frame):
        time.sleep(0.08)                     # > 50 ms between frames at --fps 20
        return real_step(self, frame)

    monkeypatch.setattr(classify.VideoClassifier, "step", slow_step)
    code, out, err = run_cli("live", "--file", data.SAMPLE_CLIP, "--fps", "20")
    assert code == 0, err
    assert err.count("warning: inference takes") == 1 and "frames are dropped" in err


def test_show_without_a_display_is_one_clear_line(empty_cache, monkeypatch):
    cv2 = need("cv2", "--show uses OpenCV")
    monkeypatch.delenv("DISPLAY", raising=False)
    try:
        cv2.namedWindow("probe")
        cv2.destroyWindow("probe")
    except cv2.error:
        pass
    else:
        from conftest import expected_skip
        expected_skip("this OpenCV opens windows without a display")
    code, _, err = run_cli("live", "--file", data.SAMPLE_CLIP, "--show")
    assert code == 1 and "--show cannot open a window" in err and "Traceback" not in err
