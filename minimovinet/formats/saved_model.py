"""Read TF Hub / Kaggle MoViNet SavedModels without TensorFlow.

A TF2 SavedModel is a directory::

    saved_model.pb                       SavedModel proto: graphs, signatures, object graph
    variables/variables.index            a TF checkpoint (tensor bundle, see tf_checkpoint.py)
    variables/variables.data-00000-of-00001 ...
    assets/, fingerprint.pb, keras_metadata.pb   (not needed here)

The TF Hub download (``?tf-hub-format=compressed``) and Kaggle's download of a TensorFlow 2
model are ``.tar.gz`` archives holding those files at the archive root; `SavedModelReader`
takes the directory, such an archive, or an archive whose single subdirectory is the
SavedModel.

The checkpoint in ``variables/`` names every tensor by its object-graph path as seen from the
saved object, usually the shortest one: for a Keras model that is often a SavedModel-only
path such as ``variables/12/.ATTRIBUTES/VARIABLE_VALUE`` (the model's list of variables) or
``keras_api/...``.  Its ``_CHECKPOINTABLE_OBJECT_GRAPH`` tensor (a TrackableObjectGraph proto)
holds every object's children by name, so each variable's path can be recomputed as a training
checkpoint would spell it: breadth first from the root, children in order, leaving out the
edges that only SavedModels add (`SAVED_MODEL_ONLY_EDGES`).  With the ``model/`` prefix of
``tf.train.Checkpoint(model=...)`` these are exactly the keys `official_checkpoint` maps onto
minimovinet parameters, with the same completeness checks (every parameter found, shapes
checked, nothing left over).  A variable that has no such path is kept under its stored key
(prefixed with ``model/``) so that it is reported as left over, never silently dropped; the
one exception is Keras bookkeeping (the counters of the metrics ``model.compile()`` creates,
under ``keras_api/metrics/``), and, as for checkpoints, the optimizer's variables.

A SavedModel carries no model config: the model id, the variant and the positional encoding
come from the variables' names and shapes (`infer_saved_model_config`, trying each candidate
config against the same checks), and whether the model is causal from the signatures' inputs
(a stream model takes its states as inputs), which is what tells the whole-clip 'base' model
from a 'stream3d' one with the same variables.  The activations have no variables: they are
the variant's (hard-swish for 'stream', as in the TF Hub stream models; swish for 'base').

``saved_model.pb`` is decoded with `protowire` (no protobuf package): it must parse
completely, so a truncated file is refused.  Every failure is a `CheckpointError` naming the
file and the problem.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections import deque
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..config import MODEL_IDS, ModelConfig
from ..data import kinetics600_labels
from ..errors import CheckpointError
from .official_checkpoint import CLASSIFIER, SUFFIX, params_from_official
from .protowire import WireFormatError, fields, messages, strings
from .tf_checkpoint import CheckpointReader, looks_like_tar, safe_extract

__all__ = ["SavedModelReader", "is_saved_model", "is_saved_model_path", "read_saved_model",
           "convert_saved_model", "infer_saved_model_config", "SAVED_MODEL_ONLY_EDGES"]

SAVED_MODEL_PB = "saved_model.pb"
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
VARIABLE_VALUE = "VARIABLE_VALUE"
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")

# The variants a SavedModel may be, in the order tried: a causal model takes its states as
# signature inputs.  'stream3d' has the variables of 'base'; 'mobile' those of 'stream'
# without squeeze-excitation.
# Without a signature that takes inputs (a SavedModel saved without its serving function),
# causality is unknown and every variant is tried.
VARIANTS_BY_CAUSALITY = {True: ("stream", "mobile", "stream3d"), False: ("base",),
                         None: ("base", "stream", "mobile", "stream3d")}

# Object-graph edges that SavedModels add on top of the ones a training checkpoint follows
# (Keras's serialization extras and the functions and signatures of the saved object).
SAVED_MODEL_ONLY_EDGES = frozenset((
    "variables", "trainable_variables", "non_trainable_variables", "keras_api",
    "signatures", "layer_metrics", "_default_save_signature", "__call__",
    "call_and_return_all_conditional_losses", "call_and_return_conditional_losses",
    "regularization_losses", "_self_saveable_object_factories", "_serving_fn",
))


# Stored keys of variables that are Keras bookkeeping, not weights: the counters of the metrics
# `model.compile()` creates (export_saved_model.py compiles the model before saving it).
BOOKKEEPING_PREFIXES = ("keras_api/metrics/",)


def _is_saved_model_only(name: str) -> bool:
    return name in SAVED_MODEL_ONLY_EDGES or name.isdigit()


# --------------------------------------------------------------------------------------------
# Where the SavedModel is: a directory, a .tar.gz of it, Kaggle's archive.
# --------------------------------------------------------------------------------------------
def _saved_model_dir(root: str, shown: str) -> str:
    """`root` if it holds saved_model.pb, else its single subdirectory that does."""
    if os.path.isfile(os.path.join(root, SAVED_MODEL_PB)):
        return root
    found = []
    for here, dirs, files in os.walk(root):
        dirs.sort()
        if SAVED_MODEL_PB in files:
            found.append(here)
    if len(found) == 1:
        return found[0]
    if found:
        rel = ", ".join(os.path.relpath(d, root) for d in found)
        raise CheckpointError(f"{shown}: several SavedModels ({rel}); pass one of them")
    if any(name.endswith(".index") for _, _, files in os.walk(root) for name in files):
        raise CheckpointError(f"{shown}: a TensorFlow training checkpoint, not a SavedModel (no "
                              f"{SAVED_MODEL_PB}): convert it with `minimovinet convert`")
    raise CheckpointError(f"{shown}: not a SavedModel (no {SAVED_MODEL_PB} in it)")


def _is_archive(path: str) -> bool:
    return os.path.isfile(path) and (path.lower().endswith(_TAR_SUFFIXES) or looks_like_tar(path))


def is_saved_model(path) -> bool:
    """True when `path` is a directory holding a SavedModel, or an archive that does (its
    member names are listed; nothing is unpacked).  Never raises."""
    path = os.fspath(path)
    try:
        if os.path.isdir(path):
            _saved_model_dir(path, path)
            return True
        if _is_archive(path):
            with tarfile.open(path, "r:*") as tar:
                return any(os.path.basename(m.name) == SAVED_MODEL_PB for m in tar)
    except (CheckpointError, tarfile.TarError, EOFError, OSError, ValueError):
        return False
    return False


def is_saved_model_path(path) -> bool:
    """True for what `mm.load` reads as a SavedModel: a directory, or a file named like a tar
    archive (``.tar.gz``, ``.tgz``, ``.tar``); `SavedModelReader` says what is wrong with it."""
    if not isinstance(path, (str, os.PathLike)):
        return False
    path = os.fspath(path)
    return os.path.isdir(path) or (os.path.isfile(path) and path.lower().endswith(_TAR_SUFFIXES))


# --------------------------------------------------------------------------------------------
# saved_model.pb: parse it all (a truncated file fails), keep the serving signature's inputs.
# --------------------------------------------------------------------------------------------
def _signature_inputs(meta_graph: Dict[int, list]) -> Dict[str, List[str]]:
    """signature name -> its input names (MetaGraphDef.signature_def, field 5)."""
    signatures = {}
    for entry in messages(meta_graph, 5):             # map<string, SignatureDef>
        name = strings(entry, 1)
        for signature in messages(entry, 2):
            signatures[name] = [strings(inp, 1) for inp in messages(signature, 1)]
    return signatures


def _read_saved_model_pb(path: str) -> Dict[str, List[str]]:
    """Decode saved_model.pb completely; returns the signatures' input names."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        top = fields(data)                          # SavedModel
        graphs = messages(top, 2)                   # repeated MetaGraphDef
        if not graphs:
            raise WireFormatError("no meta graph")
        for graph in graphs:
            fields(graph.get(2, [b""])[-1])         # GraphDef: must parse completely
            messages(graph, 7)                      # SavedObjectGraph
        if not any(7 in graph for graph in graphs):
            raise WireFormatError("no object graph (a TF1 SavedModel?)")
        signatures = {}
        for graph in graphs:
            signatures.update(_signature_inputs(graph))
    except WireFormatError as e:
        raise CheckpointError(f"{path}: truncated or not a TF2 SavedModel ({e})") from None
    return signatures


# --------------------------------------------------------------------------------------------
# The object graph: every variable's training-checkpoint path.
# --------------------------------------------------------------------------------------------
def _object_graph_paths(graph: bytes, shown: str) -> Dict[str, Optional[str]]:
    """stored checkpoint key -> the key a training checkpoint of the same object would use
    (None for Keras bookkeeping that is no weight)."""
    try:
        nodes = messages(fields(graph), 1)          # TrackableObjectGraph.nodes
        children = [[(int(ref.get(1, [0])[-1]), strings(ref, 2)) for ref in messages(node, 1)]
                    for node in nodes]
        attributes = [[(strings(a, 1), strings(a, 3)) for a in messages(node, 2)]
                      for node in nodes]
    except WireFormatError as e:
        raise CheckpointError(f"{shown}: malformed {OBJECT_GRAPH_KEY} ({e})") from None
    if not nodes:
        raise CheckpointError(f"{shown}: empty {OBJECT_GRAPH_KEY}")
    paths: Dict[int, Tuple[str, ...]] = {0: ()}
    queue = deque([0])
    while queue:                                    # breadth first, children in order
        node = queue.popleft()
        for child, name in children[node]:
            if child in paths or _is_saved_model_only(name) or not 0 <= child < len(nodes):
                continue
            paths[child] = paths[node] + (name,)
            queue.append(child)
    renamed = {}
    for node, attrs in enumerate(attributes):
        for name, key in attrs:
            if name != VARIABLE_VALUE or not key:
                continue
            if node in paths:
                renamed[key] = "model/" + "/".join(paths[node]) + SUFFIX
            elif key.startswith(BOOKKEEPING_PREFIXES):
                renamed[key] = None
            else:       # only reachable through SavedModel-only edges: reported as left over
                renamed[key] = "model/" + key
    return renamed


# --------------------------------------------------------------------------------------------
# The reader.
# --------------------------------------------------------------------------------------------
class SavedModelReader:
    """The variables of a MoViNet SavedModel, named as in a training checkpoint.

    >>> with SavedModelReader("movinet_a0_stream.tar.gz") as sm:
    ...     arrays = sm.arrays()        # {"model/layer_with_weights-0/...": ndarray}
    ...     sm.causal                   # True: the serving signature takes states
    """

    def __init__(self, path):
        self.source = os.fspath(path)
        self._tmpdir: Optional[str] = None
        try:
            self.directory = self._locate()
            self.signatures = _read_saved_model_pb(os.path.join(self.directory, SAVED_MODEL_PB))
            prefix = os.path.join(self.directory, "variables", "variables")
            if not os.path.isfile(prefix + ".index"):
                raise CheckpointError(f"{self._shown(prefix)}.index: missing (a SavedModel "
                                      "without variables)")
            self._checkpoint = CheckpointReader(prefix)
        except CheckpointError as e:
            text = self._clean(str(e))
            self.close()
            raise CheckpointError(text) from None
        except BaseException:
            self.close()
            raise

    def _locate(self) -> str:
        if os.path.isdir(self.source):
            return _saved_model_dir(self.source, self.source)
        if _is_archive(self.source):
            self._tmpdir = tempfile.mkdtemp(prefix="minimovinet-savedmodel-")
            safe_extract(self.source, self._tmpdir)
            return _saved_model_dir(self._tmpdir, self.source)
        if not os.path.exists(self.source):
            raise CheckpointError(f"{self.source}: no such file or directory")
        raise CheckpointError(f"{self.source}: not a SavedModel (expected a directory holding "
                              f"{SAVED_MODEL_PB} and variables/, or a .tar.gz of one)")

    def _shown(self, path: str) -> str:
        """`path` as the user knows it: inside an archive, relative to the archive."""
        if self._tmpdir and path.startswith(self._tmpdir):
            return f"{self.source}:{os.path.relpath(path, self._tmpdir)}"
        return path

    @property
    def causal(self) -> Optional[bool]:
        """True when a signature takes inputs besides the frames (the stream states), False
        when the signatures take the frames alone, None when no signature takes inputs."""
        sizes = [len(inputs) for inputs in self.signatures.values() if inputs]
        return max(sizes) > 1 if sizes else None

    def arrays(self) -> Dict[str, np.ndarray]:
        """Every variable (CRC-checked), keyed by its training-checkpoint name."""
        try:
            stored = self._checkpoint.arrays()
        except CheckpointError as e:
            raise CheckpointError(self._clean(str(e))) from None
        if OBJECT_GRAPH_KEY not in stored:
            raise CheckpointError(f"{self.source}: variables/ has no {OBJECT_GRAPH_KEY}: not "
                                  "a TF2 SavedModel")
        renamed = _object_graph_paths(bytes(stored[OBJECT_GRAPH_KEY].item()), self.source)
        out = {}
        for key, value in stored.items():
            name = renamed.get(key, "model/" + key)
            if key != OBJECT_GRAPH_KEY and name is not None:
                out[name] = value
        return out

    def _clean(self, text: str) -> str:
        if self._tmpdir:
            text = text.replace(self._tmpdir + os.sep, f"{self.source}:")
        return text

    def config(self, arrays, model_id: Optional[str] = None, variant: Optional[str] = None,
               num_classes: Optional[int] = None) -> Tuple[ModelConfig, str]:
        """The model config the variables fit (see the module docstring) and a note."""
        return infer_saved_model_config(arrays, self.causal, model_id, variant, num_classes,
                                        source=self.source)

    def close(self) -> None:
        tmp, self._tmpdir = getattr(self, "_tmpdir", None), None
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    def __enter__(self) -> "SavedModelReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def infer_saved_model_config(arrays: Dict[str, np.ndarray], causal: Optional[bool],
                             model_id: Optional[str] = None, variant: Optional[str] = None,
                             num_classes: Optional[int] = None, source: str = ""
                             ) -> Tuple[ModelConfig, str]:
    """The first (model id, variant, positional encoding) whose parameters the variables fit
    exactly (names, shapes, nothing left over), and a note saying what was inferred.

    Variants are tried in the order of `VARIANTS_BY_CAUSALITY`; the positional encoding is
    tried both ways (the variables say whether it is there), starting with the variant's
    default.  The activations are the variant's (they have no variables).
    """
    if num_classes is None:
        num_classes = _num_classes(arrays, source)
    ids = [model_id] if model_id else list(MODEL_IDS)
    variants = [variant] if variant else list(VARIANTS_BY_CAUSALITY[causal])
    first_error = None
    for mid in ids:
        for var in variants:
            default = ModelConfig.from_variant(mid, var, num_classes=num_classes)
            choices = [default.use_positional_encoding]
            if default.causal:
                choices.append(not default.use_positional_encoding)
            for positional in choices:
                cfg = ModelConfig.from_variant(mid, var, num_classes=num_classes,
                                               use_positional_encoding=positional)
                try:
                    params_from_official(arrays, cfg, source=source or "SavedModel")
                except CheckpointError as e:
                    first_error = first_error or e
                    continue
                guessed = [w for w, given in (("model id", model_id), ("variant", variant))
                           if not given]
                kind = {True: "a stream SavedModel (takes states)",
                        False: "a whole-clip SavedModel (no state inputs)",
                        None: "a SavedModel without signatures"}[causal]
                extra = ", with positional encoding" if positional else ""
                note = (f"{mid} {var}{extra}, {num_classes} classes, {kind}"
                        + (f"; inferred {' and '.join(guessed)} from the variables"
                           if guessed else ""))
                return cfg, note
    if model_id and variant and first_error is not None:
        raise first_error
    raise CheckpointError(f"{source or 'SavedModel'}: not a MoViNet SavedModel: its variables "
                          f"fit no MoViNet model id in {ids} and variant in {variants}; "
                          f"first mismatch: {first_error}")


def _num_classes(arrays: Dict[str, np.ndarray], source: str) -> int:
    logits = [k for k in arrays if k.startswith(CLASSIFIER + "_classifier/")
              and k.endswith("bias" + SUFFIX)]
    if not logits:
        raise CheckpointError(f"{source or 'SavedModel'}: not a MoViNet SavedModel (no "
                              f"classifier variables under {CLASSIFIER!r}; "
                              f"{len(arrays)} variables)")
    return int(np.asarray(arrays[logits[0]]).size)


def read_saved_model(path, model_id: Optional[str] = None, variant: Optional[str] = None,
                     num_classes: Optional[int] = None
                     ) -> Tuple[ModelConfig, Dict[str, np.ndarray], str]:
    """(config, minimovinet parameters, note) of the MoViNet SavedModel at `path`."""
    with SavedModelReader(path) as reader:
        arrays = reader.arrays()
        cfg, note = reader.config(arrays, model_id, variant, num_classes)
    params = params_from_official(arrays, cfg, source=os.fspath(path))
    return cfg, params, note


def convert_saved_model(path, output, model_id: Optional[str] = None,
                        variant: Optional[str] = None, num_classes: Optional[int] = None,
                        class_names: Optional[Sequence[str]] = None, source: str = "") -> str:
    """Write the minimovinet h5 model (atomically) for the SavedModel at `path`; returns a
    one-line note of what was done."""
    from .h5 import save
    cfg, params, note = read_saved_model(path, model_id, variant, num_classes)
    if class_names is None and cfg.num_classes == len(kinetics600_labels()):
        class_names = kinetics600_labels()       # the official models' classes
    if class_names is not None and len(class_names) != cfg.num_classes:
        raise CheckpointError(f"{len(class_names)} class names for {cfg.num_classes} classes")
    save(output, cfg, params, class_names, source=source or f"converted from {path}")
    return f"{note}: {len(params)} parameters -> {os.fspath(output)}"
