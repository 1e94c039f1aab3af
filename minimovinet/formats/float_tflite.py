"""A float TFLite MoViNet stream model file as a float32 `Movinet` (`minimovinet.load` of a
float32, float16 or dynamic-range .tflite file).

The graph is walked as the int8 importer walks an int8 one (`tflite_import.import_float_tflite`)
and its weights become float32 parameters: float16 weights are widened exactly, and the int8
weights of a dynamic-range file are dequantized (int8 value x its channel's scale).  The model
then runs as float32 with those weights: equal to LiteRT's float kernels for float32 and
float16 files; for a dynamic-range file LiteRT's hybrid kernels also quantize the activations
on the fly, which minimovinet does not (tests/test_float_tflite.py measures the difference).
"""
from __future__ import annotations

from typing import Optional, Sequence

from ..float32.model import Movinet

# What minimovinet made of each form's weights (describe() says it).
FORM_NOTES = {"float32": "float32 weights",
              "float16": "float16 weights and constants widened to float32",
              "dynamic-range": "int8 weights dequantized to float32, run as float (LiteRT's "
                               "hybrid kernels also quantize the activations)"}


def tflite_form(source) -> str:
    """'int8', 'float32', 'float16', 'dynamic-range' ('' for a graph without convs) of a
    .tflite file (path or bytes); a file that cannot be parsed is a `TFLiteError`."""
    from .tflite_import import graph_form, read_model
    return graph_form(read_model(source)[0])


def load_float_tflite(path, class_names: Optional[Sequence[str]] = None) -> Movinet:
    """The float32 `Movinet` of a float TFLite MoViNet stream model file."""
    from .tflite_import import import_float_tflite
    imported = import_float_tflite(path)
    source = (f"{imported.form} TFLite file {imported.source}, converted for "
              f"{imported.height}x{imported.width} frames: {FORM_NOTES[imported.form]}")
    return Movinet(imported.config, imported.params, class_names, source=source,
                   constants=imported.constants)
