"""The int8 MoViNet: runs an imported int8 TFLite stream model with minimovinet's kernels.

    model = minimovinet.load("movinet_a0_stream_k600_int8.tflite")   # or the converted .h5
    states = model.init_states()                  # the file's states, int8 ones at their zero point
    logits, states = model(frames, states)        # frames float32 [B, T, H, W, 3] in [0, 1]
    float_model = model.dequantize()              # the same architecture in float32

The model is the `Int8Program` of `tflite_import`: the TFLite operators in execution order,
each labelled with its MoViNet layer, run one after the other by Numba kernels
(`int8_kernels`) with TFLite's integer arithmetic, so that the logits and every output state are
bit-identical to LiteRT's built-in kernels.  The file's input size and batch are fixed (one
frame of H x W per invocation, as the file says); `model(frames, states)` accepts any batch and
any number of frames per call and runs them frame by frame and stream by stream, which is what a
stream model means.

States keep the file's names, shapes (batch first) and dtypes.  For files with int8 states whose
output quantization differs from the input's (full-int8 conversions may do that), the returned
states are requantized to the input quantization so that they can be fed back directly
(`raw_states=True` returns them exactly as the file's outputs).
"""
from __future__ import annotations

import json
import os
import re
import threading
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np

from . import kernels as K
from . import vnni as V
from ..errors import InputError, StateError, WeightsFileError
from ..structure import same_padding
from .program import Int8Program, OpSpec, TensorSpec

States = Dict[str, np.ndarray]

KIND_INT8 = "int8"
# 1x1 (and the stem's dense) conv kernels: "vnni" (int8_vnni.py: vpdpbusd, x86 CPUs with
# AVX-VNNI / AVX-512 VNNI), "rows" (outer products over output channels with int16 products:
# other x86 CPUs) or "reduce" (int8 x int8 -> int32 reductions over input channels: sdot on
# ARMv8.2+, smull/sadalp before).  All are bit-exact; the tests run each.  The environment
# variable MINIMOVINET_INT8_FORM overrides the choice (read when a model is loaded).
_FORMS = ("vnni", "rows", "reduce")
POINTWISE_FORM = "vnni" if V.AVAILABLE else ("rows" if K.PREFER_INT16 else "reduce")


def _pointwise_form() -> str:
    form = os.environ.get("MINIMOVINET_INT8_FORM", "").strip().lower() or POINTWISE_FORM
    if form not in _FORMS:
        raise InputError(f"MINIMOVINET_INT8_FORM={form!r}: expected one of {', '.join(_FORMS)}")
    if form == "vnni" and not V.AVAILABLE:
        raise InputError("MINIMOVINET_INT8_FORM=vnni: this CPU has no AVX-VNNI / AVX-512 VNNI")
    return form
# With threads > 1, only convs with at least this many multiply-adds run on the threads.  A
# parallel region costs tens of microseconds to start, and once numba's thread pool runs it
# slows even the serial kernels down on a 2-core machine (measured: A0 at 172x172, 5.8 ms per
# frame serial, 10 ms with the pool started, whatever runs on it): an A0 frame (its largest
# conv is 2.9 M multiply-adds) stays serial, larger models and frames use the threads.
PARALLEL_MIN_WORK = 20_000_000
# Fuse each block's ReZero MUL with its residual ADD (one pass; the same bits).  The op-level
# tests turn it off to compare every TFLite operator's own output.
FUSE_REZERO_ADD = True
PROGRAM_VERSION = 1
_NP = {"int8": np.int8, "int32": np.int32, "float32": np.float32}


class Int8Movinet:
    """An int8 MoViNet stream model (see the module docstring)."""

    def __init__(self, program: Int8Program, class_names: Optional[Sequence[str]] = None,
                 source: str = ""):
        self.program = program
        self.config = program.config
        self.source = source or program.source
        self.class_names = list(class_names) if class_names is not None else None
        if self.class_names is not None and len(self.class_names) != self.config.num_classes:
            raise WeightsFileError(f"{len(self.class_names)} class names for "
                                   f"{self.config.num_classes} classes")
        image = program.tensors[program.image]
        self.height, self.width = image.shape[2], image.shape[3]
        self._local = threading.local()
        self._compile()

    # ---- description --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.config.model_id}-{self.config.variant}-int8"

    @property
    def image_quantization(self):
        """(dtype, scale, zero_point) of the image input (scale None for float input)."""
        t = self.program.tensors[self.program.image]
        return t.dtype, t.scale, t.zero_point

    @property
    def logits_quantization(self):
        t = self.program.tensors[self.program.logits]
        return t.dtype, t.scale, t.zero_point

    def state_quantization(self) -> "OrderedDict[str, tuple]":
        """Name -> (dtype, input scale, input zero point, output scale, output zero point)."""
        out = OrderedDict()
        for name, (ti, to) in self.program.states.items():
            a, b = self.program.tensors[ti], self.program.tensors[to]
            out[name] = (a.dtype, a.scale, a.zero_point, b.scale, b.zero_point)
        return out

    def __repr__(self):
        return (f"<minimovinet.Int8Movinet {self.name}, {self.config.num_classes} classes, "
                f"{self.height}x{self.width} frames>")

    def num_parameters(self) -> int:
        """Conv weights and biases (the ReZero / gate constants are one scalar each)."""
        ids = {t for op in self.program.ops if op.kind in ("conv", "depthwise")
               for t in op.inputs[1:3]}
        return int(sum(self.program.tensors[t].data.size for t in ids))

    def describe(self, batch: int = 1, height: Optional[int] = None,
                 width: Optional[int] = None) -> str:
        """The model's structure, quantization and states.  The frame size is fixed by the
        file; `height`/`width` are accepted for the float model's signature and ignored."""
        cfg = self.config
        dt, s, z = self.image_quantization
        lt, ls, lz = self.logits_quantization
        lines = [f"MoViNet {self.name}: int8 TFLite stream model ({self.source}); architecture "
                 f"{cfg.model_id} conv {cfg.conv_type}, SE {cfg.se_type}, activation "
                 f"{cfg.activation}, classifier {cfg.classifier_activation}, "
                 f"{cfg.num_classes} classes, {self.num_parameters():,} parameters",
                 f"input image {dt} [B, T, {self.height}, {self.width}, 3]"
                 + (f" (scale {s:.6g}, zero point {z})" if s is not None else
                    " (quantized inside)")
                 + f"; logits {lt}" + (f" (scale {ls:.6g}, zero point {lz})" if ls else "")]
        counts = OrderedDict()
        for op in self.program.ops:
            if op.kind == "reshape":
                continue
            top = op.layer.split("/")[0]
            counts.setdefault(top, []).append(op.kind)
        lines.append(f"layers ({sum(len(v) for v in counts.values())} ops, RESHAPEs as views):")
        for top, kinds in sorted(counts.items(), key=lambda kv: _layer_order(kv[0])):
            block = next((b for b in self.program.blocks
                          if f"block{b.get('g')}_layer{b.get('l')}" == top), None)
            extra = ""
            if block:
                kt, kh, kw = block["kernel"]
                extra = (f"  {block['cin']}->{block['expand']}->{block['cout']}, kernel "
                         f"{kt}x{kh}x{kw}, stride {block['stride'][1]}, skip {block['skip']}"
                         f"{', SE' if block['se'] else ''}")
            summary = ", ".join(f"{k} x{kinds.count(k)}" if kinds.count(k) > 1 else k
                                for k in dict.fromkeys(kinds))
            lines.append(f"  {top:<16} {summary}{extra}")
        specs = self.state_specs(batch)
        lines.append(f"stream states for batch {batch}, {self.height}x{self.width} frames:")
        lines.append(f"  {'state':<44} {'shape':<22} {'dtype':<8} {'bytes':>10}  quantization")
        total = 0
        quant = self.state_quantization()
        for name, (shape, dtype) in specs.items():
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            total += nbytes
            _, si, zi, so, zo = quant[name]
            q = "" if si is None else f"scale {si:.4g} zp {zi}" + (
                "" if (si, zi) == (so, zo) else f" (out: {so:.4g} zp {zo})")
            used = "" if self._passthrough.get(name) is None else " (unused: passed through)"
            lines.append(f"  {name:<44} {str(shape):<22} {np.dtype(dtype).name:<8} "
                         f"{nbytes:>10,}  {q}{used}")
        lines.append(f"  {'total':<44} {'':<22} {'':<8} {total:>10,}  ({len(specs)} states, "
                     f"{total / 2**20:.2f} MiB)")
        return "\n".join(lines)

    # ---- states -------------------------------------------------------------------------------

    def state_specs(self, batch: int = 1, height: Optional[int] = None,
                    width: Optional[int] = None) -> "OrderedDict[str, tuple]":
        """Name -> (shape, dtype) of every state for `batch` streams (the file's order)."""
        _check_size(self, height, width)
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise InputError(f"batch must be a positive integer, got {batch!r}")
        specs = OrderedDict()
        for name, (ti, _) in self.program.states.items():
            t = self.program.tensors[ti]
            shape = tuple(t.shape)
            if name.endswith("_buffer"):
                shape = (int(batch),) + shape[1:]
            specs[name] = (shape, np.dtype(_NP[t.dtype]))
        return specs

    def init_states(self, batch: int = 1, height: Optional[int] = None,
                    width: Optional[int] = None) -> States:
        """Initial states: zeros, and each int8 state at its zero point (real value 0)."""
        states = {}
        for name, (shape, dtype) in self.state_specs(batch, height, width).items():
            t = self.program.tensors[self.program.states[name][0]]
            fill = t.zero_point if (t.dtype == "int8" and t.zero_point is not None) else 0
            states[name] = np.full(shape, fill, dtype)
        return states

    # ---- inference ----------------------------------------------------------------------------

    def __call__(self, frames, states: Optional[States] = None, raw_states: bool = False):
        """Logits after the last frame and the next states (a new dict; inputs untouched).

        frames: float32 [B, T, H, W, 3] in [0, 1] (quantized as the file's QUANTIZE does), or,
        for files with an int8 image input, already-quantized int8 frames.  Without `states`
        the stream starts from `init_states` and only the logits are returned.
        Logits have the file's output dtype (float32 for float-output files).
        """
        frames = self._check_frames(frames)
        B, T = frames.shape[:2]
        streaming = states is not None
        if streaming:
            self._check_states(states, B)
        else:
            states = self.init_states(B)
        logits_out, new_states = [], []
        for b in range(B):
            cur = {name: (value[b:b + 1] if name.endswith("_buffer") else value)
                   for name, value in states.items()}
            raw = None
            for t in range(T):
                logits, raw = self._step(frames[b:b + 1, t:t + 1], cur)
                cur = self._feedback(raw)
            logits_out.append(logits)
            new_states.append(raw if raw_states else cur)
        logits = np.concatenate(logits_out, axis=0) if B > 1 else logits_out[0]
        if not streaming:
            return logits
        if B == 1:
            return logits, new_states[0]
        merged = {}
        for name in new_states[0]:
            if name.endswith("_buffer"):
                merged[name] = np.concatenate([s[name] for s in new_states], axis=0)
            else:
                merged[name] = new_states[0][name]
        return logits, merged

    def predict_proba(self, frames, states: Optional[States] = None):
        """Softmax over the (dequantized) logits; same call forms as `__call__`."""
        out = self(frames, states)
        logits, rest = out if isinstance(out, tuple) else (out, None)
        z = self.dequantize_logits(logits).astype(np.float64)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        probs = (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)
        return (probs, rest) if rest is not None else probs

    def dequantize_logits(self, logits) -> np.ndarray:
        dtype, s, z = self.logits_quantization
        if dtype == "float32":
            return np.asarray(logits, np.float32)
        return _dequantize_np(np.asarray(logits), s, z)

    def _feedback(self, raw: States) -> States:
        """Output states as next inputs: int8 states requantized where the file's output
        quantization differs from the input's."""
        out = {}
        for name, value in raw.items():
            conv = self._requantize.get(name)
            out[name] = value if conv is None else _requantize_np(value, *conv)
        return out

    # ---- the program ----------------------------------------------------------------------------

    def _compile(self):
        prog = self.program
        self._runners = []
        self._scratch = []            # (shape, dtype, fill) of extra workspace arrays
        n = len(prog.tensors)
        produced_by = {}
        for op in prog.ops:
            for t in op.outputs:
                produced_by[t] = op
        self._inputs = {prog.image} | {ti for ti, _ in prog.states.values()}
        self._passthrough = {name: (ti if ti == to else None)
                             for name, (ti, to) in prog.states.items()}
        outputs = {prog.logits} | {to for name, (ti, to) in prog.states.items() if ti != to}
        # outputs written by a kernel get a fresh array each call; views of the workspace are
        # copied at the end
        self._fresh = sorted(t for t in outputs if produced_by[t].kind != "reshape")
        self._copy_out = {t for t in outputs if produced_by[t].kind == "reshape"}
        self._requantize = {}
        for name, (ti, to) in prog.states.items():
            a, b = prog.tensors[ti], prog.tensors[to]
            if a.dtype == "int8" and (a.scale, a.zero_point) != (b.scale, b.zero_point):
                self._requantize[name] = (b.scale, b.zero_point, a.scale, a.zero_point)
        self._any_parallel = False
        for op in prog.ops:
            run = _compile_op(op, prog.tensors, self._scratch, n)
            if _work(op, prog.tensors) < PARALLEL_MIN_WORK:
                run = _serial(run)
            else:
                self._any_parallel = True
            self._runners.append(run)
        if FUSE_REZERO_ADD:
            self._fuse_rezero_add(outputs)
        self._n_tensors = n

    def _fuse_rezero_add(self, outputs):
        """Run each block's ReZero MUL and its residual ADD as one kernel (at the ADD's place:
        the skip branch may come later in the file); the MUL's output is never stored."""
        prog = self.program
        readers = {}
        for j, op in enumerate(prog.ops):
            for t in op.inputs:
                readers.setdefault(t, []).append(j)
        for i, op in enumerate(prog.ops):
            if op.kind != "mul" or not op.layer.endswith("/rezero"):
                continue
            t = op.outputs[0]
            users = readers.get(t, [])
            if t in outputs or len(users) != 1 or prog.ops[users[0]].kind != "add":
                continue
            j = users[0]
            fused = _compile_mul_add(op, prog.ops[j], prog.tensors)
            if fused is not None:
                self._runners[i] = _noop
                self._runners[j] = fused

    def _workspace(self):
        ws = getattr(self._local, "bufs", None)
        if ws is None:
            prog = self.program
            ws = [None] * (self._n_tensors + len(self._scratch))
            views = {t for op in prog.ops if op.kind == "reshape" for t in op.outputs}
            for i, t in enumerate(prog.tensors):
                if t.data is not None:
                    ws[i] = t.data
                elif i not in self._inputs and i not in views and i not in self._fresh:
                    ws[i] = np.empty(t.shape, _NP[t.dtype])
            for j, (shape, dtype, fill) in enumerate(self._scratch):
                ws[self._n_tensors + j] = np.full(shape, fill, dtype)
            self._local.bufs = ws
        return ws

    def _step(self, image, states):
        """One invocation of the file's graph: image [1, 1, H, W, 3], states of batch 1.
        A float state holding NaN / inf raises StateError (from its QUANTIZE)."""
        prog = self.program
        ws = self._workspace()
        ws[prog.image] = image
        for name, (ti, _) in prog.states.items():
            ws[ti] = states[name]
        for t in self._fresh:
            spec = prog.tensors[t]
            ws[t] = np.empty(spec.shape, _NP[spec.dtype])
        ki = K.impl(self._any_parallel)
        for run in self._runners:
            run(ws, ki)
        logits = ws[prog.logits]
        if prog.logits in self._copy_out:
            logits = logits.copy()
        raw = {}
        for name, (ti, to) in prog.states.items():
            v = ws[to]
            raw[name] = v.copy() if (ti == to or to in self._copy_out) else v
        for name, (ti, _) in prog.states.items():
            ws[ti] = None
        ws[prog.image] = None
        return logits, raw

    # ---- validation -----------------------------------------------------------------------------

    def _check_frames(self, frames):
        from ..contract import check_frames as _check_frames
        dtype = self.image_quantization[0]
        if dtype == "int8" and isinstance(frames, np.ndarray) and frames.dtype == np.int8:
            if frames.ndim != 5 or frames.shape[-1] != 3 or min(frames.shape) < 1:
                raise InputError(f"frames must have shape [B, T, H, W, 3], got {frames.shape}")
            arr = np.ascontiguousarray(frames)
        else:
            arr = _check_frames(frames)
        if arr.shape[2:4] != (self.height, self.width):
            raise InputError(f"frames are {arr.shape[2]}x{arr.shape[3]} but this int8 model was "
                             f"converted for {self.height}x{self.width} frames (a TFLite file has "
                             f"fixed shapes); resize the frames to {self.height}x{self.width}")
        if dtype == "int8" and arr.dtype != np.int8:
            _, s, z = self.image_quantization
            arr = _quantize_np(arr, s, z)
        return arr

    def _check_states(self, states, batch):
        from ..contract import check_frame_counts as _check_frame_counts, check_states as _check_states
        # float states are checked for NaN / inf by the QUANTIZE that reads them
        _check_states(states, self.state_specs(batch), self.name,
                      f"for batch {batch} (this int8 model runs {self.height}x{self.width} "
                      f"frames; states come from init_states of the same model)",
                      check_finite=False)
        _check_frame_counts(states, 1)

    # ---- float view -----------------------------------------------------------------------------

    def dequantize(self):
        """A float32 `Movinet` of the same architecture with the dequantized weights."""
        from ..float32.model import Movinet
        return Movinet(self.config, dequantized_params(self.program), self.class_names)


def _layer_order(top: str):
    m = re.match(r"block(\d+)_layer(\d+)$", top)
    if m:
        return (2, int(m.group(1)), int(m.group(2)))
    return ({"input": 0, "stem": 1, "head": 3, "classifier": 4, "output": 5}.get(top, 6), 0, 0)


def _check_size(model, height, width):
    if height is None and width is None:
        return
    if (height, width) != (model.height, model.width):
        raise InputError(f"this int8 model was converted for {model.height}x{model.width} "
                         f"frames (a TFLite file has fixed shapes); got {height}x{width}")


def _dequantize_np(q, scale, zp):
    """DEQUANTIZE as LiteRT computes it (see int8_kernels._dequantize)."""
    flat = np.ascontiguousarray(q).reshape(-1)
    out = np.empty(flat.size, np.float32)
    s = float(np.float32(scale))
    K.SERIAL.dequantize(flat, np.float32(s), np.float32(-int(zp) * s), s, int(zp), out)
    return out.reshape(np.shape(q))


def _quantize_np(x, scale, zp):
    """QUANTIZE as LiteRT computes it (see int8_kernels._quantize)."""
    flat = np.ascontiguousarray(x, np.float32).reshape(-1)
    out = np.empty(flat.size, np.int8)
    s = float(np.float32(scale))
    K.SERIAL.quantize(flat, s, np.float32(1.0 / s), int(zp), out)
    return out.reshape(np.shape(x))


def _requantize_np(q, s_out, z_out, s_in, z_in):
    """An int8 output state in its input's quantization: DEQUANTIZE then QUANTIZE."""
    return _quantize_np(_dequantize_np(q, s_out, z_out), s_in, z_in)


# ---- compiling ops into runners ------------------------------------------------------------------

def _q(t: TensorSpec):
    return float(np.float32(t.scale)), int(t.zero_point)


def _compile_op(op: OpSpec, tensors, scratch, n_tensors):
    kind = op.kind
    ins, outs = op.inputs, op.outputs
    o = outs[0]
    T = tensors
    if kind == "reshape":
        shape = T[o].shape
        i = ins[0]

        def run(ws, ki):
            ws[o] = ws[i].reshape(shape)
        return run
    if kind in ("conv", "depthwise"):
        return _compile_conv(op, tensors, scratch, n_tensors)
    if kind in ("add", "mul"):
        return _compile_binary(op, tensors)
    if kind == "div":
        return _compile_div(op, tensors)
    if kind == "avg_pool":
        x = ins[0]
        a = op.attrs
        H, W = T[x].shape[1:3]
        if (T[x].scale, T[x].zero_point) != (T[o].scale, T[o].zero_point):
            raise WeightsFileError(f"{op.layer}: AVERAGE_POOL with requantization")
        if a["filter_h"] != a["filter_w"] or a["stride_h"] != a["stride_w"]:
            raise WeightsFileError(f"{op.layer}: non-square average pool")
        k, s = a["filter_h"], a["stride_h"]
        if k * k > 1024:
            raise WeightsFileError(f"{op.layer}: average pool window {k}x{k} is too large")
        if a["padding"] == "SAME":
            _, pt = same_padding(H, k, s)
            _, pl = same_padding(W, k, s)
        else:
            pt = pl = 0
        lo, hi = K.activation_range(a["activation"], *_q(T[o]))

        def run(ws, ki):
            ki.avg_pool(ws[x], k, s, pt, pl, lo, hi, ws[o])
        return run
    if kind in ("hard_swish", "logistic"):
        x = ins[0]
        make = K.hard_swish_lut if kind == "hard_swish" else K.logistic_lut
        table = make(*_q(T[x]), *_q(T[o]))

        def run(ws, ki):
            ki.lut(ws[x].reshape(-1), table, ws[o].reshape(-1))
        return run
    if kind in ("mean", "sum"):
        x = ins[0]
        shape = T[x].shape
        axes = op.attrs["axes"]
        if axes != list(range(axes[0], axes[-1] + 1)) or axes[-1] == len(shape) - 1:
            raise WeightsFileError(f"{op.layer}: {kind} over axes {axes} is not supported")
        N = int(np.prod(shape[:axes[0]]))
        P = int(np.prod(shape[axes[0]:axes[-1] + 1]))
        C = int(np.prod(shape[axes[-1] + 1:]))
        si, zi = _q(T[x])
        so, zo = _q(T[o])
        if kind == "mean":
            m, s = K.quantize_multiplier(si / so)
            k = P.bit_length() - 1
            k = min(k, 32, 31 + s)
            m2 = (m << k) // P
            s2 = s - k

            def run(ws, ki):
                ki.mean(ws[x].reshape(N, P, C), zi, m2, s2, zo, ws[o].reshape(N, C))
        else:
            scale = np.float32(np.float32(si) / np.float32(so))
            bias = np.float32(np.float32(np.float32(-zi) * scale) * np.float32(P))

            def run(ws, ki):
                ki.sum(ws[x].reshape(N, P, C), scale, bias, zo, ws[o].reshape(N, C))
        return run
    if kind == "quantize":
        x = ins[0]
        if T[x].dtype != "float32":
            raise WeightsFileError(f"{op.layer}: int8 -> int8 QUANTIZE (requantization) is not "
                                   f"supported")
        s, z = _q(T[o])
        inv = np.float32(1.0 / s)
        name = T[x].name.replace("serving_default_", "").split(":")[0]

        def run(ws, ki):
            if ki.quantize(ws[x].reshape(-1), s, inv, z, ws[o].reshape(-1)):
                # the float state inputs are checked here, where they are read anyway
                raise StateError(f"input {name!r} contains NaN or infinite values")
        return run
    if kind == "dequantize":
        x = ins[0]
        s, z = _q(T[x])
        s32 = np.float32(s)
        nzs = np.float32(-z * s)

        def run(ws, ki):
            ki.dequantize(ws[x].reshape(-1), s32, nzs, s, z, ws[o].reshape(-1))
        return run
    if kind == "cast":
        x = ins[0]
        dtype = _NP[T[o].dtype]

        def run(ws, ki):
            ws[o][...] = ws[x].astype(dtype).reshape(ws[o].shape)
        return run
    if kind == "concat":
        axis = op.attrs["axis"]
        srcs = list(ins)

        def run(ws, ki):
            np.concatenate([ws[i] for i in srcs], axis=axis, out=ws[o])
        return run
    if kind == "slice":
        x = ins[0]
        index = tuple(slice(*s) for s in op.attrs["slices"])

        def run(ws, ki):
            ws[o][...] = ws[x][index]
        return run
    raise WeightsFileError(f"{op.layer}: unknown op kind {kind!r}")


def _compile_conv(op, T, scratch, n_tensors):
    form = _pointwise_form()
    x, wt, bt = op.inputs[:3]
    o = op.outputs[0]
    a = op.attrs
    w = T[wt].data
    bias = T[bt].data.astype(np.int64)
    si, zi = _q(T[x])
    so, zo = _q(T[o])
    scales = T[wt].channel_scales
    if scales is None:
        scales = np.full(bias.shape, T[wt].scale, np.float32)
    mult, shift = K.quantize_multipliers(np.float64(si) * scales.astype(np.float64)
                                         / np.float64(so))
    mult = mult.astype(np.int32)
    left, offset, total = K.upward_params(shift)
    lo, hi = K.activation_range(a["activation"], so, zo)
    _, H, W, Cin = T[x].shape
    _, Ho, Wo, Cout = T[o].shape
    sh, sw = a["stride_h"], a["stride_w"]

    def scratch_slot(shape, dtype, fill=0):
        scratch.append((shape, dtype, fill))
        return n_tensors + len(scratch) - 1

    if op.kind == "depthwise":
        kh, kw, C = w.shape[1:]
        wsum = w[0].astype(np.int64).sum(axis=(0, 1))
        bias_eff = _int32(bias - zi * wsum, op.layer)
        tiles = K.depthwise_tiles(w[0], bias_eff, mult, left, offset, total, Wo)
        pt, pl = _pads(a["padding"], H, W, kh, kw, sh, sw)
        Hp = max(H + pt, (Ho - 1) * sh + kh)
        Wp = max(W + pl, (Wo - 1) * sw + kw)
        if (Hp, Wp, sw) == (H, W, 1):               # VALID (the temporal convs): no copy

            def run(ws, ki):
                xq = ws[x].reshape(1, H, 1, W, C)   # [N, Hp, S=1, Wq, C]
                wt, bt, mt, lt, ot, tt = tiles
                ki.depthwise(xq, wt, bt, kh, kw, sh, mt, lt, ot, tt, zo, lo, hi, ws[o])
            return run
        Wq = -(-Wp // sw)
        # [N, Hp, S, Wq, C]: padded and split by column phase; the border is filled with x_zp
        # once, here, and never written again
        slot = scratch_slot((1, Hp, sw, Wq, C), np.int8, zi)

        def run(ws, ki):
            xq = ws[slot]
            ki.pad_copy(ws[x], pt, pl, xq)
            wt, bt, mt, lt, ot, tt = tiles
            ki.depthwise(xq, wt, bt, kh, kw, sh, mt, lt, ot, tt, zo, lo, hi, ws[o])
        return run
    Cout_, kh, kw, Cin_ = w.shape
    wsum = w.astype(np.int64).reshape(Cout_, -1).sum(axis=1)
    bias_eff = _int32(bias - zi * wsum, op.layer)
    pairs = bool(w.min() >= -127)
    if (kh, kw, sh, sw) == (1, 1, 1, 1):
        P = H * W
        if form == "vnni":                               # x86 with VNNI: int8_vnni.py
            packed = V.pack_weights(w.reshape(Cout, Cin), bias_eff, mult, left, offset, total)
            xu_slot = scratch_slot(V.input_shape(P, Cin), np.uint8, 128)

            def run(ws, ki):
                V.pointwise_vnni(ws[x].reshape(P, Cin), ws[xu_slot], *packed, zo, lo, hi,
                                 ws[o].reshape(P, Cout))
            return run
        if form == "rows" and P >= 4:          # x86: outer products, int16
            wt2 = np.ascontiguousarray(w.reshape(Cout, Cin).T).astype(np.int16)

            def run(ws, ki):
                ki.pointwise_rows(ws[x].reshape(P, Cin), wt2, pairs, bias_eff, mult, left,
                                  offset, total, zo, lo, hi, ws[o].reshape(P, Cout))
            return run
        # aarch64, and single pixels (the classifier): int8 x int8 -> int32 reductions over
        # the input channels (sdot on ARMv8.2+)
        # (int8 weights: the classifier's MBs of weights make it memory-bound)
        w2 = np.ascontiguousarray(w.reshape(Cout, Cin))

        def run(ws, ki):
            ki.pointwise(ws[x].reshape(P, Cin), w2, bias_eff, mult, left, offset, total, zo,
                         lo, hi, ws[o].reshape(P, Cout))
        return run
    # dense kh x kw conv (the stem): patches (a strided view of the input padded with x_zp,
    # copied by NumPy), then the pointwise kernel
    pt, pl = _pads(a["padding"], H, W, kh, kw, sh, sw)
    P, Kk = Ho * Wo, kh * kw * Cin
    if form == "vnni":                                   # patches straight into uint8
        packed = V.pack_weights(w.reshape(Cout, Kk), bias_eff, mult, left, offset, total)
        xu_slot = scratch_slot(V.input_shape(P, Kk), np.uint8, 128)
        Hp = max(H + pt, (Ho - 1) * sh + kh)
        Wp = max(W + pl, (Wo - 1) * sw + kw)
        # the padded image in uint8: the border holds x_zp + 128, written once here
        xpad_slot = scratch_slot((Hp, Wp, Cin), np.uint8, (zi + 128) % 256)

        def run(ws, ki):
            V.conv_vnni(ws[x][0], kh, kw, sh, sw, pt, pl, zi, Wo, ws[xpad_slot], ws[xu_slot],
                        *packed, zo, lo, hi, ws[o].reshape(P, Cout))
        return run
    Hp = max(H + pt, (Ho - 1) * sh + kh)
    Wp = max(W + pl, (Wo - 1) * sw + kw)
    pad_slot = scratch_slot((1, Hp, 1, Wp, Cin), np.int8, zi)   # border filled with x_zp once
    cols_slot = scratch_slot((P, Kk), np.int8)
    w_rows = w.reshape(Cout, Kk)            # [Cout, kh, kw, Cin]: the patch order below
    item = np.dtype(np.int8).itemsize
    patch_strides = (sh * Wp * Cin * item, sw * Cin * item, Wp * Cin * item, Cin * item, item)

    def patches(ws, ki):
        xp = ws[pad_slot]
        ki.pad_copy(ws[x], pt, pl, xp)
        view = np.lib.stride_tricks.as_strided(xp[0, :, 0], shape=(Ho, Wo, kh, kw, Cin),
                                               strides=patch_strides, writeable=False)
        cols = ws[cols_slot]
        np.copyto(cols.reshape(Ho, Wo, kh, kw, Cin), view)
        return cols

    if form == "rows":
        wt2 = np.ascontiguousarray(w_rows.T).astype(np.int16)

        def run(ws, ki):
            ki.pointwise_rows(patches(ws, ki), wt2, pairs, bias_eff, mult, left, offset, total,
                              zo, lo, hi, ws[o].reshape(P, Cout))
        return run
    w2 = np.ascontiguousarray(w_rows)

    def run(ws, ki):
        ki.pointwise(patches(ws, ki), w2, bias_eff, mult, left, offset, total, zo, lo, hi,
                     ws[o].reshape(P, Cout))
    return run


def _int32(values, layer):
    """The folded bias (bias - x_zp * sum(w)) as the int32 the accumulators start from."""
    if np.abs(values).max(initial=0) >= 2**31:
        raise WeightsFileError(f"{layer}: folded bias overflows int32")
    return values.astype(np.int32)


def _pads(padding, H, W, kh, kw, sh, sw):
    if padding == "VALID":
        return 0, 0
    return same_padding(H, kh, sh)[1], same_padding(W, kw, sw)[1]


def _broadcast(T, b_t, size_o, C):
    """How the second operand of a binary op covers an output of size_o values (R rows of C):
    (mode, shape) for the kernels -- 0 full [R, C], 1 a row [1, C], 2 a scalar [1, 1] -- or
    None when it is none of these."""
    size_b = int(np.prod(T[b_t].shape))
    if size_b == size_o:
        return 0, (size_o // C, C)
    if size_b == 1:
        return 2, (1, 1)
    if size_b == C and T[b_t].shape[-1] == C:
        return 1, (1, C)
    return None


def _mul_real_multiplier(s1, s2, so) -> float:
    """MUL's rescale s1 * s2 / s_out as TFLite computes it: in float32 arithmetic (C++ floats:
    the product rounded to float32, then divided in float32), not in double.  The last bits
    matter: a product whose exact requantized value lies 1e-4 above a rounding half rounds
    the other way with the double-precision multiplier (found at frame 11 of a converted
    model: tests/test_int8_litert.py, the 'int8-rounding' model)."""
    f32 = np.float32
    return float(f32(f32(s1) * f32(s2)) / f32(so))


def _add_multipliers(s1, s2, so):
    """TFLite ADD's rescaling: inputs to twice the larger input scale (with a left shift of
    20), then to the output scale.  Returns (m1, shift1, m2, shift2, m_out, shift_out)."""
    twice = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    return (*K.quantize_multiplier(s1 / twice), *K.quantize_multiplier(s2 / twice),
            *K.quantize_multiplier(twice / ((1 << 20) * so)))


def _compile_binary(op, T):
    a_t, b_t = op.inputs
    o = op.outputs[0]
    if T[o].dtype == "int32":                          # frame count + 1
        def run(ws, ki):
            np.add(ws[a_t], ws[b_t], out=ws[o], casting="unsafe")
        return run
    if T[o].dtype != "int8":
        raise WeightsFileError(f"{op.layer}: {op.kind} on {T[o].dtype}")
    shape_o = T[o].shape
    size_a, size_b = int(np.prod(T[a_t].shape)), int(np.prod(T[b_t].shape))
    size_o = int(np.prod(shape_o))
    if size_a != size_o:                               # put the full operand first
        a_t, b_t = b_t, a_t
        size_a, size_b = size_b, size_a
    C = shape_o[-1] if shape_o else 1
    if size_a != size_o:
        raise WeightsFileError(f"{op.layer}: {op.kind} broadcasting both operands")
    broadcast = _broadcast(T, b_t, size_o, C)
    if broadcast is None:
        raise WeightsFileError(f"{op.layer}: unsupported broadcast {T[a_t].shape} x "
                               f"{T[b_t].shape}")
    mode, b_shape = broadcast
    R = size_o // C
    s1, z1 = _q(T[a_t])
    s2, z2 = _q(T[b_t])
    so, zo = _q(T[o])
    lo, hi = K.activation_range(op.attrs.get("activation", "NONE"), so, zo)
    if op.kind == "add" and mode != 0:
        raise WeightsFileError(f"{op.layer}: int8 ADD with broadcasting ({T[a_t].shape} + "
                               f"{T[b_t].shape}) is not supported: LiteRT's broadcast ADD "
                               f"kernels round differently from its elementwise one")
    n_simd, c_simd = _simd_blocks(mode, size_o, C)
    if op.kind == "add":
        m1, sh1, m2, sh2, mo, sho = _add_multipliers(s1, s2, so)

        def exact(a, b, mode, simd, out):
            K.SERIAL.add(a, b, mode, z1, z2, m1, sh1, m2, sh2, mo, sho, zo, lo, hi,
                         *_all_or_none(simd), out)
    else:
        m, sh = K.quantize_multiplier(_mul_real_multiplier(s1, s2, so))

        def exact(a, b, mode, simd, out):
            K.SERIAL.mul(a, b, mode, z1, z2, m, sh, zo, lo, hi, *_all_or_none(simd), out)
    b_const = T[b_t].data
    if b_const is not None and np.all(b_const == b_const.reshape(-1)[0]):
        b_const = b_const.reshape(-1)[:1]            # a constant, possibly stored full-size
        mode = 2                                     # (n_simd, c_simd: LiteRT's own loops)
    if mode == 2 and b_const is not None:            # x (op) constant: a 256-entry table
        tables = [_table1(lambda a, out: exact(a, b_const.reshape(1, 1), 2, simd, out))
                  for simd in (True, False)]
        return _tabulated(tables, a_t, None, o, R, C, n_simd, c_simd, False)
    if mode in (0, 1):                               # two int8 tensors: a 256 x 256 table
        tables = [_table2(lambda a, b, out: exact(a, b, 0, simd, out)) for simd in (True, False)]
        return _tabulated(tables, a_t, (b_t, b_shape), o, R, C, n_simd, c_simd, mode == 1)

    def run(ws, ki):                                 # MUL by a runtime scalar (ADD: refused above)
        ki.mul(ws[a_t].reshape(R, C), ws[b_t].reshape(1, 1), 2, z1, z2, m, sh, zo, lo, hi,
               n_simd, c_simd, ws[o].reshape(R, C))
    return run


_ALL = 1 << 62


def _all_or_none(simd: bool):
    """(n_simd, c_simd) that put every element in LiteRT's SIMD blocks, or none."""
    return (_ALL, _ALL) if simd else (0, 0)


def _simd_blocks(mode: int, size: int, C: int):
    """(n_simd, c_simd) of `int8_kernels._in_simd_block` for a binary op of `size` output
    elements (rows of C) whose second operand broadcasts as `mode` (see `_broadcast`).
    LiteRT runs elementwise ops and scalar broadcasts as one loop over the flat elements
    (full blocks of 16, then the tail) and a row broadcast [1, C] as one loop per row."""
    if mode == 1:
        return size, C - C % 16
    return size - size % 16, C


def _tabulated(tables, a_t, b, o, R, C, n_simd, c_simd, b_row):
    """A runner for a tabulated binary op: tables = (SIMD blocks, tail) from `_table1`
    (b None: x op constant) or `_table2` (b = (tensor, shape)).  When both tables agree (the
    usual case) one pass; else the elements of LiteRT's SIMD blocks and the others each with
    their table."""
    simd_t, tail_t = tables
    if b is None:
        if np.array_equal(simd_t, tail_t):
            def run(ws, ki):
                ki.lut(ws[a_t].reshape(-1), simd_t, ws[o].reshape(-1))
        elif c_simd >= C:
            def run(ws, ki):
                x, out = ws[a_t].reshape(-1), ws[o].reshape(-1)
                ki.lut(x[:n_simd], simd_t, out[:n_simd])
                ki.lut(x[n_simd:], tail_t, out[n_simd:])
        else:
            def run(ws, ki):
                x, out = ws[a_t].reshape(R, C), ws[o].reshape(R, C)
                for r in range(R):
                    ki.lut(x[r, :c_simd], simd_t, out[r, :c_simd])
                    ki.lut(x[r, c_simd:], tail_t, out[r, c_simd:])
        return run
    b_t, b_shape = b
    if np.array_equal(simd_t, tail_t):
        def run(ws, ki):
            ki.lut2(ws[a_t].reshape(R, C), ws[b_t].reshape(b_shape), b_row, simd_t,
                    ws[o].reshape(R, C))
    elif c_simd >= C:                                # flat: blocks, then the tail
        def run(ws, ki):
            x, y, out = (ws[t].reshape(1, -1) for t in (a_t, b_t, o))
            ki.lut2(x[:, :n_simd], y[:, :n_simd], False, simd_t, out[:, :n_simd])
            ki.lut2(x[:, n_simd:], y[:, n_simd:], False, tail_t, out[:, n_simd:])
    else:                                            # per row: the first c_simd columns
        def run(ws, ki):
            x, y, out = ws[a_t].reshape(R, C), ws[b_t].reshape(b_shape), ws[o].reshape(R, C)
            ki.lut2(x[:, :c_simd], y[:, :c_simd], b_row, simd_t, out[:, :c_simd])
            ki.lut2(x[:, c_simd:], y[:, c_simd:], b_row, tail_t, out[:, c_simd:])
    return run


_INT8 = np.arange(-128, 128, dtype=np.int8)


def _table1(exact):
    """The 256-entry table (index q + 128) of an int8 -> int8 function given by a kernel."""
    out = np.empty((1, 256), np.int8)
    exact(_INT8.reshape(1, 256), out)
    return out.reshape(-1)


def _table2(exact):
    """The 65536-entry table (index (a + 128) * 256 + b + 128) of an (int8, int8) -> int8
    function given by a kernel, evaluated on every pair of operands."""
    a = np.repeat(_INT8, 256).reshape(256, 256)
    b = np.tile(_INT8, 256).reshape(256, 256)
    out = np.empty((256, 256), np.int8)
    exact(a, b, out)
    return out.reshape(-1)


def _noop(ws, ki):
    pass


def _serial(run):
    def serial_run(ws, ki):
        run(ws, K.SERIAL)
    return serial_run


def _work(op: OpSpec, T) -> int:
    """Multiply-adds of a conv, 0 for everything else (which stays serial)."""
    if op.kind not in ("conv", "depthwise"):
        return 0
    out = int(np.prod(T[op.outputs[0]].shape))
    w = T[op.inputs[1]].shape                  # conv [Cout, kh, kw, Cin]; depthwise [1, kh, kw, C]
    return out * w[1] * w[2] * (w[3] if op.kind == "conv" else 1)


def _compile_mul_add(mul, add, T):
    """The fused runner of MUL(a, constant) -> ADD(., skip), or None when the shapes are not
    the simple ones (then the two ops run separately)."""
    t = mul.outputs[0]
    o = add.outputs[0]
    if not (T[t].dtype == T[o].dtype == "int8"):
        return None
    skip = [u for u in add.inputs if u != t]
    if len(skip) != 1 or int(np.prod(T[skip[0]].shape)) != int(np.prod(T[o].shape)):
        return None
    skip = skip[0]
    a_t, b_t = mul.inputs
    size_o = int(np.prod(T[o].shape))
    if int(np.prod(T[a_t].shape)) != size_o:
        a_t, b_t = b_t, a_t
    if int(np.prod(T[a_t].shape)) != size_o or int(np.prod(T[t].shape)) != size_o:
        return None
    C = T[o].shape[-1]
    broadcast = _broadcast(T, b_t, size_o, C)
    if broadcast is None:
        return None
    mode, b_shape = broadcast
    if mode == 1:          # LiteRT's MUL loops per row there, its ADD over the flat elements
        return None
    R = size_o // C
    s1, z1 = _q(T[a_t])
    s2, z2 = _q(T[b_t])
    st, zt = _q(T[t])
    m, sh = K.quantize_multiplier(_mul_real_multiplier(s1, s2, st))
    mlo, mhi = K.activation_range(mul.attrs.get("activation", "NONE"), st, zt)
    sk, zk = _q(T[skip])
    so, zo = _q(T[o])
    tm, ts, km, ks, om, osh = _add_multipliers(st, sk, so)
    lo, hi = K.activation_range(add.attrs.get("activation", "NONE"), so, zo)

    n_simd = size_o - size_o % 16                    # both ops loop over the flat elements
    b_const = T[b_t].data
    if b_const is not None and np.all(b_const == b_const.reshape(-1)[0]):
        # ReZero by a constant: out depends on (a, skip) only -> 256 x 256 tables
        scalar = b_const.reshape(-1)[:1].reshape(1, 1)
        tables = [_table2(lambda aa, kk, out: K.SERIAL.mul_add(
            aa, scalar, 2, z1, z2, m, sh, zt, mlo, mhi, kk, zt, zk, tm, ts, km, ks, om, osh,
            zo, lo, hi, _all_or_none(simd)[0], out)) for simd in (True, False)]
        return _tabulated(tables, a_t, (skip, (R, C)), o, R, C, n_simd, C, False)

    def run(ws, ki):
        ki.mul_add(ws[a_t].reshape(R, C), ws[b_t].reshape(b_shape), mode, z1, z2, m, sh, zt,
                   mlo, mhi, ws[skip].reshape(R, C), zt, zk, tm, ts, km, ks, om, osh, zo, lo, hi,
                   n_simd, ws[o].reshape(R, C))
    return run


def _compile_div(op, T):
    a_t, b_t = op.inputs
    o = op.outputs[0]
    if T[o].dtype == "float32":
        def run(ws, ki):
            np.divide(ws[a_t], ws[b_t], out=ws[o])
        return run
    if int(np.prod(T[b_t].shape)) != 1:
        raise WeightsFileError(f"{op.layer}: int8 DIV by a tensor of shape {T[b_t].shape}")
    s1, z1 = _q(T[a_t])
    s2, z2 = _q(T[b_t])
    so, zo = _q(T[o])
    real = float(np.float32(s1) / (np.float32(s2) * np.float32(so)))
    m, sh = K.quantize_multiplier(real)
    lo, hi = K.activation_range(op.attrs.get("activation", "NONE"), so, zo)

    def run(ws, ki):
        ki.div(ws[a_t].reshape(-1), ws[b_t].reshape(-1)[0], z1, z2, m, sh, zo, lo, hi,
               ws[o].reshape(-1))
    return run


# ---- the dequantized float view ----------------------------------------------------------------

def dequantized_params(program: Int8Program) -> Dict[str, np.ndarray]:
    """minimovinet float parameters (weights.param_specs names) from the int8 program.

    Batch norm is already folded into the int8 convs: each conv gets an identity batch norm
    whose beta is the dequantized bias.  The SE gate conv of hard-sigmoid models carries the
    +3 of relu6(x + 3) / 6 in its bias (the converter folded it): it is taken out again."""
    from ..structure import param_specs
    cfg = program.config
    T = program.tensors
    convs = {op.layer: op for op in program.ops if op.kind in ("conv", "depthwise")}
    eps = cfg.bn_epsilon
    params = {}

    def weights(layer):
        op = convs[layer]
        x, wt, bt = op.inputs[:3]
        w = T[wt].data.astype(np.float64)
        scales = T[wt].channel_scales
        scales = (np.full(w.shape[0 if op.kind == "conv" else 3], T[wt].scale)
                  if scales is None else scales.astype(np.float64))
        if op.kind == "conv":
            wf = w * scales[:, None, None, None]
        else:
            wf = w * scales[None, None, None, :]
        bf = T[bt].data.astype(np.float64) * float(np.float32(T[x].scale)) * scales
        return wf, bf

    def identity_bn(prefix, bias):
        c = bias.shape[0]
        params[f"{prefix}/gamma"] = np.ones(c, np.float32)
        params[f"{prefix}/beta"] = bias.astype(np.float32)
        params[f"{prefix}/moving_mean"] = np.zeros(c, np.float32)
        params[f"{prefix}/moving_variance"] = np.full(c, 1.0 - eps, np.float32)

    def pointwise(layer, name, bn=None, bias_name=None, bias_shift=0.0):
        wf, bf = weights(layer)
        params[name] = wf[:, 0, 0, :].T.astype(np.float32)          # [Cin, Cout]
        if bn:
            identity_bn(bn, bf)
        else:
            params[bias_name] = (bf - bias_shift).astype(np.float32)

    wf, bf = weights("stem/conv")
    params["stem/conv/kernel"] = wf.transpose(1, 2, 3, 0)[None].astype(np.float32)
    identity_bn("stem/bn", bf)
    blocks = {(b["g"], b["l"]): b for b in program.blocks}
    for g, l, cin, expand, cout, kernel, stride in cfg.layers():
        p = f"block{g}_layer{l}"
        pointwise(f"{p}/expansion/conv", f"{p}/expansion/conv/kernel", f"{p}/expansion/bn")
        wf, bf = weights(f"{p}/feature/conv")
        params[f"{p}/feature/conv/kernel"] = wf.astype(np.float32)   # [1, kh, kw, C]
        identity_bn(f"{p}/feature/bn", bf)
        if kernel[0] > 1:
            wf, bf = weights(f"{p}/feature/conv_temporal")             # [1, kt, 1, C]
            params[f"{p}/feature/conv_temporal/kernel"] = \
                wf.reshape(kernel[0], 1, 1, -1).astype(np.float32)
            identity_bn(f"{p}/feature/bn_temporal", bf)
        if cfg.se_type != "none":
            pointwise(f"{p}/se/reduce/conv", f"{p}/se/reduce/kernel",
                      bias_name=f"{p}/se/reduce/bias")
            pointwise(f"{p}/se/expand/conv", f"{p}/se/expand/kernel",
                      bias_name=f"{p}/se/expand/bias", bias_shift=3.0)
        pointwise(f"{p}/projection/conv", f"{p}/projection/conv/kernel", f"{p}/projection/bn")
        if f"{p}/skip/conv" in convs:
            pointwise(f"{p}/skip/conv", f"{p}/skip/conv/kernel", f"{p}/skip/bn")
        params[f"{p}/rezero/scale"] = np.array(blocks[(g, l)]["rezero"], np.float32)
    pointwise("head/project/conv", "head/project/conv/kernel", "head/project/bn")
    pointwise("classifier/hidden/conv", "classifier/hidden/kernel",
              bias_name="classifier/hidden/bias")
    pointwise("classifier/logits/conv", "classifier/logits/kernel",
              bias_name="classifier/logits/bias")
    specs = param_specs(cfg)
    missing = [n for n in specs if n not in params]
    if missing:
        raise WeightsFileError(f"the int8 model lacks parameters for {missing[:3]}")
    return {n: params[n] for n in specs}


# ---- h5 format ---------------------------------------------------------------------------------

def save_int8(path, model: Int8Movinet, source: str = "") -> None:
    """Write `model` to `path` in the minimovinet h5 format, kind "int8" (atomically)."""
    from ..formats.h5 import writing
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


def read_int8(path) -> "Int8Movinet":
    """Read an int8 model file (kind "int8") written by `save_int8`."""
    from ..formats.h5 import read_class_names, reading
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
        tensors = []
        group = f["constants"] if "constants" in f else None
        for j in tensors_json:
            t = TensorSpec(name=j["name"], shape=tuple(j["shape"]), dtype=j["dtype"],
                           scale=j["scale"], zero_point=j["zero_point"],
                           quantized_dimension=j.get("quantized_dimension", 0))
            if j.get("data"):
                if group is None or j["data"] not in group:
                    raise WeightsFileError(f"{path}: constant {j['data']!r} is missing")
                ds = group[j["data"]]
                t.data = np.asarray(ds[()])
                if "scales" in ds.attrs:
                    t.channel_scales = np.asarray(ds.attrs["scales"], np.float32)
                if t.data.shape != t.shape or t.data.dtype != np.dtype(_NP[t.dtype]):
                    raise WeightsFileError(f"{path}: constant {j['data']!r} has shape "
                                           f"{t.data.shape} {t.data.dtype}, expected {t.shape} "
                                           f"{t.dtype}")
            tensors.append(t)
        ops = [OpSpec(kind=j["kind"], layer=j["layer"], inputs=tuple(j["inputs"]),
                      outputs=tuple(j["outputs"]), attrs=j["attrs"], tflite_op=j.get("tflite_op"),
                      tflite_index=j.get("tflite_index")) for j in ops_json]
        states = OrderedDict((n, (i, o)) for n, i, o in structure["states"])
        program = Int8Program(tensors=tensors, ops=ops, image=structure["image"],
                              logits=structure["logits"], states=states, config=cfg,
                              blocks=structure["blocks"], source=attrs.get("source", ""))
        class_names = read_class_names(f, cfg, path)
    return Int8Movinet(program, class_names, source=attrs.get("source", path))


def load_tflite(path, class_names: Optional[Sequence[str]] = None) -> Int8Movinet:
    from ..formats.tflite_import import import_tflite
    return Int8Movinet(import_tflite(path), class_names)
