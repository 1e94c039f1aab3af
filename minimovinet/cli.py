"""The `minimovinet` command line: argument parsing and printing over `minimovinet.apps`.

    minimovinet convert CHECKPOINT_PREFIX_OR_DIR_OR_TAR [--model-id a0] [--variant stream] -o a0_stream.h5
    minimovinet convert MODEL_INT8.tflite [--labels labels.txt] -o model_int8.h5
    minimovinet convert MODEL_INT8.h5 -o model_int8.tflite      (a TFLite file LiteRT runs)
    minimovinet convert MODEL_FLOAT16.tflite -o model.h5   (float32 / float16 / dynamic-range)
    minimovinet convert MODEL_INT8.tflite --dequantize -o model_float.h5   (the float32 view)
    minimovinet convert SAVED_MODEL_DIR_OR_TAR_GZ [--labels labels.txt] -o a0_stream.h5
    minimovinet describe MODEL.h5 [--height 172 --width 172]
    minimovinet models                  (the official models: name, input, fps, URL, cached?)
    minimovinet fetch NAME [NAME ...] [--force]   (download, verify, convert into the cache)
    minimovinet classify VIDEO [--model NAME|FILE] [--top-k 5] [--fps N | --every-frame]
                         [--json | --csv] [-o FILE] [--plot timeline.png] [--max-frames N]
    minimovinet classify VIDEO|FOLDER|@LIST ... [--jsonl OUT] [--csv OUT]
                         [--jobs N | --scheduler tcp://HOST:PORT] [--resume]
    minimovinet live (--camera 0 | --file VIDEO [--speed 1]) [--model NAME|FILE] [--top-k 5]
                     [--fps N] [--duration SECONDS] [--reset-every SECONDS] [--show]
                     [--save-video OUT.mp4]
    minimovinet train DATA_DIR [--backbone MODEL] -o OUT.h5      (your own classes)
    minimovinet quantize MODEL.h5 --calibration DATA -o OUT.h5    (post-training int8)
    minimovinet evaluate DATA_DIR --model MODEL [--json] [-o report.json] [--plot cm.png]

classify: streams the video through the model (default: the official A0 stream int8 model from
the cache, `minimovinet fetch a0-stream-int8`) at the model's frame rate (5 fps for A0-A2;
--every-frame feeds every decoded frame) and prints the final top-k with probabilities.
--json / --csv print the per-frame timeline too (csv: frame,time,rank,label,probability);
-o writes that output to a file instead of stdout; --plot draws the final top-5 classes'
probabilities over time into a PNG (needs matplotlib: pip install "minimovinet[plot]").  A
progress bar is drawn on stderr when stderr is a terminal (with tqdm: pip install
"minimovinet[progress]"; without it, a line when the work starts and ends).  Files are written
atomically.

classify over many videos (several inputs, folders, @lists, or --jsonl / --csv OUT, --jobs,
--scheduler, --resume): `minimovinet.apps.many_run` (one result per video, appended to the
results files as it finishes, on worker processes or a Dask cluster; --resume continues).

live: classifies a camera (device index) or a file played as if live (frames delivered at the
video's real pace, or --speed times faster) at the model's frame rate, printing the rolling
top-k: one line per classified frame, or redrawn in place on a terminal.  When inference
falls behind, the newest frame is classified and the older ones are dropped and counted.
It stops at the end of the file, after --duration seconds, or on Ctrl-C.  The engine is
`minimovinet.apps.live.LiveClassifier`.

Exit codes (all commands): `EXIT_CODES`, shown by --help.
"""
from __future__ import annotations

import argparse
import errno
import math
import os
import shlex
import sys
import traceback
import warnings
from pathlib import Path

from .errors import CheckpointError, FileError, InputError, MinimovinetError, VideoError

EXIT_CODES = """\
exit codes:
  0    success
  1    a problem with the input or the environment: missing or unreadable video, not a
       video, a video without frames or truncated, unknown model name, model not in the
       cache, unreadable cache, a broken model file, a full disk, no permission to write an
       output (one line on stderr, no traceback)
  2    bad usage (unknown option, bad value; argparse's message)
  3    an internal error: a bug in minimovinet (the traceback and a request to report it)
  130  interrupted (Ctrl-C)"""
EXIT_INTERNAL_ERROR = 3

# OSErrors that say something about the machine, not about minimovinet: one line, exit 1
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS,
                       errno.EIO, errno.EMFILE, errno.ENFILE}


def _read_labels(path):
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FileError(f"cannot read the labels file {path}: not a UTF-8 text file") from None
    except OSError as e:
        raise FileError(f"cannot read the labels file {path}: {e.strerror or e}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def cmd_convert(args) -> int:
    from .formats.official_checkpoint import convert_arrays
    from .formats.tf_checkpoint import CheckpointReader
    source = Path(args.source)
    output = Path(args.output) if args.output else Path(
        f"{source.name.split('.')[0] or 'model'}{'_float' if args.dequantize else ''}.h5")
    if args.dequantize:
        return convert_dequantize(source, output, args)
    if output.suffix.lower() == ".tflite":
        return convert_to_tflite(source, output, args)
    if source.suffix.lower() == ".tflite":
        return convert_tflite(source, output, args)
    from .formats.saved_model import convert_saved_model, is_saved_model
    if is_saved_model(source):           # a TF Hub / Kaggle SavedModel, or its .tar.gz
        print(convert_saved_model(source, output, model_id=args.model_id, variant=args.variant,
                                  num_classes=args.num_classes,
                                  class_names=_read_labels(args.labels),
                                  source=f"converted from {source}"))
        return 0
    try:
        with CheckpointReader(str(source)) as reader:
            arrays = reader.arrays()
    except CheckpointError as e:
        if source.is_dir() and "no TensorFlow checkpoint" in str(e):
            raise CheckpointError(f"{e}, and no saved_model.pb: neither a checkpoint nor a "
                                  "SavedModel") from None
        raise
    note = convert_arrays(arrays, output, model_id=args.model_id, variant=args.variant,
                          num_classes=args.num_classes, class_names=_read_labels(args.labels),
                          source=f"converted from {source}")
    print(note)
    return 0


def _note_ignored_options(args) -> None:
    if args.model_id or args.variant or args.num_classes:
        print("minimovinet convert: note: --model-id/--variant/--num-classes are read off the "
              "model file and ignored", file=sys.stderr)


def _describe_int8(model) -> str:
    cfg = model.config
    what = ("structure not recognised, runs op by op" if model.program.unrecognised
            else f"{cfg.activation}, SE {cfg.se_type}")
    return (f"int8 {cfg.model_id} {cfg.variant} ({what}), "
            f"{model.height}x{model.width} frames, {len(model.program.states)} states")


def _load_int8(source, args, what: str):
    """The int8 model in `source` (an int8 .tflite or int8 .h5 file) for `what`."""
    from . import Int8Movinet, load
    if source.suffix.lower() not in (".tflite", ".h5"):
        raise InputError(f"{what} needs an int8 model file (.tflite or an int8 .h5), not "
                         f"{source}")
    model = load(source, _read_labels(args.labels))     # 600 classes: Kinetics-600 names
    if not isinstance(model, Int8Movinet):
        raise InputError(f"{source}: {what} needs an int8 model; this is a float32 model "
                         f"({model.config.model_id} {model.config.variant})")
    return model


def convert_tflite(source, output, args) -> int:
    """An int8 TFLite MoViNet stream model -> an int8 minimovinet h5 file; a float one
    (float32 / float16 / dynamic-range) -> a float h5 file."""
    from . import Int8Movinet, load, save
    from .formats.h5_int8 import save_int8
    _note_ignored_options(args)
    model = load(source, _read_labels(args.labels))     # 600 classes: Kinetics-600 names
    if not isinstance(model, Int8Movinet):
        cfg = model.config
        save(model, output, source=f"converted from {source}")
        print(f"float32 {cfg.model_id} {cfg.variant} ({cfg.activation}, SE {cfg.se_type}, "
              f"positional encoding {cfg.uses_positional_encoding}) from {model.source} "
              f"-> {output}")
        return 0
    save_int8(output, model, source=f"converted from {source}")
    print(f"{_describe_int8(model)}: {source} -> {output}")
    return 0


def convert_to_tflite(source, output, args) -> int:
    """An int8 model (int8 h5 or .tflite) -> a TFLite file LiteRT runs."""
    from .formats.tflite_writer import write_tflite
    _note_ignored_options(args)
    model = _load_int8(source, args, "writing a .tflite file")
    write_tflite(model, output, description=f"minimovinet: converted from {source.name}")
    print(f"{_describe_int8(model)}: {source} -> {output}")
    return 0


def convert_dequantize(source, output, args) -> int:
    """--dequantize: an int8 model -> its float32 view as a float model file."""
    from . import save
    _note_ignored_options(args)
    if output.suffix.lower() != ".h5":
        raise InputError(f"--dequantize writes a float model file (.h5), not {output}")
    model = _load_int8(source, args, "--dequantize")
    float_model = model.dequantize()
    save(float_model, output, source=f"dequantized from {source}")
    cfg = float_model.config
    print(f"float32 {cfg.model_id} {cfg.variant} ({cfg.activation}, SE {cfg.se_type}), "
          f"dequantized from the {_describe_int8(model)}: {source} -> {output}")
    return 0


def cmd_describe(args) -> int:
    from . import load
    model = load(args.model)
    print(model.describe(batch=1, height=args.height, width=args.width))
    return 0


def cmd_models(args) -> int:
    from .apps.registry import format_models
    print(format_models())
    return 0


def cmd_fetch(args) -> int:
    """Fetch every name; a download that fails does not stop the others, and at the end every
    file that could not be fetched is listed at once with its URL and where to put it."""
    from .apps.registry import download_path, fetch, get
    from .errors import DownloadError
    entries = [get(name) for name in args.names]      # unknown names fail before downloading
    failed = []
    for entry in entries:
        try:
            path = fetch(entry, force=args.force, progress=False if args.no_progress else None)
        except KeyboardInterrupt:
            print(f"minimovinet fetch: interrupted while fetching {entry.name}; the partial "
                  "download was removed", file=sys.stderr)
            return 130
        except DownloadError as e:
            failed.append((entry, e))
            continue
        print(f"{entry.name}: {path}")
    if failed:
        print(f"minimovinet fetch: error: {len(failed)} of {len(entries)} file(s) could not be "
              f"downloaded (no network?); nothing partial was kept. To fetch them by hand:",
              file=sys.stderr)
        for entry, error in failed:
            print(f"  {entry.name}: download {entry.url} and save it as "
                  f"{download_path(entry)}   ({_one_line(error)})", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# classify


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}") \
            from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}")
    return value


def _stderr_is_terminal() -> bool:
    from .apps.progress import is_terminal
    return is_terminal(sys.stderr)


def _format_top(top, indent: str = "  ") -> str:
    width = max(len(label) for label, _ in top)
    return "\n".join(f"{indent}{rank:>2}. {label:<{width}}  {prob:.4f}"
                     for rank, (label, prob) in enumerate(top, 1))


def _note_class_names(clf, command):
    if not clf.has_class_names:
        print(f"minimovinet {command}: note: {clf.name} has no class names: classes are shown by "
              f"number (--labels FILE names them)", file=sys.stderr)


def _classifier_compiling(args, command):
    """`_classifier(args)`, saying on stderr when the kernels are compiled for this CPU (the
    first run: loading an int8 model already runs some of them), and how long it took."""
    import time
    from .float32 import kernels as float_kernels
    from .int8 import kernels as int8_kernels
    from .jit_cache import compiled_for_this_cpu
    before = {"float32": compiled_for_this_cpu(float_kernels.SERIAL),
              "int8": compiled_for_this_cpu(int8_kernels.SERIAL)}
    notice = (f"minimovinet {command}: compiling the kernels for this CPU (first run only: "
              f"about 10-15 s, a minute on a Raspberry Pi; later runs load them from the "
              f"cache)...")
    fresh = not any(before.values())             # nothing ran on this CPU yet
    if fresh:
        print(notice, file=sys.stderr, flush=True)
    start = time.perf_counter()
    clf = _classifier(args)
    kind = "int8" if clf.model.kernel_namespaces()[0] is int8_kernels.SERIAL else "float32"
    if not before[kind]:
        if not fresh:
            print(notice, file=sys.stderr, flush=True)
        clf.warm_up()
        print(f"minimovinet {command}: kernels compiled in {time.perf_counter() - start:.1f} s",
              file=sys.stderr, flush=True)
    return clf


def _kernels_compiled() -> bool:
    """True when a kernel set is in the on-disk cache for this CPU (not the first run)."""
    from .float32 import kernels as float_kernels
    from .int8 import kernels as int8_kernels
    from .jit_cache import compiled_for_this_cpu
    return any(compiled_for_this_cpu(k.SERIAL) for k in (float_kernels, int8_kernels))


def _check_output_dir(path, what):
    directory = Path(path).parent
    if not directory.is_dir():
        raise FileError(f"cannot write {what} {path}: the directory {directory} does not exist")


def _many_videos(args) -> bool:
    """True for the many-video classify (`apps/many_run.py`): several inputs, a folder or an
    @list, or an option that only it has."""
    from .apps.inputs import is_many_input
    return (len(args.videos) > 1 or any(is_many_input(v) for v in args.videos)
            or bool(args.jsonl) or isinstance(args.csv, str) or args.jobs is not None
            or bool(args.scheduler) or args.resume)


def cmd_classify(args) -> int:
    if isinstance(args.csv, str):
        from .apps.many import check_output_path
        check_output_path(args.csv, "--csv")        # `--csv clip.mp4`: the video came after
    if args.sample == bool(args.videos):
        raise InputError("give a video file, or --sample for the sample clip (not both)")
    if args.sample:
        from .data import SAMPLE_CLIP
        args.videos = [str(SAMPLE_CLIP)]
    if _many_videos(args):
        from .apps.many_run import run_many

        def compile_first():
            if not args.scheduler and not _kernels_compiled():
                _classifier_compiling(args, "classify")     # says so, once, before the workers
        return run_many(args, _classifier_options(args),
                        (not args.no_progress) and _stderr_is_terminal(), compile_first)
    args.video = args.videos[0]
    from .apps.classify import import_matplotlib
    from .apps.progress import Progress
    from .apps.video import VideoWarning
    from .atomic import atomic_open
    if args.plot:
        import_matplotlib()                      # fail before the work when it is missing
        _check_output_dir(args.plot, "the plot")
    if args.output:
        _check_output_dir(args.output, "the output")
    clf = _classifier_compiling(args, "classify")
    _note_class_names(clf, "classify")
    show = (not args.no_progress) and _stderr_is_terminal()
    total = clf.expected_frames(args.video, args.fps, args.every_frame) if show else None
    if total is not None and args.max_frames is not None:
        total = min(total, args.max_frames)
    with Progress(f"classify {Path(args.video).name}", total, unit="frames",
                  enabled=show) as bar:
        try:
            with warnings.catch_warnings():
                # a truncated or corrupt file is an error here: the result would look complete
                warnings.simplefilter("error", VideoWarning)
                result = clf.classify(args.video, fps=args.fps, every_frame=args.every_frame,
                                      on_frame=lambda _prediction: bar.update(1),
                                      max_frames=args.max_frames)
        except VideoWarning as e:
            raise VideoError(str(e)) from None
    if args.json:
        text = result.to_json() + "\n"
    elif args.csv:
        text = result.to_csv()
    else:
        rate_text = "every frame" if result.fps is None else f"{result.fps:g} fps"
        span = f", {result.duration:.2f} s" if result.duration is not None else ""
        shown = Path(args.video).name if args.sample else args.video
        text = (f"{shown}: {result.frames} frames ({rate_text}{span}), model {clf.name}\n"
                + _format_top(result.top) + "\n")
    if args.plot:
        result.plot(args.plot)
    if args.output:
        with atomic_open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


# ---------------------------------------------------------------------------------------------
# live


def _classifier(args):
    """The VideoClassifier the options of classify / live describe."""
    from .apps.classify import VideoClassifier
    if args.threads is not None:
        from .threads import set_num_threads
        set_num_threads(args.threads)
    return VideoClassifier(args.model, top_k=args.top_k, class_names=_read_labels(args.labels),
                           crop=args.crop, allow=_label_list(args.allow),
                           deny=_label_list(args.deny), threshold=args.threshold)


def _classifier_options(args) -> dict:
    """The options of classify as `classify_many` keywords."""
    return dict(model=args.model, top_k=args.top_k, fps=args.fps, every_frame=args.every_frame,
                max_frames=args.max_frames, crop=args.crop, allow=_label_list(args.allow),
                deny=_label_list(args.deny), threshold=args.threshold,
                class_names=_read_labels(args.labels))


def _label_list(text):
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def cmd_live(args) -> int:
    from .apps.live import LiveClassifier, LiveDisplay
    source = args.file if args.file is not None else args.camera
    clf = _classifier_compiling(args, "live")   # before the camera runs: no frames dropped
    if (args.camera_width is None) != (args.camera_height is None):
        raise InputError("--camera-width and --camera-height go together")
    if args.camera_width is not None and args.file is not None:
        raise InputError("--camera-width / --camera-height apply to --camera, not to --file")
    if args.single_stream and args.reset_every is None:
        raise InputError("--single-stream goes with --reset-every")
    capture = None if args.camera_width is None else (args.camera_width, args.camera_height)
    with LiveClassifier(clf, source, fps=args.fps, speed=args.speed, strict=True,
                        reset_every=args.reset_every, staggered=not args.single_stream,
                        capture_size=capture,
                        native_frames=bool(args.show or args.save_video)) as live:
        _note_class_names(live.classifier, "live")
        print(f"live: {live.description}, model {live.classifier.name}, {live.fps:g} fps"
              + (f", streams restarted every {args.reset_every:g} s" if args.reset_every else "")
              + "; Ctrl-C stops", flush=True)
        interrupted = _run_live(live, args, LiveDisplay(args.top_k))
    done = live.summary()
    print(f"live: {done.classified} frames classified, {done.dropped} dropped of "
          f"{done.delivered} delivered at {done.fps:g} fps"
          + (" (inference fell behind)" if done.dropped else "")
          + (f"; {done.ms_per_frame:.1f} ms per frame" if done.classified else ""), flush=True)
    if interrupted:
        print("minimovinet live: interrupted", file=sys.stderr)
        return 130
    return 0


def _run_live(live, args, display) -> bool:
    """The live loop with its outputs (terminal, window, video); True when interrupted."""
    import collections
    import signal
    import time
    from .apps.overlay import PreviewWindow, VideoWriter, draw_overlay
    window = PreviewWindow("minimovinet live") if args.show else None
    writer = VideoWriter(args.save_video, live.fps) if args.save_video else None
    if hasattr(signal, "SIGUSR1"):                  # `kill -USR1 <pid>`: restart the stream
        previous = signal.signal(signal.SIGUSR1, lambda *_: live.reset())
    shown = collections.deque(maxlen=10)           # wall times of the last classified frames
    warned, interrupted, ok = False, False, False
    try:
        for update in live.updates(duration=args.duration):
            shown.append(time.monotonic())
            rate = ((len(shown) - 1) / (shown[-1] - shown[0])
                    if len(shown) > 1 and shown[-1] > shown[0] else None)
            display.show(update.index, update.time, update.top, update.dropped,
                         1000 * update.inference)
            if update.behind and not warned:
                warned = True
                print(f"minimovinet live: warning: inference takes {1000 * update.inference:.0f}"
                      f" ms per frame, more than the {1000 / live.fps:.0f} ms between frames at "
                      f"{live.fps:g} fps: frames are dropped (fewer --threads elsewhere, "
                      f"--single-stream, or a smaller model)", file=sys.stderr, flush=True)
            if window is not None or writer is not None:
                picture = draw_overlay(update.frame, update.top, rate, 1000 * update.inference)
                if writer is not None:
                    writer.write(picture)
                if window is not None:
                    key = window.show(picture)
                    if key in ("q", "\x1b"):
                        break
                    if key == "r":
                        live.reset()
        ok = True
    except KeyboardInterrupt:
        interrupted, ok = True, True                # what was recorded so far is kept
    finally:
        if writer is not None:
            writer.close(keep=ok)
        if window is not None:
            window.close()
        if hasattr(signal, "SIGUSR1"):
            signal.signal(signal.SIGUSR1, previous)
    return interrupted


def build_parser():
    parser = argparse.ArgumentParser(prog="minimovinet",
                                     description="Streaming MoViNet in NumPy + Numba",
                                     epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__
    parser.add_argument("--version", action="version", version=f"minimovinet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    convert = sub.add_parser("convert", help="convert official MoViNet weights (checkpoint, "
                                             "SavedModel or int8 .tflite) into an h5 file; an "
                                             "int8 model into .tflite; --dequantize")
    convert.add_argument("source", help="checkpoint prefix (…/ckpt-1), its directory, the "
                                        "released .tar.gz, a TF Hub / Kaggle SavedModel "
                                        "(directory or .tar.gz), or an int8 stream model .tflite")
    convert.add_argument("-o", "--output", help="output .h5, or .tflite for an int8 model "
                                                "(default: <source name>.h5)")
    convert.add_argument("--model-id", choices=["a0", "a1", "a2", "a3", "a4", "a5"],
                         help="model id (inferred from the variables when omitted)")
    convert.add_argument("--variant", choices=["base", "stream", "stream3d", "mobile"],
                         help="variant (inferred from the variables when omitted)")
    convert.add_argument("--num-classes", type=int, help="number of classes (default: inferred)")
    convert.add_argument("--labels", help="text file of class names, one per line")
    convert.add_argument("--dequantize", action="store_true",
                         help="an int8 model (.tflite or int8 .h5) -> its dequantized float32 "
                              "model (.h5): the same architecture, float weights")
    convert.set_defaults(run=cmd_convert)

    describe = sub.add_parser("describe", help="print a model's config and its stream states")
    describe.add_argument("model", help="a registry name or a .h5 / .tflite file")
    describe.add_argument("--height", type=_positive_int, default=172,
                          help="frame height the state table is for (default 172)")
    describe.add_argument("--width", type=_positive_int, default=172,
                          help="frame width the state table is for (default 172)")
    describe.set_defaults(run=cmd_describe)

    models = sub.add_parser("models", help="list the official models (registry) and the cache")
    models.set_defaults(run=cmd_models)

    fetch = sub.add_parser("fetch", help="download, verify and convert official models into "
                                         "the cache ($MINIMOVINET_HOME)")
    fetch.add_argument("names", nargs="+", metavar="NAME", help="registry name, e.g. a0-stream")
    fetch.add_argument("--force", action="store_true", help="download again even when cached")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    fetch.set_defaults(run=cmd_fetch)

    _add_classify(sub)
    _add_live(sub)

    from .apps import evaluate, quantize, train
    train.add_parser(sub)           # minimovinet train DATA --backbone MODEL -o OUT.h5
    quantize.add_parser(sub)        # minimovinet quantize MODEL --calibration DATA -o OUT.h5
    evaluate.add_parser(sub)        # minimovinet evaluate DATA --model MODEL [--json]
    return parser


CLASSIFY_MANY_HELP = """\
One video: streams it through the model and prints the final top-k (--json / --csv: the
per-frame timeline; -o FILE, --plot PNG).

Many videos (several inputs, a folder, an @LIST.txt, or --jsonl / --csv OUT / --jobs /
--scheduler / --resume): one result per video, {path, frames, seconds, top_k, error}, appended
as it finishes to --jsonl OUT (one JSON object a line) and/or --csv OUT (the same columns,
top_k as JSON text); without them one line per video on stdout (--json: the JSON lines).
Default: one worker process per core (--jobs N), one kernel thread each, the model loaded
once per worker; --scheduler tcp://HOST:PORT runs them on a Dask cluster (`dask scheduler`,
`dask worker tcp://HOST:PORT`).  A video that fails is recorded with its error and the run
goes on (exit status 1 if any failed); --resume skips the videos already in the results.
"""


def _add_classify(sub):
    classify = sub.add_parser(
        "classify", help="classify a video file (the final top-k and, on request, the "
                         "per-frame timeline), or many: folders, @lists, on every core or a "
                         "Dask cluster",
        description=CLASSIFY_MANY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    classify.add_argument("videos", nargs="*", metavar="VIDEO",
                          help="video file (mp4, mov, avi, mkv, webm, animated gif...); several "
                               "files, folders (searched recursively by extension) or @LIST.txt "
                               "(a file of paths, one a line) classify many videos")
    classify.add_argument("--sample", action="store_true",
                          help="classify the sample clip shipped with minimovinet (ice carving, "
                               "4.4 s): a first try that needs no download and no network")
    _model_options(classify)
    rate = classify.add_mutually_exclusive_group()
    rate.add_argument("--fps", type=_positive_float,
                      help="resample to this frame rate by timestamps (default: the model's, "
                           "5 fps for A0-A2)")
    rate.add_argument("--every-frame", action="store_true",
                      help="feed every decoded frame (as the official TFLite example tests do)")
    classify.add_argument("--max-frames", type=_positive_int, metavar="N",
                          help="feed only the first N frames (after resampling) of each video")
    fmt = classify.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true",
                     help="print JSON with the per-frame timeline (many videos: print the "
                          "result records as JSON lines)")
    fmt.add_argument("--csv", nargs="?", const=True, default=False, metavar="OUT",
                     help="alone: print the per-frame timeline as CSV: frame,time,rank,label,"
                          "probability; --csv OUT.csv: many videos, append one row per video "
                          "to OUT.csv (path,frames,seconds,top_k,error)")
    classify.add_argument("--jsonl", metavar="OUT",
                          help="many videos: append one JSON object per video to OUT "
                               "({path, frames, seconds, top_k, error})")
    classify.add_argument("-o", "--output", metavar="FILE",
                          help="write the output to FILE (atomically) instead of stdout")
    classify.add_argument("--plot", metavar="PNG", help="draw the top-5 probabilities over time "
                          "into a PNG (needs matplotlib: pip install \"minimovinet[plot]\")")
    classify.add_argument("--no-progress", action="store_true", help="no progress bar")
    many = classify.add_argument_group("many videos")
    many.add_argument("--jobs", type=_positive_int, metavar="N",
                      help="worker processes on this machine (default: one per core), each "
                           "with --threads kernel threads (default 1)")
    many.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                      help="run the videos on the workers of this Dask scheduler (pip install "
                           "\"minimovinet[cluster]\")")
    many.add_argument("--resume", action="store_true",
                      help="continue the --jsonl / --csv results file: videos already in it "
                           "are skipped")
    classify.set_defaults(run=cmd_classify)


def _add_live(sub):
    live = sub.add_parser("live", help="rolling top-k of a camera, or of a file played as if live")
    source = live.add_mutually_exclusive_group(required=True)
    source.add_argument("--camera", type=int, metavar="INDEX", help="camera device index, e.g. 0")
    source.add_argument("--file", metavar="VIDEO", help="a video file played at its real pace")
    _model_options(live)
    live.add_argument("--fps", type=_positive_float,
                      help="frames per second classified (default: the model's, 5 for A0-A2)")
    live.add_argument("--speed", type=_positive_float, default=1.0,
                      help="with --file: play this many times faster than real time")
    live.add_argument("--duration", type=_positive_float, metavar="SECONDS",
                      help="stop after this many seconds")
    live.add_argument("--reset-every", type=_positive_float, metavar="SECONDS",
                      help="restart the stream every SECONDS so that the answer follows the "
                           "action in front of the camera (two streams staggered by half a "
                           "period, the older one shown; kill -USR1 PID, or 'r' in the --show "
                           "window, restarts by hand)")
    live.add_argument("--single-stream", action="store_true",
                      help="with --reset-every: one stream restarted every SECONDS (half the "
                           "work; the answer starts from nothing at every restart)")
    live.add_argument("--show", action="store_true",
                      help="a preview window with the top-k, fps and ms per inference (OpenCV "
                           "with GUI support: pip install opencv-python; 'q' quits)")
    live.add_argument("--save-video", metavar="OUT.mp4",
                      help="record the frames with the same overlay into a video (PyAV, "
                           "OpenCV for the text)")
    live.add_argument("--camera-width", type=_positive_int, metavar="PIXELS",
                      help="with --camera: the capture width asked of the camera")
    live.add_argument("--camera-height", type=_positive_int, metavar="PIXELS",
                      help="with --camera: the capture height asked of the camera")
    live.set_defaults(run=cmd_live)


def _model_options(parser):
    from .apps.classify import DEFAULT_MODEL
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|FILE",
                        help=f"registry name (from the cache, `minimovinet fetch NAME`) or a "
                             f".tflite/.h5 file (default: {DEFAULT_MODEL})")
    parser.add_argument("--top-k", type=_positive_int, default=5, help="classes shown (default 5)")
    parser.add_argument("--labels", metavar="FILE",
                        help="class names, one per line, overriding the model's (default: the "
                             "model's own; Kinetics-600 for a 600-class model)")
    parser.add_argument("--threads", type=_positive_int, metavar="N",
                        help="kernel threads (default: every core; 1: the serial kernels)")
    parser.add_argument("--crop", choices=["squash", "center"], default="squash",
                        help="frames to the model's size: 'squash' resizes the whole frame "
                             "(default), 'center' crops the centre to the model's aspect first")
    parser.add_argument("--allow", metavar="LABEL,...",
                        help="show only these classes (comma-separated, case-insensitive)")
    parser.add_argument("--deny", metavar="LABEL,...", help="never show these classes")
    parser.add_argument("--threshold", type=_probability, default=0.0, metavar="P",
                        help="show only classes with a probability of at least P")


def _one_line(error) -> str:
    return " ".join(str(error).split())


def _environment_error(error: OSError) -> str:
    where = f"{error.filename}: " if error.filename else ""
    return where + (error.strerror or str(error))


# commands whose list of inputs may continue after options (`classify a.mp4 --jobs 2 b.mp4`):
# argparse's subcommands cannot parse intermixed arguments, so the leftovers are appended
_INPUT_LISTS = {"classify": "videos", "fetch": "names"}


def _parse(parser, argv):
    args, leftover = parser.parse_known_args(argv)
    inputs = _INPUT_LISTS.get(getattr(args, "command", None))
    if leftover and inputs and not any(a.startswith("-") for a in leftover):
        getattr(args, inputs).extend(leftover)
        return args
    return parser.parse_args(argv)           # argparse's own message for what is left


def main(argv=None) -> int:
    """Run the command line `argv` (default sys.argv[1:]); returns the exit code (EXIT_CODES)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = _parse(build_parser(), argv)
    prefix = f"minimovinet {args.command}"
    try:
        return args.run(args)
    except MinimovinetError as e:
        print(f"{prefix}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise                                   # stdout's reader left: `entry_point`
    except OSError as e:
        if e.errno not in _ENVIRONMENT_ERRNOS:
            return _internal_error(prefix, argv)
        print(f"{prefix}: error: {_one_line(_environment_error(e))}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{prefix}: error: out of memory", file=sys.stderr)
        return 1
    except Exception:                           # noqa: BLE001 (a bug: say so, with the details)
        return _internal_error(prefix, argv)


def _internal_error(prefix: str, argv) -> int:
    from . import __version__
    traceback.print_exc()
    print(f"{prefix}: internal error: this is a bug in minimovinet {__version__}, not a problem "
          f"with your input; please report it to the minimovinet project with the traceback "
          f"above and the command line: {shlex.join(['minimovinet', *argv])}", file=sys.stderr)
    return EXIT_INTERNAL_ERROR


def entry_point() -> int:
    """Console-script entry: also quiet when the reader of stdout goes away (`| head`)."""
    try:
        code = main()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())     # Python flushes stdout again at exit
        return 0


if __name__ == "__main__":
    sys.exit(entry_point())
