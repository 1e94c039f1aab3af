"""Video classification: `minimovinet classify` / `live` end to end and `mm.VideoClassifier`.

The official A0 stream int8 model and the Kinetics-600 names from ../shared are placed into a
temporary cache ($MINIMOVINET_HOME), as `minimovinet fetch a0-stream-int8` would leave them;
the clips are ../shared/media (everything skips when ../shared is absent).  A few runs are real
subprocesses (`python -m minimovinet`: exit codes, stdout/stderr, no traceback); the many
bad-input cases call `cli.main` in the test process, which checks the same exit code and
stderr line without paying a process start and imports each time.  No network.
"""
import csv
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import need  # noqa: E402

av = need("av", "PyAV is not installed: pip install 'minimovinet[video]'")

import minimovinet as mm  # noqa: E402
from minimovinet import cli
from minimovinet.apps import registry
from minimovinet.apps import live as live_engine  # noqa: E402
from minimovinet.apps.classify import PLOT_SIZE  # noqa: E402
from minimovinet.errors import InputError  # noqa: E402
from minimovinet.apps.video import read_video, to_model_input  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = "a0-stream-int8"


# ---------------------------------------------------------------------------------------------
# fixtures: the shared files, a cache holding the official int8 model


@pytest.fixture(scope="module")
def media(shared_dir):
    return shared_dir / "media"


def place_model(cache: Path, shared: Path) -> Path:
    """Put the official int8 model and the class names where `minimovinet fetch` puts them."""
    for name, source in ((MODEL, shared / "models" / "movinet_a0_stream_k600_int8.tflite"),
                         ("kinetics600-labels", shared / "labels" / "kinetics600_label_map.txt")):
        dest = registry.download_path(name, cache)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
    return cache


@pytest.fixture(scope="module")
def cache(shared_dir, tmp_path_factory):
    return place_model(tmp_path_factory.mktemp("cache"), shared_dir)


@pytest.fixture
def home(cache, monkeypatch):
    """The cache as $MINIMOVINET_HOME for the in-process CLI runs."""
    monkeypatch.setenv("MINIMOVINET_HOME", str(cache))
    return cache


@pytest.fixture(scope="module")
def classifier(cache):
    return mm.VideoClassifier(MODEL, cache=cache)


@pytest.fixture(scope="module")
def labels(shared_dir):
    text = (shared_dir / "labels" / "kinetics600_label_map.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def every_frame(classifier, media):
    """classify(carving_ice_172, every_frame=True) and the float64 probabilities after it."""
    result = classifier.classify(media / "carving_ice_172.mp4", every_frame=True)
    return result, classifier.probabilities.copy()


def run(*argv, cache, cwd):
    """`python -m minimovinet ARGV` with the cache as $MINIMOVINET_HOME."""
    env = dict(os.environ, MINIMOVINET_HOME=str(cache))
    return subprocess.run([sys.executable, "-m", "minimovinet", *map(str, argv)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def run_main(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def softmax(logits):
    z = np.asarray(logits, np.float64)[0]
    z = np.exp(z - z.max())
    return z / z.sum()


def png_pixels(path):
    from matplotlib.image import imread
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return imread(path)                                  # [H, W, 4] float in [0, 1]


# ---------------------------------------------------------------------------------------------
# the command line, end to end (subprocesses)


def test_classify_json_and_plot(cache, media, classifier, tmp_path):
    need("matplotlib", "--plot draws with matplotlib")
    plot = tmp_path / "timeline.png"
    done = run("classify", media / "carving_ice_172.mp4", "--json", "--plot", plot,
               cache=cache, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""                               # no progress bar: not a terminal
    result = json.loads(done.stdout)
    assert result["top_k"][0]["label"] == "carving ice"
    assert result["model"] == MODEL and result["fps"] == 5.0 and len(result["top_k"]) == 5
    # the timeline: one entry per frame at 5 fps, dated by the container's timestamps
    times = [t for t, _ in read_video(media / "carving_ice_172.mp4", fps=5, with_times=True)]
    timeline = result["timeline"]
    assert result["frames"] == len(timeline) == len(times) == 22
    assert [p["frame"] for p in timeline] == list(range(22))
    assert [p["time"] for p in timeline] == times
    assert timeline[-1]["top_k"] == result["top_k"]
    # the same numbers as the Python API
    expected = classifier.classify(media / "carving_ice_172.mp4")
    assert [(p["label"], p["probability"]) for p in result["top_k"]] == expected.top
    assert [[(c["label"], c["probability"]) for c in p["top_k"]] for p in timeline] == \
        [p.top for p in expected.timeline]
    # the plot: a PNG of the documented size, with the top class's line drawn on it
    pixels = png_pixels(plot)
    assert pixels.shape[:2] == (PLOT_SIZE[1], PLOT_SIZE[0])
    rgb = np.round(pixels[:, :, :3] * 255).astype(int)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 20
    blue = np.all(np.abs(rgb - (31, 119, 180)) <= 2, axis=2)        # matplotlib's first colour
    assert blue.sum() > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["timeline.png"]    # no temporary left


def test_classify_text_arm_wrestling(cache, media, tmp_path):
    done = run("classify", media / "arm_wrestling.mp4", "--fps", "5", "--top-k", "3",
               cache=cache, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{media / 'arm_wrestling.mp4'}: 50 frames (5 fps")
    assert len(lines) == 4
    assert lines[1].split()[:3] == ["1.", "arm", "wrestling"] and float(lines[1].split()[-1]) > 0.9


def test_live_file_is_played_at_its_pace(cache, media, tmp_path):
    started = time.monotonic()
    done = run("live", "--file", media / "carving_ice_172.mp4", "--top-k", "2", "--speed", "2",
               cache=cache, cwd=tmp_path)
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"live: {media / 'carving_ice_172.mp4'} (played as live at 2x)")
    frames = lines[1:-1]
    assert len(frames) + 2 == len(lines)
    times = [float(line.split()[0]) for line in frames]
    assert times == sorted(times) and times[-1] == pytest.approx(4.2, abs=0.01)
    assert "carving ice" in frames[-1].split("frame")[1].split("|")[0]
    assert lines[-1].startswith("live: ") and "frames classified" in lines[-1]
    classified = int(re.match(r"live: (\d+) frames classified", lines[-1]).group(1))
    assert classified == len(frames) and "of 22 delivered at 5 fps" in lines[-1]
    assert wall > 4.2 / 2                               # 4.2 s of video at 2x: at least 2.1 s


def test_bad_input_subprocess(cache, tmp_path):
    """A real process: exit code 1, one line on stderr, nothing on stdout, no traceback."""
    done = run("classify", tmp_path / "missing.mp4", cache=cache, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("minimovinet classify: error: video file not found")
    done = run("classify", tmp_path / "missing.mp4", "--fps", "0", cache=cache, cwd=tmp_path)
    assert done.returncode == 2 and "--fps" in done.stderr and "Traceback" not in done.stderr


# ---------------------------------------------------------------------------------------------
# the command line in this process


def test_classify_csv_every_frame(home, media, every_frame, capsys, tmp_path):
    out = tmp_path / "timeline.csv"
    code, stdout, err = run_main(capsys, "classify", media / "carving_ice_172.mp4",
                                 "--every-frame", "--csv", "--top-k", "3", "-o", out)
    assert (code, stdout, err) == (0, "", "")
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["frame", "time", "rank", "label", "probability"]
    assert len(rows) == 131 * 3
    assert [r["rank"] for r in rows[:6]] == ["1", "2", "3"] * 2
    last = [r for r in rows if r["frame"] == "130"]
    assert last[0]["label"] == "carving ice" and float(last[0]["probability"]) >= 0.5
    expected, _ = every_frame
    assert [(r["label"], round(float(r["probability"]), 6)) for r in last] == \
        [(label, round(p, 6)) for label, p in expected.top[:3]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["timeline.csv"]


def test_progress_bar_only_on_a_terminal(home, media, capsys, monkeypatch):
    clip = media / "carving_ice_172.mp4"
    monkeypatch.setattr(cli, "_stderr_is_terminal", lambda: True)
    code, out, err = run_main(capsys, "classify", clip, "--top-k", "1")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["1.", "carving", "ice"]
    assert err.startswith("\rclassify carving_ice_172.mp4 [") and err.endswith("\n")
    assert err.rstrip("\n").rsplit("\r", 1)[-1].endswith("100%  22/22 frames")
    code, out, err = run_main(capsys, "classify", clip, "--top-k", "1", "--no-progress")
    assert code == 0 and err == ""


def test_live_reports_dropped_frames(home, media, capsys, monkeypatch):
    """Frames delivered as fast as they decode (1000x real time at 30 fps) to a model made to
    take 30 ms a frame: inference falls behind and frames are dropped.  (The slow-down makes
    this independent of the machine's load: with the model's own few milliseconds a busy
    machine could starve the decoding thread instead, and nothing would be dropped.)"""
    import time

    from minimovinet.apps.classify import VideoClassifier
    step = VideoClassifier.step

    def slow_step(self, frame):
        time.sleep(0.03)
        return step(self, frame)
    monkeypatch.setattr(VideoClassifier, "step", slow_step)
    code, out, err = run_main(capsys, "live", "--file", media / "carving_ice_172.mp4",
                              "--fps", "30", "--speed", "1000", "--top-k", "1")
    # 30 ms per frame is close to the 33 ms between frames at 30 fps: the behind warning may
    # come (tests/test_offline_and_live.py checks it); nothing else on stderr
    assert code == 0
    assert all(line.startswith("minimovinet live: warning: inference takes")
               for line in err.splitlines()), err
    summary = out.splitlines()[-1]
    match = re.match(r"live: (\d+) frames classified, (\d+) dropped of (\d+) delivered", summary)
    classified, dropped, delivered = map(int, match.groups())
    assert delivered == 131 and classified + dropped == delivered and dropped > 0
    assert "inference fell behind" in summary
    frame_lines = out.splitlines()[1:-1]
    assert len(frame_lines) == classified
    assert "frame   130" in frame_lines[-1]                  # the newest frame is never dropped


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory, media):
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.mp4").write_text("this is not a video\n")
    with av.open(str(d / "empty.avi"), "w") as container:      # a header and no frame
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height = 64, 48
        container.start_encoding()
    data = (media / "carving_ice_360.mp4").read_bytes()         # its index is at the front
    (d / "truncated.mp4").write_bytes(data[:len(data) // 2])
    data = (media / "arm_wrestling.mp4").read_bytes()           # its index is at the end
    assert data.index(b"moov") > data.index(b"mdat")
    (d / "cut_before_index.mp4").write_bytes(data[:len(data) // 2])
    (d / "a_directory.mp4").mkdir()
    return d


@pytest.mark.parametrize("name,message", [
    ("missing.mp4", "video file not found"),
    ("notes.mp4", "is not a video FFmpeg can read"),
    ("a_directory.mp4", "is a directory"),
    ("empty.avi", "contains no decodable video frames"),
    ("truncated.mp4", "ended early after .* decoded frames, truncated or corrupt"),
    ("cut_before_index.mp4", "is not a video FFmpeg can read"),
])
@pytest.mark.parametrize("command", ["classify", "live"])
def test_bad_videos(home, bad_videos, capsys, name, message, command):
    argv = ["classify", bad_videos / name] if command == "classify" else \
        ["live", "--file", bad_videos / name, "--speed", "100"]
    code, out, err = run_main(capsys, *argv)
    assert code == 1, (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"minimovinet {command}: error: ")
    assert re.search(message, err), err
    if command == "classify":
        assert out == ""                    # no partial result that looks complete


def expect_one_line(capsys, argv, *fragments, code=1):
    got, out, err = run_main(capsys, *argv)
    assert got == code and out == "", (got, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_bad_models(home, media, capsys, tmp_path):
    clip = media / "carving_ice_172.mp4"
    expect_one_line(capsys, ["classify", clip, "--model", "a0-steam"],
                    "'a0-steam' is not a model file or a registry name", "did you mean a0-stream")
    expect_one_line(capsys, ["classify", clip, "--model", tmp_path / "nothere.tflite"],
                    "nothere.tflite: no such file")
    (tmp_path / "fake.tflite").write_bytes(b"\0" * 100)
    expect_one_line(capsys, ["live", "--file", clip, "--model", tmp_path / "fake.tflite"],
                    "fake.tflite")
    expect_one_line(capsys, ["classify", clip, "--model", "a0-base"],
                    "not in the cache", "minimovinet fetch a0-base")


def test_model_missing_from_the_cache(media, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MINIMOVINET_HOME", str(tmp_path / "empty"))
    other = "a1-stream-int8"
    err = expect_one_line(capsys, ["classify", media / "carving_ice_172.mp4", "--model", other],
                          f"run `minimovinet fetch {other}`", registry.get(other).url,
                          str(registry.download_path(other, tmp_path / "empty")))
    assert not (tmp_path / "empty").exists()                  # classify never creates it
    assert err.startswith(f"minimovinet classify: error: model '{other}' is not in")
    # the default model is embedded: it needs no cache
    assert cli.main(["classify", media / "carving_ice_172.mp4", "--no-progress"]) == 0
    assert "carving ice" in capsys.readouterr().out
    assert not (tmp_path / "empty").exists()


def test_unreadable_caches(shared_dir, media, capsys, monkeypatch, tmp_path):
    clip = media / "carving_ice_172.mp4"
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for home in (blocker, blocker / "cache"):
        monkeypatch.setenv("MINIMOVINET_HOME", str(home))
        expect_one_line(capsys, ["classify", clip], f"{blocker} is a file, not a directory",
                        "MINIMOVINET_HOME")
    # a damaged model in the cache: refused before loading, with the way out
    damaged = place_model(tmp_path / "damaged", shared_dir)
    path = registry.download_path(MODEL, damaged)
    path.write_bytes(path.read_bytes()[:100_000])
    monkeypatch.setenv("MINIMOVINET_HOME", str(damaged))
    expect_one_line(capsys, ["classify", clip], "expected 3,276,048",
                    f"minimovinet fetch {MODEL} --force")
    # a directory where the model file should be
    path.unlink()
    path.mkdir()
    expect_one_line(capsys, ["classify", clip], f"{path} exists but is not a file")
    path.rmdir()
    if os.geteuid() == 0:
        return                  # root reads everything: the permission case cannot happen
    shutil.copyfile(shared_dir / "models" / "movinet_a0_stream_k600_int8.tflite", path)
    path.parent.chmod(0o000)
    try:
        expect_one_line(capsys, ["classify", clip], "cannot read the cache", "denied")
    finally:
        path.parent.chmod(0o700)


def test_plot_without_matplotlib(home, media, capsys, monkeypatch, tmp_path):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends",
                 "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)        # import matplotlib -> ImportError
    expect_one_line(capsys, ["classify", media / "carving_ice_172.mp4", "--plot",
                             tmp_path / "t.png"],
                    'plotting needs matplotlib, which is not installed: '
                    'pip install "minimovinet[plot]"')
    assert list(tmp_path.iterdir()) == []


def test_outputs_into_missing_directories(home, media, capsys, tmp_path):
    need("matplotlib", "--plot draws with matplotlib")
    clip = media / "carving_ice_172.mp4"
    expect_one_line(capsys, ["classify", clip, "--plot", tmp_path / "no" / "t.png"],
                    "the directory", "does not exist")
    expect_one_line(capsys, ["classify", clip, "--json", "-o", tmp_path / "no" / "t.json"],
                    "the directory", "does not exist")


@pytest.mark.parametrize("argv", [
    ["classify", "x.mp4", "--json", "--csv"],
    ["classify", "x.mp4", "--fps", "5", "--every-frame"], ["classify", "x.mp4", "--top-k", "0"],
    ["classify", "x.mp4", "--fps", "-1"], ["live"], ["live", "--camera", "0", "--file", "x.mp4"],
    ["live", "--file", "x.mp4", "--speed", "0"],
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_live_without_a_camera(home, capsys):
    expect_one_line(capsys, ["live", "--camera", "63"], "no camera at index 63")


def test_ctrl_c_exits_130(home, media, capsys, monkeypatch, tmp_path):
    need("matplotlib", "--plot draws with matplotlib")
    from minimovinet.apps.classify import VideoClassifier
    real_step, calls = VideoClassifier.step, []

    def step_then_interrupt(self, frame):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(self, frame)
    monkeypatch.setattr(VideoClassifier, "step", step_then_interrupt)
    clip = media / "carving_ice_172.mp4"
    code, out, err = run_main(capsys, "classify", clip, "--json", "-o", tmp_path / "r.json",
                              "--plot", tmp_path / "r.png")
    assert (code, out, err) == (130, "", "minimovinet classify: interrupted\n")
    assert list(tmp_path.iterdir()) == []                   # nothing half-written
    calls.clear()
    code, out, err = run_main(capsys, "live", "--file", clip, "--speed", "10")
    assert (code, err) == (130, "minimovinet live: interrupted\n")
    assert out.splitlines()[-1].startswith("live: 2 frames classified")


# ---------------------------------------------------------------------------------------------
# the live plumbing


def test_latest_frame_mailbox_drops_the_older_frames():
    box = live_engine.LatestFrame()
    for i in range(3):
        box.put(i)
    assert box.take() == 2 and (box.delivered, box.dropped) == (3, 2)
    box.put(3)
    box.finish(ValueError("the source broke"))
    assert box.take() == 3                             # frames before the error come first
    with pytest.raises(ValueError, match="the source broke"):
        box.take()
    assert box.take() is None


def test_capture_paces_frames_by_their_timestamps():
    times = [0.0, 0.1, 0.2, 0.5]
    frames = ((1000 + t, np.zeros((2, 2, 3), np.uint8)) for t in times)    # pts start at 1000 s
    box, arrivals = live_engine.LatestFrame(), []
    thread = threading.Thread(target=live_engine._capture,
                              args=(frames, box, threading.Event(), True, 2))
    started = time.monotonic()
    thread.start()
    while (item := box.take()) is not None:
        arrivals.append((time.monotonic() - started, item[0], item[1]))
    thread.join()
    assert [i for _, i, _ in arrivals] == [0, 1, 2, 3]
    assert [t for _, _, t in arrivals] == pytest.approx(times, abs=1e-9)   # since the first
    for (wall, _, t) in arrivals:
        assert t / 2 - 0.01 <= wall <= t / 2 + 0.3      # speed 2: half the timestamps


def slowed_step(monkeypatch, seconds):
    """Make every VideoClassifier.step take at least `seconds` (deterministic drops)."""
    from minimovinet.apps.classify import VideoClassifier
    step = VideoClassifier.step

    def slow_step(self, frame):
        time.sleep(seconds)
        return step(self, frame)
    monkeypatch.setattr(VideoClassifier, "step", slow_step)


def capture_threads():
    return [t for t in threading.enumerate() if t.name == "minimovinet-capture" and t.is_alive()]


def test_live_api_on_a_file_played_as_a_camera(classifier, media, monkeypatch):
    """`LiveClassifier` without the command line: a file delivered 1000x faster than real time
    at 30 fps to a model made to take 30 ms a frame (as test_live_reports_dropped_frames: the
    drops do not depend on the machine's load)."""
    from minimovinet.apps.live import LiveClassifier
    slowed_step(monkeypatch, 0.03)
    clip = media / "carving_ice_172.mp4"
    times = [t for t, _ in read_video(clip, fps=30, with_times=True)]
    with LiveClassifier(classifier, clip, fps=30, speed=1000) as live:
        assert live.fps == 30 and "played as live at 1000x" in live.description
        updates = list(live.updates())
    done = live.summary()
    assert done.delivered == len(times) == 131 and done.fps == 30
    assert done.classified == len(updates) and done.classified + done.dropped == 131
    assert done.dropped > 0 and updates[-1].dropped == done.dropped
    indices = [u.index for u in updates]
    assert indices == sorted(set(indices)) and indices[-1] == 130    # the newest is never dropped
    assert [u.time for u in updates] == pytest.approx([times[i] - times[0] for i in indices])
    assert all(u.inference >= 0.03 for u in updates) and done.ms_per_frame >= 30
    assert all(len(u.top) == classifier.top_k for u in updates)
    assert classifier.frames_seen == done.classified          # one fresh stream, every update
    assert not capture_threads()
    with pytest.raises(InputError, match="has run"):
        next(live.updates())


def test_live_api_callback_stop_and_duration(classifier, media):
    from minimovinet.apps.live import LiveClassifier
    live = LiveClassifier(classifier, media / "carving_ice_172.mp4", speed=20)
    seen = []

    def on_update(update):
        seen.append(update)
        if len(seen) == 3:
            live.stop()                                  # from the callback: ends the run
    done = live.run(on_update)
    assert done.classified == len(seen) == 3 and not capture_threads()
    # any iterable of (seconds, frame) pairs, paced by its times; an endless one and a duration
    frame = np.full((90, 120, 3), 100, np.uint8)
    endless = ((i * 0.02, frame) for i in itertools.count())
    started = time.monotonic()
    with LiveClassifier(classifier, endless) as live:
        done = live.run(duration=0.5)
    assert 0.5 <= time.monotonic() - started < 10 and done.classified >= 1
    assert done.delivered < 200 and not capture_threads()


def test_live_api_bad_arguments_and_sources(classifier, bad_videos, media):
    from minimovinet.apps.live import LiveClassifier
    from minimovinet.apps.video import VideoWarning
    from minimovinet.errors import VideoError
    clip = media / "carving_ice_172.mp4"
    for kwargs, match in [(dict(source=True), "source must be"),
                          (dict(source=2.5), "source must be"),
                          (dict(source=clip, fps=0), "fps must be a positive number"),
                          (dict(source=clip, speed=float("inf")), "speed must be")]:
        with pytest.raises(InputError, match=match):
            LiveClassifier(classifier, **kwargs)
    with LiveClassifier(classifier, clip) as live:
        with pytest.raises(InputError, match="duration must be"):
            live.run(duration=0)
    with pytest.raises(VideoError, match="video file not found"):
        LiveClassifier(classifier, bad_videos / "missing.mp4")
    # a truncated file: an error when strict (the command line), else a warning at the end
    truncated = bad_videos / "truncated.mp4"
    with pytest.raises(VideoError, match="ended early"):
        LiveClassifier(classifier, truncated, speed=100, strict=True).run()
    with pytest.warns(VideoWarning, match="ended early"):
        done = LiveClassifier(classifier, truncated, speed=100).run()
    assert done.classified >= 1 and not capture_threads()


# ---------------------------------------------------------------------------------------------
# the Python API


def test_classify_equals_stepping_frame_by_frame(classifier, media):
    path = media / "carving_ice_360.mp4"                 # 360x360: resized by the classifier
    result = classifier.classify(path)
    assert classifier.frames_seen == result.frames == 34
    clf = mm.VideoClassifier(classifier.model, top_k=5)
    steps, times = [], []
    for t, frame in mm.read_video(path, fps=5, with_times=True):   # full-size frames
        steps.append(clf.step(frame))
        times.append(t)
    assert [p.top for p in result.timeline] == steps
    assert [p.time for p in result.timeline] == times
    assert [p.frame for p in result.timeline] == list(range(34))
    assert result.top == steps[-1] and result.top[0][0] == "carving ice"
    np.testing.assert_array_equal(result.probabilities[-1], clf.probabilities.astype(np.float32))
    assert result.probabilities.shape == (34, 600) and result.fps == 5.0
    # frames given as an array are fed as given and dated at the model's rate
    frames = np.stack(list(mm.read_video(path, fps=5)))                # [T, H, W, 3]
    again = classifier.classify(frames)
    assert [p.top for p in again.timeline] == steps
    assert [p.time for p in again.timeline] == [i / 5 for i in range(34)]
    # reset starts the stream over
    clf.reset()
    assert clf.frames_seen == 0 and clf.step(frames[0]) == steps[0]


def test_every_frame_equals_feeding_the_model(classifier, every_frame, media, labels):
    path = media / "carving_ice_172.mp4"
    result, final = every_frame
    model = classifier.model
    states = model.init_states()
    for frame in read_video(path):                               # every frame, 172x172
        logits, states = model(to_model_input(frame), states)
    probs = softmax(logits)
    np.testing.assert_array_equal(final, probs)
    best = np.argsort(-probs, kind="stable")[:5]
    assert result.top == [(labels[i], float(probs[i])) for i in best]
    assert result.frames == 131 and result.fps is None
    # the published check (official Raspberry Pi example test): carving ice first, >= 0.5
    assert result.top[0][0] == "carving ice" and result.top[0][1] >= 0.5


def test_classifier_arguments(classifier, cache, monkeypatch):
    assert (classifier.height, classifier.width, classifier.fps) == (172, 172, 5)
    assert classifier.name == MODEL and classifier.has_class_names
    with pytest.raises(InputError, match="top_k"):
        mm.VideoClassifier(classifier.model, top_k=0)
    with pytest.raises(InputError, match="uint8 RGB"):
        classifier.step(np.zeros((172, 172, 3), np.float32))
    with pytest.raises(InputError, match="uint8 RGB"):
        classifier.step(np.zeros((172, 172), np.uint8))
    with pytest.raises(InputError, match="fps or every_frame"):
        classifier.classify("x.mp4", fps=5, every_frame=True)
    with pytest.raises(InputError, match="no frames"):
        classifier.classify(np.zeros((0, 8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="model must be"):
        mm.VideoClassifier(42)
    with pytest.raises(InputError, match="whole-clip"):
        mm.VideoClassifier(mm.random_model("a0", "base"))
    # a 600-class model without class names: the Kinetics-600 names (cached or embedded)
    monkeypatch.setenv("MINIMOVINET_HOME", str(cache))
    stream = mm.random_model("a0", "stream", seed=0)
    assert mm.VideoClassifier(stream, top_k=2).class_names[0] == "abseiling"
    monkeypatch.setenv("MINIMOVINET_HOME", str(cache / "nothing-here"))
    assert mm.VideoClassifier(stream, top_k=2).class_names[0] == "abseiling"
    # other class counts without names: numbers
    clf = mm.VideoClassifier(mm.random_model("a0", "stream", num_classes=12, seed=0), top_k=2)
    assert not clf.has_class_names and clf.class_names[7] == "class 7"
    top = clf.step(np.full((90, 120, 3), 128, np.uint8))          # float model, any size
    assert len(top) == 2 and top[0][0].startswith("class ") and 0 < top[0][1] <= 1


def test_import_stays_light():
    code = ("import sys, minimovinet as mm; mm.VideoClassifier, mm.read_video; "
            "heavy = [m for m in ('av', 'cv2', 'matplotlib', 'tensorflow') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=ROOT)
