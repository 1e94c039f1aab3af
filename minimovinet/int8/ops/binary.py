"""Compilers of the two-input ops: ADD, MUL, DIV, and a block's ReZero MUL fused with its
residual ADD.

An int8 ADD or MUL is a function of two int8 values, so it runs as a table: 256 entries when
the second operand is a constant, 256 x 256 for two tensors, filled at compile time by the
exact kernels (`kernels._add`, `_mul`, `_mul_add`) on every operand pair.  LiteRT computes
the elements of its full 16-element SIMD blocks and the remaining ones with different
roundings (see `arith.add_value`), so an op whose two tables differ runs the block elements
and the others each with their own table (`_simd_blocks` says which are which).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...errors import UnsupportedModelError
from .. import kernels as K
from ..arith import activation_range, quantize_multiplier
from ..program import OpSpec
from .common import CompileContext, Runner, num_elements, quantization

# broadcast modes of the second operand (the kernels' `b_mode`)
FULL, ROW, SCALAR = 0, 1, 2


def _broadcast(T, b_t, size_o, C):
    """How the second operand of a binary op covers an output of size_o values (R rows of C):
    (mode, shape) for the kernels -- FULL [R, C], ROW [1, C], SCALAR [1, 1] -- or None when it
    is none of these."""
    size_b = num_elements(T[b_t])
    if size_b == size_o:
        return FULL, (size_o // C, C)
    if size_b == 1:
        return SCALAR, (1, 1)
    if size_b == C and T[b_t].shape[-1] == C:
        return ROW, (1, C)
    return None


def mul_real_multiplier(s1, s2, so) -> float:
    """MUL's rescale s1 * s2 / s_out as TFLite computes it: in float32 arithmetic (C++ floats:
    the product rounded to float32, then divided in float32), not in double.  The last bits
    matter: a product whose exact requantized value lies 1e-4 above a rounding half rounds
    the other way with the double-precision multiplier (found at frame 11 of a converted
    model: tests/test_int8_litert.py, the 'int8-rounding' model)."""
    f32 = np.float32
    return float(f32(f32(s1) * f32(s2)) / f32(so))


def add_multipliers(s1, s2, so):
    """TFLite ADD's rescaling: inputs to twice the larger input scale (with a left shift of
    20), then to the output scale.  Returns (m1, shift1, m2, shift2, m_out, shift_out)."""
    twice = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    return (*quantize_multiplier(s1 / twice), *quantize_multiplier(s2 / twice),
            *quantize_multiplier(twice / ((1 << 20) * so)))


# ---- LiteRT's SIMD blocks and the tables -------------------------------------------------------

_ALL = 1 << 62


def _all_or_none(simd: bool):
    """(n_simd, c_simd) that put every element in LiteRT's SIMD blocks, or none."""
    return (_ALL, _ALL) if simd else (0, 0)


def _simd_blocks(mode: int, size: int, C: int):
    """(n_simd, c_simd) of `kernels._in_simd_block` for a binary op of `size` output elements
    (rows of C) whose second operand broadcasts as `mode`.  LiteRT runs elementwise ops and
    scalar broadcasts as one loop over the flat elements (full blocks of 16, then the tail)
    and a row broadcast [1, C] as one loop per row."""
    if mode == ROW:
        return size, C - C % 16
    return size - size % 16, C


_INT8 = np.arange(-128, 128, dtype=np.int8)


def unary_table(exact) -> np.ndarray:
    """The 256-entry table (index q + 128) of an int8 -> int8 function given by a kernel
    `exact(a [1, 256], out)`."""
    out = np.empty((1, 256), np.int8)
    exact(_INT8.reshape(1, 256), out)
    return out.reshape(-1)


def pair_table(exact) -> np.ndarray:
    """The 65536-entry table (index (a + 128) * 256 + b + 128) of an (int8, int8) -> int8
    function given by a kernel `exact(a [256, 256], b [256, 256], out)`, evaluated on every
    pair of operands."""
    a = np.repeat(_INT8, 256).reshape(256, 256)
    b = np.tile(_INT8, 256).reshape(256, 256)
    out = np.empty((256, 256), np.int8)
    exact(a, b, out)
    return out.reshape(-1)


def _tabulated(tables, a_t, b, o, R, C, n_simd, c_simd, b_row) -> Runner:
    """A runner for a tabulated binary op: tables = (SIMD blocks, tail) from `unary_table`
    (b None: x op constant) or `pair_table` (b = (tensor, shape)).  When both tables agree
    (the usual case) one pass; else the elements of LiteRT's SIMD blocks and the others each
    with their table."""
    simd_t, tail_t = tables
    same = np.array_equal(simd_t, tail_t)
    if b is None:
        if same:
            def run(ws, ki):
                ki.lut(ws[a_t].reshape(-1), simd_t, ws[o].reshape(-1))
        elif c_simd >= C:                            # flat: blocks, then the tail
            def run(ws, ki):
                x, out = ws[a_t].reshape(-1), ws[o].reshape(-1)
                ki.lut(x[:n_simd], simd_t, out[:n_simd])
                ki.lut(x[n_simd:], tail_t, out[n_simd:])
        else:                                        # per row: the first c_simd columns
            def run(ws, ki):
                x, out = ws[a_t].reshape(R, C), ws[o].reshape(R, C)
                for r in range(R):
                    ki.lut(x[r, :c_simd], simd_t, out[r, :c_simd])
                    ki.lut(x[r, c_simd:], tail_t, out[r, c_simd:])
        return run
    b_t, b_shape = b
    if same:
        def run(ws, ki):
            ki.lut2(ws[a_t].reshape(R, C), ws[b_t].reshape(b_shape), b_row, simd_t,
                    ws[o].reshape(R, C))
    elif c_simd >= C:
        def run(ws, ki):
            x, y, out = (ws[t].reshape(1, -1) for t in (a_t, b_t, o))
            ki.lut2(x[:, :n_simd], y[:, :n_simd], False, simd_t, out[:, :n_simd])
            ki.lut2(x[:, n_simd:], y[:, n_simd:], False, tail_t, out[:, n_simd:])
    else:
        def run(ws, ki):
            x, y, out = ws[a_t].reshape(R, C), ws[b_t].reshape(b_shape), ws[o].reshape(R, C)
            ki.lut2(x[:, :c_simd], y[:, :c_simd], b_row, simd_t, out[:, :c_simd])
            ki.lut2(x[:, c_simd:], y[:, c_simd:], b_row, tail_t, out[:, c_simd:])
    return run


def _uniform_constant(t) -> Optional[np.ndarray]:
    """A constant operand whose values are all equal, as [1] (possibly stored full-size)."""
    if t.data is not None and np.all(t.data == t.data.reshape(-1)[0]):
        return t.data.reshape(-1)[:1]
    return None


# ---- ADD and MUL -------------------------------------------------------------------------------

def compile_add_mul(op: OpSpec, ctx: CompileContext) -> Runner:
    T = ctx.tensors
    o = op.outputs[0]
    if T[o].dtype == "int32":
        return _compile_int32_add(op)
    if T[o].dtype == "float32":
        return _compile_float(op)
    if T[o].dtype != "int8":
        raise UnsupportedModelError(f"{op.layer}: {op.kind} on {T[o].dtype}")
    a_t, b_t, mode, b_shape, R, C = _operands(op, T)
    kernel, params = _kernel_and_params(op, T, a_t, b_t)
    n_simd, c_simd = _simd_blocks(mode, R * C, C)    # LiteRT's own loops, for the shapes

    def exact(a, b, mode, simd, out):
        kernel(a, b, mode, *params, *_all_or_none(simd), out)

    constant = _uniform_constant(T[b_t])
    if constant is not None:                         # x (op) constant: a 256-entry table
        tables = [unary_table(lambda a, out: exact(a, constant.reshape(1, 1), SCALAR, simd, out))
                  for simd in (True, False)]
        return _tabulated(tables, a_t, None, o, R, C, n_simd, c_simd, False)
    if mode in (FULL, ROW):                          # two int8 tensors: a 256 x 256 table
        tables = [pair_table(lambda a, b, out: exact(a, b, FULL, simd, out))
                  for simd in (True, False)]
        return _tabulated(tables, a_t, (b_t, b_shape), o, R, C, n_simd, c_simd, mode == ROW)

    def run(ws, ki):                                 # MUL by a runtime scalar (ADD: refused)
        ki.mul(ws[a_t].reshape(R, C), ws[b_t].reshape(1, 1), SCALAR, *params, n_simd, c_simd,
               ws[o].reshape(R, C))
    return run


def _compile_int32_add(op: OpSpec) -> Runner:
    """A frame count + 1."""
    if op.kind != "add":
        raise UnsupportedModelError(f"{op.layer}: {op.kind} on int32")
    a_t, b_t = op.inputs
    o = op.outputs[0]

    def run(ws, ki):
        np.add(ws[a_t], ws[b_t], out=ws[o], casting="unsafe")
    return run


def _compile_float(op: OpSpec) -> Runner:
    """A float32 ADD or MUL (float running sums, the positional encoding): LiteRT's float
    kernels compute one float32 operation per element, as NumPy does."""
    a_t, b_t = op.inputs
    o = op.outputs[0]
    ufunc = np.add if op.kind == "add" else np.multiply
    if op.attrs.get("activation", "NONE") != "NONE":
        raise UnsupportedModelError(f"{op.layer}: float {op.kind} with a fused activation")

    def run(ws, ki):
        ufunc(ws[a_t], ws[b_t], out=ws[o])
    return run


def _operands(op: OpSpec, T):
    """(a, b, mode, b's shape, R, C): the full operand first, the output as R rows of C, and
    how b broadcasts; forms LiteRT computes in ways minimovinet does not are refused."""
    a_t, b_t = op.inputs
    shape_o = T[op.outputs[0]].shape
    size_o = int(np.prod(shape_o))
    if num_elements(T[a_t]) != size_o:               # put the full operand first
        a_t, b_t = b_t, a_t
    C = shape_o[-1] if shape_o else 1
    if num_elements(T[a_t]) != size_o:
        raise UnsupportedModelError(f"{op.layer}: {op.kind} broadcasting both operands")
    broadcast = _broadcast(T, b_t, size_o, C)
    if broadcast is None:
        raise UnsupportedModelError(f"{op.layer}: unsupported broadcast {T[a_t].shape} x "
                                    f"{T[b_t].shape}")
    mode, b_shape = broadcast
    if op.kind == "add" and mode != FULL:
        raise UnsupportedModelError(f"{op.layer}: int8 ADD with broadcasting ({T[a_t].shape} + "
                                    f"{T[b_t].shape}) is not supported: LiteRT's broadcast ADD "
                                    f"kernels round differently from its elementwise one")
    return a_t, b_t, mode, b_shape, size_o // C, C


def _kernel_and_params(op: OpSpec, T, a_t, b_t):
    """The SERIAL kernel of the op and its arguments between (a, b, mode) and
    (n_simd, c_simd, out): zero points, multipliers, the output's zero point and clamp."""
    (s1, z1), (s2, z2), (so, zo) = (quantization(T[t]) for t in (a_t, b_t, op.outputs[0]))
    lo, hi = activation_range(op.attrs.get("activation", "NONE"), so, zo)
    if op.kind == "add":
        m1, sh1, m2, sh2, mo, sho = add_multipliers(s1, s2, so)
        return K.SERIAL.add, (z1, z2, m1, sh1, m2, sh2, mo, sho, zo, lo, hi)
    m, sh = quantize_multiplier(mul_real_multiplier(s1, s2, so))
    return K.SERIAL.mul, (z1, z2, m, sh, zo, lo, hi)


# ---- MUL then ADD (a block's ReZero and residual) ----------------------------------------------

def compile_mul_add(mul: OpSpec, add: OpSpec, T) -> Optional[Runner]:
    """The fused runner of MUL(a, b) -> ADD(., skip), or None when the shapes are not the
    simple ones (then the two ops run separately)."""
    shapes = _mul_add_operands(mul, add, T)
    if shapes is None:
        return None
    a_t, b_t, skip, mode, b_shape, R, C = shapes
    t, o = mul.outputs[0], add.outputs[0]
    (s1, z1), (s2, z2), (st, zt) = (quantization(T[i]) for i in (a_t, b_t, t))
    (sk, zk), (so, zo) = quantization(T[skip]), quantization(T[o])
    m, sh = quantize_multiplier(mul_real_multiplier(s1, s2, st))
    mul_lo, mul_hi = activation_range(mul.attrs.get("activation", "NONE"), st, zt)
    lo, hi = activation_range(add.attrs.get("activation", "NONE"), so, zo)
    mul_params = (z1, z2, m, sh, zt, mul_lo, mul_hi)
    add_params = (zt, zk, *add_multipliers(st, sk, so), zo, lo, hi)
    n_simd = R * C - (R * C) % 16                    # both ops loop over the flat elements
    constant = _uniform_constant(T[b_t])
    if constant is not None:
        # ReZero by a constant: out depends on (a, skip) only -> 256 x 256 tables
        scalar = constant.reshape(1, 1)
        tables = [pair_table(lambda aa, kk, out: K.SERIAL.mul_add(
            aa, scalar, SCALAR, *mul_params, kk, *add_params, _all_or_none(simd)[0], out))
            for simd in (True, False)]
        return _tabulated(tables, a_t, (skip, (R, C)), o, R, C, n_simd, C, False)

    def run(ws, ki):
        ki.mul_add(ws[a_t].reshape(R, C), ws[b_t].reshape(b_shape), mode, *mul_params,
                   ws[skip].reshape(R, C), *add_params, n_simd, ws[o].reshape(R, C))
    return run


def _mul_add_operands(mul: OpSpec, add: OpSpec, T):
    """(a, b, skip, mode, b's shape, R, C) when MUL(a, b) -> ADD(., skip) can run fused: int8,
    every operand but b of the output's size, b full or a scalar (a row broadcast loops per row
    in LiteRT's MUL but over the flat elements in its ADD)."""
    t, o = mul.outputs[0], add.outputs[0]
    if not (T[t].dtype == T[o].dtype == "int8"):
        return None
    size_o = num_elements(T[o])
    skip = [u for u in add.inputs if u != t]
    if len(skip) != 1 or num_elements(T[skip[0]]) != size_o:
        return None
    a_t, b_t = mul.inputs
    if num_elements(T[a_t]) != size_o:
        a_t, b_t = b_t, a_t
    if num_elements(T[a_t]) != size_o or num_elements(T[t]) != size_o:
        return None
    C = T[o].shape[-1]
    broadcast = _broadcast(T, b_t, size_o, C)
    if broadcast is None or broadcast[0] == ROW:
        return None
    mode, b_shape = broadcast
    return a_t, b_t, skip[0], mode, b_shape, size_o // C, C


# ---- DIV ---------------------------------------------------------------------------------------

def compile_div(op: OpSpec, ctx: CompileContext) -> Runner:
    """DIV by one value (the SE pools' running sum by the frame count)."""
    T = ctx.tensors
    a_t, b_t = op.inputs
    o = op.outputs[0]
    if T[o].dtype == "float32":
        def run(ws, ki):
            np.divide(ws[a_t], ws[b_t], out=ws[o])
        return run
    if num_elements(T[b_t]) != 1:
        raise UnsupportedModelError(f"{op.layer}: int8 DIV by a tensor of shape {T[b_t].shape}")
    (s1, z1), (s2, z2), (so, zo) = (quantization(T[t]) for t in (a_t, b_t, o))
    m, sh = quantize_multiplier(float(np.float32(s1) / (np.float32(s2) * np.float32(so))))
    lo, hi = activation_range(op.attrs.get("activation", "NONE"), so, zo)

    def run(ws, ki):
        ki.div(ws[a_t].reshape(-1), ws[b_t].reshape(-1)[0], z1, z2, m, sh, zo, lo, hi,
               ws[o].reshape(-1))
    return run
