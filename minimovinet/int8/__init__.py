"""The int8 path: TFLite's integer arithmetic, its plain reference, the kernels and `Int8Movinet`.

    program.py     `Int8Program`: the imported graph as data (tensors, ops, states, config)
    arith.py       TFLite's scalar integer arithmetic: multipliers, roundings, lookup tables
    kernels.py     Numba int8 array kernels, bit-exact with LiteRT's built-in kernels
    vnni.py        the x86 VNNI (`vpdpbusd`) form of the 1x1 convs, same bits
    avx2.py        the x86 AVX2 (`vpmaddwd` on int16) form of the 1x1 convs and the stem, same bits
    tiles.py       what those two share: tile sizes, patch gather, the requantization pass
    neon.py        the aarch64 form (SDOT on the Pi 5, widening multiplies on the Pi 4) of the
                   1x1 convs and the stem, 4 x 4 register tiles, same bits
    reference.py   the same arithmetic in plain Python / NumPy, to read and to test against
    quantize.py    LiteRT's QUANTIZE / DEQUANTIZE on whole arrays (frames, states, logits)
    ops/           op compilers: each op kind -> kernel calls (convs, binary ops, pools, ...)
    runner.py      `ProgramRunner`: the compiled program, a workspace per thread, one step
    aliasing.py    stream buffers without copies: CONCATENATION parts stored in the output,
                   contiguous SLICEs as views
    dequantize.py  the program's weights as float32 parameters (`Int8Movinet.dequantize()`)
    model.py       `Int8Movinet`: the model contract on a program, frame by frame
  post-training quantization (a float model -> an `Int8Program`):
    graph.py       the float model as TFLite's graph: ops, labels, roles, shared quantizations
    graph_blocks.py  its parts: input and stem, a block (stream buffer, SE, pools), the head
    float_graph.py that graph run in float32 with NumPy, every tensor kept
    calibrate.py   ranges of every tensor (states included) over streamed clips; minmax /
                   percentile / mse
    quantize_model.py  the Int8Program: int8 activations and per-channel weights, int32 biases
    accuracy.py    per-tensor SNR of the int8 program against the float graph (the report)

May import: the shared modules (config, structure, contract, errors, threads) and, for
`Int8Movinet.dequantize()`, the public `minimovinet.float32.Movinet`; `float_graph.py` runs the
public float32 kernels (`minimovinet.float32.kernels`) for calibration.  Never imports private
names of `float32`; reads files only through `minimovinet.formats` (`formats.h5_int8` and
`formats.int8_tflite` read and write int8 models).
"""
