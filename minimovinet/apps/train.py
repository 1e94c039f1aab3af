"""Transfer learning: a new classifier for your own classes on a frozen MoViNet backbone.

    import minimovinet as mm
    result = mm.train_classifier("clips/", backbone="a0-stream-int8", output="mine.h5",
                                 val_split=0.2)
    result.model            # a float stream Movinet: the backbone with the new head
    result.history          # one EpochResult per epoch

What the MoViNet transfer-learning tutorial does with Keras, without TensorFlow: features of
every clip from the frozen backbone (`features.py`, cached on disk by `feature_cache.py`), a
new head (`head.py`, the official classifier head shape) trained with Adam and softmax
cross-entropy from logits (`adam.py`, `fit.py`), then the backbone and the head saved as one
float model (`minimovinet.save`, atomically: an interrupted run leaves no half-written file)
with the class names, which classify / live / evaluate use like any model, frame by frame.

The head trains in float64 by default (``dtype``): that arithmetic follows Keras's float64
to the last bits (tests/test_train.py); in float32 Adam amplifies summation-order rounding
of near-zero gradients, so float32 runs agree with Keras's float32 to about 1e-4 only.

Command line: ``minimovinet train DATA --backbone MODEL -o OUT.h5`` (`add_parser`, `run`).
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

from ..errors import FileError, InputError
from .dataset import (VideoSet, check_trainable, load_video_set, match_classes,
                      stratified_split)
from .feature_cache import FeatureCache, default_cache_dir
from .features import FeatureExtractor, float_backbone, make_sampling
from .fit import EpochResult, FitOptions, fit_head
from .head import KINDS, ClassifierHead

__all__ = ["train_classifier", "TrainResult", "build_model", "add_parser", "run",
           "DEFAULT_BACKBONE"]


def _default_backbone() -> str:
    from ..data import DEFAULT_MODEL
    return str(DEFAULT_MODEL)


DEFAULT_BACKBONE = "the embedded official A0 stream int8 model (minimovinet.data.DEFAULT_MODEL)"


@dataclasses.dataclass
class TrainResult:
    model: object                       # the float Movinet with the new head
    head: ClassifierHead
    classes: Tuple[str, ...]
    history: List[EpochResult]
    output: Optional[Path]
    skipped: List[Tuple[str, str]]      # (path, reason) of unreadable videos
    train_clips: int
    val_clips: int
    feature_seconds: float              # decoding + backbone, clips not in the cache
    computed_clips: int                 # clips run through the backbone (the rest: cache)


def build_model(backbone, head: ClassifierHead, classes):
    """The backbone's weights with `head` as its classifier: a float `Movinet`."""
    from ..float32.model import Movinet
    params = {k: v for k, v in backbone.raw_params.items() if not k.startswith("classifier/")}
    head_params, activation = head.model_params(backbone.config.head.hidden_filters)
    params.update(head_params)
    config = dataclasses.replace(backbone.config, num_classes=len(classes),
                                 classifier_activation=activation)
    return Movinet(config, params, list(classes))


def _validation(videos: VideoSet, val, val_split, seed) -> Tuple[VideoSet, Optional[VideoSet]]:
    """(training videos, validation videos or None)."""
    if val is not None and val_split:
        raise InputError("give validation videos (val) or a validation fraction (val_split), "
                         "not both")
    if val_split:
        return stratified_split(videos, val_split, seed)
    if val is None:
        return videos, None
    held = load_video_set(val)
    indices = match_classes(held.classes, videos.classes, "validation class",
                            "the training classes")
    renamed = {c: videos.classes[i] for c, i in zip(held.classes, indices)}
    relabelled = tuple(dataclasses.replace(v, label=renamed[v.label]) for v in held.videos)
    return videos, VideoSet(relabelled, videos.classes, held.source)


def _check_output(output) -> Optional[Path]:
    """Fail before the long part when the model could not be written."""
    if output is None:
        return None
    output = Path(output)
    if output.is_dir():
        raise FileError(f"cannot write {output}: it is a directory")
    if not output.parent.is_dir():
        raise FileError(f"cannot write {output}: the directory {output.parent} does not exist")
    return output


def _open_cache(cache) -> Optional[FeatureCache]:
    if cache is None or cache is False:
        return None
    return FeatureCache(default_cache_dir() if cache is True or cache == "default" else cache)


def _features(extractor, videos, val_extractor, val_videos, show_progress, log):
    """Extract the training and validation features; report skipped videos."""
    train = extractor.extract(videos, show_progress)
    val = val_extractor.extract(val_videos, show_progress) if val_videos is not None else None
    skipped = train.skipped + (val.skipped if val is not None else [])
    if skipped and log is not None:
        total = len(videos.videos) + (len(val_videos.videos) if val_videos is not None else 0)
        log(f"skipped {len(skipped)} unreadable video(s) of {total}:")
        for path, reason in skipped:
            log(f"  {path}: {reason}")
    check_trainable(train.videos, "the readable training videos")
    return train, val, skipped


def train_classifier(data, backbone=None, output=None, *, val=None, val_split=None,
                     fps=None, frames=None, frame_step=None, size=None, views: int = 1,
                     epochs: int = 30, batch_size: int = 32, learning_rate: float = 1e-3,
                     label_smoothing: float = 0.0, weight_decay: float = 0.0,
                     dropout: float = 0.2, patience: int = 5, seed: int = 0,
                     head: str = "official", cache="default", dtype="float64",
                     progress: Optional[bool] = None,
                     log: Optional[Callable[[str], None]] = print) -> TrainResult:
    """Train a new head for the classes of `data` (a folder of class folders or a CSV of
    ``path,label``) on `backbone` (path, registry name or model; default the embedded A0 int8
    model) and save the whole model to `output` (.h5) when given.  `cache`: a folder, "default"
    ($MINIMOVINET_HOME/features) or None for no cache.  See the module docstring."""
    if head not in KINDS:
        raise InputError(f"head must be one of {', '.join(KINDS)}, got {head!r}")
    if str(dtype) not in ("float32", "float64") and dtype not in (np.float32, np.float64):
        raise InputError(f"dtype must be float32 or float64, got {dtype!r}")
    options = FitOptions(epochs, batch_size, learning_rate, label_smoothing, weight_decay,
                         dropout, patience, seed).check()
    output = _check_output(output)
    videos = load_video_set(data)
    check_trainable(videos)
    videos, val_videos = _validation(videos, val, val_split, seed)
    model = float_backbone(_default_backbone() if backbone is None else backbone)
    sampling = make_sampling(model, fps, frames, frame_step, size, views, seed)
    store = _open_cache(cache)
    extractor = FeatureExtractor(model, sampling, store)
    val_extractor = FeatureExtractor(model, dataclasses.replace(sampling, views=1), store)
    train, held, skipped = _features(extractor, videos, val_extractor, val_videos, progress, log)
    computed = extractor.computed + val_extractor.computed
    seconds = extractor.seconds + val_extractor.seconds
    if log is not None:
        per_clip = f", {seconds / computed:.2f} s per clip" if computed else ""
        log(f"features of {len(train.labels)} training and "
            f"{len(held.labels) if held is not None else 0} validation clips: {computed} "
            f"computed, {extractor.cached + val_extractor.cached} from the cache{per_clip}")
    classes = videos.classes
    new_head = ClassifierHead.initialize(model.config.head.project_filters, len(classes),
                                         model.config.head.hidden_filters,
                                         model.config.classifier_activation, head, seed,
                                         np.dtype(dtype).type)
    history = fit_head(new_head, train.features, train.labels, options,
                       held.features[:, 0] if held is not None else None,
                       held.labels if held is not None else None, log)
    trained = build_model(model, new_head, classes)
    if output is not None:
        _save(trained, output, data, model.name, head)
        if log is not None:
            log(f"wrote {output} ({len(classes)} classes: {', '.join(classes)})")
    return TrainResult(trained, new_head, tuple(classes), history, output, skipped,
                       len(train.labels), len(held.labels) if held is not None else 0,
                       seconds, computed)


def _save(model, output: Path, data, backbone_name: str, head: str) -> None:
    from .. import save
    save(model, output, source=f"minimovinet train: {head} head on {backbone_name} features "
                               f"of {os.fspath(data)}")


# ---- the command line ------------------------------------------------------------------------

def add_parser(subparsers):
    """The ``train`` subcommand (its handler is `run`)."""
    p = subparsers.add_parser("train", help="train a classifier for your own classes on a "
                                            "frozen MoViNet backbone (transfer learning)")
    p.add_argument("data", metavar="DATA", help="a folder with one sub-folder of videos per "
                                                "class (folder name = class name), or a CSV "
                                                "file of path,label lines")
    p.add_argument("--backbone", metavar="MODEL", help="registry name or model file (.tflite, "
                   ".h5) of a stream model (default: the embedded A0 stream int8 model)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5", help="the trained model")
    held = p.add_mutually_exclusive_group()
    held.add_argument("--val", metavar="DIR", help="validation videos (same layout as DATA)")
    held.add_argument("--val-split", type=float, metavar="F",
                      help="hold out this fraction of each class for validation (seeded)")
    sampling = p.add_argument_group("sampling")
    sampling.add_argument("--fps", type=float, help="decode at this rate (default: the "
                          "model's, 5 for A0; with --frame-step: every frame)")
    sampling.add_argument("--frames", type=int, metavar="N", help="at most N frames per clip")
    sampling.add_argument("--frame-step", type=int, metavar="S", help="keep every S-th frame")
    sampling.add_argument("--size", type=int, help="frame size (default: the model's, 172 for "
                          "A0; the model file does not record it: classify at the same size)")
    sampling.add_argument("--views", type=int, default=1, help="windows per clip; views after "
                          "the first start at random frames (temporal augmentation)")
    fit = p.add_argument_group("training")
    defaults = FitOptions()
    for flag, kind, name in (("--epochs", int, "epochs"), ("--batch-size", int, "batch_size"),
                             ("--lr", float, "learning_rate"),
                             ("--label-smoothing", float, "label_smoothing"),
                             ("--weight-decay", float, "weight_decay"),
                             ("--dropout", float, "dropout"), ("--seed", int, "seed"),
                             ("--patience", int, "patience")):
        fit.add_argument(flag, type=kind, default=getattr(defaults, name), dest=name,
                         help=f"default {getattr(defaults, name)}")
    fit.add_argument("--head", choices=KINDS, default="official",
                     help="official: dense P->2048 + activation, dropout, dense ->classes; "
                          "linear: one dense layer")
    store = p.add_mutually_exclusive_group()
    store.add_argument("--cache", metavar="DIR", help="feature cache folder (default: "
                       "$MINIMOVINET_HOME/features)")
    store.add_argument("--no-cache", action="store_true", help="do not cache features")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    began = time.perf_counter()
    result = train_classifier(
        args.data, args.backbone, args.output, val=args.val, val_split=args.val_split,
        fps=args.fps, frames=args.frames, frame_step=args.frame_step, size=args.size,
        views=args.views, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, label_smoothing=args.label_smoothing,
        weight_decay=args.weight_decay, dropout=args.dropout, patience=args.patience,
        seed=args.seed, head=args.head,
        cache=None if args.no_cache else (args.cache or "default"),
        progress=False if args.no_progress else None)
    last = result.history[-1]
    print(f"trained in {time.perf_counter() - began:.1f} s: {len(result.history)} epochs, "
          f"final training accuracy {last.accuracy:.4f}")
    return 0
