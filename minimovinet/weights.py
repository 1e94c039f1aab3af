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
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from .config import ModelConfig, se_hidden_filters
from .errors import WeightsFileError

FORMAT_NAME = "minimovinet"
FORMAT_VERSION = 1
KIND_FLOAT = "float32"

BN_FIELDS = ("gamma", "beta", "moving_mean", "moving_variance")


def _bn(prefix: str, channels: int):
    return [(f"{prefix}/{field}", (channels,)) for field in BN_FIELDS]


def param_specs(cfg: ModelConfig) -> "OrderedDict[str, Tuple[int, ...]]":
    """Every parameter the model `cfg` needs: canonical name -> shape, in network order."""
    specs = []
    stem = cfg.stem
    specs.append(("stem/conv/kernel", (1,) + stem.kernel[1:] + (3, stem.filters)))
    specs += _bn("stem/bn", stem.filters)

    for g, l, cin, expand, cout, kernel, stride in cfg.layers():
        p = f"block{g}_layer{l}"
        kt, kh, kw = kernel
        specs.append((f"{p}/expansion/conv/kernel", (cin, expand)))
        specs += _bn(f"{p}/expansion/bn", expand)
        if cfg.conv_type == "2plus1d":
            specs.append((f"{p}/feature/conv/kernel", (1, kh, kw, expand)))
            specs += _bn(f"{p}/feature/bn", expand)
            if kt > 1:
                specs.append((f"{p}/feature/conv_temporal/kernel", (kt, 1, 1, expand)))
                specs += _bn(f"{p}/feature/bn_temporal", expand)
        else:
            specs.append((f"{p}/feature/conv/kernel", (kt, kh, kw, expand)))
            specs += _bn(f"{p}/feature/bn", expand)
        if cfg.se_type != "none":
            se_in = 2 * expand if cfg.se_type == "2plus3d" else expand
            hidden = se_hidden_filters(expand, cfg.se_type)
            specs += [(f"{p}/se/reduce/kernel", (se_in, hidden)), (f"{p}/se/reduce/bias", (hidden,)),
                      (f"{p}/se/expand/kernel", (hidden, expand)),
                      (f"{p}/se/expand/bias", (expand,))]
            if cfg.uses_positional_encoding:
                specs.append((f"{p}/se/pos_encoding/scale", ()))
        specs.append((f"{p}/projection/conv/kernel", (expand, cout)))
        specs += _bn(f"{p}/projection/bn", cout)
        if has_skip_projection(cin, cout, stride):
            specs.append((f"{p}/skip/conv/kernel", (cin, cout)))
            specs += _bn(f"{p}/skip/bn", cout)
        specs.append((f"{p}/rezero/scale", ()))

    last = cfg.groups[-1].out_filters
    head = cfg.head
    specs.append(("head/project/conv/kernel", (last, head.project_filters)))
    specs += _bn("head/project/bn", head.project_filters)
    specs += [("classifier/hidden/kernel", (head.project_filters, head.hidden_filters)),
              ("classifier/hidden/bias", (head.hidden_filters,)),
              ("classifier/logits/kernel", (head.hidden_filters, cfg.num_classes)),
              ("classifier/logits/bias", (cfg.num_classes,))]
    return OrderedDict(specs)


def has_skip_projection(cin: int, cout: int, stride) -> bool:
    """A block's skip is the identity unless it changes width or resolution."""
    return cin != cout or any(s > 1 for s in stride)


def check_params(cfg: ModelConfig, params: Dict[str, np.ndarray], source: str = "params"):
    """Assert that `params` has exactly the expected names, shapes and finite float values."""
    specs = param_specs(cfg)
    missing = [n for n in specs if n not in params]
    extra = [n for n in params if n not in specs]
    if missing or extra:
        raise WeightsFileError(
            f"{source}: parameters do not match model {cfg.model_id} variant {cfg.variant} "
            f"({len(specs)} expected, {len(params)} given); missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected {extra[:5]}"
            f"{' ...' if len(extra) > 5 else ''}")
    for name, shape in specs.items():
        arr = params[name]
        if tuple(arr.shape) != tuple(shape):
            raise WeightsFileError(f"{source}: parameter {name!r} has shape {tuple(arr.shape)}, "
                                   f"expected {tuple(shape)} for model {cfg.model_id} "
                                   f"variant {cfg.variant}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise WeightsFileError(f"{source}: parameter {name!r} has dtype {arr.dtype}, "
                                   f"expected a float type")
        if not np.all(np.isfinite(arr)):
            raise WeightsFileError(f"{source}: parameter {name!r} has non-finite values")
    if any(params[n].min() < 0 for n in specs if n.endswith("/moving_variance")):
        bad = next(n for n in specs if n.endswith("/moving_variance") and params[n].min() < 0)
        raise WeightsFileError(f"{source}: parameter {bad!r} has negative variances")


# ---- HDF5 I/O ------------------------------------------------------------------------------
# Shared by the float files (here) and the int8 files (int8_model.save_int8 / read_int8).

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


def fold_batch_norm(kernel: np.ndarray, bn: Dict[str, np.ndarray], eps: float,
                    bias: Optional[np.ndarray] = None):
    """Fold inference BN into the conv before it: y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta.

    The output channel is the kernel's last axis.  Computed in float64, returned as float32.
    """
    scale = bn["gamma"].astype(np.float64) / np.sqrt(bn["moving_variance"].astype(np.float64) + eps)
    conv_bias = 0.0 if bias is None else bias.astype(np.float64)
    folded_kernel = kernel.astype(np.float64) * scale
    folded_bias = (conv_bias - bn["moving_mean"]) * scale + bn["beta"]
    return folded_kernel.astype(np.float32), folded_bias.astype(np.float32)


def bn_params(params: Dict[str, np.ndarray], prefix: str) -> Dict[str, np.ndarray]:
    return {field: params[f"{prefix}/{field}"] for field in BN_FIELDS}


def names_with_prefix(params: Iterable[str], prefix: str):
    return [n for n in params if n.startswith(prefix)]


def random_params(cfg: ModelConfig, seed: int = 0) -> Dict[str, np.ndarray]:
    """Seeded random parameters for `cfg` (for demos and tests: no trained weights needed).

    Unlike a freshly initialized official model (ReZero scales 0, BN statistics 0/1, biases 0,
    which switch most of the network off), every parameter is random, so every layer counts.
    """
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_specs(cfg).items():
        if name.endswith(("/gamma", "/moving_variance")):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("/beta", "/moving_mean", "/bias")):
            value = rng.normal(0.0, 0.2, shape)
        elif name.endswith("/scale"):
            value = rng.uniform(0.3, 0.8, shape) * rng.choice([-1.0, 1.0])
        else:                                  # He-normal over the kernel's fan-in
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            value = rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)
        params[name] = value.astype(np.float32)
    return params
