"""The walk state: what the matchers have found so far, and the graph helpers they share.

Every matcher takes the `Walk` and a tensor where its part of the graph starts, claims the
operators it recognises (labels them with their MoViNet layer) and records what it learned
(block specs, activations, states).  The graph helpers hide the RESHAPEs the converter puts
between the 5-D MoViNet tensors and the 4-D TFLite kernels: a RESHAPE is a view, so the walk
follows them through and labels them with the layer whose operator reads them.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Tuple

import numpy as np

from ...errors import UnsupportedModelError
from ..tflite import Operator, SubGraph, Tensor, TFLiteModel
from .labels import display

# Ops the walk sees through: RESHAPE (a view) and BROADCAST_TO (TF 2.12 broadcasts the SE gate
# to the features' shape before the MUL): both only repeat or re-index the values of their
# first input.  The program still runs them as ops.
VIEW_OPS = ("RESHAPE", "BROADCAST_TO")


class GraphMismatch(UnsupportedModelError):
    """One part of the graph is not where the MoViNet stream structure puts it.

    The message names the part ('block #3/projection/conv: ...'); `import_tflite` adds the file."""


@dataclasses.dataclass
class Walk:
    """Everything the matchers know about one TFLite graph, in one place."""
    # -- the graph (fixed) ---------------------------------------------------------------------
    model: TFLiteModel                     # the parsed file (constant data lives in its buffers)
    label: str                             # the file, as error messages name it
    graph: SubGraph                        # its only subgraph
    tensors: List[Tensor]                  # graph.tensors
    ops: List[Operator]                    # graph.operators, in execution order
    producer: Dict[int, int]               # tensor -> index of the op writing it
    consumers: Dict[int, List[int]]        # tensor -> indices of the ops reading it
    # -- the signature (signature.read_signature) ---------------------------------------------
    image: int = -1                        # the 'image' input tensor
    logits: int = -1                       # the 'logits' output tensor
    state_in: "OrderedDict[str, int]" = dataclasses.field(default_factory=OrderedDict)
    state_out: Dict[str, int] = dataclasses.field(default_factory=dict)   # name -> output
    state_by_tensor: Dict[int, str] = dataclasses.field(default_factory=dict)  # input -> name
    used_states: Dict[str, str] = dataclasses.field(default_factory=dict)  # name -> its layer
    block_states: Dict[int, Tuple[int, int]] = dataclasses.field(default_factory=dict)
    #                                      # block index -> (g, l) of the states it reads
    # -- what the walk found -------------------------------------------------------------------
    layer_of: Dict[int, str] = dataclasses.field(default_factory=dict)   # op index -> label
    block_convs: Dict[int, Tuple[int, str]] = dataclasses.field(default_factory=dict)
    #                                      # conv op index -> (block index, BlockPlan field)
    height: int = 0                        # the image's H x W (one frame per call)
    width: int = 0
    stem: dict = dataclasses.field(default_factory=dict)      # filters, kernel, stride
    stem_act: str = ""                     # the stem conv's activation
    blocks: List[dict] = dataclasses.field(default_factory=list)  # per block: cin, expand, ...
    acts: Dict[str, str] = dataclasses.field(default_factory=dict)  # conv -> its activation
    head: dict = dataclasses.field(default_factory=dict)      # project, hidden, pool
    classifier_act: str = ""               # the classifier's hidden conv's activation
    num_classes: int = 0
    # -- a float graph (float_graph.prepare_float_walk) ----------------------------------------
    float_graph: bool = False              # float activations: a float32, float16 or
    #                                        dynamic-range file (the int8 checks check float)
    folded: Dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    #                                      # DEQUANTIZE output of a constant -> its float value

    @classmethod
    def of(cls, model: TFLiteModel, label: str = "<TFLiteModel>") -> "Walk":
        """A fresh walk over the (single) subgraph of `model`."""
        if len(model.subgraphs) != 1:
            raise GraphMismatch(f"it has {len(model.subgraphs)} subgraphs, expected 1")
        graph = model.subgraphs[0]
        producer: Dict[int, int] = {}
        consumers: Dict[int, List[int]] = defaultdict(list)
        for op in graph.operators:
            for t in op.outputs:
                producer[t] = op.index
            for t in op.inputs:
                if t >= 0:                 # -1: an omitted optional input
                    consumers[t].append(op.index)
        return cls(model=model, label=label, graph=graph, tensors=graph.tensors,
                   ops=graph.operators, producer=producer, consumers=consumers)

    # ---- reading tensors ----------------------------------------------------------------------

    def const(self, t: int) -> Optional[np.ndarray]:
        """The constant value of tensor `t` (a copy), None when it is computed."""
        if t in self.folded:                   # a float graph's dequantized constant
            return self.folded[t].copy()
        data = self.tensors[t].data(self.model)
        return None if data is None else np.array(data)

    def dequantized(self, t: int) -> np.ndarray:
        """The real value of constant tensor `t` (per-tensor quantization)."""
        q = self.tensors[t].quantization
        data = self.const(t).astype(np.float64)
        if not q.is_quantized:
            return data
        return (data - float(q.zero_point[0])) * float(q.scale[0])

    def shape(self, t: int) -> Tuple[int, ...]:
        return tuple(self.tensors[t].shape)

    def type_of(self, t: int) -> str:
        return self.tensors[t].type_name

    def producer_op(self, t: int) -> Optional[Operator]:
        """The op writing `t`, None for inputs and constants."""
        return self.ops[self.producer[t]] if t in self.producer else None

    # ---- following the graph ------------------------------------------------------------------

    def origin(self, t: int, layer: Optional[str] = None) -> int:
        """Follow RESHAPEs (`VIEW_OPS`) backwards: the tensor whose data `t` views (the ops passed
        are labelled with `layer` when given, unless they already have a label)."""
        while t in self.producer and self.ops[self.producer[t]].name in VIEW_OPS:
            op = self.ops[self.producer[t]]
            if layer is not None:
                self.layer_of.setdefault(op.index, layer)
            t = op.inputs[0]
        return t

    def uses(self, t: int) -> List[Operator]:
        """The operators reading `t` or any RESHAPE view of it (the RESHAPEs themselves are
        skipped and claimed by whoever claims their consumers)."""
        found = []
        for i in self.consumers.get(t, []):
            op = self.ops[i]
            if op.name in VIEW_OPS and op.inputs[0] == t:
                found += self.uses(op.outputs[0])
            else:
                found.append(op)
        return found

    def claim(self, op: Operator, layer: str) -> Operator:
        """Label `op` (and the RESHAPEs its inputs come through) as part of `layer`."""
        prev = self.layer_of.get(op.index)
        if prev and prev != layer:
            raise GraphMismatch(f"operator #{op.index} {op.name} would belong to both "
                                f"{display(prev)} and {display(layer)}")
        self.layer_of[op.index] = layer
        for t in op.inputs:
            if t >= 0:
                self.origin(t, layer)
        return op

    def one(self, ops: List[Operator], names, what: str) -> Operator:
        """The single op among `ops` named one of `names` (`what` names the place if not)."""
        hits = [op for op in ops if op.name in names]
        if len(hits) != 1:
            found = ", ".join(f"#{op.index} {op.name}" for op in ops) or "nothing"
            raise GraphMismatch(f"{what}: expected one {'/'.join(names)} operator, "
                                f"found {found}")
        return hits[0]

    def constant_inputs(self, op: Operator) -> List[int]:
        """The inputs of `op` that are constants."""
        return [t for t in op.inputs if self.const(t) is not None]

    def constant_operand(self, op: Operator, mismatch: str) -> np.ndarray:
        """The dequantized value of the one constant input of `op` (a MUL by a constant);
        `mismatch` is the error when there is not exactly one."""
        const_in = self.constant_inputs(op)
        if len(const_in) != 1:
            raise GraphMismatch(mismatch)
        return self.dequantized(const_in[0])

    def other_input(self, op: Operator, t: int, what: str) -> int:
        """The input of the binary `op` that is not (a view of) `t`."""
        other = [u for u in op.inputs if self.origin(u) != self.origin(t)]
        if not other:
            raise GraphMismatch(f"{what}: {op.name} #{op.index} has no second operand")
        return other[0]

    def check_same_quant(self, tensors, layer: str) -> None:
        """Concatenated tensors must share one quantization (the kernel copies bytes)."""
        qs = {(float(self.tensors[t].quantization.scale[0]),
               int(self.tensors[t].quantization.zero_point[0]))
              for t in tensors if self.tensors[t].quantization.is_quantized}
        if len(qs) > 1:
            raise GraphMismatch(f"{layer}: concatenated tensors with different quantization "
                                f"{qs} (requantizing concatenation is not supported)")
