"""The `minimovinet` command line.

    minimovinet convert CHECKPOINT_PREFIX_OR_DIR_OR_TAR [--model-id a0] [--variant stream] -o a0_stream.h5
    minimovinet convert MODEL_INT8.tflite [--labels labels.txt] -o model_int8.h5
    minimovinet describe MODEL.h5 [--height 172 --width 172]
    minimovinet models                  (the official models: name, input, fps, URL, cached?)
    minimovinet fetch NAME [NAME ...] [--force]   (download, verify, convert into the cache)

Exit codes: 0 success, 1 a problem with the input (message on stderr, no traceback),
2 bad usage.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import MinimovinetError


def _read_labels(path):
    if path is None:
        return None
    text = Path(path).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def cmd_convert(args) -> int:
    from .convert import convert_arrays
    from .tf_checkpoint import CheckpointReader
    source = Path(args.source)
    output = Path(args.output) if args.output else Path(
        f"{source.name.split('.')[0] or 'model'}.h5")
    if source.suffix.lower() == ".tflite":
        return convert_tflite(source, output, args)
    with CheckpointReader(str(source)) as reader:
        arrays = reader.arrays()
    note = convert_arrays(arrays, output, model_id=args.model_id, variant=args.variant,
                          num_classes=args.num_classes, class_names=_read_labels(args.labels),
                          source=f"converted from {source}")
    print(note)
    return 0


def convert_tflite(source, output, args) -> int:
    """An int8 TFLite MoViNet stream model -> an int8 minimovinet h5 file."""
    from .int8_model import load_tflite, save_int8
    if args.model_id or args.variant or args.num_classes:
        print("minimovinet convert: note: --model-id/--variant/--num-classes are read off the "
              ".tflite graph and ignored", file=sys.stderr)
    model = load_tflite(source, _read_labels(args.labels))
    save_int8(output, model, source=f"converted from {source}")
    cfg = model.config
    print(f"int8 {cfg.model_id} {cfg.variant} ({cfg.activation}, SE {cfg.se_type}), "
          f"{model.height}x{model.width} frames, {len(model.program.states)} states: "
          f"{source} -> {output}")
    return 0


def cmd_describe(args) -> int:
    from . import load
    model = load(args.model)
    print(model.describe(batch=1, height=args.height, width=args.width))
    return 0


def cmd_models(args) -> int:
    from .registry import format_models
    print(format_models())
    return 0


def cmd_fetch(args) -> int:
    from .registry import fetch, get
    entries = [get(name) for name in args.names]      # unknown names fail before downloading
    for entry in entries:
        try:
            path = fetch(entry, force=args.force, progress=False if args.no_progress else None)
        except KeyboardInterrupt:
            print(f"minimovinet fetch: interrupted while fetching {entry.name}; the partial "
                  "download was removed", file=sys.stderr)
            return 130
        print(f"{entry.name}: {path}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="minimovinet",
                                     description="Streaming MoViNet in NumPy + Numba")
    sub = parser.add_subparsers(dest="command", required=True)

    convert = sub.add_parser("convert", help="convert official MoViNet weights (checkpoint or "
                                             "int8 .tflite) into an h5 file")
    convert.add_argument("source", help="checkpoint prefix (…/ckpt-1), its directory, the "
                                        "released .tar.gz, or an int8 stream model .tflite")
    convert.add_argument("-o", "--output", help="output .h5 (default: <source name>.h5)")
    convert.add_argument("--model-id", choices=["a0", "a1", "a2", "a3", "a4", "a5"],
                         help="model id (inferred from the variables when omitted)")
    convert.add_argument("--variant", choices=["base", "stream", "stream3d", "mobile"],
                         help="variant (inferred from the variables when omitted)")
    convert.add_argument("--num-classes", type=int, help="number of classes (default: inferred)")
    convert.add_argument("--labels", help="text file of class names, one per line")
    convert.set_defaults(run=cmd_convert)

    describe = sub.add_parser("describe", help="print a model's config and its stream states")
    describe.add_argument("model")
    describe.add_argument("--height", type=int, default=172)
    describe.add_argument("--width", type=int, default=172)
    describe.set_defaults(run=cmd_describe)

    models = sub.add_parser("models", help="list the official models (registry) and the cache")
    models.set_defaults(run=cmd_models)

    fetch = sub.add_parser("fetch", help="download, verify and convert official models into "
                                         "the cache ($MINIMOVINET_HOME)")
    fetch.add_argument("names", nargs="+", metavar="NAME", help="registry name, e.g. a0-stream")
    fetch.add_argument("--force", action="store_true", help="download again even when cached")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    fetch.set_defaults(run=cmd_fetch)
    return parser


def _one_line(error) -> str:
    return " ".join(str(error).split())


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except MinimovinetError as e:
        print(f"minimovinet {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        # file-system problems and bad values from the user's files: one line, no traceback
        if isinstance(e, BrokenPipeError):
            raise
        print(f"minimovinet {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"minimovinet {args.command}: interrupted", file=sys.stderr)
        return 130


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
