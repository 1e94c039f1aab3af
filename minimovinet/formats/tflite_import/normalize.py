"""Graph normalization before the walk: converter variations rewritten into the form the walk
knows, only where the rewrite changes no value.

The TFLite converter of some TensorFlow releases (2.15-2.19) leaves islands of float ops in an
int8 graph, e.g. the SE pool's running mean:

    CONCATENATION(DIV(DEQUANTIZE(sum), count), DEQUANTIZE(frame mean)) -> QUANTIZE

where TF 2.21 writes `CONCATENATION(QUANTIZE(DIV(...)), frame mean)` in int8.  The rewrite
(`_push_quantize_into_concat`) moves the QUANTIZE in front of the concatenation:

- QUANTIZE is elementwise, so QUANTIZE(CONCATENATION(a, b)) = CONCATENATION(QUANTIZE(a),
  QUANTIZE(b)), value for value;
- QUANTIZE(DEQUANTIZE(x)) = x when both use the same scale and zero point: the float
  (x - zp) * s (float32) divided by s (or times float32(1 / s)) is within 255 * 3 ulp of the
  integer x - zp, far from a rounding half, so it rounds back to x.

For the same reason a QUANTIZE(DEQUANTIZE(x)) of x's own quantization anywhere is dropped
(`_cancel_dequantize_quantize`).  A DEQUANTIZE -> QUANTIZE pair with different quantization is
NOT the identity (it requantizes) and is left as it is (the program runs both ops), and so is
anything else.  Ops whose outputs nobody reads any more are
dropped.  The result is a new `TFLiteModel` (new tensors have no buffer) with the operators
renumbered in order; the original file's model is not changed.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Dict, List

from ..tflite import Operator, SubGraph, Tensor, TFLiteModel


def _same_quantization(a: Tensor, b: Tensor) -> bool:
    qa, qb = a.quantization, b.quantization
    return (a.type_name == b.type_name and qa.is_quantized and qb.is_quantized
            and not qa.per_channel and not qb.per_channel
            and float(qa.scale[0]) == float(qb.scale[0])
            and int(qa.zero_point[0]) == int(qb.zero_point[0]))


class _Graph:
    """A mutable copy of one subgraph's operator list and tensors."""

    def __init__(self, model: TFLiteModel, graph: SubGraph):
        self.model, self.graph = model, graph
        self.tensors: List[Tensor] = list(graph.tensors)
        self.ops: List[Operator] = list(graph.operators)
        outputs = set(graph.outputs)
        for sig in model.signature_defs.values():
            outputs |= set(sig.outputs.values())
        self.graph_outputs = outputs

    def producers(self) -> Dict[int, Operator]:
        return {t: op for op in self.ops for t in op.outputs}

    def consumers(self) -> Dict[int, List[Operator]]:
        found: Dict[int, List[Operator]] = defaultdict(list)
        for op in self.ops:
            for t in op.inputs:
                if t >= 0:
                    found[t].append(op)
        return found

    def new_tensor(self, like: Tensor, shape, name: str) -> int:
        """A new computed tensor with `like`'s type and quantization."""
        index = len(self.tensors)
        self.tensors.append(dataclasses.replace(like, index=index, name=name,
                                                shape=tuple(shape), shape_signature=tuple(shape),
                                                buffer=0, is_variable=False))
        return index

    def drop_dead_ops(self) -> None:
        """Remove ops none of whose outputs is read or a graph output (repeatedly)."""
        while True:
            readers = self.consumers()
            dead = [op for op in self.ops
                    if all(not readers.get(t) and t not in self.graph_outputs
                           for t in op.outputs)]
            if not dead:
                return
            gone = {id(op) for op in dead}
            self.ops = [op for op in self.ops if id(op) not in gone]

    def result(self) -> TFLiteModel:
        ops = [dataclasses.replace(op, index=i) for i, op in enumerate(self.ops)]
        graph = dataclasses.replace(self.graph, tensors=self.tensors, operators=ops)
        subgraphs = list(self.model.subgraphs)
        subgraphs[self.graph.index] = graph
        return dataclasses.replace(self.model, subgraphs=subgraphs)


def _push_quantize_into_concat(g: _Graph) -> bool:
    """One QUANTIZE(float CONCATENATION(...)) rewritten as an int8 CONCATENATION of quantized
    inputs, where at least one input is a DEQUANTIZE of the QUANTIZE's own quantization (it
    cancels).  True when something changed."""
    producer, readers = g.producers(), g.consumers()
    T = g.tensors
    for q in g.ops:
        if q.name != "QUANTIZE" or T[q.inputs[0]].type_name != "FLOAT32":
            continue
        cat = producer.get(q.inputs[0])
        if (cat is None or cat.name != "CONCATENATION" or len(readers[cat.outputs[0]]) != 1
                or cat.outputs[0] in g.graph_outputs
                or getattr(cat.options, "fused_activation_function", "NONE") != "NONE"):
            continue
        target = T[q.outputs[0]]
        cancels = [producer.get(t) is not None and producer[t].name == "DEQUANTIZE"
                   and _same_quantization(T[producer[t].inputs[0]], target)
                   for t in cat.inputs]
        if not any(cancels):
            continue
        new_inputs, inserted = [], []
        for t, cancel in zip(cat.inputs, cancels):
            if cancel:
                new_inputs.append(producer[t].inputs[0])
                continue
            qt = g.new_tensor(target, T[t].shape, f"{T[t].name}/quantized")
            inserted.append(dataclasses.replace(q, inputs=(t,), outputs=(qt,)))
            new_inputs.append(qt)
        new_cat = dataclasses.replace(cat, inputs=tuple(new_inputs), outputs=q.outputs)
        at = g.ops.index(cat)
        g.ops[at:at + 1] = inserted + [new_cat]
        g.ops.remove(q)
        return True
    return False


def _cancel_dequantize_quantize(g: _Graph) -> bool:
    """One QUANTIZE(DEQUANTIZE(x)) of x's own quantization removed: its readers read x.
    True when something changed."""
    producer = g.producers()
    T = g.tensors
    for q in g.ops:
        if q.name != "QUANTIZE" or q.outputs[0] in g.graph_outputs:
            continue
        dq = producer.get(q.inputs[0])
        if (dq is None or dq.name != "DEQUANTIZE"
                or not _same_quantization(T[dq.inputs[0]], T[q.outputs[0]])):
            continue
        x, y = dq.inputs[0], q.outputs[0]
        g.ops = [dataclasses.replace(op, inputs=tuple(x if t == y else t for t in op.inputs))
                 if y in op.inputs else op for op in g.ops if op is not q]
        return True
    return False


REWRITES = (_push_quantize_into_concat, _cancel_dequantize_quantize)


def normalize(model: TFLiteModel) -> TFLiteModel:
    """`model` with every rewrite applied until none applies (the model itself when none
    does).  Single-subgraph models only (the walk refuses others)."""
    if len(model.subgraphs) != 1:
        return model
    g = _Graph(model, model.subgraphs[0])
    changed = False
    while any(rewrite(g) for rewrite in REWRITES):
        changed = True
    if not changed:
        return model
    g.drop_dead_ops()
    return g.result()
