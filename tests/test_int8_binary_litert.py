"""int8 ADD and MUL against LiteRT over every operand pair, in LiteRT's SIMD blocks and tail.

Rounding differences between LiteRT's NEON blocks and its reference tail, or in how a
multiplier is computed, show in a model only where a value lands on a rounding boundary, about
once per million elements.  So this test asks LiteRT directly: a one-op TFLite model (converted
by TensorFlow, then its quantization parameters set to the case under test with TFLite's own
flatbuffer schema) is run on all 65536 (a, b) pairs, with every pair both inside a full
16-element block and in the tail, and compared with the op as minimovinet compiles it
(`minimovinet.int8.ops.binary`).  Cases: random scales and zero points, and the two cases found
in converted models (int8_support.REGRESSION).
"""
import numpy as np
import pytest

from conftest import need, need_tensorflow

tf = need_tensorflow("the one-op models are converted with TensorFlow")
need("ai_edge_litert", "the reference is LiteRT (ai-edge-litert)")

from minimovinet.int8 import kernels as K  # noqa: E402
from minimovinet.int8.ops import CompileContext, compile_op  # noqa: E402
from minimovinet.int8.program import OpSpec, TensorSpec  # noqa: E402

PAIRS_A = np.repeat(np.arange(-128, 128), 256).astype(np.int8)     # all 65536 pairs
PAIRS_B = np.tile(np.arange(-128, 128), 256).astype(np.int8)
TAIL = 15                                                           # n % 16 tail elements

# (scale, zero point) of input 1, input 2, output
FOUND = {
    "add: SE pool (calibration seed 100)":
        ("add", (0.011244264431297779, -95), (0.02054954133927822, -84),
         (0.02848176658153534, -84)),
    "mul: SE scale (calibration seed 109)":
        ("mul", (0.00392164709046483, -128), (0.030317792668938637, -116),
         (0.022037925198674202, -111)),
}


def random_cases(kind, n, seed):
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        q = [(float(np.float32(10 ** rng.uniform(-3, 0))), int(rng.integers(-128, 128)))
             for _ in range(3)]
        if kind == "mul":                   # keep the product's scale near the output's
            q[2] = (float(np.float32(q[0][0] * q[1][0] * 10 ** rng.uniform(0, 2.5))), q[2][1])
        out[f"{kind}: random {i}"] = (kind, *q)
    return out


CASES = {**FOUND, **random_cases("add", 16, 1), **random_cases("mul", 16, 2)}


def one_op_model(kind, n, qa, qb, qo, b_size=None):
    """A TFLite model whose only op is int8 `kind` of two [1, 1, 1, 1, n] int8 inputs (the
    shapes of MoViNet's SE pools), with the given quantization (set in the flatbuffer after
    conversion)."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb
    shape = (1, 1, 1, 1, n)
    b_shape = (1, 1, 1, 1, b_size or n)

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32),
                                  tf.TensorSpec(b_shape, tf.float32)])
    def op_fn(a, b):
        return {"mul": a * b, "add": a + b, "div": a / b}[kind]

    def representative():
        rng = np.random.default_rng(0)
        for _ in range(2):
            yield [rng.random(shape, dtype=np.float32),
                   1 + rng.random(b_shape, dtype=np.float32)]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([op_fn.get_concrete_function()])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    flat = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(conv.convert(), 0))
    graph = flat.subgraphs[0]
    assert len(graph.operators) == 1
    op = graph.operators[0]
    for t, (scale, zp) in zip([*op.inputs, op.outputs[0]], (qa, qb, qo)):
        graph.tensors[t].quantization.scale = [scale]
        graph.tensors[t].quantization.zeroPoint = [zp]
    builder = flatbuffers.Builder(1024)
    builder.Finish(flat.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), list(op.inputs)


def litert_runner(data, op_inputs):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_content=data, experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interp.allocate_tensors()
    out = interp.get_output_details()[0]["index"]

    def run(a, b):
        interp.set_tensor(op_inputs[0], a.reshape(1, 1, 1, 1, -1))
        interp.set_tensor(op_inputs[1], np.asarray(b, np.int8).reshape(1, 1, 1, 1, -1))
        interp.invoke()
        return interp.get_tensor(out).reshape(-1)
    return run


def minimovinet_runner(kind, n, qa, qb, qo, b_size=None):
    shapes = [(1, 1, 1, 1, n), (1, 1, 1, 1, b_size or n), (1, 1, 1, 1, n)]
    tensors = [TensorSpec(name=name, shape=shape, dtype="int8", scale=s, zero_point=z)
               for name, shape, (s, z) in zip("abo", shapes, (qa, qb, qo))]
    op = OpSpec(kind=kind, layer=f"test/{kind}", inputs=(0, 1), outputs=(2,),
                attrs=dict(activation="NONE"))
    run = compile_op(op, CompileContext(tensors))

    def call(a, b):
        ws = [a.reshape(1, 1, 1, 1, -1), np.asarray(b, np.int8).reshape(shapes[1]),
              np.empty((1, 1, 1, 1, n), np.int8)]
        run(ws, K.SERIAL)
        return ws[2].reshape(-1)
    return call


@pytest.mark.parametrize("case", list(CASES))
def test_every_operand_pair_in_blocks_and_tail(case):
    kind, qa, qb, qo = CASES[case]
    n = PAIRS_A.size + TAIL                 # 4096 full blocks of 16, then a tail of 15
    data, op_inputs = one_op_model(kind, n, qa, qb, qo)
    theirs = litert_runner(data, op_inputs)
    mine = minimovinet_runner(kind, n, qa, qb, qo)
    # 1. every pair inside the blocks (the tail holds the first pairs again)
    a = np.concatenate([PAIRS_A, PAIRS_A[:TAIL]])
    b = np.concatenate([PAIRS_B, PAIRS_B[:TAIL]])
    ref, out = theirs(a, b), mine(a, b)
    bad = np.nonzero(ref != out)[0]
    assert bad.size == 0, (f"{case}: {bad.size} pairs differ in LiteRT's blocks, e.g. a={a[bad[0]]} "
                           f"b={b[bad[0]]}: LiteRT {ref[bad[0]]}, minimovinet {out[bad[0]]}")
    # 2. every pair in the tail, 15 per invocation (the blocks hold arbitrary pairs)
    for start in range(0, PAIRS_A.size, TAIL):
        ta, tb = PAIRS_A[start:start + TAIL], PAIRS_B[start:start + TAIL]
        k = ta.size
        a[-TAIL:-TAIL + k or None] = ta
        b[-TAIL:-TAIL + k or None] = tb
        ref, out = theirs(a, b), mine(a, b)
        tail = slice(n - TAIL, n - TAIL + k)
        assert np.array_equal(ref[tail], out[tail]), (
            f"{case}: tail pairs {list(zip(ta, tb))} LiteRT {ref[tail]} minimovinet {out[tail]}")
    print(f"{case}: all 65536 operand pairs equal LiteRT's, in the SIMD blocks and in the tail")


def div_cases(n, seed):
    """MoViNet's divisions: a running sum by a frame count quantized for f calibration frames
    (scale f / 255, zero point -128), into an output scale a fraction of the sum's."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        f = int(rng.integers(3, 17))
        s_sum = float(np.float32(10 ** rng.uniform(-2.5, -0.5)))
        out[f"div: random {i} ({f} frames)"] = (
            (s_sum, int(rng.integers(-128, 0))), (float(np.float32(f / 255)), -128),
            (float(np.float32(s_sum * rng.uniform(0.15, 0.6))), int(rng.integers(-128, 0))))
    return out


DIV_CASES = {
    # a converted model's SE pool: running sum / frame count (6 calibration frames)
    "div: SE pool sum / frame count": ((0.06414241343736649, -97), (0.0235294122248888, -128),
                                       (0.01776975393295288, -107)),
    **div_cases(6, 3),
    # any scales: rescale multipliers below 1 too (TFLite's shift then often reaches 32)
    **{f"div: any scales {i}": tuple((float(np.float32(10 ** r.uniform(-3, 0))),
                                      int(r.integers(-128, 128))) for _ in range(3))
       for i, r in enumerate(np.random.default_rng(30 + k) for k in range(4))},
}


@pytest.mark.parametrize("case", list(DIV_CASES))
def test_div_by_a_scalar_for_every_operand_pair(case):
    """int8 DIV by a one-element divisor (the SE pools' division by the frame count): every
    (dividend, divisor) pair, dividends in the SIMD blocks and in the tail, equals LiteRT
    (a divisor equal to its zero point, a division by zero, is left out).  This found the
    shift by 32 (`int8.arith.rdbpot_as_x86`): a dividend of +-1 over a divisor of 128 or
    more, where LiteRT saturates."""
    qa, qb, qo = DIV_CASES[case]
    n = 256 + TAIL
    data, op_inputs = one_op_model("div", n, qa, qb, qo, b_size=1)
    theirs = litert_runner(data, op_inputs)
    mine = minimovinet_runner("div", n, qa, qb, qo, b_size=1)
    a = np.concatenate([np.arange(-128, 128), np.arange(-128, -128 + TAIL)]).astype(np.int8)
    for divisor in range(-128, 128):
        if divisor == qb[1]:
            continue
        for shift in range(0, 256, TAIL):                # every dividend in the tail too
            x = np.roll(a, shift)
            ref, out = theirs(x, divisor), mine(x, divisor)
            bad = np.nonzero(ref != out)[0]
            assert bad.size == 0, (f"{case}: {x[bad[0]]} / {divisor}: LiteRT {ref[bad[0]]}, "
                                   f"minimovinet {out[bad[0]]}")
    print(f"{case}: every dividend / divisor pair equals LiteRT's")
