"""Running an `Int8Program`: its ops compiled into kernel calls, a workspace per thread, one
invocation of the file's graph at a time.

One invocation (`ProgramRunner.step`) is what LiteRT's `invoke()` is: one frame of one stream
(the file's batch of 1), the image and the input states in, the logits and the output states
out.  The workspace is a list indexed by tensor id (then the ops' scratch arrays); constants
are the program's arrays, RESHAPE outputs are views set by the op, every other tensor has an
array of its own per thread, so that one model can run streams on several threads at once.
"""
from __future__ import annotations

import threading
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import aliasing
from . import kernels as K
from .ops import CompileContext, compile_op
from .ops.binary import compile_mul_add
from .ops.conv import pointwise_form
from .program import Int8Program, OpSpec
from .quantize import requantize

States = Dict[str, np.ndarray]

# With threads > 1, only convs with at least this many multiply-adds run on the threads.  A
# parallel region costs tens of microseconds to start, and once numba's thread pool runs it
# slows even the serial kernels down on a 2-core machine (measured: A0 at 172x172, 5.8 ms per
# frame serial, 10 ms with the pool started, whatever runs on it): an A0 frame (its largest
# conv is 2.9 M multiply-adds) stays serial, larger models and frames use the threads.
PARALLEL_MIN_WORK = 20_000_000
# Fuse each block's ReZero MUL with its residual ADD (one pass; the same bits).  The op-level
# tests turn it off to compare every TFLite operator's own output.
FUSE_REZERO_ADD = True
# Store the parts of a stream buffer's CONCATENATION inside its output and make contiguous
# SLICEs views (aliasing.py): the stream buffers are then never copied.
PLACE_STREAM_BUFFERS = True


def multiply_adds(op: OpSpec, T) -> int:
    """Multiply-adds of a conv, 0 for everything else (which stays serial)."""
    if op.kind not in ("conv", "depthwise"):
        return 0
    out = int(np.prod(T[op.outputs[0]].shape))
    w = T[op.inputs[1]].shape                  # conv [Cout, kh, kw, Cin]; depthwise [1, kh, kw, C]
    return out * w[1] * w[2] * (w[3] if op.kind == "conv" else 1)


def _noop(ws, ki):
    pass


def _copy_parts(prog: Int8Program, op: OpSpec, remaining: List[int]):
    """A CONCATENATION whose other parts are stored in its output: copies these parts (by
    position in op.inputs) into their runs of the flat output."""
    sizes = [int(np.prod(prog.tensors[x].shape)) for x in op.inputs]
    starts = np.cumsum([0] + sizes).tolist()
    parts = [(op.inputs[k], starts[k], starts[k + 1]) for k in remaining]
    o = op.outputs[0]
    if not parts:
        return _noop

    def run(ws, ki):
        out = ws[o].reshape(-1)
        for x, start, stop in parts:
            out[start:stop] = ws[x].reshape(-1)
    return run


class ProgramRunner:
    """`program` compiled (with this module's PARALLEL_MIN_WORK and FUSE_REZERO_ADD and the
    1x1-conv form of `ops.conv.pointwise_form()`, read now)."""

    def __init__(self, program: Int8Program):
        self.program = program
        prog = program
        self.inputs = {prog.image} | {ti for ti, _ in prog.states.values()}
        # a state whose output is its input tensor: the graph does not change it
        self.passthrough: Dict[str, Optional[int]] = {
            name: (ti if ti == to else None) for name, (ti, to) in prog.states.items()}
        # int8 states whose output quantization differs from the input's:
        # name -> (output scale, output zero point, input scale, input zero point)
        self.requantize: Dict[str, Tuple] = {}
        for name, (ti, to) in prog.states.items():
            a, b = prog.tensors[ti], prog.tensors[to]
            if a.dtype == "int8" and (a.scale, a.zero_point) != (b.scale, b.zero_point):
                self.requantize[name] = (b.scale, b.zero_point, a.scale, a.zero_point)
        self._plan_outputs()
        ctx = CompileContext(prog.tensors, pointwise_form())
        self.runners: List = [compile_op(op, ctx) for op in prog.ops]
        # the ops worth threads (with threads > 1); the others run the serial builds
        self.parallel = [multiply_adds(op, prog.tensors) >= PARALLEL_MIN_WORK for op in prog.ops]
        self.any_parallel = any(self.parallel)
        self.scratch = ctx.scratch              # (shape, dtype, fill) of the extra arrays
        if FUSE_REZERO_ADD:
            self._fuse_rezero_add()
        # what a step runs per op: `runners`, but for the placed stream buffers' ops
        self.step_runners: List = list(self.runners)
        self.placements: List[aliasing.Placement] = []
        if PLACE_STREAM_BUFFERS:
            self._place_stream_buffers()
        self._plan_static_views()
        self._local = threading.local()

    def _plan_outputs(self):
        """Graph outputs written by a kernel get a fresh array each step (the caller keeps
        them); outputs that are views of the workspace (RESHAPEs) are copied at the end."""
        prog = self.program
        produced_by = {t: op for op in prog.ops for t in op.outputs}
        self.outputs = {prog.logits} | {to for ti, to in prog.states.values() if ti != to}
        self.fresh = sorted(t for t in self.outputs if produced_by[t].kind != "reshape")
        self.copy_out = {t for t in self.outputs if produced_by[t].kind == "reshape"}

    def _fuse_rezero_add(self):
        """Run each block's ReZero MUL and its residual ADD as one kernel (at the ADD's place:
        the skip branch may come later in the file); the MUL's output is never stored."""
        prog = self.program
        readers: Dict[int, List[int]] = {}
        for j, op in enumerate(prog.ops):
            for t in op.inputs:
                readers.setdefault(t, []).append(j)
        for i, op in enumerate(prog.ops):
            if op.kind != "mul" or not op.layer.endswith("/rezero"):
                continue
            t = op.outputs[0]
            users = readers.get(t, [])
            if t in self.outputs or len(users) != 1 or prog.ops[users[0]].kind != "add":
                continue
            j = users[0]
            fused = compile_mul_add(op, prog.ops[j], prog.tensors)
            if fused is not None:
                self.runners[i] = _noop
                self.runners[j] = fused

    def _place_stream_buffers(self):
        """Concatenation parts stored in the output, contiguous slices as views
        (aliasing.py); the concatenations then copy only the parts left."""
        prog = self.program
        views = {op.outputs[0]: op.inputs[0] for op in prog.ops if op.kind == "reshape"}
        dynamic = set(self.inputs) | set(self.fresh)
        for o in list(views):                          # views of the step's own arrays
            x = o
            while x in views:
                x = views[x]
            if x in dynamic:
                del views[o]
        produced = {t for run, op in zip(self.step_runners, prog.ops)
                    if run is not _noop and op.kind != "reshape" for t in op.outputs
                    if prog.tensors[t].data is None} - dynamic
        keep = dynamic | set(self.outputs) | set(self.copy_out)
        self.placements, to_copy, as_views = aliasing.plan(prog, produced, keep, views)
        for i in as_views:
            self.step_runners[i] = _noop
        for i, remaining in to_copy.items():
            self.step_runners[i] = _copy_parts(prog, prog.ops[i], remaining)

    def _plan_static_views(self):
        """RESHAPEs of arrays that live as long as the workspace (not a graph input, not a
        fresh output) are views made once, with the workspace, instead of an op per step."""
        prog = self.program
        dynamic = set(self.inputs) | set(self.fresh)
        self.static_views: List[Tuple[int, int, tuple]] = []     # (input, output, shape)
        static = set()
        for i, op in enumerate(prog.ops):
            if op.kind != "reshape":
                continue
            x, o = op.inputs[0], op.outputs[0]
            if x in dynamic or o in self.copy_out:
                dynamic.add(o)
                continue
            self.static_views.append((x, o, tuple(prog.tensors[o].shape)))
            static.add(i)
        # the ops a step runs (`runners` keeps every op's own runner, for op-level checks):
        # their indices, and (runner, whether it may use the threads)
        self.plan_ops = [i for i, run in enumerate(self.step_runners)
                         if run is not _noop and i not in static]
        self.plan = [(self.step_runners[i], self.parallel[i]) for i in self.plan_ops]

    def workspace(self) -> list:
        """This thread's workspace (made on first use); after a `step` it holds every tensor
        of that step but the graph inputs."""
        ws = getattr(self._local, "bufs", None)
        if ws is None:
            prog = self.program
            n = len(prog.tensors)
            ws = [None] * (n + len(self.scratch))
            views = {t for op in prog.ops if op.kind == "reshape" for t in op.outputs}
            for i, t in enumerate(prog.tensors):
                if t.data is not None:
                    ws[i] = t.data
                elif i not in self.inputs and i not in views and i not in self.fresh:
                    ws[i] = np.empty(t.shape, t.numpy_dtype)     # (placed ones: replaced)
            for j, (shape, dtype, fill) in enumerate(self.scratch):
                ws[n + j] = np.full(shape, fill, dtype)
            for p in self.placements:                    # bases first: in plan order
                ws[p.tensor] = ws[p.base].reshape(-1)[p.start:p.stop].reshape(p.shape)
            for x, o, shape in self.static_views:        # in op order: views of views too
                ws[o] = ws[x].reshape(shape)
            self._local.bufs = ws
        return ws

    def step(self, image, states: States):
        """One invocation of the file's graph: image [1, 1, H, W, 3] in the file's input dtype,
        states of batch 1.  Returns (logits, the output states as the file writes them).
        A float state holding NaN / inf raises StateError (from its QUANTIZE)."""
        prog = self.program
        ws = self.workspace()
        ws[prog.image] = image
        for name, (ti, _) in prog.states.items():
            ws[ti] = states[name]
        for t in self.fresh:
            spec = prog.tensors[t]
            ws[t] = np.empty(spec.shape, spec.numpy_dtype)
        ki = K.impl(self.any_parallel)
        if ki is K.SERIAL:
            for run, _ in self.plan:
                run(ws, ki)
        else:
            for run, par in self.plan:
                run(ws, ki if par else K.SERIAL)
        logits = ws[prog.logits]
        if prog.logits in self.copy_out:
            logits = logits.copy()
        raw = {}
        for name, (ti, to) in prog.states.items():
            v = ws[to]
            raw[name] = v.copy() if (ti == to or to in self.copy_out) else v
        for ti, _ in prog.states.values():     # the caller's arrays are not kept
            ws[ti] = None
        ws[prog.image] = None
        return logits, raw

    def feedback(self, raw: States) -> States:
        """Output states as next inputs: int8 states requantized where the file's output
        quantization differs from the input's."""
        out = {}
        for name, value in raw.items():
            conv = self.requantize.get(name)
            out[name] = value if conv is None else requantize(value, *conv)
        return out
