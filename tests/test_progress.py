"""`minimovinet.apps.progress.Progress`: a tqdm bar on a terminal, plain lines without tqdm,
nothing at all when the stream is not a terminal or nothing happened."""
import io
import sys

import pytest

from conftest import need  # noqa: E402

from minimovinet.apps.progress import Progress
from minimovinet.errors import InputError


class TTY(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)          # import tqdm -> ImportError


def last_draw(text):
    return text.rstrip("\n").rsplit("\r", 1)[-1]


def test_tqdm_bar_for_frames():
    need("tqdm", "the progress extra: pip install 'minimovinet[progress]'")
    tty = TTY()
    with Progress("classify clip.mp4", 22, unit="frames", stream=tty) as bar:
        for _ in range(22):
            bar.update(1)
    out = tty.getvalue()
    assert bar.enabled and out.startswith("\rclassify clip.mp4 [") and out.endswith("\n")
    assert last_draw(out) == "classify clip.mp4 [" + "#" * 30 + "] 100%  22/22 frames"


def test_tqdm_bar_for_bytes_stopped_and_short_estimates():
    need("tqdm", "the progress extra: pip install 'minimovinet[progress]'")
    tty = TTY()
    bar = Progress("a0-stream", 4_000_000, unit="bytes", stream=tty)
    bar.update(1_000_000)
    bar.close(ok=False)
    shown = last_draw(tty.getvalue())
    assert shown.startswith("a0-stream [" + "#" * 7 + "." * 23 + "]  25%  1.00MB/4.00MB")
    assert shown.endswith("  (stopped)") and bar.count == 1_000_000
    # an estimate that is short: the bar grows with the count and ends at 100%
    tty = TTY()
    with Progress("classify x.mp4", 3, stream=tty) as bar:
        bar.update(5)
    assert last_draw(tty.getvalue()).endswith("100%  5/5 frames")
    # no total: a counter
    tty = TTY()
    with Progress("classify x.mp4", None, stream=tty) as bar:
        bar.update(7)
    assert last_draw(tty.getvalue()) == "classify x.mp4 7 frames"


def test_plain_lines_without_tqdm(without_tqdm):
    tty = TTY()
    with Progress("classify clip.mp4", 22, stream=tty) as bar:
        for _ in range(22):
            bar.update(1)
    assert tty.getvalue() == ("classify clip.mp4: started (22 frames)\n"
                              "classify clip.mp4: done, 22 frames\n")
    tty = TTY()
    with pytest.raises(KeyboardInterrupt):
        with Progress("a0-stream", None, unit="bytes", stream=tty) as bar:
            bar.update(2_500_000)
            raise KeyboardInterrupt
    assert tty.getvalue() == "a0-stream: started\na0-stream: stopped after 2.5 MB\n"


@pytest.mark.parametrize("tqdm_installed", [True, False])
def test_silent_off_a_terminal_or_before_any_work(tqdm_installed, monkeypatch):
    if not tqdm_installed:
        monkeypatch.setitem(sys.modules, "tqdm", None)
    quiet = io.StringIO()                               # not a terminal: disabled
    with Progress("x", 10, stream=quiet) as bar:
        bar.update(10)
    assert not bar.enabled and quiet.getvalue() == ""
    tty = TTY()                                         # an error before the first update
    with pytest.raises(ValueError):
        with Progress("x", 10, stream=tty):
            raise ValueError("no video")
    assert tty.getvalue() == ""
    forced = io.StringIO()                              # enabled=False on a terminal
    with Progress("x", 10, stream=TTY(), enabled=False) as bar:
        bar.update(3)
    assert forced.getvalue() == "" and bar.count == 3


def test_bad_unit():
    with pytest.raises(InputError, match="unit must be one of frames, bytes"):
        Progress("x", unit="seconds")
