"""The int8 path: TFLite's integer arithmetic, its plain reference, the kernels and `Int8Movinet`.

    program.py    `Int8Program`: the imported graph as data (tensors, ops, states, config)
    kernels.py    Numba int8 kernels, bit-exact with LiteRT's built-in kernels
    vnni.py       the x86 VNNI (`vpdpbusd`) form of the 1x1 convs, same bits
    model.py      `Int8Movinet`: runs a program frame by frame

May import: the shared modules (config, structure, contract, errors, threads) and, for
`Int8Movinet.dequantize()`, the public `minimovinet.float32.Movinet`.  Never imports private
names of `float32`; reads files only through `minimovinet.formats` (imported when loading).
"""
