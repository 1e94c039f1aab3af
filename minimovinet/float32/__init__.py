"""The float32 path: Numba kernels, their plain NumPy reference, the layers and `Movinet`.

    kernels.py    Numba float32 kernels (serial + parallel builds)
    reference.py  the same kernels in plain NumPy, to read and to test against
    blas.py       NumPy's BLAS for the 1x1 convs and the stem: when, and on how many threads
    layers.py     layer classes: convs, stream buffer, cumulative pool, SE, block, head;
                  `FileConstants` (a converted file's rounded constants)
    params.py     raw parameters: validation, batch-norm folding, seeded random values
    model.py      `Movinet`: the forward pass, states, `features`, `describe()`

May import: the shared modules (config, structure, contract, errors, threads).  Never imports
`minimovinet.int8`, `formats` or `apps`.
"""
