"""The official MoViNet models by name, and the local cache they are downloaded into.

    minimovinet models                 # the table: name, format, input, fps, size, cached?, URL
    minimovinet fetch a0-stream        # download, verify, convert -> <cache>/a0-stream/model.h5
    mm.load("a0-stream")               # the cached model (never downloads)

Registry entries (`REGISTRY`, `get`):

* ``a0-base`` .. ``a5-base``, ``a0-stream`` .. ``a5-stream``: the Model Garden checkpoints
  ``movinet_<id>_<base|stream>.tar.gz``; fetching converts them to ``model.h5`` (with the
  Kinetics-600 class names) next to the download.
* ``a0-stream-int8`` .. ``a2-stream-int8`` and ``a0-stream-float16`` .. ``a2-stream-float16``: the
  TF Hub / Kaggle TFLite files, kept as ``.tflite`` (`mm.load` reads them as such).
* ``a0-stream-float32`` .. ``a5-stream-float32``: the Model Garden's float32 stream TFLite files
  ``movinet_<id>_stream.tflite``, kept as ``.tflite``.
* ``a0-base-savedmodel`` .. ``a5-stream-savedmodel``: the TF Hub / Kaggle SavedModels
  (``tensorflow/movinet/<id>/<base|stream>/kinetics-600/classification/3``), kept as the
  ``.tar.gz`` Kaggle serves and converted to ``model.h5`` without TensorFlow
  (`formats.saved_model`).
* ``kinetics600-labels``: the 600 class names.

``a0-stream-int8`` and ``kinetics600-labels`` are also embedded in the package
(`minimovinet.data`, the same bytes): they work offline from the first command, and `fetch`
copies them into the cache instead of downloading.

The cache is ``$MINIMOVINET_HOME``, else ``$XDG_CACHE_HOME/minimovinet``, else
``~/.cache/minimovinet``; each entry has its own directory holding the original download and,
for checkpoints, the converted ``model.h5``::

    <cache>/a0-stream/movinet_a0_stream.tar.gz
    <cache>/a0-stream/model.h5
    <cache>/a0-stream-int8/movinet_a0_stream_int8.tflite
    <cache>/a0-base-savedmodel/movinet_a0_base_savedmodel.tar.gz
    <cache>/a0-base-savedmodel/model.h5
    <cache>/kinetics600-labels/kinetics_600_labels.txt

Files you download by hand may be put at those paths (`ModelNotAvailableError` says which), in
the form the site serves them: Kaggle's ``.tar.gz`` around ``1.tflite`` is unwrapped in place,
a SavedModel ``.tar.gz`` is read as it is.

Consistency: a download goes to ``<file>.<random>.part`` in the entry's directory and is renamed
onto the final name only after it verified (size and sha256 where they are known; the checkpoint
by reading every tensor with its CRC and converting it; a TFLite file by parsing it); the h5 is
written to a temporary name and renamed.  An interruption (Ctrl-C, network error, failed check)
removes the ``.part`` file, so the cache only ever holds complete, verified files.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import http.client
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..atomic import atomic_open, atomic_path
from .. import data
from ..config import CLIPS
from ..errors import (CacheError, CheckpointError, DownloadError, ModelNotAvailableError,
                      TFLiteError, UnknownModelError)
from .progress import Progress

__all__ = ["Entry", "REGISTRY", "LABELS", "get", "names", "cache_dir", "download_path",
           "model_path", "status", "format_models", "fetch", "resolve", "load", "class_names",
           "is_registry_name"]

PathLike = Union[str, os.PathLike]

# --------------------------------------------------------------------------------------------
# The registry.
# --------------------------------------------------------------------------------------------

# Model Garden README (official/projects/movinet/README.md), "Kinetics 600" tables.
CHECKPOINT_BASE = "https://storage.googleapis.com/tf_model_garden/vision/movinet/"
# TF Hub handles tensorflow/lite-model/movinet/<id>/stream/kinetics-600/classification/tflite/
# <int8|float16>/1; the "?lite-format=tflite" form is the download URL the official TFLite
# examples use (tensorflow/examples lite/examples/video_classification: android/app/
# download.gradle, raspberry_pi/setup.sh).  tfhub.dev now redirects to Kaggle (google/movinet).
TFHUB_LITE = ("https://tfhub.dev/tensorflow/lite-model/movinet/{id}/stream/kinetics-600/"
              "classification/tflite/{precision}/1?lite-format=tflite")
# Kaggle's API serves the same file wrapped in a .tar.gz (holding "1.tflite"); unwrapped here.
KAGGLE_LITE = ("https://www.kaggle.com/api/v1/models/google/movinet/tfLite/"
               "{id}-stream-kinetics-600-classification-tflite-{precision}/1/download")
KAGGLE_PAGE = ("https://www.kaggle.com/models/google/movinet/tfLite/"
               "{id}-stream-kinetics-600-classification-tflite-{precision}")
# tensorflow/models official/projects/movinet/files/kinetics_600_labels.txt, pinned to a commit
# (so its sha256 holds); the master URL is the mirror.
LABELS_PATH = "official/projects/movinet/files/kinetics_600_labels.txt"
LABELS_URL = ("https://raw.githubusercontent.com/tensorflow/models/"
              "15762ae3a80ffeb47f73ebb8734ad54904e5b65e/" + LABELS_PATH)
LABELS_MIRROR = "https://raw.githubusercontent.com/tensorflow/models/master/" + LABELS_PATH

# Model Garden README, "TF Lite Streaming Models": the float32 stream models.
FLOAT_LITE = CHECKPOINT_BASE + "movinet_{id}_stream.tflite"
# TF Hub handles tensorflow/movinet/<id>/<base|stream>/kinetics-600/classification/3 (the Model
# Garden README's "TF Hub SavedModel" column); tfhub.dev serves the SavedModel as a .tar.gz
# with "?tf-hub-format=compressed" and now redirects to Kaggle (google/movinet, framework
# tensorFlow2), whose API serves the same .tar.gz (saved_model.pb and variables/ at its root).
TFHUB_SAVED_MODEL = ("https://tfhub.dev/tensorflow/movinet/{id}/{variant}/kinetics-600/"
                     "classification/3?tf-hub-format=compressed")
KAGGLE_SAVED_MODEL = ("https://www.kaggle.com/api/v1/models/google/movinet/tensorFlow2/"
                      "{id}-{variant}-kinetics-600-classification/3/download")
KAGGLE_SAVED_MODEL_PAGE = ("https://www.kaggle.com/models/google/movinet/tensorFlow2/"
                           "{id}-{variant}-kinetics-600-classification")

LABELS = "kinetics600-labels"
NUM_LABELS = 600


@dataclasses.dataclass(frozen=True)
class Entry:
    """One downloadable file and what it is."""
    name: str                       # registry name, e.g. 'a0-stream'
    kind: str                       # 'checkpoint', 'saved_model', 'tflite' or 'labels'
    url: str                        # where it is downloaded from
    filename: str                   # its name in the cache
    model_id: Optional[str] = None
    variant: Optional[str] = None   # minimovinet variant: 'base', 'stream', 'mobile'
    precision: str = "float32"      # 'float32', 'int8', 'float16'
    input_size: Optional[int] = None   # training / evaluation resolution (square)
    frames: Optional[int] = None       # frames of the 10 s evaluation clip
    fps: Optional[int] = None          # frame rate of that clip
    size: str = ""                  # published (approximate) size, for the listing
    size_bytes: Optional[int] = None   # exact size, verified when known
    sha256: Optional[str] = None       # verified when known
    mirrors: Tuple[str, ...] = ()      # tried in order when `url` fails
    page: str = ""                  # human-readable page for the file
    embedded: Optional[Path] = None    # the same file shipped in the package (minimovinet.data)

    @property
    def format(self) -> str:
        if self.kind == "checkpoint":
            return f"checkpoint {self.variant}"
        if self.kind == "saved_model":
            return f"SavedModel {self.variant}"
        if self.kind == "tflite":
            return f"TFLite {self.precision}"
        return f"{NUM_LABELS} class names"

    @property
    def urls(self) -> Tuple[str, ...]:
        return (self.url,) + tuple(self.mirrors)


# Checkpoint sizes as published in the Model Garden README (MB).
_CHECKPOINT_MB = {"a0": 12, "a1": 18, "a2": 20, "a3": 29, "a4": 44, "a5": 72}
# float32 stream TFLite sizes as published in the Model Garden README (MB).
_FLOAT_LITE_MB = {"a0": 13, "a1": 45, "a2": 53, "a3": 73, "a4": 101, "a5": 153}
# int8 sizes from the TFLite video classification guide; float16 A0 from Kaggle's listing.
_TFLITE_SIZES = {("a0", "int8"): "3.1 MB", ("a1", "int8"): "4.5 MB", ("a2", "int8"): "5.1 MB",
                 ("a0", "float16"): "7.6 MB"}
# Exact files known to this project (../shared/README.md: the official A0 int8 model).
_TFLITE_KNOWN = {("a0", "int8"): (3_276_048, "6125b36e2485eeb5cc1fd6206cf5e5d70235593fbc84610d"
                                             "1dce97fe3aa9c2ac")}


# The embedded default (minimovinet/data): byte for byte the registry's files, so these
# work offline from the first command; `fetch` copies them into the cache instead of downloading.
EMBEDDED = {"a0-stream-int8": data.DEFAULT_MODEL, LABELS: data.LABELS}


# Kinds that `fetch` converts to model.h5 (the download is kept next to it).
CONVERTED_KINDS = ("checkpoint", "saved_model")


def _build_registry() -> Dict[str, Entry]:
    reg: Dict[str, Entry] = {}
    for variant in ("base", "stream"):
        for mid, (size, frames, fps) in CLIPS.items():
            filename = f"movinet_{mid}_{variant}.tar.gz"
            reg[f"{mid}-{variant}"] = Entry(
                name=f"{mid}-{variant}", kind="checkpoint", url=CHECKPOINT_BASE + filename,
                filename=filename, model_id=mid, variant=variant, input_size=size,
                frames=frames, fps=fps, size=f"{_CHECKPOINT_MB[mid]} MB",
                page="https://github.com/tensorflow/models/tree/master/official/projects/movinet")
    for variant in ("base", "stream"):
        for mid, (size, frames, fps) in CLIPS.items():
            name, fmt = f"{mid}-{variant}-savedmodel", dict(id=mid, variant=variant)
            reg[name] = Entry(
                name=name, kind="saved_model", url=KAGGLE_SAVED_MODEL.format(**fmt),
                filename=f"movinet_{mid}_{variant}_savedmodel.tar.gz", model_id=mid,
                variant=variant, input_size=size, frames=frames, fps=fps,
                mirrors=(TFHUB_SAVED_MODEL.format(**fmt),),      # size: not published
                page=KAGGLE_SAVED_MODEL_PAGE.format(**fmt))
    for mid, (size, frames, fps) in CLIPS.items():
        reg[f"{mid}-stream-float32"] = Entry(
            name=f"{mid}-stream-float32", kind="tflite", url=FLOAT_LITE.format(id=mid),
            filename=f"movinet_{mid}_stream.tflite", model_id=mid, variant="stream",
            precision="float32", input_size=size, frames=frames, fps=fps,
            size=f"{_FLOAT_LITE_MB[mid]} MB",
            page="https://github.com/tensorflow/models/tree/master/official/projects/movinet")
    for precision in ("int8", "float16"):
        for mid in ("a0", "a1", "a2"):
            size, frames, fps = CLIPS[mid]
            known = _TFLITE_KNOWN.get((mid, precision), (None, None))
            fmt = dict(id=mid, precision=precision)
            reg[f"{mid}-stream-{precision}"] = Entry(
                name=f"{mid}-stream-{precision}", kind="tflite", url=TFHUB_LITE.format(**fmt),
                filename=f"movinet_{mid}_stream_{precision}.tflite", model_id=mid,
                # int8: relu6 and no squeeze-excitation; float16: the SE stream model
                variant="mobile" if precision == "int8" else "stream", precision=precision,
                input_size=size, frames=frames, fps=fps,
                size=_TFLITE_SIZES.get((mid, precision), ""), size_bytes=known[0],
                sha256=known[1], mirrors=(KAGGLE_LITE.format(**fmt),),
                page=KAGGLE_PAGE.format(**fmt),
                embedded=EMBEDDED.get(f"{mid}-stream-{precision}"))
    reg[LABELS] = Entry(
        name=LABELS, kind="labels", url=LABELS_URL, filename="kinetics_600_labels.txt",
        size="9 KB", size_bytes=9209,
        sha256="8dfca4202520ea8291ce0242ef33b006d0a0772b409663c090a2876bc1978dcf",
        mirrors=(LABELS_MIRROR,),
        page="https://github.com/tensorflow/models/blob/master/" + LABELS_PATH,
        embedded=EMBEDDED[LABELS])
    return reg


REGISTRY: Dict[str, Entry] = _build_registry()


def names() -> List[str]:
    return list(REGISTRY)


def _normalize(name: str) -> str:
    n = name.strip().lower().replace("_", "-")
    for suffix in (".tar.gz", ".tflite", ".h5"):
        if n.endswith(suffix):
            n = n[:-len(suffix)]
    if n.startswith("movinet-"):
        n = n[len("movinet-"):]
    return n


def get(name: Union[str, Entry]) -> Entry:
    """The registry entry called `name` (case and '_'/'-' do not matter; 'movinet_' is optional)."""
    if isinstance(name, Entry):
        return name
    if not isinstance(name, str):
        raise TypeError(f"a registry name is a str, not {type(name).__name__}")
    key = _normalize(name)
    if key in REGISTRY:
        return REGISTRY[key]
    close = difflib.get_close_matches(key, REGISTRY, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UnknownModelError(f"{name!r} is not a model file or a registry name; {hint}"
                            f"`minimovinet models` lists the {len(REGISTRY)} names")


def is_registry_name(path) -> bool:
    """True when `path` should be looked up in the registry: a str naming no existing file and
    not shaped like a path (no directory separator, no .h5 / .tflite / .hdf5 suffix)."""
    if not isinstance(path, str) or not path.strip() or os.path.exists(path):
        return False
    if "/" in path or os.sep in path or (os.altsep and os.altsep in path):
        return False
    return not path.lower().endswith((".h5", ".hdf5", ".tflite"))


# --------------------------------------------------------------------------------------------
# The cache.
# --------------------------------------------------------------------------------------------

def cache_dir() -> Path:
    """``$MINIMOVINET_HOME``, else ``$XDG_CACHE_HOME/minimovinet``, else ~/.cache/minimovinet."""
    home = os.environ.get("MINIMOVINET_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "minimovinet"


def _root(cache: Optional[PathLike]) -> Path:
    return Path(cache).expanduser() if cache is not None else cache_dir()


def download_path(name, cache: Optional[PathLike] = None) -> Path:
    """Where the original file of `name` lives in the cache."""
    entry = get(name)
    return _root(cache) / entry.name / entry.filename


def model_path(name, cache: Optional[PathLike] = None) -> Path:
    """The file `load` reads for `name`: the converted h5 for checkpoints and SavedModels,
    else the download."""
    entry = get(name)
    if entry.kind in CONVERTED_KINDS:
        return _root(cache) / entry.name / "model.h5"
    return download_path(entry, cache)


def status(name, cache: Optional[PathLike] = None) -> str:
    """'converted', 'downloaded' or '-' (never raises)."""
    entry = get(name)
    try:
        if entry.kind in CONVERTED_KINDS and model_path(entry, cache).is_file():
            return "converted"
        return "downloaded" if download_path(entry, cache).is_file() else "-"
    except OSError:
        return "?"


def _writable_dir(path: Path, cache: Path) -> Path:
    """Create `path` if needed and check that files can be created in it."""
    hint = "set MINIMOVINET_HOME to a writable directory"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CacheError(f"cannot create the cache directory {path}: "
                         f"{e.strerror or e} (cache {cache}; {hint})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise CacheError(f"the cache directory {path} is not writable: "
                         f"{e.strerror or e} ({hint})") from None
    return path


def _check_cache_root(root: Path) -> None:
    """A cache path that is (or lies under) a regular file cannot hold anything: say so, rather
    than reporting every model as missing."""
    for path in (root, *root.parents):
        try:
            if path.exists():
                if not path.is_dir():
                    raise CacheError(f"the cache {root} cannot be read: {path} is a file, not a "
                                     f"directory (set MINIMOVINET_HOME to a directory)")
                return
        except PermissionError as e:
            raise CacheError(f"cannot read the cache {root}: {e.strerror or e}") from None


def _is_file(path: Path) -> bool:
    try:
        if path.is_file():
            return True
        if path.exists():
            raise CacheError(f"{path} exists but is not a file: remove it")
        return False
    except PermissionError as e:
        raise CacheError(f"cannot read the cache: {path}: {e.strerror or e}") from None


# --------------------------------------------------------------------------------------------
# Downloading and verifying.
# --------------------------------------------------------------------------------------------

_CHUNK = 1 << 16
USER_AGENT = "minimovinet-registry"


def _download_to(url: str, out, label: str, progress) -> int:
    """Stream `url` into the open binary file `out`; returns the number of bytes."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    received = 0
    with urllib.request.urlopen(request, timeout=60) as response:
        length = response.headers.get("Content-Length") if response.headers else None
        total = int(length) if length and str(length).isdigit() else None
        with progress(label, total) as bar:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise DownloadError(f"truncated: received {received:,} of {total:,} bytes")
    return received


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"{exc.reason}"
    return f"{exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)


def _progress_factory(progress):
    """progress: None (a bar when stderr is a terminal), True/False, or a stream to draw on."""
    if progress is None or progress is True or progress is False:
        return lambda label, total: Progress(label, total, unit="bytes", enabled=progress)
    return lambda label, total: Progress(label, total, unit="bytes", stream=progress,
                                         enabled=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_size_and_hash(entry: Entry, path: Path, shown: str) -> None:
    size = path.stat().st_size
    if size == 0:
        raise DownloadError(f"{shown}: the file is empty")
    if entry.size_bytes is not None and size != entry.size_bytes:
        raise DownloadError(f"{shown}: {size:,} bytes, expected {entry.size_bytes:,} "
                            f"(truncated, or not the published {entry.name} file)")
    if entry.sha256 is not None:
        digest = _sha256(path)
        if digest != entry.sha256:
            raise DownloadError(f"{shown}: sha256 {digest}, expected {entry.sha256} "
                                f"(corrupted, or not the published {entry.name} file)")


def _read_labels(path: Path, shown: str) -> List[str]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DownloadError(f"{shown}: not a UTF-8 text file of class names") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if len(labels) != NUM_LABELS or len(set(labels)) != NUM_LABELS:
        raise DownloadError(f"{shown}: {len(labels)} class names ({len(set(labels))} distinct), "
                            f"expected {NUM_LABELS} distinct Kinetics-600 names")
    return labels


def _verify_tflite(entry: Entry, path: Path, shown: str) -> None:
    from ..formats.tflite import read_tflite
    try:
        model = read_tflite(str(path))
    except TFLiteError as e:
        raise DownloadError(f"{shown}: not a valid TFLite model: {e}") from None
    want = entry.input_size
    shapes = [tuple(g.tensors[i].shape) for g in model.subgraphs for i in g.inputs]
    if want and not any(s[-3:] == (want, want, 3) for s in shapes):
        raise DownloadError(f"{shown}: no {want}x{want}x3 image input (inputs {shapes[:3]}...): "
                            f"not the {entry.name} model")


def _unwrap_archive(path: Path, shown: str) -> None:
    """Replace a .tar(.gz) holding exactly one .tflite (Kaggle's packaging) by that file."""
    with open(path, "rb") as f:
        head = f.read(2)
    if head != b"\x1f\x8b" and not tarfile.is_tarfile(path):
        return
    try:
        with tarfile.open(path, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".tflite")]
            if len(members) != 1:
                raise DownloadError(f"{shown}: an archive with {len(members)} .tflite files, "
                                    "expected exactly one")
            src = tar.extractfile(members[0])
            with src, atomic_open(path, "wb", suffix=".inner") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DownloadError(f"{shown}: a broken archive: {e}") from None


def _download_verified(entry: Entry, dest: Path, progress, verify) -> Path:
    """Download `entry` to a .part file next to `dest`, `verify(part, shown)` it, then rename it
    onto `dest`; on failure try the next mirror.  Nothing is left behind when all fail, or on an
    interruption (the .part file is removed, KeyboardInterrupt propagates)."""
    failures = []
    for url in entry.urls:
        try:
            with atomic_path(dest, prefix=entry.filename + ".", suffix=".part") as part:
                _download_and_verify(entry, url, part, progress, verify)
            return dest
        except DownloadError as e:
            failures.append(str(e))
    raise DownloadError(
        f"could not fetch {entry.name}: {'; '.join(failures)}; nothing was kept in the cache. "
        f"To download it by hand, save {entry.url} as {dest}")


def _download_and_verify(entry: Entry, url: str, part: Path, progress, verify) -> None:
    """Download `url` into `part` and verify it; any failure is a DownloadError saying what
    went wrong, for the list of failures of `_download_verified`."""
    try:
        with open(part, "wb") as out:
            _download_to(url, out, entry.name, progress)
    except DownloadError as e:
        raise DownloadError(f"{url}: {e}") from None
    except (OSError, ValueError, http.client.HTTPException) as e:
        # HTTPError/URLError, timeouts, refused or reset connections, bad URLs, disk full
        raise DownloadError(f"{url}: {_describe_failure(e)}") from None
    shown = f"{url} (downloaded for {entry.name})"
    try:
        if entry.kind == "tflite":
            _unwrap_archive(part, shown)
        verify(part, shown)
    except (DownloadError, CheckpointError) as e:
        raise DownloadError(f"verification failed: {e}") from None


# --------------------------------------------------------------------------------------------
# Converting checkpoints.
# --------------------------------------------------------------------------------------------

def _one_line(text: str) -> str:
    """One line, and paths inside an unpacked archive shown relative to the archive."""
    text = re.sub(re.escape(os.path.join(tempfile.gettempdir(), "minimovinet-ckpt-")) +
                  r"[^/\\]+[/\\]", "", text)
    return "; ".join(part.strip(" -") for part in text.splitlines() if part.strip(" -"))


def _official_arrays(entry: Entry, archive: Path):
    """The variables of a downloaded checkpoint or SavedModel, named as in a checkpoint."""
    if entry.kind == "saved_model":
        from ..formats.saved_model import SavedModelReader
        with SavedModelReader(str(archive)) as reader:
            return reader.arrays()
    from ..formats.tf_checkpoint import CheckpointReader
    with CheckpointReader(str(archive)) as reader:
        return reader.arrays()


def _convert_checkpoint(entry: Entry, archive: Path, out: Path, labels: Sequence[str],
                        shown: str) -> None:
    """Read every tensor of `archive` (a checkpoint or a SavedModel, CRC-checked), check that
    it is `entry`'s model, and write the h5 atomically with the class names."""
    from ..formats.official_checkpoint import convert_arrays, infer_config
    what = "SavedModel" if entry.kind == "saved_model" else "checkpoint"
    try:
        arrays = _official_arrays(entry, archive)
    except CheckpointError as e:
        text = _one_line(str(e))        # tarfile's messages span several lines
        raise CheckpointError(text if shown in text else f"{shown}: {text}") from None
    try:
        convert_arrays(arrays, out, model_id=entry.model_id, variant=entry.variant,
                       class_names=list(labels),
                       source=f"{entry.url} (minimovinet registry entry {entry.name})")
    except CheckpointError as e:
        try:
            actual, _ = infer_config(arrays)
        except CheckpointError:
            raise CheckpointError(f"{shown}: not the {entry.model_id} {entry.variant} "
                                  f"{what} of {entry.name}: {e}") from None
        raise CheckpointError(
            f"{shown}: holds a MoViNet {actual.model_id} {actual.variant} {what} "
            f"({actual.num_classes} classes), not the {entry.model_id} {entry.variant} model "
            f"of registry entry {entry.name}") from None


# --------------------------------------------------------------------------------------------
# Fetch, resolve, load.
# --------------------------------------------------------------------------------------------

def _convert_cached(entry: Entry, dest: Path, out: Path, labels) -> None:
    """Convert a checkpoint already in the cache; a broken one says how to get it again."""
    try:
        _convert_checkpoint(entry, dest, out, labels, str(dest))
    except CheckpointError as e:
        raise CheckpointError(f"{e}; delete it, or run `minimovinet fetch {entry.name} "
                              f"--force` to download it again") from None


def _labels_from_cache(cache: Path) -> List[str]:
    """The class names in the cache, else the embedded copy (the same file)."""
    entry = REGISTRY[LABELS]
    path = download_path(entry, cache)
    if not _is_file(path):
        return data.kinetics600_labels()
    _check_local(entry, path)
    return _read_labels(path, str(path))


def _copy_embedded(entry: Entry, dest: Path) -> Path:
    """Put the embedded copy of `entry` into the cache (verified, written atomically)."""
    with atomic_path(dest, prefix=entry.filename + ".", suffix=".part") as part:
        shutil.copyfile(entry.embedded, part)
        _check_size_and_hash(entry, part, str(entry.embedded))
    return dest


def _check_local(entry: Entry, path: Path) -> None:
    """Verify a file already in the cache (downloaded earlier or put there by hand)."""
    try:
        if entry.kind == "tflite":
            _unwrap_archive(path, str(path))     # Kaggle's .tar.gz, downloaded by hand
        _check_size_and_hash(entry, path, str(path))
        if entry.kind == "tflite":
            _verify_tflite(entry, path, str(path))
    except DownloadError as e:
        raise DownloadError(f"{e}; delete it, or run `minimovinet fetch {entry.name} --force` "
                            f"to download it again") from None


def fetch(name, cache: Optional[PathLike] = None, force: bool = False, progress=None) -> Path:
    """Download (if needed), verify and convert `name` into the cache; returns `model_path`.

    Checkpoints are converted to ``model.h5`` with the class names.  The embedded files (the
    A0 stream int8 model and the class names, `EMBEDDED`) are copied from the package, never
    downloaded.  `force` downloads (or copies) again even when the file is cached.
    `progress`: None draws a bar on stderr when it is a terminal; False never; a stream: draw
    on it.
    """
    entry = get(name)
    root = _root(cache)
    _writable_dir(root / entry.name, root)
    dest = download_path(entry, root)
    bar = _progress_factory(progress)

    if entry.embedded is not None:
        if force or not _is_file(dest):
            _copy_embedded(entry, dest)
        else:
            _check_local(entry, dest)
        return dest
    if entry.kind == "labels":
        if force or not _is_file(dest):
            _download_verified(entry, dest, bar,
                               lambda p, shown: (_check_size_and_hash(entry, p, shown),
                                                 _read_labels(p, shown)))
        else:
            _labels_from_cache(root)
        return dest

    labels = _labels_from_cache(root)

    if entry.kind == "tflite":
        if force or not _is_file(dest):
            def verify(p, shown):
                _check_size_and_hash(entry, p, shown)
                _verify_tflite(entry, p, shown)
            _download_verified(entry, dest, bar, verify)
        else:
            _check_local(entry, dest)
        return dest

    out = model_path(entry, root)
    if not force and _is_file(out):
        return out
    if not force and _is_file(dest):
        _convert_cached(entry, dest, out, labels)
        return out

    _download_verified(entry, dest, bar,
                       lambda p, shown: _convert_checkpoint(entry, p, out, labels, shown))
    return out


def _not_available(entry: Entry, root: Path, missing: List[Tuple[Entry, Path]]) -> str:
    files = "; ".join(f"download {e.url} and put it at {p}" for e, p in missing)
    return (f"model {entry.name!r} is not in the cache {root}: run `minimovinet fetch "
            f"{entry.name}`, or {files}")


def resolve(name, cache: Optional[PathLike] = None) -> Path:
    """The local file `load` reads for `name`, without any network access.

    A checkpoint whose download is cached but not yet converted is converted (h5 written
    atomically).  Raises `ModelNotAvailableError` naming each missing file, its URL and the
    path to put it at.
    """
    entry = get(name)
    root = _root(cache)
    _check_cache_root(root)
    if entry.kind == "labels":
        raise UnknownModelError(f"{entry.name!r} is the class-name file, not a model; "
                                "read it with minimovinet.apps.registry.class_names()")
    out, dest = model_path(entry, root), download_path(entry, root)
    have_model = _is_file(out) or _is_file(dest)
    if have_model and entry.kind in CONVERTED_KINDS and _is_file(out):
        return out
    if not have_model:
        if entry.embedded is not None:
            return entry.embedded                # the package's copy of the same file
        raise ModelNotAvailableError(_not_available(entry, root, [(entry, dest)]))
    labels = _labels_from_cache(root)
    if entry.kind == "tflite":
        _check_local(entry, dest)
        return dest
    _writable_dir(out.parent, root)
    _convert_cached(entry, dest, out, labels)
    return out


def class_names(cache: Optional[PathLike] = None) -> List[str]:
    """The 600 Kinetics-600 class names: from the cache, else the embedded copy."""
    return _labels_from_cache(_root(cache))


def load(name, cache: Optional[PathLike] = None):
    """The model registered as `name`, from the cache (never downloads: see `fetch`)."""
    import minimovinet
    entry = get(name)
    path = resolve(entry, cache)
    if entry.kind == "tflite":
        model = minimovinet.load(str(path))
        if model.class_names is None:
            model.class_names = class_names(cache)
        return model
    return minimovinet.load(str(path))


# --------------------------------------------------------------------------------------------
# The listing.
# --------------------------------------------------------------------------------------------

def format_models(cache: Optional[PathLike] = None) -> str:
    """The `minimovinet models` table: every entry with its input, fps, size, cache state, URL."""
    root = _root(cache)
    rows = [("NAME", "FORMAT", "INPUT", "FPS", "CLIP", "SIZE", "CACHED", "URL")]
    for e in REGISTRY.values():
        rows.append((e.name, e.format,
                     f"{e.input_size}x{e.input_size}" if e.input_size else "-",
                     f"{e.fps} fps" if e.fps else "-",
                     f"{e.frames} frames" if e.frames else "-",
                     e.size or "-", status(e, root), e.url))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
    lines.append("")
    lines.append(f"cache: {root}  (MINIMOVINET_HOME; `minimovinet fetch NAME` downloads, "
                 f"verifies and converts; mm.load(NAME) reads the cache)")
    lines.append("input: training resolution, square; clip: frames of the 10 s evaluation clip "
                 "at that frame rate")
    return "\n".join(lines)
