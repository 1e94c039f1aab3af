"""The file-level checks before the walk: a MoViNet stream signature, and only operators the
project implements.

Both refusals are one line naming the file: a TFLite file that is not a MoViNet stream model
(no `image` input, `logits` output and state inputs / outputs in its signature), and the
first operator minimovinet has no TFLite-exact kernel for, with its index in the file and its
output tensor.
"""
from __future__ import annotations

from ...errors import UnsupportedModelError
from ..tflite import TFLiteModel
from .build import SUPPORTED_OPS
from .labels import display
from .signature import read_signature
from .walk import GraphMismatch, Walk

NOT_MOVINET = "not a MoViNet stream model (as exported by the Model Garden and converted to int8)"


def check_signature(model: TFLiteModel, label: str) -> None:
    """The file's signature must be a MoViNet stream model's (image and states in, logits and
    states out)."""
    try:
        read_signature(Walk.of(model, label))
    except GraphMismatch as e:
        raise UnsupportedModelError(f"{label}: {NOT_MOVINET}: {display(str(e))}") from None


def check_implemented(model: TFLiteModel, label: str) -> None:
    """Every operator must have a minimovinet op kind (`build.OP_CONVERTERS`)."""
    for graph in model.subgraphs:
        for op in graph.operators:
            if op.name in SUPPORTED_OPS:
                continue
            name = op.name if op.name != "CUSTOM" else f"CUSTOM ({op.custom_code})"
            out = graph.tensors[op.outputs[0]].name if op.outputs else "(none)"
            others = sorted({o.name for o in graph.operators
                             if o.name not in SUPPORTED_OPS} - {op.name})
            more = f"; also not implemented: {', '.join(others)}" if others else ""
            raise UnsupportedModelError(f"{label}: operator #{op.index} {name} (output tensor "
                                        f"{out!r}) is not implemented{more}")
