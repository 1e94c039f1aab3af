"""The program of a graph whose MoViNet structure the walk did not recognise: every operator
as it is in the file (each a TFLite-exact minimovinet op, `build.OP_CONVERTERS`), run op by op.

Only the signature is needed: the `image` input, the `logits` output and the states (each an
input and an output of the same name).  The graph must be runnable in its order: every input
of an operator is a constant, a graph input or the output of an earlier operator, and every
signature output is computed.  Its ops are labelled by their place in the file
('graph/op12_mul'); the config knows the number of classes only (model_id "unrecognised"),
and `Int8Program.unrecognised` says why the walk did not match (`describe()` shows it).
No fused kernels beyond the ops' own: slower than a recognised graph, the same bits as LiteRT.
"""
from __future__ import annotations

from collections import OrderedDict

from ...config import UNRECOGNISED, ModelConfig
from ...errors import UnsupportedModelError
from ...int8.program import Int8Program
from ...structure import state_sort_key
from .build import convert_op, tensor_spec
from .walk import Walk

GRAPH = "graph"


def _check_runnable(w: Walk) -> None:
    """Every operator reads constants, graph inputs or earlier outputs; the signature's
    outputs are all computed (or are inputs passed through)."""
    ready = {w.image} | set(w.state_in.values())
    for op in w.ops:
        for t in op.inputs:
            if t >= 0 and t not in ready and w.const(t) is None:
                raise UnsupportedModelError(
                    f"{w.label}: operator #{op.index} {op.name} reads tensor "
                    f"{w.tensors[t].name!r}, which no earlier operator computes")
        ready.update(op.outputs)
    for name, t in [("logits", w.logits)] + list(w.state_out.items()):
        if t not in ready:
            raise UnsupportedModelError(f"{w.label}: the signature's output {name!r} is not "
                                        f"computed by the graph")


def op_label(index: int, name: str) -> str:
    return f"{GRAPH}/op{index}_{name.lower()}"


def build_op_by_op(w: Walk, reason: str) -> Int8Program:
    """The program of `w`'s graph as it is (the signature read, nothing else matched)."""
    _check_runnable(w)
    logits_shape = w.shape(w.logits)
    if len(logits_shape) != 2 or logits_shape[0] != 1:
        raise UnsupportedModelError(f"{w.label}: logits of shape {list(logits_shape)}, "
                                    f"expected [1, classes]")
    w.layer_of = {op.index: op_label(op.index, op.name) for op in w.ops}
    tensors = [tensor_spec(w, t) for t in w.tensors]
    ops = [convert_op(w, op, tensors) for op in w.ops]
    states = OrderedDict((name, (w.state_in[name], w.state_out[name]))
                         for name in sorted(w.state_in, key=state_sort_key))
    config = ModelConfig(model_id=UNRECOGNISED, variant="stream", num_classes=logits_shape[1])
    return Int8Program(tensors=tensors, ops=ops, image=w.image, logits=w.logits, states=states,
                       config=config, blocks=[], source=w.label, unrecognised=reason)
