"""Import a TFLite MoViNet stream model: map its graph onto the MoViNet structure.

`import_tflite(path)` reads the flatbuffer (`formats.tflite.read_tflite`, no TensorFlow),
checks its signature and that every operator has a minimovinet op kind (operators.py),
rewrites the converter's value-preserving variations into one form (normalize.py), walks
the graph from the `image` input along the MoViNet stream architecture, infers the
`ModelConfig` of the equivalent float architecture (one of A0..A5) and builds the
`int8.program.Int8Program`: the operators in execution order, each labelled with its MoViNet
layer (`structure.ConvParams.layer` for the convs), the tensors with their quantization and
constants, the signature (image, logits, states).  Anything that does not fit the structure is
refused with an `UnsupportedModelError` saying what did not match.

`import_float_tflite(path)` does the same walk over a float graph (a float32, float16 or
dynamic-range file, `float_graph.py`) and returns the float32 parameters of the `ModelConfig`
instead (`FloatImport`): the int8 checks of the walk check float convs there.

    operators.py     the file-level refusals: not a MoViNet signature; an operator that is
                     not implemented (one line: file, operator, output tensor)
    normalize.py     value-preserving graph rewrites before the walk (QUANTIZE moved in front
                     of a float CONCATENATION, cancelling DEQUANTIZE -> QUANTIZE pairs)
    walk.py          the walk state (`Walk`) and its graph helpers; `GraphMismatch`
    labels.py        op labels, conv labels from `structure`, provisional block names ('@3')
    signature.py     the signature; state inputs (sources) and next states (sinks)
    activations.py   the activation after a conv: fused, HARD_SWISH, or LOGISTIC + MUL
    convs.py         int8 conv checks, 1x1 convs, claiming a block conv under its role
    network.py       the whole walk: operators, input, stem, blocks, head, all claimed
    block.py         one block: expansion, spatial conv, stream buffer, temporal conv,
                     projection + ReZero + residual, skip branch
    se.py            squeeze-excitation
    pos_encoding.py  the A3-A5 positional encoding inside SE: the ops computing it from the
                     block's `pos_enc_frame_count` state, whatever they are
    op_by_op.py      the program of a graph whose structure was not recognised: every op as
                     it is in the file (model_id "unrecognised"; `load` falls back to it)
    frame_count.py   the running mean: divide by the frame count
    head.py          the head pool and the classifier
    architecture.py  the ModelConfig the blocks match; the blocks' final names
    build.py         the Int8Program: tensors, and ops through a table of converters
    float_graph.py   float graphs: the file's form, DEQUANTIZEd constants, float conv checks,
                     the real conv weights
    float_params.py  the float32 `Movinet` parameters of a walked float graph, and the
                     file's rounded constants (the positional encoding's angles checked)

May import: the shared modules (config, structure, errors), `minimovinet.int8.program`,
`minimovinet.int8.dequantize` (its weight-layout helpers), the public names of
`minimovinet.float32.layers` and `minimovinet.formats.tflite`.  Never imports `apps`.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict

import numpy as np

from ...config import ModelConfig
from ...errors import TFLiteError, UnsupportedModelError
from ...float32.layers import FileConstants
from ...int8.program import Int8Program
from ..tflite import TFLiteModel, read_tflite
from .architecture import infer_config
from .build import SUPPORTED_OPS, build_program
from .float_graph import FLOAT_FORMS, graph_form, prepare_float_walk
from .float_params import file_constants, float_params
from .labels import display
from .network import check_operators, walk_graph
from .normalize import normalize
from .op_by_op import build_op_by_op
from .operators import NOT_MOVINET, check_implemented, check_signature
from .signature import read_signature
from .walk import GraphMismatch, Walk

__all__ = ["import_tflite", "import_float_tflite", "read_model", "FloatImport", "FLOAT_FORMS",
           "graph_form", "SUPPORTED_OPS"]


def import_tflite(source, op_by_op_fallback: bool = False,
                  recognise: bool = True) -> Int8Program:
    """Read a .tflite file (path, bytes, or an already parsed `TFLiteModel`) and map it onto
    the MoViNet stream structure.  A graph whose structure is not recognised is refused, or,
    with `op_by_op_fallback`, run op by op as it is (op_by_op.py); `recognise=False` skips
    the walk (every graph op by op: for tests)."""
    if isinstance(source, TFLiteModel):
        model, label = source, "<TFLiteModel>"
    else:
        label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<bytes>"
        model = read_tflite(source)
    check_signature(model, label)
    check_implemented(model, label)
    normalized = normalize(model)
    try:
        if not recognise:
            raise GraphMismatch("not tried (recognise=False)")
        w = Walk.of(normalized, label)
        walk_graph(w)
        return build_program(w, infer_config(w))
    except GraphMismatch as e:
        reason = display(str(e))
        if not op_by_op_fallback and recognise:
            raise UnsupportedModelError(f"{label}: {NOT_MOVINET}: {reason}") from None
    w = Walk.of(normalized, label)
    try:
        check_operators(w)              # float or dynamic-range weights: not an int8 graph
        read_signature(w)
    except GraphMismatch as e:
        raise UnsupportedModelError(f"{label}: {NOT_MOVINET}: {display(str(e))}") from None
    return build_op_by_op(w, reason)


def read_model(source):
    """(the parsed file, its label for messages) of a path, bytes or a `TFLiteModel`; a file
    that cannot be parsed is one `TFLiteError` line naming it."""
    if isinstance(source, TFLiteModel):
        return source, "<TFLiteModel>"
    label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<bytes>"
    try:
        return read_tflite(source), label
    except TFLiteError as e:
        if label in str(e):
            raise
        raise TFLiteError(f"{label}: {e}") from None


@dataclasses.dataclass
class FloatImport:
    """A float TFLite stream model as the float32 model it is."""
    config: ModelConfig
    params: Dict[str, np.ndarray]          # `structure.param_specs(config)` names
    constants: FileConstants               # the file's rounded constants (float16 files)
    form: str                              # one of FLOAT_FORMS
    source: str                            # the file, as messages name it
    height: int                            # the frame size the file was converted for
    width: int


def import_float_tflite(source) -> FloatImport:
    """Read a float32, float16 or dynamic-range .tflite file (path, bytes or `TFLiteModel`)
    and map it onto the MoViNet stream structure: its config and float32 parameters."""
    model, label = read_model(source)
    form = graph_form(model)
    if form not in FLOAT_FORMS:
        raise UnsupportedModelError(f"{label}: not a float TFLite model (its convolutions "
                                    f"compute in {form or 'nothing: it has none'})")
    try:
        w = Walk.of(model, label)
        prepare_float_walk(w)
        walk_graph(w)
        config = infer_config(w)
        return FloatImport(config, float_params(w, config), file_constants(w, config), form,
                           label, w.height, w.width)
    except GraphMismatch as e:
        raise UnsupportedModelError(f"{label}: not a MoViNet stream model (as exported by the "
                                    f"Model Garden and converted to a {form} TFLite file): "
                                    f"{display(str(e))}") from None
