"""Classifying many videos: on every core of this machine, or on a Dask cluster.

    import minimovinet as mm
    for r in mm.classify_many(["clips/", "@more.txt", "a.mp4"], model="a0-stream-int8", jobs=4):
        print(r["path"], r["top_k"][0] if r["error"] is None else r["error"])
    client = dask.distributed.Client("tcp://HOST:8786")
    for r in mm.classify_many("clips/", client=client): ...

Inputs: files, folders (recursive, by extension) and ``@lists`` of paths (`inputs.py`).
Each video is classified as `VideoClassifier.classify` does (the model's rate, or `fps`, or
every frame; the same preprocessing and label options), from a fresh stream, and gives one
`VideoRecord` (`results.py`): path, frames, seconds, the final top-k, error.  A video that
cannot be read or is truncated is a record with its error; the others go on.

Engines: ``jobs`` worker processes here (`workers.py`; default one per core, each with one
kernel thread and the model loaded once), or the workers of a Dask cluster (``client``,
`cluster.py`).  Results come as they finish, not in input order; the results are the same bits
whatever the engine (the int8 model is integer arithmetic; float32 runs the same kernels).
The local workers are started by ``spawn``, which imports the main script in each: a script
calls `classify_many` with ``jobs > 1`` under ``if __name__ == "__main__":``.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Iterable, Iterator, Optional, Sequence, Tuple

from ..errors import FileError, InputError, MinimovinetError
from .classify import DEFAULT_MODEL, VideoClassifier
from .inputs import expand_inputs, path_key
from .results import VideoRecord

__all__ = ["classify_many", "ClassifyJob", "default_jobs", "run_job"]


def default_jobs() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class ClassifyJob:
    """What a worker does with one video path: a `VideoClassifier` with these options (built
    once per worker by `setup`) classifies it.  Picklable: sent to every worker."""
    model: object = DEFAULT_MODEL            # a registry name or a model file path
    top_k: int = 5
    fps: Optional[float] = None
    every_frame: bool = False
    max_frames: Optional[int] = None
    crop: str = "squash"
    allow: Optional[Tuple[str, ...]] = None
    deny: Optional[Tuple[str, ...]] = None
    threshold: float = 0.0
    class_names: Optional[Tuple[str, ...]] = None
    threads: int = 1                         # kernel threads per worker

    def key(self) -> str:
        return repr(self)

    def classifier(self) -> VideoClassifier:
        return VideoClassifier(self.model, top_k=self.top_k, class_names=self.class_names,
                               crop=self.crop, allow=self.allow, deny=self.deny,
                               threshold=self.threshold)

    def setup(self) -> VideoClassifier:
        from ..threads import set_num_threads
        set_num_threads(self.threads)
        return self.classifier()

    def run(self, clf: VideoClassifier, path: str) -> VideoRecord:
        from .video import VideoWarning
        try:
            with warnings.catch_warnings():
                # a truncated or corrupt file is an error: its result would look complete
                warnings.simplefilter("error", VideoWarning)
                result = clf.classify(path, fps=self.fps, every_frame=self.every_frame,
                                      max_frames=self.max_frames)
        except (MinimovinetError, VideoWarning) as e:
            return VideoRecord.failed(path, str(e) if path in str(e) else f"{path}: {e}")
        except OSError as e:
            return VideoRecord.failed(path, f"{path}: {e.strerror or e}")
        except MemoryError:
            return VideoRecord.failed(path, f"{path}: out of memory")
        except Exception as e:                  # noqa: BLE001 (one video's bug: said, run goes on)
            return VideoRecord.failed(path, f"{path}: internal error {type(e).__name__}: {e}")
        return VideoRecord(path, result.frames, result.duration, result.top)

    def failed(self, path: str, reason: str) -> VideoRecord:
        return VideoRecord.failed(path, f"{path}: {reason}")


def run_job(job, items: Iterable, jobs: Optional[int] = None, client=None) -> Iterator:
    """`job` over `items` on `jobs` local processes (default one per core) or, with `client`
    (a `distributed.Client`), on the Dask cluster."""
    if client is not None:
        if jobs is not None:
            raise InputError("give jobs (local worker processes) or a Dask client, not both")
        from .cluster import run_dask
        return run_dask(job, items, client)
    from .workers import run_local
    _check_jobs(jobs)
    return run_local(job, items, default_jobs() if jobs is None else jobs)


def _check_jobs(jobs) -> None:
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise InputError(f"jobs must be an integer >= 1, got {jobs!r}")


def _check_model(model, jobs, client) -> None:
    if isinstance(model, (str, os.PathLike)):
        return
    if client is not None or (jobs or default_jobs()) > 1:
        raise InputError("with several workers the model must be a registry name or a model "
                         "file path (each worker loads it), not a loaded model")


def classify_many(paths, model=DEFAULT_MODEL, *, jobs: Optional[int] = None, client=None,
                  top_k: int = 5, fps=None, every_frame: bool = False,
                  max_frames: Optional[int] = None, crop: str = "squash",
                  allow: Optional[Sequence[str]] = None, deny: Optional[Sequence[str]] = None,
                  threshold: float = 0.0, class_names: Optional[Sequence[str]] = None,
                  threads: int = 1, skip: Iterable = ()) -> Iterator[VideoRecord]:
    """Classify every video of `paths` (files, folders, ``@lists``; see the module docstring),
    yielding one `VideoRecord` per video as each finishes.  jobs: local worker processes
    (default one per core; 1 runs here); client: a `distributed.Client` (then jobs is not
    given).  threads: kernel threads per worker.  skip: paths not to run (done already).
    The options are those of `VideoClassifier` and its `classify`.  Bad options, an unknown
    model or no video at all raise before any work."""
    _check_jobs(jobs)
    found, _notes = expand_inputs(paths)
    done = {path_key(p) for p in skip}
    todo = [p for p in found if path_key(p) not in done]
    _check_model(model, jobs, client)
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    job = ClassifyJob(model=model, top_k=top_k, fps=fps, every_frame=every_frame,
                      max_frames=max_frames, crop=crop,
                      allow=None if allow is None else tuple(allow),
                      deny=None if deny is None else tuple(deny), threshold=threshold,
                      class_names=None if class_names is None else tuple(class_names),
                      threads=threads)
    local = 1 if not isinstance(model, str) else jobs       # a loaded model runs here
    if client is None:
        # here first: a bad model or option is one error, not one per video; and the kernels
        # are compiled once into the on-disk cache that the workers then load them from
        clf = job.classifier()
        if (local or default_jobs()) > 1:
            clf.warm_up()
    if not todo:
        return iter(())
    return run_job(job, todo, jobs=local, client=client)


def check_output_path(path, what: str) -> None:
    """A results file name that is not a video (``--csv clip.mp4`` would overwrite it)."""
    from .dataset import VIDEO_EXTENSIONS
    if os.path.splitext(os.fspath(path))[1].lower() in VIDEO_EXTENSIONS:
        raise FileError(f"{what} {path}: that is a video's name; {what} takes the file the "
                        f"results are written to (e.g. results.{what.lstrip('-')})")
