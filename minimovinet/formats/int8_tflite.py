"""An int8 TFLite MoViNet stream model file as an `Int8Movinet` (`minimovinet.load` of a
.tflite file; `minimovinet convert` then writes it with `h5_int8.save_int8`).  The class names
of a file written by minimovinet (`tflite_writer`) come from its metadata."""
from __future__ import annotations

from typing import List, Optional, Sequence

from ..int8.model import Int8Movinet
from .tflite import TFLiteModel, read_tflite

# the metadata entry `tflite_writer` keeps the class names in (one per line)
CLASS_NAMES_METADATA = "minimovinet_class_names"


def load_tflite(path, class_names: Optional[Sequence[str]] = None) -> Int8Movinet:
    """Read `path` without TFLite and map its graph onto the MoViNet structure (a graph
    whose structure is not recognised runs op by op, `describe()` says why)."""
    from .tflite_import import import_tflite          # the importer is large: when used
    program = import_tflite(path, op_by_op_fallback=True)
    if class_names is None:
        class_names = stored_class_names(path)
    return Int8Movinet(program, class_names)


def stored_class_names(path) -> Optional[List[str]]:
    """(`path`: a file, bytes or a parsed `TFLiteModel`.)  The class names in the file's `minimovinet_class_names` metadata, None without it."""
    model = path if isinstance(path, TFLiteModel) else read_tflite(path)
    raw = model.metadata_bytes(CLASS_NAMES_METADATA)
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace").split("\n")
