"""Post-training int8 quantization of a float stream model, without TensorFlow.

    import minimovinet as mm
    model8 = mm.quantize("a0_stream.h5", "clips/")                  # an Int8Movinet
    model8, report = mm.quantize(model, frames, ranges="mse", pools="float", report=True)
    mm.save(model8, "a0_stream_int8.h5")

Command line: ``minimovinet quantize MODEL --calibration DATA -o OUT.h5|OUT.tflite``
(`add_parser`, `run`; a .tflite file is written by `formats.tflite_writer`).

Calibration data: a directory of videos (searched recursively, `dataset.VIDEO_EXTENSIONS`),
one video file, or a NumPy array of frames [N, T, H, W, 3] (or one clip [T, H, W, 3]; uint8
0..255 or float in [0, 1]).  Videos are decoded at the model's frame rate and resized to its
frame size (`--size`, `--fps`); each clip is streamed frame by frame from zero states.  With
``report=True`` the last clip (or, for one clip, its last third) is held back from calibration
and the int8 model is compared with the float model on it (`int8.accuracy`).

The quantization itself is `minimovinet.int8.quantize_model` (its docstring has the rules).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from ..errors import FileError, InputError, UnsupportedModelError
from .dataset import VIDEO_EXTENSIONS

__all__ = ["quantize", "calibration_clips", "add_parser", "run"]

DEQUANTIZE_FIRST = ("{name} is already an int8 model: dequantize it first "
                    "(minimovinet convert {file} --dequantize -o {stem}.h5, or "
                    "model.dequantize() in Python), then quantize the float model")


def _float_model(model):
    """A float Movinet from a model object, a file or a registry name."""
    from ..int8.model import Int8Movinet
    label = None
    if isinstance(model, (str, os.PathLike)):
        from .. import load
        label = os.fspath(model)
        model = load(model)
    if isinstance(model, Int8Movinet):
        file = label or "MODEL.tflite"
        raise UnsupportedModelError(DEQUANTIZE_FIRST.format(
            name=label or "the model", file=file, stem=Path(file).stem))
    if getattr(model, "raw_params", None) is None:
        raise UnsupportedModelError(f"{model!r} is not a float minimovinet model")
    return model


def _array_clips(data: np.ndarray) -> List[np.ndarray]:
    if data.ndim == 4:
        data = data[None]
    if data.ndim != 5 or data.shape[-1] != 3:
        raise InputError(f"calibration frames must have shape [N, T, H, W, 3] (or one clip "
                         f"[T, H, W, 3]), got {tuple(data.shape)}")
    if data.dtype == np.uint8:
        data = data.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
        finite = data[np.isfinite(data)]
        if finite.size and finite.max() > 2.0:
            raise InputError(f"calibration frames are float with maximum {finite.max():.1f}: "
                             f"expected [0, 1] (divide uint8 frames by 255)")
    else:
        raise InputError(f"calibration frames have dtype {data.dtype}: expected uint8 or "
                         f"float in [0, 1]")
    return [np.ascontiguousarray(c) for c in data]


def _video_files(path: Path) -> List[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
        if not files:
            raise FileError(f"{path}: no video files in the calibration directory (looked for "
                            f"{', '.join(VIDEO_EXTENSIONS[:5])}, ...)")
        return files
    if path.exists():
        return [path]
    raise FileError(f"{path}: calibration data not found")


def calibration_clips(data, height: int, width: int, fps=None,
                      max_frames: Optional[int] = None) -> List[np.ndarray]:
    """Float32 clips [T, height, width, 3] in [0, 1] from a directory of videos, a video file
    or an array (arrays keep their own frame size)."""
    if isinstance(data, np.ndarray):
        return _array_clips(data)
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], np.ndarray):
        return [c for clip in data for c in _array_clips(np.asarray(clip))]
    if not isinstance(data, (str, os.PathLike)):
        raise InputError(f"calibration data must be a directory of videos, a video file or an "
                         f"array of frames [N, T, H, W, 3], got {type(data).__name__}")
    from .video import read_video
    clips = []
    for path in _video_files(Path(data)):
        frames = list(read_video(path, fps=fps, size=(height, width), max_frames=max_frames))
        if frames:
            clips.append(np.stack(frames).astype(np.float32) / np.float32(255.0))
    return clips


def _hold_back(clips: List[np.ndarray]):
    """(calibration clips, held-back clips): the last clip, or the last third of one clip."""
    if len(clips) >= 2:
        return clips[:-1], clips[-1:]
    clip = clips[0]
    cut = max(1, (2 * clip.shape[0]) // 3)
    return [clip[:cut]], [clip[cut:]]


def quantize(model, calibration, *, input: str = "float", states: str = "float",
             output: str = "float", ranges: str = "minmax", pools: str = "float",
             percentile: float = 0.01, size: Optional[int] = None, fps=None,
             max_frames: Optional[int] = None, report: bool = False, seed: int = 0):
    """The int8 model of the float stream `model` (a Movinet, a file or a registry name),
    calibrated on `calibration` (see the module docstring).

    input / states / output: 'float' or 'int8' image, states and logits.  ranges: 'minmax'
    (the converter's), 'percentile' (the `percentile` per cent clipped at each end) or 'mse'
    (the clipping with the least squared error).  pools: 'float' (default: the cumulative
    pools' running sums, frame counts and division in float32, between a DEQUANTIZE and a
    QUANTIZE) or 'int8' (like the TFLite converter: the sums as int8 at a scale calibrated on
    the calibration clips, which saturates on longer streams).  Returns the `Int8Movinet`, or (it, the QuantizationReport)
    with report=True."""
    from ..int8.accuracy import measure
    from ..int8.quantize_model import quantize_float_model
    float_model = _float_model(model)
    spec = float_model.input_spec
    height = width = size or spec.height
    clips = calibration_clips(calibration, height, width, fps or spec.fps, max_frames)
    if not clips:
        raise InputError("calibration data has no frames")
    held = []
    if report:
        clips, held = _hold_back(clips)
    source = f"quantized by minimovinet ({ranges} ranges, {pools} pools)"
    model8, graph = quantize_float_model(float_model, clips, image=input, states=states,
                                         logits=output, ranges=ranges, pools=pools,
                                         percentile=percentile, seed=seed, source=source)
    if not report:
        return model8
    settings = dict(ranges=ranges, pools=pools, input=input, states=states)
    return model8, measure(model8, graph, held, settings)


# ---- command line ------------------------------------------------------------------------------

def add_parser(sub):
    p = sub.add_parser("quantize", help="post-training int8 quantization of a float stream "
                       "model (no TensorFlow)")
    p.add_argument("model", help="float model: .h5 file or registry name")
    p.add_argument("--calibration", required=True, metavar="DATA",
                   help="a directory of videos, a video file, or a .npy of frames "
                        "[N, T, H, W, 3]")
    p.add_argument("-o", "--output", required=True, help="OUT.h5 (or OUT.tflite)")
    p.add_argument("--input", choices=("float", "int8"), default="float",
                   help="the image input: float32 in [0, 1] (default) or int8")
    p.add_argument("--states", choices=("float", "int8"), default="float",
                   help="the stream states as float32 (default) or int8 inputs / outputs "
                        "(with --pools float the running sums stay float)")
    p.add_argument("--logits", choices=("float", "int8"), default="float",
                   help="the logits output: float32 (default) or int8")
    p.add_argument("--ranges", choices=("minmax", "percentile", "mse"), default="minmax",
                   help="activation ranges: minmax (the converter's, default), percentile "
                        "(clip --percentile %% at each end) or mse (least squared error)")
    p.add_argument("--percentile", type=float, default=0.01,
                   help="per cent clipped at each end with --ranges percentile")
    p.add_argument("--pools", choices=("float", "int8"), default="float",
                   help="the cumulative pools' running sums and their division: float32 "
                        "(default) or int8 (as the TFLite converter: saturates on streams "
                        "longer than the calibration clips)")
    p.add_argument("--size", type=int, help="frame size (default: the model's, 172 for A0)")
    p.add_argument("--fps", type=float, help="decode the videos at this rate (default: the "
                                             "model's)")
    p.add_argument("--frames", type=int, metavar="N", help="at most N frames per video")
    p.add_argument("--report", action="store_true",
                   help="hold back a clip and print the per-layer error, worst first")
    p.set_defaults(run=run)
    return p


def _write(model8, output: str, source: str) -> None:
    """OUT.h5 (minimovinet's int8 h5) or OUT.tflite (`formats.tflite_writer`: LiteRT runs it)."""
    from .. import save
    save(model8, output, source=source)


def run(args) -> int:
    calibration = args.calibration
    if str(calibration).lower().endswith(".npy"):
        if not os.path.exists(calibration):
            raise FileError(f"{calibration}: calibration data not found")
        calibration = np.load(calibration)
    began = time.perf_counter()
    result = quantize(args.model, calibration, input=args.input, states=args.states,
                      output=args.logits, ranges=args.ranges, pools=args.pools,
                      percentile=args.percentile, size=args.size, fps=args.fps,
                      max_frames=args.frames, report=args.report)
    model8, report = result if args.report else (result, None)
    _write(model8, args.output, f"quantized from {args.model} by minimovinet")
    print(f"quantized {args.model} in {time.perf_counter() - began:.1f} s -> {args.output}")
    if report is not None:
        print(report.text())
    return 0
