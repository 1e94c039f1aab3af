"""Evaluating a model on labelled videos: accuracy, per-class scores, the confusion matrix,
every video's prediction, and accuracy as a function of the frames seen.

    import minimovinet as mm
    report = mm.evaluate("clips/", "mine.h5")      # a folder of class folders, or a CSV
    print(report.text())
    report.save_json("report.json"); report.plot_confusion("cm.png")

Every video is streamed through the model frame by frame from zero states, at the model's
frame rate and input size (as `minimovinet classify` does; or ``frames`` / ``frame_step``
as in training); the prediction after a frame is the softmax of the logits after it, the
video's prediction the one after its last frame.  ``accuracy_by_frame[t - 1]`` is the top-1
accuracy of the predictions after t frames, a video shorter than t counting with its final
prediction.  Folder (or CSV) class names are matched to the model's class names ignoring
case, spaces and underscores; one that matches none is an error naming the closest.
Unreadable videos are skipped and listed.  Metrics: `metrics.py` (scikit-learn's
definitions).  Plots: `report_plots.py` (matplotlib, the ``plot`` extra).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..atomic import atomic_open
from ..errors import FileError, InputError, VideoError
from .dataset import load_video_set, match_classes
from .features import decode_clip, load_model, make_sampling, view_indices
from .progress import Progress
from .metrics import (averages, confusion_matrix, format_table, per_class_scores,
                      report_labels, top_k_accuracy)

__all__ = ["evaluate", "EvaluationReport", "VideoResult", "EvaluateJob", "add_parser", "run"]

TOP_K = 5


@dataclasses.dataclass(frozen=True)
class VideoResult:
    path: str
    label: int                  # model class index
    probabilities: np.ndarray   # float32 [C] after the last frame
    top1_by_frame: np.ndarray   # int64 [T]: the top-1 class after each frame


@dataclasses.dataclass
class EvaluationReport:
    model: str
    data: str
    class_names: List[str]              # the model's
    videos: List[VideoResult]
    skipped: List[Tuple[str, str]]
    fps: Optional[float]
    size: Tuple[int, int]

    # ---- the numbers --------------------------------------------------------------------------

    @property
    def actual(self) -> np.ndarray:
        return np.array([v.label for v in self.videos], np.int64)

    @property
    def predicted(self) -> np.ndarray:
        return np.array([int(v.probabilities.argmax()) for v in self.videos], np.int64)

    @property
    def labels(self) -> List[int]:
        """The classes of the matrix and the per-class scores: actual or predicted."""
        return report_labels(self.actual, self.predicted)

    def accuracy_by_frame(self) -> np.ndarray:
        """float64 [max T]: top-1 accuracy after 1, 2, ... frames."""
        longest = max(len(v.top1_by_frame) for v in self.videos)
        held = np.stack([np.pad(v.top1_by_frame, (0, longest - len(v.top1_by_frame)), "edge")
                         for v in self.videos])                              # [N, max T]
        return (held == self.actual[:, None]).mean(axis=0)

    def to_dict(self) -> dict:
        names = [self.class_names[i] for i in self.labels]
        cm = confusion_matrix(self.actual, self.predicted, self.labels)
        scores = per_class_scores(cm)
        lengths = np.array([len(v.top1_by_frame) for v in self.videos])
        by_frame = [{"frames": t + 1, "seconds": (t + 1) / self.fps if self.fps else None,
                     "accuracy": float(a), "videos": int((lengths >= t + 1).sum())}
                    for t, a in enumerate(self.accuracy_by_frame())]
        return {
            "model": self.model, "data": self.data, "fps": self.fps, "size": list(self.size),
            "accuracy": float((self.actual == self.predicted).mean()),
            "top5_accuracy": top_k_accuracy(self.actual, self._scores(), TOP_K),
            "classes": names,
            "confusion_matrix": cm.tolist(),
            "per_class": {n: {"precision": float(scores["precision"][i]),
                              "recall": float(scores["recall"][i]),
                              "f1": float(scores["f1"][i]),
                              "support": int(scores["support"][i])}
                          for i, n in enumerate(names)},
            **averages(scores),
            "videos": [self._video_dict(v) for v in self.videos],
            "accuracy_by_frame": by_frame,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }

    def _scores(self) -> np.ndarray:
        return np.stack([v.probabilities for v in self.videos])                 # [N, C]

    def _video_dict(self, v: VideoResult) -> dict:
        order = np.argsort(v.probabilities, kind="mergesort")[::-1][:TOP_K]
        return {"path": v.path, "label": self.class_names[v.label],
                "predicted": self.class_names[int(order[0])],
                "probability": float(v.probabilities[order[0]]),
                "label_probability": float(v.probabilities[v.label]),
                "frames": int(len(v.top1_by_frame)),
                "top5": [[self.class_names[int(i)], float(v.probabilities[i])] for i in order]}

    # ---- output -----------------------------------------------------------------------------

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save_json(self, path) -> Path:
        return write_atomically(path, (self.to_json() + "\n").encode("utf-8"))

    def text(self) -> str:
        d = self.to_dict()
        lines = [f"{self.data}: {len(self.videos)} videos, model {self.model}, "
                 f"{self.size[0]}x{self.size[1]}"
                 + (f", {self.fps:g} fps" if self.fps else ", every frame"),
                 f"top-1 accuracy {d['accuracy']:.4f}   top-{TOP_K} accuracy "
                 f"{d['top5_accuracy']:.4f}", ""]
        scores = {k: np.array([d["per_class"][n][k] for n in d["classes"]])
                  for k in ("precision", "recall", "f1", "support")}
        lines += [format_table(d["classes"], scores, d, d["accuracy"]), ""]
        lines += _matrix_lines(d["classes"], np.array(d["confusion_matrix"])) + [""]
        lines.append("top-1 accuracy after n frames: " + ", ".join(
            f"{e['frames']}: {e['accuracy']:.3f}" for e in _milestones(d["accuracy_by_frame"])))
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable video(s):")
            lines += [f"  {p}: {r}" for p, r in self.skipped]
        return "\n".join(lines)

    def plot_confusion(self, path) -> Path:
        from .report_plots import confusion_png
        d = self.to_dict()
        return write_atomically(path, confusion_png(d["classes"], d["confusion_matrix"],
                                                    f"{self.model} on {self.data}"))

    def plot_accuracy_by_frame(self, path) -> Path:
        from .report_plots import accuracy_by_frame_png
        return write_atomically(path, accuracy_by_frame_png(
            self.accuracy_by_frame(), self.fps, f"{self.model} on {self.data}"))


def _milestones(entries: list) -> list:
    """Frames 1, 2, 5, 10, 20, 50, ... and the last."""
    keep = {1, 2, 5} | {m * 10 ** e for e in range(1, 6) for m in (1, 2, 5)} | {len(entries)}
    return [e for e in entries if e["frames"] in keep]


def _matrix_lines(names: Sequence[str], cm: np.ndarray) -> List[str]:
    width = max(len(str(int(cm.max(initial=0)))), len(str(len(names))), 2)
    name_width = max(len(n) for n in names) + 5
    lines = ["confusion matrix (rows: actual, columns: predicted):",
             " " * name_width + " ".join(f"{j:>{width}}" for j in range(len(names)))]
    for i, (name, row) in enumerate(zip(names, cm)):
        lines.append(f"{i:>3}  {name:<{name_width - 5}}" + " ".join(f"{c:>{width}}" for c in row))
    return lines


def write_atomically(path, data: bytes) -> Path:
    """`data` into `path`, complete or not at all (`minimovinet.atomic`)."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


# ---- running the model -----------------------------------------------------------------------

def _class_names(model, given) -> List[str]:
    names = given if given is not None else getattr(model, "class_names", None)
    num_classes = model.config.num_classes
    if names is None and num_classes == 600:
        from ..data import kinetics600_labels
        names = kinetics600_labels()
    if names is None:
        raise InputError(f"model {model.name} has no class names: pass class_names")
    if len(names) != num_classes:
        raise InputError(f"{len(names)} class names for a model of {num_classes} classes")
    return [str(n) for n in names]


def stream_video(model, frames: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """uint8 frames [T, h, w, 3] fed one by one from zero states: (probabilities after the
    last frame [C], the top-1 class after every frame [T])."""
    T, height, width, _ = frames.shape
    states = model.init_states(batch=1, height=height, width=width)
    top1 = np.empty(T, np.int64)
    for t in range(T):
        x = frames[None, None, t].astype(np.float32) / np.float32(255)      # [1, 1, h, w, 3]
        probs, states = model.predict_proba(x, states)                       # [1, C]
        top1[t] = int(np.argmax(probs[0]))
    return probs[0].astype(np.float32), top1


@dataclasses.dataclass(frozen=True)
class EvaluateJob:
    """What a worker does with one labelled video (the many-video engine, `many.run_job`):
    decode it with `sampling`, stream it through the model.  Items are (index, path); the
    result is (index, path, probabilities [C], top-1 by frame [T]) or (index, path, reason)."""
    model: object                    # a registry name or a file path (a loaded model: jobs=1)
    sampling: object

    def key(self) -> str:
        return repr(self)

    def setup(self):
        if isinstance(self.model, (str, Path)):
            from ..threads import set_num_threads
            set_num_threads(1)               # a worker of several: one kernel thread
        return load_model(self.model)

    def run(self, model, item):
        index, path = item
        try:
            clip = decode_clip(path, self.sampling)                       # [T, h, w, 3]
        except (VideoError, FileError) as e:
            return index, path, " ".join(str(e).split())
        window = view_indices(len(clip), self.sampling, np.random.default_rng(0))[0]
        probabilities, top1 = stream_video(model, clip[window])
        return index, path, probabilities, top1

    def failed(self, item, reason):
        return item[0], item[1], reason


def evaluate(data, model, *, fps=None, frames=None, frame_step=None, size=None,
             class_names: Optional[Sequence[str]] = None,
             progress: Optional[bool] = None, jobs: int = 1, client=None) -> EvaluationReport:
    """Stream every video of `data` through `model` (path, registry name or model) and
    collect the predictions (see the module docstring).  jobs: worker processes (1: this
    one); client: a `distributed.Client` to run them on a Dask cluster (`many.run_job`); the
    report is the same whichever runs them."""
    from .many import run_job
    videos = load_video_set(data)
    spec = model
    model = load_model(model)
    if not model.config.causal:
        raise InputError(f"model {model.name} is a whole-clip (base) model: it cannot classify "
                         f"a stream frame by frame; use a stream model")
    names = _class_names(model, class_names)
    index = dict(zip(videos.classes, match_classes(videos.classes, names)))
    sampling = make_sampling(model, fps, frames, frame_step, size)
    several = client is not None or jobs != 1
    if several and not isinstance(spec, (str, Path)):
        raise InputError("with several workers the model must be a registry name or a model "
                         "file path (each worker loads it), not a loaded model")
    job = EvaluateJob(str(spec) if several else model, sampling)
    items = [(i, str(v.path)) for i, v in enumerate(videos.videos)]
    outcomes = [None] * len(items)           # in the data's order, whatever order they finish
    with Progress("evaluate", len(items), unit="videos", enabled=progress) as bar:
        for outcome in run_job(job, items, jobs=None if client is not None else jobs,
                               client=client):
            bar.update(1)
            outcomes[outcome[0]] = outcome
    results, skipped = [], []
    for video, outcome in zip(videos.videos, outcomes):
        if len(outcome) == 3:
            skipped.append((str(video.path), outcome[2]))
        else:
            results.append(VideoResult(str(video.path), index[video.label], outcome[2],
                                       outcome[3]))
    if not results:
        raise InputError(f"{videos.source}: none of the {len(videos.videos)} videos could be "
                         f"read")
    return EvaluationReport(getattr(model, "name", type(model).__name__), videos.source, names,
                            results, skipped, sampling.fps, sampling.size)


# ---- the command line ------------------------------------------------------------------------

def add_parser(subparsers):
    """The ``evaluate`` subcommand (its handler is `run`)."""
    p = subparsers.add_parser("evaluate", help="accuracy, per-class scores and the confusion "
                                               "matrix of a model on labelled videos")
    p.add_argument("data", metavar="DATA", help="a folder with one sub-folder of videos per "
                   "class (named after the model's classes), or a CSV of path,label lines")
    p.add_argument("--model", required=True, metavar="MODEL",
                   help="registry name or model file (.tflite, .h5)")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of text")
    p.add_argument("-o", "--output", metavar="REPORT.json", help="write the JSON report here")
    p.add_argument("--plot", metavar="PNG", help="draw the confusion matrix (needs matplotlib)")
    p.add_argument("--plot-by-frame", metavar="PNG", help="draw the top-1 accuracy by frames "
                   "seen (needs matplotlib)")
    p.add_argument("--fps", type=float, help="decode at this rate (default: the model's)")
    p.add_argument("--frames", type=int, metavar="N", help="at most N frames per video")
    p.add_argument("--frame-step", type=int, metavar="S", help="keep every S-th frame")
    p.add_argument("--size", type=int, help="frame size (default: the model's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="worker processes (default 1: this process), as classify's --jobs")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the videos on a Dask cluster (pip install \"minimovinet[cluster]\")")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    if args.plot or args.plot_by_frame:
        from .classify import import_matplotlib
        import_matplotlib()                   # fail before the long part
    if args.jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {args.jobs}")
    client = None
    if args.scheduler:
        from .cluster import connect
        client = connect(args.scheduler)
    try:
        report = evaluate(args.data, args.model, fps=args.fps, frames=args.frames,
                          frame_step=args.frame_step, size=args.size,
                          progress=False if args.no_progress else None, jobs=args.jobs,
                          client=client)
    finally:
        if client is not None:
            client.close()
    print(report.to_json() if args.json else report.text())
    if args.output:
        report.save_json(args.output)
    if args.plot:
        report.plot_confusion(args.plot)
    if args.plot_by_frame:
        report.plot_accuracy_by_frame(args.plot_by_frame)
    return 0
