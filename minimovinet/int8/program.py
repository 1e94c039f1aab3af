"""The int8 program: an int8 TFLite MoViNet as data, ready for the runner.

`formats.tflite_import` builds it from a .tflite file, `formats.h5_int8` reads and writes it,
`int8.runner` compiles it into kernel calls.  The operators are in execution order, each
labelled with its MoViNet layer (`structure.ConvParams.layer` names: 'block1_layer0/expansion/conv',
...); the tensors carry their quantization and constant data.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import List, Optional, Tuple

import numpy as np

from ..config import ModelConfig

# TensorSpec.dtype -> the NumPy type of the tensor's arrays
NUMPY_DTYPES = {"int8": np.int8, "int32": np.int32, "int64": np.int64, "float32": np.float32}


@dataclasses.dataclass
class TensorSpec:
    name: str
    shape: Tuple[int, ...]
    dtype: str                          # 'int8', 'int32', 'int64', 'float32'
    scale: Optional[float] = None       # per-tensor quantization (None: not quantized)
    zero_point: Optional[int] = None
    channel_scales: Optional[np.ndarray] = None   # per-channel (weights): float32 [C]
    quantized_dimension: int = 0
    data: Optional[np.ndarray] = None   # constant value

    @property
    def numpy_dtype(self) -> type:
        return NUMPY_DTYPES[self.dtype]

    def to_json(self):
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "scale": self.scale, "zero_point": self.zero_point,
                "quantized_dimension": self.quantized_dimension,
                "per_channel": self.channel_scales is not None,
                "constant": self.data is not None}


@dataclasses.dataclass
class OpSpec:
    kind: str                      # minimovinet op kind (the keys of int8.ops.COMPILERS)
    layer: str                     # MoViNet layer, e.g. 'block1_layer0/expansion/conv'
    inputs: Tuple[int, ...]
    outputs: Tuple[int, ...]
    attrs: dict = dataclasses.field(default_factory=dict)
    tflite_op: Optional[str] = None
    tflite_index: Optional[int] = None

    def to_json(self):
        return {"kind": self.kind, "layer": self.layer, "inputs": list(self.inputs),
                "outputs": list(self.outputs), "attrs": self.attrs,
                "tflite_op": self.tflite_op, "tflite_index": self.tflite_index}


@dataclasses.dataclass
class Int8Program:
    tensors: List[TensorSpec]
    ops: List[OpSpec]
    image: int                                   # input tensor id
    logits: int                                  # output tensor id
    states: "OrderedDict[str, Tuple[int, int]]"  # name -> (input tensor id, output tensor id)
    config: ModelConfig
    blocks: List[dict]                           # per block: g, l, cin, expand, cout, kernel, ...
    source: str = ""
    # why the MoViNet structure was not recognised ("" when it was): the graph then runs op
    # by op, its ops labelled by their place in the file, config.model_id "unrecognised"
    unrecognised: str = ""

    def structure_json(self):
        out = {"image": self.image, "logits": self.logits,
               "states": [[n, i, o] for n, (i, o) in self.states.items()],
               "blocks": self.blocks}
        if self.unrecognised:
            out["unrecognised"] = self.unrecognised
        return out

    @property
    def image_spec(self) -> TensorSpec:
        return self.tensors[self.image]
