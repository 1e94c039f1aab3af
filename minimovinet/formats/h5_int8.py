"""The int8 h5 format: an `Int8Program` in a minimovinet h5 file of kind "int8".

Header and class names as every minimovinet h5 file (`h5.writing` / `h5.reading`); then
attributes `int8_program_version`, `tensors` (JSON: name, shape, dtype, quantization, and the
dataset holding a constant's data), `ops` (JSON, in execution order) and `structure` (JSON:
image, logits, states, blocks), and a group `constants` with one dataset per constant an op
reads, named after the op's layer and the operand's role ('block1_layer0/expansion/conv/kernel').
Per-channel scales are the dataset's `scales` attribute.
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Dict

import numpy as np

from ..errors import WeightsFileError
from ..int8.model import Int8Movinet
from ..int8.program import Int8Program, OpSpec, TensorSpec
from .h5 import read_class_names, reading, writing

KIND_INT8 = "int8"
PROGRAM_VERSION = 1


def save_int8(path, model: Int8Movinet, source: str = "") -> None:
    """Write `model` to `path` in the minimovinet h5 format, kind "int8" (atomically)."""
    prog = model.program
    datasets = _dataset_names(prog)
    tensors_json = []
    for i, t in enumerate(prog.tensors):
        j = t.to_json()
        j["data"] = datasets.get(i)
        tensors_json.append(j)
    with writing(path, KIND_INT8, prog.config, source or model.source,
                 model.class_names) as f:
        f.attrs["int8_program_version"] = PROGRAM_VERSION
        f.attrs["tensors"] = json.dumps(tensors_json)
        f.attrs["ops"] = json.dumps([op.to_json() for op in prog.ops])
        f.attrs["structure"] = json.dumps(prog.structure_json())
        group = f.create_group("constants")
        for i, name in datasets.items():
            t = prog.tensors[i]
            ds = group.create_dataset(name, data=t.data)
            if t.channel_scales is not None:
                ds.attrs["scales"] = t.channel_scales.astype(np.float32)
                ds.attrs["quantized_dimension"] = t.quantized_dimension
            elif t.scale is not None:
                ds.attrs["scale"] = np.float32(t.scale)
                ds.attrs["zero_point"] = t.zero_point


_ROLES = {"conv": ("input", "kernel", "bias"), "depthwise": ("input", "kernel", "bias")}


def _dataset_names(prog: Int8Program) -> Dict[int, str]:
    """Tensor id -> dataset name under /constants for every constant an op reads."""
    names: Dict[int, str] = {}
    taken = set()
    for op in prog.ops:
        roles = _ROLES.get(op.kind, ())
        for pos, t in enumerate(op.inputs):
            if t < 0 or prog.tensors[t].data is None or t in names:
                continue
            role = roles[pos] if pos < len(roles) else f"operand{pos}"
            name = f"{op.layer}/{role}"
            k = 1
            while name in taken:
                k += 1
                name = f"{op.layer}/{role}{k}"
            taken.add(name)
            names[t] = name
    return names


def read_int8(path) -> Int8Movinet:
    """Read an int8 model file (kind "int8") written by `save_int8`."""
    path = os.fspath(path)
    with reading(path, KIND_INT8) as (f, attrs, cfg):
        version = int(attrs.get("int8_program_version", -1))
        if version != PROGRAM_VERSION:
            raise WeightsFileError(f"{path}: int8 program version {version} is not supported "
                                   f"(this minimovinet reads version {PROGRAM_VERSION})")
        try:
            tensors_json = json.loads(attrs["tensors"])
            ops_json = json.loads(attrs["ops"])
            structure = json.loads(attrs["structure"])
        except (KeyError, ValueError, TypeError) as e:
            raise WeightsFileError(f"{path}: bad int8 model attributes: {e}") from None
        group = f["constants"] if "constants" in f else None
        tensors = [_read_tensor(j, group, path) for j in tensors_json]
        ops = [OpSpec(kind=j["kind"], layer=j["layer"], inputs=tuple(j["inputs"]),
                      outputs=tuple(j["outputs"]), attrs=j["attrs"], tflite_op=j.get("tflite_op"),
                      tflite_index=j.get("tflite_index")) for j in ops_json]
        states = OrderedDict((n, (i, o)) for n, i, o in structure["states"])
        program = Int8Program(tensors=tensors, ops=ops, image=structure["image"],
                              logits=structure["logits"], states=states, config=cfg,
                              blocks=structure["blocks"], source=attrs.get("source", ""),
                              unrecognised=structure.get("unrecognised", ""))
        class_names = read_class_names(f, cfg, path)
    return Int8Movinet(program, class_names, source=attrs.get("source", path))


def _read_tensor(j: dict, group, path: str) -> TensorSpec:
    """One tensor of the `tensors` attribute, with its constant data from /constants."""
    t = TensorSpec(name=j["name"], shape=tuple(j["shape"]), dtype=j["dtype"],
                   scale=j["scale"], zero_point=j["zero_point"],
                   quantized_dimension=j.get("quantized_dimension", 0))
    if not j.get("data"):
        return t
    if group is None or j["data"] not in group:
        raise WeightsFileError(f"{path}: constant {j['data']!r} is missing")
    ds = group[j["data"]]
    t.data = np.asarray(ds[()])
    if "scales" in ds.attrs:
        t.channel_scales = np.asarray(ds.attrs["scales"], np.float32)
    if t.data.shape != t.shape or t.data.dtype != np.dtype(t.numpy_dtype):
        raise WeightsFileError(f"{path}: constant {j['data']!r} has shape {t.data.shape} "
                               f"{t.data.dtype}, expected {t.shape} {t.dtype}")
    return t
