"""Many videos: `mm.classify_many`, `minimovinet classify` over folders / @lists with --jsonl /
--csv, on worker processes (--jobs) and on a real Dask cluster over TCP; resume after a kill,
a killed worker, bad inputs, an unreachable scheduler; `evaluate` through the same engines.

The model is the embedded official A0 stream int8 model ("a0-stream-int8"); the clips are
../shared/media, and symlinks to them for the 200-clip runs; ``max_frames`` keeps each video
to a few frames.  The oracle of the probabilities is LiteRT (built-in kernels) on the same
frames; the engines must give the same bits as one process.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import need  # noqa: E402

need("av", "PyAV is not installed: pip install 'minimovinet[video]'")
distributed = need("distributed", 'Dask is not installed: pip install "minimovinet[cluster]"')
psutil = need("psutil", "psutil (a dependency of distributed) finds the worker processes")

import minimovinet as mm  # noqa: E402
from minimovinet import cli  # noqa: E402
from minimovinet.apps.inputs import expand_inputs  # noqa: E402
from minimovinet.apps.results import COLUMNS, ResultLog, VideoRecord  # noqa: E402

MODEL = "a0-stream-int8"
FRAMES = 3                      # frames fed per video (max_frames): the tests stay quick
CLIPS = ("carving_ice_172.mp4", "arm_wrestling.mp4", "carving_ice_360.mp4",
         "rope_pushdown_400.mp4")


@pytest.fixture(scope="module")
def media(shared_dir):
    return shared_dir / "media"


@pytest.fixture(scope="module")
def clips(media):
    return [str(media / name) for name in CLIPS]


@pytest.fixture(scope="module")
def litert_top(shared_dir, clips):
    """The oracle: {clip: top-5 [(label, probability)]} of LiteRT's built-in kernels on the
    first FRAMES frames at 5 fps, 172x172, / 255, from zero states."""
    need("ai_edge_litert", "LiteRT is the oracle of the probabilities")
    import int8_support as S
    from minimovinet.apps.video import read_video, to_model_input
    labels = S.read_labels(shared_dir)
    tops = {}
    for clip in clips:
        stream = S.LiteRTStream(shared_dir / "models" / "movinet_a0_stream_k600_int8.tflite")
        for frame in read_video(clip, fps=5, size=(172, 172), max_frames=FRAMES):
            logits, _ = stream.step(to_model_input(frame))
        p = S.softmax(logits)
        tops[clip] = [(labels[i], float(p[i])) for i in np.argsort(-p, kind="stable")[:5]]
    return tops


def as_pairs(record):
    return [(t["label"], t["probability"]) for t in record["top_k"]]


def check_against_litert(records, litert_top, target=lambda p: p):
    maxdiff = 0.0
    for r in records:
        assert r["error"] is None, r
        assert r["frames"] == FRAMES
        expected = litert_top[target(r["path"])]
        assert [a[0] for a in as_pairs(r)] == [b[0] for b in expected], (r, expected)
        maxdiff = max([maxdiff] + [abs(a[1] - b[1]) for a, b in zip(as_pairs(r), expected)])
        assert as_pairs(r) == expected, (r, expected)        # the same bits
    print(f"{len(records)} videos: top-5 labels equal to LiteRT's, probabilities maxdiff "
          f"{maxdiff:.3g}")


def by_path(records):
    return {r["path"]: r for r in records}


def cli_env():
    env = dict(os.environ)
    env.pop("MINIMOVINET_HOME", None)
    return env


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def many_links(tmp_path_factory, media):
    """200 clips: symlinks to two shared clips, in nested folders (a recursive search)."""
    root = tmp_path_factory.mktemp("many")
    targets = {}
    for i in range(200):
        folder = root / f"part{i // 50}"
        folder.mkdir(exist_ok=True)
        link = folder / f"clip{i:03d}.mp4"
        target = media / CLIPS[i % 2]
        link.symlink_to(target)
        targets[str(link)] = str(target)
    return root, targets


# ---------------------------------------------------------------------------------------------
# a real Dask cluster on localhost: a scheduler and two worker processes over TCP


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    host, port = address[6:].split(":")
    dask = [sys.executable, "-m", "dask"]
    processes = [subprocess.Popen(dask + ["scheduler", "--host", host, "--port", port,
                                          "--no-dashboard"],
                                  stdout=open(logs / "scheduler.log", "w"),
                                  stderr=subprocess.STDOUT)]
    try:
        for i in range(2):
            processes.append(subprocess.Popen(
                dask + ["worker", address, "--nworkers", "1", "--nthreads", "1",
                        "--no-dashboard", "--name", f"worker{i}"],
                stdout=open(logs / f"worker{i}.log", "w"), stderr=subprocess.STDOUT))
        client = distributed.Client(address, timeout="60s")
        client.wait_for_workers(2, timeout=120)
        yield address, client
        client.close()
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


# ---------------------------------------------------------------------------------------------
# the same results in one process, two worker processes and on the Dask cluster


def test_one_process_two_jobs_and_dask_give_the_same_bits(clips, litert_top, cluster,
                                                          tmp_path):
    start = time.perf_counter()
    one = list(mm.classify_many(clips, model=MODEL, jobs=1, max_frames=FRAMES))
    check_against_litert(one, litert_top)
    two = list(mm.classify_many(clips, model=MODEL, jobs=2, max_frames=FRAMES))
    address, client = cluster
    on_dask = list(mm.classify_many(clips, model=MODEL, client=client, max_frames=FRAMES))
    assert sorted(by_path(one)) == sorted(clips)
    for name, records in (("--jobs 2", two), ("dask", on_dask)):
        assert by_path(records) == by_path(one), name
    # the command line on the cluster: --scheduler, the JSONL records, the CSV columns
    out, table = tmp_path / "r.jsonl", tmp_path / "r.csv"
    done = subprocess.run([sys.executable, "-m", "minimovinet", "classify", *clips,
                           "--scheduler", address, "--max-frames", str(FRAMES),
                           "--jsonl", out, "--csv", table], env=cli_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert by_path(read_jsonl(out)) == by_path(one)
    with ResultLog(table, "csv", resume=True) as log:
        assert len(log.done) == len(clips) and log.failed == 0
    import csv
    rows = list(csv.DictReader(table.open()))
    assert tuple(rows[0]) == COLUMNS
    assert by_path(VideoRecord.from_csv_row(r) for r in rows) == by_path(one)
    print(f"one process / --jobs 2 / dask / CLI on dask: {time.perf_counter() - start:.1f} s")


def test_top_k_has_the_form_of_classify_json(clips, tmp_path, capsys):
    code = cli.main(["classify", clips[0], "--json", "--max-frames", str(FRAMES),
                     "--no-progress"])
    single = json.loads(capsys.readouterr().out)
    assert code == 0
    code = cli.main(["classify", clips[0], "--jsonl", tmp_path / "one.jsonl", "--jobs", "1",
                     "--max-frames", str(FRAMES)])
    assert code == 0
    [record] = read_jsonl(tmp_path / "one.jsonl")
    assert set(record) == set(COLUMNS)
    assert record["top_k"] == single["top_k"] and record["frames"] == single["frames"] == FRAMES
    assert record["error"] is None and record["seconds"] == pytest.approx(0.4)


def test_inputs_may_follow_options(clips, tmp_path):
    """`classify a --jobs 1 b` classifies a and b, as `classify a b --jobs 1` does; an unknown
    option among them is still refused by argparse."""
    runs = {}
    for name, argv in (("listed", [clips[0], clips[1], "--jobs", "1"]),
                       ("intermixed", [clips[0], "--jobs", "1", clips[1]])):
        out = tmp_path / f"{name}.jsonl"
        assert cli.main(["classify", *argv, "--jsonl", out, "--max-frames", str(FRAMES)]) == 0
        runs[name] = {r["path"]: r["top_k"] for r in read_jsonl(out)}
    assert len(runs["intermixed"]) == 2 and runs["intermixed"] == runs["listed"]
    with pytest.raises(SystemExit) as exc:
        cli.main(["classify", clips[0], "--jobs", "1", "--bogus", clips[1]])
    assert exc.value.code == 2


# ---------------------------------------------------------------------------------------------
# reliability: killed and resumed, a killed worker, bad inputs


def start_cli(*argv):
    return subprocess.Popen([sys.executable, "-m", "minimovinet", "classify", *map(str, argv)],
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_lines(path, count, process, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path}: fewer than {count} results after {timeout} s")


def pool_workers(process):
    return [p for p in psutil.Process(process.pid).children(recursive=True)
            if "spawn_main" in " ".join(p.cmdline())]


def test_killed_and_resumed_gives_every_clip_once(many_links, litert_top, tmp_path):
    root, targets = many_links
    out = tmp_path / "all.jsonl"
    argv = [root, "--jobs", "2", "--jsonl", out, "--max-frames", FRAMES]
    start = time.perf_counter()
    # 1. Ctrl-C part way through: exit 130, the finished results kept
    first = start_cli(*argv)
    wait_for_lines(out, 30, first)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    after_interrupt = len(read_jsonl(out))
    # 2. a lost machine: SIGKILL of the command and its workers, then a torn last line
    second = start_cli(*argv, "--resume")
    wait_for_lines(out, after_interrupt + 30, second)
    workers = pool_workers(second)
    second.kill()
    for worker in workers:
        worker.kill()
    second.communicate()
    with open(out, "a") as f:
        f.write('{"path": "' + next(iter(targets)) + '", "frames": 3, "top')   # half a line
    killed_at = out.read_text().count("\n")
    assert after_interrupt < killed_at < 200
    # 3. resumed to the end: every clip exactly once, the same results as LiteRT
    third = start_cli(*argv, "--resume")
    _, err = third.communicate(timeout=600)
    assert third.returncode == 0, err
    assert "resuming" in err
    records = read_jsonl(out)
    paths = [r["path"] for r in records]
    print(f"interrupted at {after_interrupt}, killed at {killed_at}, 200 after the resume; "
          f"{time.perf_counter() - start:.1f} s")
    assert len(paths) == len(set(paths)) == 200
    assert set(paths) == set(targets)
    check_against_litert(records, litert_top, target=targets.get)


def test_a_killed_worker_loses_no_clip(many_links, tmp_path):
    root, targets = many_links
    chosen = sorted(targets)[:40]
    listing = tmp_path / "list.txt"
    listing.write_text("# forty of them\n" + "\n".join(chosen) + "\n")
    out = tmp_path / "w.jsonl"
    run = start_cli(f"@{listing}", "--jobs", "2", "--jsonl", out, "--max-frames", FRAMES)
    wait_for_lines(out, 5, run)
    workers = pool_workers(run)
    assert len(workers) == 2, workers
    os.kill(workers[0].pid, signal.SIGKILL)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    records = read_jsonl(out)
    assert sorted(r["path"] for r in records) == chosen
    assert all(r["error"] is None and r["frames"] == FRAMES for r in records)


def test_a_worker_that_always_dies_is_recorded_once():
    """The local engine itself: a job whose worker dies on one item retries it once, then
    records it; the other items are done."""
    from minimovinet.apps import workers
    from many_support import DyingJob
    items = [f"ok{i:02d}" for i in range(12)]
    items.insert(3, "die")          # quick items: the pool is often found broken at a submit
    results = list(workers.run_local(DyingJob(), items, jobs=2))
    assert sorted(results) == ["die: failed: the worker process died while running it "
                               "(2 times)"] + [f"{item}: done" for item in sorted(items)[1:]]


class FlakyPool:
    """Stands for the process pool: the first one breaks at its third submit (a worker died
    between two submits, so submit itself raises), failing its pending future too."""
    made = 0

    def __init__(self, job, jobs):
        FlakyPool.made += 1
        self.breaks = FlakyPool.made == 1
        self.count, self.pending = 0, []

    def submit(self, fn, job, item):
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool
        self.count += 1
        if self.breaks and self.count == 3:
            for future in self.pending:
                future.set_exception(BrokenProcessPool("a child process terminated"))
            raise BrokenProcessPool("a child process terminated")
        future = Future()
        if self.breaks and self.count == 2:
            self.pending.append(future)                  # running when the worker died
        else:
            future.set_result(fn(job, item))
        return future

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def test_a_pool_found_broken_at_submit_loses_nothing(monkeypatch):
    from minimovinet.apps import workers
    from many_support import DyingJob
    FlakyPool.made = 0
    monkeypatch.setattr(workers, "_new_pool", FlakyPool)
    results = list(workers.run_local(DyingJob(), list("abcde"), jobs=1 + 1))
    assert sorted(results) == [f"{item}: done" for item in "abcde"]
    assert FlakyPool.made == 2


def test_missing_and_broken_files_among_good_ones(clips, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(Path(clips[0]).read_bytes()[:3000])       # truncated
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    out = tmp_path / "r.jsonl"
    inputs = [clips[0], tmp_path / "missing.mp4", broken, text, clips[1]]
    code = cli.main(["classify", *inputs, "--jsonl", out, "--jobs", "2",
                     "--max-frames", str(FRAMES)])
    err = capsys.readouterr().err
    assert code == 1, err
    records = by_path(read_jsonl(out))
    assert sorted(records) == sorted(map(str, inputs))
    assert records[clips[0]]["error"] is None and records[clips[1]]["error"] is None
    for bad in inputs[1:4]:
        record = records[str(bad)]
        assert record["error"] and str(bad) in record["error"], record
        assert record["top_k"] == [] and record["frames"] is None
        assert f"error: {record['error']}" in err
    assert "3 failed" in err and "Traceback" not in err


def test_empty_directory_and_no_videos(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "readme.txt").write_text("no videos here")
    for argv in (["classify", tmp_path / "empty", "--jsonl", tmp_path / "r.jsonl"],
                 ["classify", tmp_path / "other", tmp_path / "empty"]):
        code = cli.main(argv)
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert code == 1 and len(lines) == 1, captured.err
        assert "is a directory with no video files in it" in lines[0] and str(tmp_path / "empty") in \
            lines[0]
    assert not (tmp_path / "r.jsonl").exists()


def test_unreachable_scheduler_fails_within_seconds(clips, tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"             # nothing listens there
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "minimovinet", "classify", clips[0],
                           "--scheduler", address, "--jsonl", tmp_path / "r.jsonl"],
                          env=cli_env(), capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - start
    print(f"unreachable scheduler: exit {done.returncode} after {seconds:.1f} s")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert f"cannot reach the Dask scheduler at {address}" in lines[0]
    assert seconds < 10


def test_a_port_that_answers_but_not_as_dask(clips, tmp_path, capsys):
    """Something listens and never speaks Dask: the handshake times out, one line."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        start = time.perf_counter()
        code = cli.main(["classify", clips[0], "--scheduler", address])
        seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    print(f"silent port: exit {code} after {seconds:.1f} s: {err.strip()}")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert address in err and "Traceback" not in err
    assert seconds < 10


def test_results_file_refused_without_resume_and_torn_line_dropped(tmp_path):
    path = tmp_path / "r.jsonl"
    with ResultLog(path) as log:
        log.append(VideoRecord("a.mp4", 3, 0.4, [("x", 0.5)]))
    with pytest.raises(mm.FileError, match="--resume"):
        ResultLog(path)
    with open(path, "a") as f:
        f.write('{"path": "b.mp4", "fra')
    with ResultLog(path, resume=True) as log:
        assert "a.mp4" in log and "b.mp4" not in log
        log.append(VideoRecord.failed("b.mp4", "b.mp4: broken"))
    assert [r["path"] for r in read_jsonl(path)] == ["a.mp4", "b.mp4"]


# ---------------------------------------------------------------------------------------------
# inputs: @lists, recursive folders by extension; the command line's modes


def test_inputs_lists_and_recursive_folders(tmp_path, monkeypatch):
    for name in ("b/deep/x.MP4", "b/a.mov", "b/skip.txt", "b/.hidden.mp4", "b/.cache/y.mp4",
                 "c.webm", "list/rel.mkv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    listing = tmp_path / "list" / "todo.txt"
    listing.write_text(f"# comment\n\nrel.mkv\n{tmp_path / 'c.webm'}\n{tmp_path / 'b'}\n"
                       f"missing.mp4\n")
    monkeypatch.chdir(tmp_path)
    paths, notes = expand_inputs(["c.webm", f"@{listing}", "b"])
    assert paths == ["c.webm", str(tmp_path / "list" / "rel.mkv"),
                     str(tmp_path / "b" / "a.mov"), str(tmp_path / "b" / "deep" / "x.MP4"),
                     str(tmp_path / "list" / "missing.mp4")]        # c.webm and b/ once
    assert notes == []
    with pytest.raises(mm.FileError, match="cannot read the list"):
        expand_inputs(["@nowhere.txt"])


@pytest.mark.parametrize("argv, many", [
    (["classify", "a.mp4"], False),
    (["classify", "a.mp4", "--csv"], False),
    (["classify", "a.mp4", "--csv", "-o", "t.csv"], False),
    (["classify", "a.mp4", "--json"], False),
    (["classify", "a.mp4", "b.mp4"], True),
    (["classify", "@l.txt"], True),
    (["classify", "a.mp4", "--csv", "out.csv"], True),
    (["classify", "a.mp4", "--jsonl", "out.jsonl", "--csv", "out.csv", "--jobs", "2"], True),
    (["classify", "a.mp4", "--resume", "--jsonl", "o.jsonl"], True),
])
def test_command_line_modes(argv, many):
    args = cli.build_parser().parse_args(argv)
    assert cli._many_videos(args) == many


def test_usage_errors_of_many_videos(clips, tmp_path, capsys):
    for argv, fragment in (
            (["classify", "--csv", clips[0]], "--csv takes the file the results"),
            (["classify", *clips[:2], "-o", tmp_path / "x.txt"], "-o and --plot are for one"),
            (["classify", *clips[:2], "--resume"], "--resume continues a results file"),
            (["classify", *clips[:2], "--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"],
             "--jobs sets the local worker processes")):
        code = cli.main(argv)
        err = capsys.readouterr().err
        assert code == 1 and fragment in err and len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------------------------------------
# evaluate through the same engines


def test_evaluate_on_workers_and_dask_equals_one_process(media, cluster, tmp_path):
    data = tmp_path / "data"
    for clip, label in (("carving_ice_172.mp4", "carving ice"),
                        ("arm_wrestling.mp4", "arm wrestling"),
                        ("carving_ice_360.mp4", "carving ice")):
        (data / label).mkdir(parents=True, exist_ok=True)
        (data / label / clip).symlink_to(media / clip)
    (data / "arm wrestling" / "broken.mp4").write_bytes(b"\x00" * 100)
    one = mm.evaluate(data, MODEL, frames=FRAMES, progress=False)
    assert [Path(p).name for p, _ in one.skipped] == ["broken.mp4"]
    two = mm.evaluate(data, MODEL, frames=FRAMES, progress=False, jobs=2)
    on_dask = mm.evaluate(data, MODEL, frames=FRAMES, progress=False, client=cluster[1])
    assert two.to_dict() == one.to_dict()
    assert on_dask.to_dict() == one.to_dict()
    for a, b in zip(one.videos, on_dask.videos):
        assert np.array_equal(a.probabilities, b.probabilities)
        assert np.array_equal(a.top1_by_frame, b.top1_by_frame)


def test_stdout_without_results_files(clips, capsys):
    """Many videos with no --jsonl / --csv OUT: one line per video on stdout; --json: the
    records; --csv alone: the CSV rows (header first)."""
    import csv
    argv = ["classify", *clips[:2], "--jobs", "1", "--max-frames", str(FRAMES)]
    outputs = {}
    for extra in ([], ["--json"], ["--csv"]):
        assert cli.main(argv + extra) == 0
        outputs[tuple(extra)] = capsys.readouterr().out
    records = by_path(json.loads(line) for line in outputs[("--json",)].splitlines())
    assert sorted(records) == sorted(clips[:2])
    rows = list(csv.DictReader(outputs[("--csv",)].splitlines()))
    assert by_path(VideoRecord.from_csv_row(r) for r in rows) == records
    for line in outputs[()].splitlines():
        path, rest = line.split(": ", 1)
        best = records[path]["top_k"][0]
        assert rest == f"{best['label']} {best['probability']:.4f} ({FRAMES} frames)"
