"""Import an int8 TFLite MoViNet stream model: map its graph onto the MoViNet structure.

`import_tflite(path)` reads the flatbuffer (`formats.tflite.read_tflite`, no TensorFlow),
checks its signature and that every operator has a minimovinet op kind (operators.py),
rewrites the converter's value-preserving variations into one form (normalize.py), walks
the graph from the `image` input along the MoViNet stream architecture, infers the
`ModelConfig` of the equivalent float architecture (one of A0..A5) and builds the
`int8.program.Int8Program`: the operators in execution order, each labelled with its MoViNet
layer (`structure.ConvParams.layer` for the convs), the tensors with their quantization and
constants, the signature (image, logits, states).  Anything that does not fit the structure is
refused with an `UnsupportedModelError` saying what did not match.

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

May import: the shared modules (config, structure, errors), `minimovinet.int8.program` and
`minimovinet.formats.tflite`.  Never imports `apps`.
"""
from __future__ import annotations

import os

from ...errors import UnsupportedModelError
from ...int8.program import Int8Program
from ..tflite import TFLiteModel, read_tflite
from .architecture import infer_config
from .build import SUPPORTED_OPS, build_program
from .labels import display
from .network import check_operators, walk_graph
from .normalize import normalize
from .op_by_op import build_op_by_op
from .operators import NOT_MOVINET, check_implemented, check_signature
from .signature import read_signature
from .walk import GraphMismatch, Walk

__all__ = ["import_tflite", "SUPPORTED_OPS"]


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
