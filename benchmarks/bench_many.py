"""Videos per second over many clips: minimovinet on 1 and 2 worker processes and on a local
Dask cluster, beside LiteRT in the same kind of process pool on the same frames.

    python benchmarks/bench_many.py [--clips 50] [--max-frames 20] [--jobs 1,2] [--no-dask]
                                    [--model ../shared/models/movinet_a0_stream_k600_int8.tflite]

The clips are symlinks to ../shared/media's four clips, repeated to --clips.  Every engine
decodes each clip the same way (PyAV, 5 fps, the first --max-frames frames, resized to
172x172 by `minimovinet.apps.resize`, / 255) and streams it from zero states, one frame per
call, one kernel thread per worker:

  minimovinet   the embedded official A0 stream int8 model (`a0-stream-int8`), through
                `minimovinet.apps.workers.run_local` (spawned processes, model once each) or
                `minimovinet.apps.cluster.run_dask` on `distributed.LocalCluster(processes=True,
                n_workers=J, threads_per_worker=1)` (TCP between the client and its workers;
                warmed by a first untimed pass over a few clips, as a long-lived cluster is)
  litert        `ai_edge_litert` Interpreter on --model (the same official file; default
                resolver, i.e. XNNPACK, num_threads=1) run by the same `run_local` pool

Reported per (engine, jobs): the run's seconds (starting the workers included: a pool is
started for each run; 1 job runs in this process), the steady videos/s from the first result
to the last (start-up and model loading left out) and frames/s, the scaling against 1 job of
the same engine, and the ratio of the rates minimovinet / LiteRT (below 1: minimovinet is
slower).  Machines shared with other jobs are noisy: compare
ratios within one run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_MODEL = SHARED / "models" / "movinet_a0_stream_k600_int8.tflite"
CLIPS = ("carving_ice_172.mp4", "arm_wrestling.mp4", "carving_ice_360.mp4",
         "rope_pushdown_400.mp4")


class LiteRTJob:
    """A `workers.run_local` job: LiteRT on one clip's frames (decoded as minimovinet does)."""

    def __init__(self, model: str, max_frames: int):
        self.model, self.max_frames = model, max_frames

    def key(self) -> str:
        return f"litert {self.model} {self.max_frames}"

    def setup(self):
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter(model_path=self.model, num_threads=1).get_signature_runner()

    def run(self, runner, path):
        from minimovinet.apps.video import read_video, to_model_input
        states = {name: np.zeros(d["shape"], d["dtype"])
                  for name, d in runner.get_input_details().items() if name != "image"}
        frames = 0
        for frame in read_video(path, fps=5, size=(172, 172), max_frames=self.max_frames):
            out = runner(image=to_model_input(frame), **states)      # [1, 1, 172, 172, 3]
            states = {name: out[name] for name in states}
            frames += 1
        return {"path": path, "frames": frames, "error": None}

    def failed(self, path, reason):
        return {"path": path, "frames": 0, "error": reason}


def make_clips(folder: Path, count: int):
    paths = []
    for i in range(count):
        link = folder / f"clip{i:03d}.mp4"
        link.symlink_to(SHARED / "media" / CLIPS[i % len(CLIPS)])
        paths.append(str(link))
    return paths


def timed(results):
    """(total seconds, steady videos/s, frames, errors): the steady rate counts from the first
    result to the last (the workers' start-up and model loading left out)."""
    start = time.perf_counter()
    frames = errors = count = 0
    first = None
    for r in results:
        frames += r["frames"] or 0
        errors += r["error"] is not None
        count += 1
        first = time.perf_counter() if first is None else first
    end = time.perf_counter()
    steady = (count - 1) / (end - first) if count > 1 and end > first else float("nan")
    return end - start, steady, frames, errors


def run_engines(paths, args):
    from minimovinet.apps.many import ClassifyJob
    from minimovinet.apps.workers import run_local
    rows = []
    mm_job = ClassifyJob("a0-stream-int8", max_frames=args.max_frames, fps=5)
    mm_job.classifier().warm_up()                     # kernels in the on-disk cache first
    lite_job = LiteRTJob(str(args.model), args.max_frames)
    for jobs in args.jobs:
        for engine, job in (("minimovinet", mm_job), ("litert", lite_job)):
            seconds, steady, frames, errors = timed(run_local(job, paths, jobs))
            rows.append((engine, f"{jobs} jobs", jobs, seconds, steady, frames, errors))
            print(f"  {engine:<12} {jobs} jobs: {seconds:.1f} s", file=sys.stderr, flush=True)
    if not args.no_dask:
        from distributed import Client, LocalCluster
        from minimovinet.apps.cluster import run_dask
        n = max(args.jobs)
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            for engine, job in (("minimovinet", mm_job), ("litert", lite_job)):
                # a cluster is long-lived: its workers import minimovinet and load the model
                # on their first tasks, here before the timed run
                timed(run_dask(job, paths[:4 * n], client))
                seconds, steady, frames, errors = timed(run_dask(job, paths, client))
                rows.append((engine, f"dask {n} workers", n, seconds, steady, frames, errors))
                print(f"  {engine:<12} dask: {seconds:.1f} s", file=sys.stderr, flush=True)
    return rows


def print_table(rows, clips):
    single = {e: steady for e, label, j, _, steady, _, _ in rows if label == "1 jobs"}
    rates = {(e, label): steady for e, label, _, _, steady, _, _ in rows}
    print(f"\n{clips} clips.  s: the whole run, starting the workers included; videos/s: "
          f"steady, from the first result to the last\n")
    print(f"{'engine':<12} {'run':<16} {'s':>7} {'videos/s':>9} {'frames/s':>9} "
          f"{'scaling':>8} {'mm/litert':>10} {'errors':>6}")
    for engine, label, jobs, seconds, steady, frames, errors in rows:
        scaling = f"{steady / single[engine]:.2f}x" if engine in single else ""
        other = rates.get(("litert", label))
        ratio = f"{steady / other:.2f}" if engine == "minimovinet" and other else ""
        print(f"{engine:<12} {label:<16} {seconds:7.1f} {steady:9.2f} "
              f"{steady * frames / clips:9.1f} {scaling:>8} {ratio:>10} {errors:>6}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=50)
    p.add_argument("--max-frames", type=int, default=20, help="frames per clip (5 fps)")
    p.add_argument("--jobs", default="1,2", help="comma-separated worker counts")
    p.add_argument("--no-dask", action="store_true", help="skip the local Dask cluster")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = p.parse_args(argv)
    args.jobs = [int(j) for j in args.jobs.split(",")]
    print(f"cpus: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        paths = make_clips(Path(folder), args.clips)
        rows = run_engines(paths, args)
    print_table(rows, args.clips)


if __name__ == "__main__":
    main()
