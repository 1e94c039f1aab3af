"""minimovinet: causal streaming MoViNet in pure NumPy + Numba.

    import minimovinet as mm
    model = mm.load("a0_stream.h5")
    states = model.init_states(batch=1, height=172, width=172)
    logits, states = model(frames, states)     # frames float32 [B, T, H, W, 3] in [0, 1]

    clf = mm.VideoClassifier("a0-stream-int8")  # top-k over a video (minimovinet.apps.classify)
    result = clf.classify("clip.mp4")           # result.top, result.timeline
    for r in mm.classify_many(["clips/"], jobs=4):   # many videos, as they finish (apps/many.py)
        print(r["path"], r["top_k"][0], r["error"])
    live = mm.LiveClassifier(clf, source=0)     # camera 0, or a file played as one
    live.run(on_update=print)                   # the rolling top-k (minimovinet.apps.live)

    mm.save(int8_model, "mine_int8.tflite")     # an int8 model as a TFLite file LiteRT runs
    float_model = mm.dequantize(int8_model)     # its float32 view (save it as .h5)

    mm.train_classifier("clips/", "a0-stream-int8", "mine.h5")   # your classes (apps/train.py)
    model8 = mm.quantize("mine.h5", "clips/")                    # int8, no TensorFlow
    print(mm.evaluate("test_clips/", "mine.h5").text())          # accuracy, confusion matrix
"""
from .config import BLOCK_SPECS, VARIANTS, ModelConfig
from .contract import InputSpec, StreamModel
from .errors import (CacheError, CheckpointError, ClusterError, ConfigError, DownloadError,
                     FileError, InputError, MinimovinetError, MissingDependencyError,
                     ModelNotAvailableError, PlotError, SettingError, StateError, TFLiteError,
                     UnknownModelError, UnsupportedModelError, VideoError, WeightsFileError)
from .threads import get_num_threads, set_num_threads
from .float32.model import Movinet
from .int8.model import Int8Movinet
# light: numpy only at import (PyAV, matplotlib and the registry are imported when used)
from .apps.classify import VideoClassifier
from .apps.many import classify_many
from .apps.live import LiveClassifier
from .apps.video import read_video

__version__ = "0.1.0"

__all__ = ["BLOCK_SPECS", "VARIANTS", "ModelConfig", "InputSpec", "StreamModel", "Movinet",
           "Int8Movinet", "VideoClassifier", "classify_many", "LiveClassifier", "read_video",
           "load", "save", "random_model", "dequantize", "get_num_threads", "set_num_threads",
           "CacheError", "CheckpointError", "ClusterError",
           "ConfigError", "DownloadError", "FileError", "InputError", "MinimovinetError",
           "MissingDependencyError", "ModelNotAvailableError", "PlotError", "SettingError",
           "StateError", "TFLiteError", "UnknownModelError", "UnsupportedModelError",
           "VideoError", "WeightsFileError", "train_classifier", "evaluate", "quantize",
           "__version__"]


def load(path, class_names=None):
    """Load a model: a minimovinet .h5 file (float or int8), a TFLite MoViNet stream model
    (.tflite, read and mapped onto the MoViNet structure without TFLite: an int8 file as an
    `Int8Movinet`, a float32 / float16 / dynamic-range file as a float32 `Movinet`), a
    TF Hub / Kaggle SavedModel (its directory or .tar.gz, read without TensorFlow; the model
    id and variant are inferred from its variables), or
    a registry name (`minimovinet models`, e.g. "a0-stream") that is not an existing path: that
    model from the cache (`minimovinet fetch NAME` puts it there; load never downloads and says
    what to download where when it is missing; "a0-stream-int8" is embedded in the package).

    class_names: the classes' names (a list of num_classes strings), overriding the file's.  A
    600-class model without names gets the Kinetics-600 names (`minimovinet.data`).
    """
    from .apps.registry import is_registry_name
    if is_registry_name(path):
        from .apps.registry import load as load_registered
        model = load_registered(path)
    else:
        model = _load_file(path)
    if class_names is not None:
        from .contract import check_class_names
        model.class_names = check_class_names(class_names, model.config.num_classes)
    elif model.class_names is None and model.config.num_classes == KINETICS600_CLASSES:
        from .data import kinetics600_labels
        model.class_names = kinetics600_labels()
    return model


KINETICS600_CLASSES = 600


def _load_file(path):
    from .formats.h5 import file_kind, read
    from .formats.saved_model import is_saved_model_path, read_saved_model
    if is_saved_model_path(path):  # a SavedModel directory or archive (TF Hub / Kaggle)
        config, params, _ = read_saved_model(path)
        return Movinet(config, params)
    kind = file_kind(path)
    if kind == "tflite":          # a TFLite stream model, mapped onto MoViNet
        from .formats.float_tflite import load_float_tflite, tflite_form
        if tflite_form(path) in ("float32", "float16", "dynamic-range"):
            return load_float_tflite(path)        # a float32 `Movinet`
        from .formats.int8_tflite import load_tflite
        return load_tflite(path)
    if kind == "int8":            # an int8 h5 file (minimovinet convert model.tflite)
        from .formats.h5_int8 import read_int8
        return read_int8(path)
    config, params, names, _ = read(path)
    return Movinet(config, params, names)


def random_model(model_id: str = "a0", variant: str = "stream", num_classes: int = 600,
                 seed: int = 0, **overrides) -> Movinet:
    """A model with seeded random weights (no download needed): for demos, tests, benchmarks."""
    from .float32.params import random_params
    config = ModelConfig.from_variant(model_id, variant, num_classes=num_classes, **overrides)
    return Movinet(config, random_params(config, seed))


def save(model: Movinet, path, source: str = "") -> None:
    """Write `model` (float32 or int8) to `path` in the minimovinet h5 format, or an int8
    model as a TFLite file when `path` ends in .tflite (LiteRT runs it; the class names are
    kept in its metadata); atomically."""
    if str(path).lower().endswith(".tflite"):
        from .formats.tflite_writer import write_tflite
        write_tflite(model, path, description=source)
        return
    from .formats.h5_int8 import save_int8
    if isinstance(model, Int8Movinet):
        save_int8(path, model, source=source)
        return
    from .formats.h5 import save as _save
    _save(path, model.config, model._params, model.class_names, source=source)


def dequantize(model) -> Movinet:
    """The float32 view of an int8 model (an `Int8Movinet`, or a file / registry name that
    loads as one): the same architecture with the dequantized weights and the same class
    names (`Int8Movinet.dequantize`); `save` it as .h5 to keep it."""
    if not isinstance(model, (Int8Movinet, Movinet)):
        model = load(model)
    if not isinstance(model, Int8Movinet):
        raise InputError(f"dequantize takes an int8 model; this is a float32 model "
                         f"({model.config.model_id} {model.config.variant})")
    return model.dequantize()


def train_classifier(data, backbone=None, output=None, **options):
    """Train a new classifier head for the classes of `data` (a folder of class folders of
    videos, or a CSV of path,label) on a frozen stream `backbone` and save the model to
    `output`; see `minimovinet.apps.train.train_classifier` for the options."""
    from .apps.train import train_classifier as train
    return train(data, backbone, output, **options)


def evaluate(data, model, **options):
    """Accuracy, per-class scores, the confusion matrix and accuracy by frames seen of `model`
    on labelled videos; see `minimovinet.apps.evaluate.evaluate` for the options."""
    from .apps.evaluate import evaluate as run_evaluation
    return run_evaluation(data, model, **options)


def quantize(model, calibration, **options):
    """Post-training int8 quantization of a float stream `model` (a Movinet, an .h5 file or a
    registry name) calibrated on `calibration` (a directory of videos, a video file or frames
    [N, T, H, W, 3]): an `Int8Movinet`; see `minimovinet.apps.quantize.quantize` for the
    options (input / states / output interfaces, ranges, pools, report)."""
    from .apps.quantize import quantize as run_quantization
    return run_quantization(model, calibration, **options)
