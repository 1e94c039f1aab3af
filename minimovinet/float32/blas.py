"""NumPy's BLAS for the float 1x1 convs and the stem, its thread count set by minimovinet.

A 1x1 conv is a matrix product [P, Cin] @ [Cin, Cout]; NumPy's BLAS (OpenBLAS in the wheels)
runs it 2-6x faster than the Numba loop.  The BLAS thread pool must obey minimovinet's
thread setting (1 thread must mean 1 thread; see `blas_threads`), and the only clean way to
set it at run time is
threadpoolctl (`pip install threadpoolctl`, the `fast` extra; scikit-learn brings it too).
Without threadpoolctl, or with no BLAS found under NumPy, or with MINIMOVINET_BLAS=0 in the
environment, the 1x1 convs use the Numba kernel (`kernels.pointwise`): same results within
float32 rounding (the sums are reassociated either way).
"""
from __future__ import annotations

import os

from .. import threads

# None: not decided yet; False: BLAS not usable (Numba kernels); else threadpoolctl's controller
_controller = None
_applied_threads = None       # the BLAS thread count last set


def _find_controller():
    if os.environ.get("MINIMOVINET_BLAS", "1") == "0":
        return False
    try:
        import threadpoolctl
    except ImportError:
        return False
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    return controller if controller.lib_controllers else False


def usable() -> bool:
    """True when the 1x1 convs may use BLAS; sets BLAS's thread count to minimovinet's first."""
    global _controller, _applied_threads
    if _controller is None:
        _controller = _find_controller()
    if _controller is False:
        return False
    n = blas_threads()
    if n != _applied_threads:
        _controller.limit(limits=n)      # persists (not a context manager here)
        _applied_threads = n
    return True


def blas_threads() -> int:
    """BLAS runs on ONE thread whatever `set_num_threads` says (1 means 1; more threads go to
    the Numba kernels).  OpenBLAS's workers busy-wait between calls: on this 2-core machine,
    shared with other work, 2 BLAS threads made a frame 2-3x SLOWER than 1 (the spinning worker
    takes the core the other thread needs; measured in benchmarks/breakdown_float.py's runs),
    and one BLAS thread keeps every product's result the same for any thread setting."""
    threads.get_num_threads()            # the setting is validated there
    return 1


def disable(off: bool = True) -> None:
    """Force the Numba kernels (off=True) or let BLAS be found again (off=False); for tests."""
    global _controller, _applied_threads
    _controller = False if off else None
    _applied_threads = None
