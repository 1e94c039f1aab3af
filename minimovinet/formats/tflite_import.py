"""Import an int8 TFLite MoViNet stream model: map its graph onto the MoViNet structure.

`import_tflite(path)` reads the flatbuffer (`tflite_file.read_tflite`, no TensorFlow), then walks
the graph from the `image` input along the MoViNet stream architecture:

    [QUANTIZE] -> stem conv (+ act) -> blocks -> head project conv (+ act) -> head pool
               -> classifier hidden conv (+ act) -> classifier logits conv -> [DEQUANTIZE]

where each block is

    expansion 1x1 conv (+ act) -> spatial depthwise conv (+ act)
      -> [stream buffer: CONCATENATION(state, frame) on time; STRIDED_SLICE -> next state;
          temporal depthwise kt x 1 conv (+ act)]
      -> [SE: MEAN -> ADD(pool_buffer) -> DIV(frame count) -> CONCATENATION(cumulative, frame)
          -> reduce conv (+ act) -> expand conv (relu6) -> MUL(1/6) -> MUL(gate, features)]
      -> projection 1x1 conv -> MUL(rezero constant) -> ADD(skip)
    skip: identity | 1x1 conv | AVERAGE_POOL 3x3/2 -> 1x1 conv

Activations are either fused into the conv (RELU6), a HARD_SWISH op, or LOGISTIC + MUL (swish).
Every operator must find its place in this structure and every state of the signature must be
the one the structure expects at that place (`state_block{g}_layer{l}_stream_buffer`, ...);
anything else is refused with a `TFLiteError` that says what did not match.  The sequence of
blocks (widths, kernels, strides) must equal one of the A0..A5 specs: that gives the model id.

The result is an `Int8Program`: the operators in execution order as minimovinet ops (RESHAPEs
become views), each labelled with its MoViNet layer (`block1_layer0/expansion/conv`, ...), the
tensors with their quantization, constant data, the signature (image, logits, states) and the
`ModelConfig` of the equivalent float architecture.  `int8_model.Int8Movinet` runs it.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..config import BLOCK_SPECS, ModelConfig
from ..errors import TFLiteError
from ..int8.program import Int8Program, OpSpec, TensorSpec
from .tflite import TFLiteModel, read_tflite

# TFLite ops a MoViNet stream graph is made of (anything else is refused up front).
SUPPORTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "AVERAGE_POOL_2D", "HARD_SWISH",
                 "LOGISTIC", "MEAN", "SUM", "DIV", "CAST", "QUANTIZE", "DEQUANTIZE",
                 "CONCATENATION", "STRIDED_SLICE", "RESHAPE")

STATE_NAME = re.compile(r"^state_(block(\d+)_layer(\d+)|head)_(stream_buffer|pool_buffer|"
                        r"pool_frame_count|pos_enc_frame_count)$")


class _Mismatch(Exception):
    pass


# ---------------------------------------------------------------------------------------------

def import_tflite(source) -> Int8Program:
    """Read a .tflite file (path, bytes, or an already parsed `TFLiteModel`) and map it onto
    the MoViNet stream structure."""
    label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<bytes>"
    if isinstance(source, TFLiteModel):
        model, label = source, "<TFLiteModel>"
    else:
        model = read_tflite(source)
    try:
        return _Importer(model, label).run()
    except _Mismatch as e:
        msg = re.sub(r"@(\d+)", lambda m: f"block #{m.group(1)}", str(e))
        raise TFLiteError(f"{label}: not a MoViNet stream model (as exported by the Model "
                          f"Garden and converted to int8): {msg}") from None


_DTYPES = {"INT8": "int8", "INT32": "int32", "FLOAT32": "float32"}


class _Importer:
    def __init__(self, model: TFLiteModel, label: str):
        self.model = model
        self.label = label
        if len(model.subgraphs) != 1:
            raise _Mismatch(f"it has {len(model.subgraphs)} subgraphs, expected 1")
        self.g = model.subgraphs[0]
        self.T = self.g.tensors
        self.ops = self.g.operators
        self.producer: Dict[int, int] = {}
        self.consumers: Dict[int, List[int]] = defaultdict(list)
        for op in self.ops:
            for t in op.outputs:
                self.producer[t] = op.index
            for t in op.inputs:
                if t >= 0:
                    self.consumers[t].append(op.index)
        self.layer_of: Dict[int, str] = {}       # op index -> layer
        self.blocks: List[dict] = []

    # ---- small graph helpers ----------------------------------------------------------------

    def const(self, t) -> Optional[np.ndarray]:
        d = self.T[t].data(self.model)
        return None if d is None else np.array(d)

    def origin(self, t: int, layer: Optional[str] = None) -> int:
        """Follow RESHAPEs backwards: the tensor whose data `t` views (the RESHAPEs passed
        are labelled with `layer` when given)."""
        while t in self.producer and self.ops[self.producer[t]].name == "RESHAPE":
            op = self.ops[self.producer[t]]
            if layer is not None:
                self.layer_of.setdefault(op.index, layer)
            t = op.inputs[0]
        return t

    def uses(self, t: int) -> List:
        """The operators reading `t` or any RESHAPE view of it (the RESHAPEs themselves are
        skipped and claimed by whoever claims their consumers)."""
        found = []
        for i in self.consumers.get(t, []):
            op = self.ops[i]
            if op.name == "RESHAPE" and op.inputs[0] == t:
                found += self.uses(op.outputs[0])
            else:
                found.append(op)
        return found

    def claim(self, op, layer: str):
        """Label `op` (and the RESHAPEs its inputs come through) as part of `layer`."""
        prev = self.layer_of.get(op.index)
        if prev and prev != layer:
            raise _Mismatch(f"operator #{op.index} {op.name} would belong to both "
                            f"{self.display(prev)} and {self.display(layer)}")
        self.layer_of[op.index] = layer
        for t in op.inputs:
            if t >= 0:
                self.origin(t, layer)
        return op

    def one(self, ops, names, what):
        hits = [op for op in ops if op.name in names]
        if len(hits) != 1:
            found = ", ".join(f"#{op.index} {op.name}" for op in ops) or "nothing"
            raise _Mismatch(f"{what}: expected one {'/'.join(names)} operator, found {found}")
        return hits[0]

    def shape(self, t) -> Tuple[int, ...]:
        return tuple(self.T[t].shape)

    def is_state_input(self, t) -> Optional[str]:
        return self.state_in_by_tensor.get(t)

    # ---- activations ------------------------------------------------------------------------

    def activation(self, conv, layer) -> Tuple[int, str]:
        """The activation after `conv` (whose output is returned when it is linear)."""
        out = conv.outputs[0]
        fused = getattr(conv.options, "fused_activation_function", "NONE")
        if fused == "RELU6":
            return out, "relu6"
        if fused == "RELU":
            return out, "relu"
        if fused != "NONE":
            raise _Mismatch(f"{layer}: fused activation {fused} is not a MoViNet activation")
        uses = self.uses(out)
        base = layer[:-len("/conv")] if layer.endswith("/conv") else layer
        if len(uses) == 1 and uses[0].name == "HARD_SWISH":
            self.claim(uses[0], base + "/act")
            return uses[0].outputs[0], "hard_swish"
        logistic = [op for op in uses if op.name == "LOGISTIC"]
        if len(logistic) == 1 and len(uses) == 2:
            mul = [op for op in uses if op.name == "MUL"]
            if mul and set(self.origin(t) for t in mul[0].inputs) == {out, logistic[0].outputs[0]}:
                self.claim(logistic[0], base + "/act")
                self.claim(mul[0], base + "/act")
                return mul[0].outputs[0], "swish"
        return out, "linear"

    def peek_activation_output(self, conv) -> int:
        out = conv.outputs[0]
        uses = self.uses(out)
        if getattr(conv.options, "fused_activation_function", "NONE") == "NONE" \
                and len(uses) == 1 and uses[0].name == "HARD_SWISH":
            return uses[0].outputs[0]
        return out

    # ---- convs ------------------------------------------------------------------------------

    def pointwise(self, op, layer, cin=None):
        if op.name != "CONV_2D":
            raise _Mismatch(f"{layer}: expected CONV_2D, found #{op.index} {op.name}")
        w = self.shape(op.inputs[1])
        if len(w) != 4 or w[1:3] != (1, 1):
            raise _Mismatch(f"{layer}: expected a 1x1 conv, found kernel {list(w)}")
        o = op.options
        if (o.stride_h, o.stride_w) != (1, 1) or \
                (o.dilation_h_factor, o.dilation_w_factor) != (1, 1):
            raise _Mismatch(f"{layer}: expected stride 1, no dilation")
        if cin is not None and w[3] != cin:
            raise _Mismatch(f"{layer}: expected {cin} input channels, found {w[3]}")
        self.check_conv_quant(op, layer)
        return self.claim(op, layer)

    def check_conv_quant(self, op, layer):
        x, w = self.T[op.inputs[0]], self.T[op.inputs[1]]
        if x.type_name != "INT8" or w.type_name != "INT8":
            raise _Mismatch(f"{layer}: conv on {x.type_name} input with {w.type_name} weights; "
                            f"expected int8 (a float or dynamic-range model is not an int8 "
                            f"model)")
        if len(op.inputs) < 3 or op.inputs[2] < 0 or self.T[op.inputs[2]].type_name != "INT32":
            raise _Mismatch(f"{layer}: conv without an int32 bias")
        if self.const(op.inputs[1]) is None or self.const(op.inputs[2]) is None:
            raise _Mismatch(f"{layer}: conv weights or bias are not constants")

    # ---- the walk ---------------------------------------------------------------------------

    def run(self) -> Int8Program:
        counts = self.model.op_counts()
        foreign = [name for name in counts if name not in SUPPORTED_OPS]
        if foreign:
            raise _Mismatch(f"it uses operators {foreign} (a MoViNet stream graph uses only "
                            f"{', '.join(SUPPORTED_OPS)})")
        weights = {self.T[op.inputs[1]].type_name for op in self.ops
                   if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.inputs) > 1}
        if weights and weights != {"INT8"}:
            raise _Mismatch(f"its convolutions have {'/'.join(sorted(weights))} weights: a float "
                            f"(or float16 / dynamic-range) TFLite model, expected int8 weights "
                            f"(a full-integer conversion: TFLITE_BUILTINS_INT8 with a "
                            f"representative dataset); load a float model from its checkpoint")
        self.read_signature()
        x = self.image
        if self.T[x].type_name == "FLOAT32":
            q = self.one(self.uses(x), ("QUANTIZE",), "image input")
            self.claim(q, "input/quantize")
            x = q.outputs[0]
        elif self.T[x].type_name != "INT8":
            raise _Mismatch(f"image input has type {self.T[x].type_name}")
        shape = self.shape(self.image)
        if len(shape) != 5 or shape[0] != 1 or shape[1] != 1 or shape[4] != 3:
            raise _Mismatch(f"image input has shape {list(shape)}, expected [1, 1, H, W, 3] "
                            f"(a stream model fed one frame per call)")
        self.height, self.width = shape[2], shape[3]

        stem = self.one(self.uses(x), ("CONV_2D",), "stem")
        w = self.shape(stem.inputs[1])
        if len(w) != 4 or w[3] != 3:
            raise _Mismatch(f"stem: expected a conv on the 3 image channels, found kernel "
                            f"{list(w)}")
        self.check_conv_quant(stem, "stem/conv")
        self.claim(stem, "stem/conv")
        self.stem = dict(filters=w[0], kernel=(1, w[1], w[2]),
                         stride=(1, stem.options.stride_h, stem.options.stride_w))
        x, self.act = self.activation(stem, "stem/conv")
        while True:
            kind = self.next_is_block(x)
            if kind == "head":
                break
            cin = self.shape(self.origin(x))[-1]
            x, spec = self.match_block(x, len(self.blocks), cin)
            self.blocks.append(spec)
        self.match_head(x)
        self.check_all_claimed()
        config = self.infer_config()
        return self.build_program(config)

    def read_signature(self):
        sigs = self.model.signature_defs
        if not sigs:
            raise _Mismatch("it has no signature: the state inputs and outputs cannot be named")
        sig = sigs.get("serving_default") or (next(iter(sigs.values())) if len(sigs) == 1 else None)
        if sig is None:
            raise _Mismatch(f"it has signatures {list(sigs)} and none is 'serving_default'")
        if "image" not in sig.inputs:
            raise _Mismatch(f"its signature has no 'image' input (inputs: "
                            f"{sorted(sig.inputs)[:5]})")
        if "logits" not in sig.outputs:
            raise _Mismatch(f"its signature has no 'logits' output (outputs: "
                            f"{sorted(sig.outputs)[:5]})")
        self.image = sig.inputs["image"]
        self.logits_tensor = sig.outputs["logits"]
        self.state_in: "OrderedDict[str, int]" = OrderedDict()
        self.state_out: Dict[str, int] = {}
        for name, t in sig.inputs.items():
            if name == "image":
                continue
            if not STATE_NAME.match(name):
                raise _Mismatch(f"input {name!r} is neither 'image' nor a MoViNet state")
            self.state_in[name] = t
        for name, t in sig.outputs.items():
            if name == "logits":
                continue
            if name not in self.state_in:
                raise _Mismatch(f"output {name!r} is not one of the state inputs")
            self.state_out[name] = t
        missing = [n for n in self.state_in if n not in self.state_out]
        if missing:
            raise _Mismatch(f"state inputs {missing[:3]} have no matching output")
        self.state_in_by_tensor = {t: n for n, t in self.state_in.items()}
        self.used_states: Dict[str, str] = {}   # name -> layer that uses it
        self.block_states: Dict[int, Tuple[int, int]] = {}  # block index -> (g, l) of its states

    def state_source(self, t, expected_name, layer) -> str:
        """`t` must be a state input (possibly through QUANTIZE); returns the state's name.

        expected_name may start with '@<block index>_' (a block whose (group, layer) position
        is not known yet): the name's block part is then recorded for that block and checked
        once the architecture is known."""
        t = self.origin(t)
        if t in self.producer and self.ops[self.producer[t]].name == "QUANTIZE":
            q = self.ops[self.producer[t]]
            self.claim(q, layer)
            t = self.origin(q.inputs[0])
        name = self.state_in_by_tensor.get(t)
        shown = self.display(expected_name)
        if name is None:
            raise _Mismatch(f"{self.display(layer)}: expected the state input {shown!r}, found "
                            f"tensor {self.T[t].name!r}")
        if expected_name.startswith("@"):
            index, suffix = expected_name[1:].split("_", 1)
            m = STATE_NAME.match(name)
            if m is None or m.group(1) == "head" or m.group(4) != suffix:
                raise _Mismatch(f"{self.display(layer)}: reads state {name!r} where a "
                                f"'state_block<g>_layer<l>_{suffix}' belongs")
            pos = (int(m.group(2)), int(m.group(3)))
            known = self.block_states.setdefault(int(index), pos)
            if known != pos:
                raise _Mismatch(f"{self.display(layer)}: reads state {name!r} but the block "
                                f"also reads states of block{known[0]}_layer{known[1]}")
        elif name != expected_name:
            raise _Mismatch(f"{self.display(layer)}: reads state {name!r} where "
                            f"{expected_name!r} belongs")
        if name in self.used_states:
            raise _Mismatch(f"state {name!r} is read by {self.display(self.used_states[name])} "
                            f"and {self.display(layer)}")
        self.used_states[name] = layer
        return name

    def display(self, text: str) -> str:
        """A layer or state name with provisional block indices spelled out."""
        return re.sub(r"@(\d+)", lambda m: f"block #{m.group(1)}", text)

    def state_sink(self, t, expected_name, layer):
        """`t` (or its DEQUANTIZE) must be the signature output of state `expected_name`."""
        out = self.state_out.get(expected_name)
        if out is None:
            raise _Mismatch(f"{self.display(layer)}: the signature has no state {expected_name!r}")
        candidates = {t, self.origin(t)}
        for op in self.uses(t):
            if op.name == "DEQUANTIZE":
                if op.outputs[0] == out:
                    self.claim(op, layer)
                    return
        if out in candidates or self.origin(out, layer) == self.origin(t):
            return
        raise _Mismatch(f"{self.display(layer)}: the next value of {expected_name!r} is not the "
                        f"signature's output of that name")

    def next_is_block(self, x) -> str:
        for op in self.uses(x):
            if op.name != "CONV_2D":
                continue
            h = self.peek_activation_output(op)
            names = {u.name for u in self.uses(h)}
            if "DEPTHWISE_CONV_2D" in names:
                return "block"
            if "SUM" in names or "MEAN" in names:
                return "head"
        found = ", ".join(f"#{op.index} {op.name}" for op in self.uses(x)) or "nothing"
        raise _Mismatch(f"after block {len(self.blocks)}: expected the next block's expansion "
                        f"conv or the head's projection conv, found {found}")

    def match_block(self, x, index, cin):
        p = f"@{index}"          # renamed block{g}_layer{l} once the architecture is known
        x = self.origin(x)
        uses = self.uses(x)
        expansion = None
        for op in uses:
            if op.name == "CONV_2D" and "DEPTHWISE_CONV_2D" in {
                    u.name for u in self.uses(self.peek_activation_output(op))}:
                expansion = op
        if expansion is None:
            raise _Mismatch(f"{p}: no expansion conv feeding a depthwise conv")
        self.pointwise(expansion, f"{p}/expansion/conv", cin)
        expand = self.shape(expansion.inputs[1])[0]
        h, act = self.activation(expansion, f"{p}/expansion/conv")
        self.check_act(act, f"{p}/expansion")

        dw = self.one(self.uses(h), ("DEPTHWISE_CONV_2D",), f"{p} spatial depthwise conv")
        wshape = self.shape(dw.inputs[1])
        o = dw.options
        if wshape[0] != 1 or wshape[3] != expand or o.depth_multiplier not in (0, 1) \
                or o.padding != "SAME" or (o.dilation_h_factor, o.dilation_w_factor) != (1, 1):
            raise _Mismatch(f"{p}: spatial depthwise conv has kernel {list(wshape)}, padding "
                            f"{o.padding}")
        self.check_conv_quant(dw, f"{p}/feature/conv")
        self.claim(dw, f"{p}/feature/conv")
        kh, kw = wshape[1], wshape[2]
        stride = (1, o.stride_h, o.stride_w)
        h, act = self.activation(dw, f"{p}/feature/conv")
        self.check_act(act, f"{p}/feature")

        kt = 1
        concat = [op for op in self.uses(h) if op.name == "CONCATENATION"]
        if concat:
            cat = concat[0]
            layer = f"{p}/feature/stream_buffer"
            if len(cat.inputs) != 2 or self.origin(cat.inputs[1]) != self.origin(h):
                raise _Mismatch(f"{layer}: expected CONCATENATION(buffer, frame)")
            if cat.options.axis not in (1, -4) or len(self.shape(cat.outputs[0])) != 5:
                raise _Mismatch(f"{layer}: concatenation on axis {cat.options.axis}, expected "
                                f"time (axis 1 of [B, T, H, W, C])")
            self.claim(cat, layer)
            name = self.state_source(cat.inputs[0], f"{p}_stream_buffer", layer)
            self.same_quant(cat.inputs + cat.outputs, layer)
            full = cat.outputs[0]
            kt = self.shape(full)[1]
            sl = self.one(self.uses(full), ("STRIDED_SLICE",), f"{layer} slice")
            self.claim(sl, layer)
            if self.shape(sl.outputs[0]) != self.shape(self.state_in[name]):
                raise _Mismatch(f"{layer}: the next buffer has shape "
                                f"{list(self.shape(sl.outputs[0]))}, the state "
                                f"{list(self.shape(self.state_in[name]))}")
            self.state_sink(sl.outputs[0], name, layer)
            tdw = self.one(self.uses(full), ("DEPTHWISE_CONV_2D",), f"{p} temporal conv")
            tshape = self.shape(tdw.inputs[1])
            if tshape != (1, kt, 1, expand) or tdw.options.padding != "VALID":
                raise _Mismatch(f"{p}: temporal depthwise conv has kernel {list(tshape)}, "
                                f"padding {tdw.options.padding}; expected [1, {kt}, 1, "
                                f"{expand}] VALID")
            self.check_conv_quant(tdw, f"{p}/feature/conv_temporal")
            self.claim(tdw, f"{p}/feature/conv_temporal")
            h, act = self.activation(tdw, f"{p}/feature/conv_temporal")
            self.check_act(act, f"{p}/feature_temporal")

        se = None
        if any(op.name == "MEAN" for op in self.uses(h)):
            h, se = self.match_se(h, p, expand)

        convs = [op for op in self.uses(h) if op.name == "CONV_2D"]
        proj = self.one(convs, ("CONV_2D",), f"{p} projection")
        self.pointwise(proj, f"{p}/projection/conv", expand)
        cout = self.shape(proj.inputs[1])[0]
        if proj.options.fused_activation_function != "NONE":
            raise _Mismatch(f"{p}: projection conv has an activation")
        rz = self.one(self.uses(proj.outputs[0]), ("MUL",), f"{p} rezero")
        const_in = [t for t in rz.inputs if self.const(t) is not None]
        if len(const_in) != 1:
            raise _Mismatch(f"{p}: rezero MUL without a constant operand")
        rz_values = self.dequantized(const_in[0])
        if rz_values.size and not np.all(rz_values == rz_values.ravel()[0]):
            raise _Mismatch(f"{p}: rezero constant is not one scalar")
        self.claim(rz, f"{p}/rezero")
        add = self.one(self.uses(rz.outputs[0]), ("ADD",), f"{p} residual add")
        self.claim(add, f"{p}/add")
        other = [t for t in add.inputs if self.origin(t) != self.origin(rz.outputs[0])]
        if len(other) != 1:
            raise _Mismatch(f"{p}: residual ADD inputs")
        skip_t = self.origin(other[0])
        skip = "identity"
        if skip_t != x:
            sc = self.ops[self.producer.get(skip_t, -1)] if skip_t in self.producer else None
            if sc is None or sc.name != "CONV_2D":
                raise _Mismatch(f"{p}: the skip branch is neither the block input nor a conv")
            self.pointwise(sc, f"{p}/skip/conv", cin)
            src = self.origin(sc.inputs[0])
            skip = "conv"
            if src != x:
                pool = self.ops[self.producer[src]] if src in self.producer else None
                if pool is None or pool.name != "AVERAGE_POOL_2D" or \
                        self.origin(pool.inputs[0]) != x:
                    raise _Mismatch(f"{p}: the skip conv does not read the block input or its "
                                    f"average pool")
                po = pool.options
                if (po.filter_height, po.filter_width, po.stride_h, po.stride_w) != (3, 3, 2, 2) \
                        or po.padding != "SAME":
                    raise _Mismatch(f"{p}: skip pool is not 3x3 stride 2 SAME")
                self.claim(pool, f"{p}/skip/pool")
                skip = "pool+conv"
        spec = dict(index=index, cin=cin, expand=expand, cout=cout, kernel=(kt, kh, kw),
                    stride=stride, se=se is not None, skip=skip,
                    rezero=float(rz_values.ravel()[0]))
        return add.outputs[0], spec

    def match_se(self, h, p, expand):
        layer = f"{p}/se"
        mean = self.one(self.uses(h), ("MEAN",), f"{layer} pool")
        axes = sorted(int(a) % 5 for a in self.const(mean.inputs[1]).ravel())
        if axes != [2, 3] or not mean.options.keep_dims:
            raise _Mismatch(f"{layer}: MEAN over axes {axes}, expected the spatial axes [2, 3]")
        self.claim(mean, f"{layer}/pool")
        m = mean.outputs[0]
        uses = self.uses(m)
        add = self.one(uses, ("ADD",), f"{layer} cumulative pool")
        self.claim(add, f"{layer}/pool")
        other = [t for t in add.inputs if self.origin(t) != self.origin(m)]
        name = self.state_source(other[0], f"{p}_pool_buffer", f"{layer}/pool")
        cum = add.outputs[0]
        cum_uses = self.uses(cum)
        sl = self.one(cum_uses, ("STRIDED_SLICE",), f"{layer} pool buffer")
        self.claim(sl, f"{layer}/pool")
        self.state_sink(sl.outputs[0], name, f"{layer}/pool")
        count_name = name[:-len("pool_buffer")] + "pool_frame_count"
        mean_t = self.match_divide_by_count(cum, count_name, f"{layer}/pool")
        cat = self.one(self.uses(mean_t), ("CONCATENATION",), f"{layer} concat")
        if [self.origin(t) for t in cat.inputs] != [self.origin(mean_t), self.origin(m)]:
            raise _Mismatch(f"{layer}: expected CONCATENATION(cumulative mean, frame mean)")
        self.same_quant(cat.inputs + cat.outputs, f"{layer}/concat")
        self.claim(cat, f"{layer}/concat")
        red = self.one(self.uses(cat.outputs[0]), ("CONV_2D",), f"{layer} reduce")
        self.pointwise(red, f"{layer}/reduce/conv", 2 * expand)
        r, act = self.activation(red, f"{layer}/reduce/conv")
        self.check_act(act, f"{layer}/reduce")
        exp = self.one(self.uses(r), ("CONV_2D",), f"{layer} expand")
        self.pointwise(exp, f"{layer}/expand/conv")
        if exp.options.fused_activation_function != "RELU6":
            raise _Mismatch(f"{layer}: the gate conv is not relu6-fused (hard sigmoid)")
        gate_mul = self.one(self.uses(exp.outputs[0]), ("MUL",), f"{layer} gate")
        const_in = [t for t in gate_mul.inputs if self.const(t) is not None]
        if len(const_in) != 1:
            raise _Mismatch(f"{layer}: the gate MUL has no constant operand")
        gate_factor = float(self.dequantized(const_in[0]).ravel()[0])
        if abs(gate_factor - 0.16667) > 0.01:
            raise _Mismatch(f"{layer}: gate factor {gate_factor:.5f}, expected 1/6 (hard sigmoid)")
        self.claim(gate_mul, f"{layer}/expand/gate")
        scale = self.one(self.uses(gate_mul.outputs[0]), ("MUL",), f"{layer} scale")
        if {self.origin(t) for t in scale.inputs} != {self.origin(gate_mul.outputs[0]),
                                                      self.origin(h)}:
            raise _Mismatch(f"{layer}: expected MUL(gate, features)")
        self.claim(scale, f"{layer}/scale")
        return scale.outputs[0], dict(gate_factor=gate_factor)

    def match_divide_by_count(self, total, count_name, layer) -> int:
        """total / (frame_count + 1): int8 DIV by a quantized count, or float DIV of the
        dequantized total by the count.  Returns the quantized mean."""
        if count_name not in self.state_in:
            raise _Mismatch(f"{self.display(layer)}: the signature has no state {count_name!r}")
        count_in = self.state_in[count_name]
        self.state_source(count_in, count_name, layer)
        inc = self.one(self.uses(count_in), ("ADD",), f"{self.display(layer)} frame count")
        step = [self.const(t) for t in inc.inputs if self.const(t) is not None]
        if len(step) != 1 or int(step[0].ravel()[0]) != 1:
            raise _Mismatch(f"{self.display(layer)}: the frame count does not advance by 1")
        self.claim(inc, layer)
        self.state_sink(inc.outputs[0], count_name, layer)
        cast = self.one(self.uses(inc.outputs[0]), ("CAST",), f"{layer} count cast")
        self.claim(cast, layer)
        div = None
        for op in self.uses(cast.outputs[0]):
            if op.name == "QUANTIZE":                 # int8 DIV
                self.claim(op, layer)
                div = self.one(self.uses(op.outputs[0]), ("DIV",), f"{layer} divide")
                if self.origin(div.inputs[0]) != self.origin(total):
                    raise _Mismatch(f"{layer}: DIV numerator is not the running sum")
            elif op.name == "DIV":                    # float DIV of the dequantized sum
                div = op
                dq = self.ops[self.producer[self.origin(div.inputs[0])]]
                if dq.name != "DEQUANTIZE" or self.origin(dq.inputs[0]) != self.origin(total):
                    raise _Mismatch(f"{layer}: float DIV numerator is not the running sum")
                self.claim(dq, layer)
        if div is None:
            raise _Mismatch(f"{layer}: no division by the frame count")
        self.claim(div, layer)
        out = div.outputs[0]
        if self.T[out].type_name == "FLOAT32":
            q = self.one(self.uses(out), ("QUANTIZE",), f"{layer} quantize")
            self.claim(q, layer)
            out = q.outputs[0]
        return out

    def match_head(self, x):
        proj = self.one(self.uses(x), ("CONV_2D",), "head projection conv")
        self.pointwise(proj, "head/project/conv")
        h, act = self.activation(proj, "head/project/conv")
        self.check_act(act, "head/project")
        pool = self.one(self.uses(h), ("SUM", "MEAN"), "head pool")
        axes = sorted(int(a) % 5 for a in self.const(pool.inputs[1]).ravel())
        if axes not in ([1, 2, 3], [2, 3]) or not pool.options.keep_dims:
            raise _Mismatch(f"head pool reduces axes {axes}")
        self.claim(pool, "head/pool")
        t = pool.outputs[0]
        if pool.name == "SUM":
            mul = self.one(self.uses(t), ("MUL",), "head pool mean")
            self.claim(mul, "head/pool")
            t = mul.outputs[0]
        add = self.one(self.uses(t), ("ADD",), "head cumulative pool")
        self.claim(add, "head/pool")
        other = [u for u in add.inputs if self.origin(u) != self.origin(t)]
        self.state_source(other[0], "state_head_pool_buffer", "head/pool")
        total = add.outputs[0]
        self.state_sink(total, "state_head_pool_buffer", "head/pool")
        pooled = self.match_divide_by_count(total, "state_head_pool_frame_count", "head/pool")
        hidden = self.one(self.uses(pooled), ("CONV_2D",), "classifier hidden conv")
        self.pointwise(hidden, "classifier/hidden/conv", self.shape(proj.inputs[1])[0])
        hh, self.classifier_act = self.activation(hidden, "classifier/hidden/conv")
        logits = self.one(self.uses(hh), ("CONV_2D",), "classifier logits conv")
        self.pointwise(logits, "classifier/logits/conv", self.shape(hidden.inputs[1])[0])
        if logits.options.fused_activation_function != "NONE":
            raise _Mismatch("classifier logits conv has an activation")
        self.num_classes = self.shape(logits.inputs[1])[0]
        out = logits.outputs[0]
        for op in self.uses(out):
            if op.name == "DEQUANTIZE" and op.outputs[0] == self.logits_tensor:
                self.claim(op, "output/dequantize")
                out = op.outputs[0]
        if out != self.logits_tensor:
            # int8 output: the signature's logits is a RESHAPE view of the conv output
            if self.origin(self.logits_tensor, "output") != self.origin(logits.outputs[0]):
                raise _Mismatch("the signature's logits are not the classifier's output")
        self.head = dict(project=self.shape(proj.inputs[1])[0],
                         hidden=self.shape(hidden.inputs[1])[0], pool=pool.name)

    # ---- checks -----------------------------------------------------------------------------

    def check_act(self, act, where):
        if not hasattr(self, "_acts"):
            self._acts = {}
        self._acts[where] = act
        if act not in ("relu6", "hard_swish", "relu", "swish"):
            raise _Mismatch(f"{where}: no activation after the conv (expected relu6 or "
                            f"hard_swish)")

    def same_quant(self, tensors, layer):
        qs = {(float(self.T[t].quantization.scale[0]), int(self.T[t].quantization.zero_point[0]))
              for t in tensors if self.T[t].quantization.is_quantized}
        if len(qs) > 1:
            raise _Mismatch(f"{layer}: concatenated tensors with different quantization {qs} "
                            f"(requantizing concatenation is not supported)")

    def dequantized(self, t) -> np.ndarray:
        q = self.T[t].quantization
        d = self.const(t).astype(np.float64)
        if not q.is_quantized:
            return d
        return (d - float(q.zero_point[0])) * float(q.scale[0])

    def check_all_claimed(self):
        left = [op for op in self.ops if op.index not in self.layer_of]
        if left:
            desc = ", ".join(f"#{op.index} {op.name}" for op in left[:5])
            raise _Mismatch(f"{len(left)} operator(s) are not part of the MoViNet structure: "
                            f"{desc}{' ...' if len(left) > 5 else ''}")
        for name, t in self.state_in.items():
            if name in self.used_states:
                continue
            if self.state_out[name] != t:
                raise _Mismatch(f"state {name!r} is not used by the graph but its output is "
                                f"computed")
            if any(True for _ in self.consumers.get(t, [])):
                raise _Mismatch(f"state {name!r} is read outside the MoViNet structure")

    def infer_config(self) -> ModelConfig:
        found = [(b["cin"], b["expand"], b["cout"], tuple(b["kernel"]), tuple(b["stride"]))
                 for b in self.blocks]
        acts = set(self._acts.values())
        if len(acts) != 1:
            raise _Mismatch(f"mixed block activations {sorted(acts)}")
        activation = acts.pop()
        se = {b["se"] for b in self.blocks}
        if len(se) != 1:
            raise _Mismatch("squeeze-excitation in some blocks only")
        se_type = "2plus3d" if se.pop() else "none"
        if self.act != activation:
            raise _Mismatch(f"stem activation {self.act}, blocks {activation}")
        classifier = self.classifier_act if self.classifier_act != "linear" else None
        if classifier is None:
            raise _Mismatch("the classifier's hidden layer has no activation")
        for model_id, (stem, groups, head) in BLOCK_SPECS.items():
            cfg = ModelConfig(model_id=model_id, variant="stream", causal=True,
                              conv_type="2plus1d", se_type=se_type, activation=activation,
                              gating_activation="hard_sigmoid",
                              classifier_activation=classifier,
                              use_positional_encoding=False, num_classes=self.num_classes)
            expected = [(cin, e, cout, k, s) for _, _, cin, e, cout, k, s in cfg.layers()]
            if expected == found and stem.filters == self.stem["filters"] and \
                    stem.kernel == self.stem["kernel"] and stem.stride == self.stem["stride"] \
                    and head.project_filters == self.head["project"] \
                    and head.hidden_filters == self.head["hidden"]:
                self.name_blocks(cfg)
                settings = (activation, se_type, classifier)
                variant = ("mobile" if settings == ("relu6", "none", "relu6") else
                           "stream" if settings == ("hard_swish", "2plus3d", "swish") else
                           "custom")
                return dataclasses.replace(cfg, variant=variant)
        desc = "; ".join(f"{e}x{k[0]}{k[1]}{k[2]}/{s[1]}->{c}" for _, e, c, k, s in found[:4])
        raise _Mismatch(f"its {len(found)} blocks ({desc} ...) and head match none of the "
                        f"MoViNet A0-A5 architectures")

    def name_blocks(self, cfg):
        """Give the blocks their (group, layer) names and check the states they read."""
        for index, (g, l, *_) in enumerate(cfg.layers()):
            known = self.block_states.get(index)
            if known is not None and known != (g, l):
                raise _Mismatch(f"block #{index} (block{g}_layer{l} of {cfg.model_id}) reads "
                                f"the states of block{known[0]}_layer{known[1]}")
            self.blocks[index].update(g=g, l=l)
            prefix = f"@{index}/"
            for op_index, layer in self.layer_of.items():
                if layer.startswith(prefix):
                    self.layer_of[op_index] = f"block{g}_layer{l}/" + layer[len(prefix):]
            for name, layer in self.used_states.items():
                if layer.startswith(prefix):
                    self.used_states[name] = f"block{g}_layer{l}/" + layer[len(prefix):]

    # ---- program ----------------------------------------------------------------------------

    def build_program(self, config: ModelConfig) -> Int8Program:
        tensors = []
        for t in self.T:
            dtype = _DTYPES.get(t.type_name)
            if dtype is None:
                raise _Mismatch(f"tensor {t.name!r} has type {t.type_name}")
            q = t.quantization
            spec = TensorSpec(name=t.name, shape=tuple(int(d) for d in t.shape), dtype=dtype)
            if q.is_quantized:
                if q.per_channel:
                    spec.channel_scales = np.asarray(q.scale, np.float32).copy()
                    spec.quantized_dimension = int(q.quantized_dimension)
                    if np.any(np.asarray(q.zero_point) != 0):
                        raise _Mismatch(f"tensor {t.name!r}: per-channel zero points")
                else:
                    spec.scale = float(np.float32(q.scale[0]))
                    spec.zero_point = int(q.zero_point[0])
            data = t.data(self.model)
            if data is not None:
                spec.data = np.array(data)
            tensors.append(spec)
        ops = []
        for op in self.ops:
            ops.append(self.convert_op(op, tensors))
        states = OrderedDict((name, (self.state_in[name], self.state_out[name]))
                             for name in sorted(self.state_in, key=_state_sort_key))
        return Int8Program(tensors=tensors, ops=ops, image=self.image,
                           logits=self.logits_tensor, states=states, config=config,
                           blocks=[_jsonable(b) for b in self.blocks], source=self.label)

    def convert_op(self, op, tensors) -> OpSpec:
        layer = self.layer_of.get(op.index) or "reshape"
        o = op.options
        attrs = {}
        n = op.name
        ins = tuple(op.inputs)
        if n in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            kind = "conv" if n == "CONV_2D" else "depthwise"
            attrs = dict(stride_h=o.stride_h, stride_w=o.stride_w, padding=o.padding,
                         activation=o.fused_activation_function)
        elif n in ("ADD", "MUL", "DIV"):
            kind = n.lower()
            attrs = dict(activation=o.fused_activation_function)
        elif n == "AVERAGE_POOL_2D":
            kind = "avg_pool"
            attrs = dict(filter_h=o.filter_height, filter_w=o.filter_width, stride_h=o.stride_h,
                         stride_w=o.stride_w, padding=o.padding,
                         activation=o.fused_activation_function)
        elif n in ("MEAN", "SUM"):
            kind = n.lower()
            attrs = dict(axes=sorted(int(a) % len(tensors[ins[0]].shape)
                                     for a in self.const(ins[1]).ravel()),
                         keep_dims=bool(o.keep_dims))
            ins = ins[:1]
        elif n == "CONCATENATION":
            kind = "concat"
            attrs = dict(axis=int(o.axis) % len(tensors[op.outputs[0]].shape))
        elif n == "STRIDED_SLICE":
            kind = "slice"
            if o.ellipsis_mask or o.new_axis_mask or o.shrink_axis_mask or o.offset:
                raise _Mismatch(f"STRIDED_SLICE #{op.index} uses unsupported masks")
            shape = tensors[ins[0]].shape
            begin = [int(v) for v in self.const(ins[1]).ravel()]
            end = [int(v) for v in self.const(ins[2]).ravel()]
            strides = [int(v) for v in self.const(ins[3]).ravel()]
            slices = []
            for d in range(len(shape)):
                b = None if (o.begin_mask >> d) & 1 else begin[d]
                e = None if (o.end_mask >> d) & 1 else end[d]
                start, stop, step = slice(b, e, strides[d]).indices(shape[d])
                slices.append([start, stop, step])
            attrs = dict(slices=slices)
            ins = ins[:1]
        elif n == "RESHAPE":
            kind = "reshape"
            ins = ins[:1]
        elif n in ("HARD_SWISH", "LOGISTIC", "CAST", "QUANTIZE", "DEQUANTIZE"):
            kind = n.lower()
        else:                                     # excluded by SUPPORTED_OPS
            raise _Mismatch(f"operator #{op.index} {n}")
        return OpSpec(kind=kind, layer=layer, inputs=ins, outputs=tuple(op.outputs),
                      attrs=attrs, tflite_op=n, tflite_index=op.index)


def _state_sort_key(name):
    m = STATE_NAME.match(name)
    if m.group(1) == "head":
        return (10**6, 0, name)
    return (int(m.group(2)), int(m.group(3)), name)


def _jsonable(d):
    out = {}
    for k, v in d.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, (np.integer,)):
            v = int(v)
        out[k] = v
    return out
