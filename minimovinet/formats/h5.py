"""The minimovinet weights format (HDF5) and the list of parameters a model expects.

An h5 file holds the raw (unfolded) parameters under canonical names, in minimovinet's
layouts, plus the model config; BN is folded into the convs when the file is loaded.  See
`weights/README.md` for the format.

Canonical layouts (channels last):
    pointwise conv kernel      [Cin, Cout]
    depthwise conv kernel      [kt, kh, kw, C]      (spatial: kt = 1; temporal: kh = kw = 1)
    dense conv kernel (stem)   [kt, kh, kw, Cin, Cout]
    bias / BN vectors          [C]
    scalar scales              []
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..config import ModelConfig
from ..errors import WeightsFileError
from ..float32.params import check_params
from ..structure import param_specs

FORMAT_NAME = "minimovinet"
FORMAT_VERSION = 1
KIND_FLOAT = "float32"

# ---- HDF5 I/O ------------------------------------------------------------------------------
# Shared by the float files (here) and the int8 files (h5_int8.save_int8 / read_int8).

@contextmanager
def writing(path, kind: str, cfg: ModelConfig, source: str = "",
            class_names: Optional[Sequence[str]] = None):
    """Write a minimovinet h5 file atomically: yields an open h5py.File on a temporary file in
    the destination's directory, with the header (format, version, kind, config, source) and
    the class names written; renamed to `path` when the block ends without error, deleted
    otherwise (nothing half-written is ever left under `path`)."""
    import h5py

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".minimovinet-", suffix=".h5.part", dir=directory)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["kind"] = kind
            f.attrs["config"] = json.dumps(cfg.to_dict(), sort_keys=True)
            f.attrs["source"] = source
            if class_names is not None:
                f.create_dataset("class_names", data=np.array(
                    [s.encode("utf-8") for s in class_names], dtype=h5py.string_dtype()))
            yield f
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def reading(path, kind: str):
    """Open a minimovinet h5 file of `kind` for reading: yields (h5py.File, attrs as str ->
    value, config).  Every problem (missing, not HDF5, another format, version or kind, a bad
    config, a truncated file) is a one-line WeightsFileError naming the file."""
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise WeightsFileError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise WeightsFileError(f"{path}: not a readable HDF5 file (truncated or another "
                               f"format): {e}") from None
    try:
        with f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            if attrs.get("format") != FORMAT_NAME:
                raise WeightsFileError(f"{path}: not a minimovinet weights file (HDF5 attribute "
                                       f"'format' is {attrs.get('format')!r})")
            version = int(attrs.get("format_version", -1))
            if version != FORMAT_VERSION:
                raise WeightsFileError(f"{path}: format_version {version} is not supported "
                                       f"(this minimovinet reads version {FORMAT_VERSION})")
            found = attrs.get("kind", KIND_FLOAT)
            if found != kind:
                article = "an" if kind[0] in "aeiou" else "a"
                raise WeightsFileError(f"{path}: holds a {found!r} model, not {article} {kind} "
                                       f"model")
            try:
                cfg = ModelConfig.from_dict(json.loads(attrs["config"]))
            except (KeyError, ValueError, TypeError) as e:
                raise WeightsFileError(f"{path}: bad model config: {e}") from None
            yield f, attrs, cfg
    except WeightsFileError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError) as e:
        raise WeightsFileError(f"{path}: cannot read (truncated or corrupted?): {e}") from None


def read_class_names(f, cfg: ModelConfig, path) -> Optional[list]:
    """The class names stored in an open file, or None; their count must match the config."""
    if "class_names" not in f:
        return None
    names = [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in f["class_names"][()]]
    if len(names) != cfg.num_classes:
        raise WeightsFileError(f"{os.fspath(path)}: {len(names)} class names for "
                               f"{cfg.num_classes} classes")
    return names


def save(path, cfg: ModelConfig, params: Dict[str, np.ndarray],
         class_names: Optional[Sequence[str]] = None, source: str = "") -> None:
    """Write a float model to `path` atomically (a temporary file renamed at the end)."""
    check_params(cfg, params)
    if class_names is not None and len(class_names) != cfg.num_classes:
        raise ValueError(f"{len(class_names)} class names for {cfg.num_classes} classes")
    with writing(path, KIND_FLOAT, cfg, source, class_names) as f:
        group = f.create_group("params")
        for name in param_specs(cfg):
            group.create_dataset(name, data=np.asarray(params[name], np.float32))


def file_kind(path) -> str:
    """'tflite' for a TFLite flatbuffer, else the h5 file's `kind` attribute ('float32',
    'int8'); unreadable files are left to the readers, which say what is wrong."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return KIND_FLOAT
    if head[4:8] == b"TFL3" or (path.lower().endswith(".tflite") and not
                                head.startswith(b"\x89HDF")):
        return "tflite"
    try:
        import h5py
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("kind", KIND_FLOAT)
            return kind.decode() if isinstance(kind, bytes) else str(kind)
    except OSError:
        return KIND_FLOAT


def read(path) -> Tuple[ModelConfig, Dict[str, np.ndarray], Optional[list], dict]:
    """Read and validate a float model file: (config, raw params, class names or None, attrs)."""
    import h5py

    with reading(path, KIND_FLOAT) as (f, attrs, cfg):
        if "params" not in f:
            raise WeightsFileError(f"{os.fspath(path)}: no 'params' group")
        params = {}
        f["params"].visititems(
            lambda name, obj: params.__setitem__(name, obj[()])
            if isinstance(obj, h5py.Dataset) else None)
        class_names = read_class_names(f, cfg, path)
    check_params(cfg, params, source=os.fspath(path))
    return cfg, params, class_names, attrs


