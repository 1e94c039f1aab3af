"""An int8 TFLite MoViNet stream model file as an `Int8Movinet` (`minimovinet.load` of a
.tflite file; `minimovinet convert` then writes it with `h5_int8.save_int8`)."""
from __future__ import annotations

from typing import Optional, Sequence

from ..int8.model import Int8Movinet


def load_tflite(path, class_names: Optional[Sequence[str]] = None) -> Int8Movinet:
    """Read `path` without TFLite and map its graph onto the MoViNet structure (a graph
    whose structure is not recognised runs op by op, `describe()` says why)."""
    from .tflite_import import import_tflite          # the importer is large: when used
    return Int8Movinet(import_tflite(path, op_by_op_fallback=True), class_names)
