"""Threads for the Numba kernels, shared by the float32 and int8 paths.

Every kernel is built twice: a serial build and a `parallel=True` build whose `prange` splits
the outer loop.  `set_num_threads(1)` selects the serial builds, so single-threaded inference
pays no thread-pool overhead.  `guarded` lets one parallel region run at a time per process
(see `PARALLEL_REGION`).
"""
from __future__ import annotations

import os
import threading
import types

import numba
import numpy as np

from .errors import SettingError

# numba's OpenMP layer spin-waits between parallel regions; a model runs ~100 short regions per
# frame, and on a busy 2-4 core board (camera decoding beside inference) the spinning threads
# starve each other (measured here: 2 threads 5x slower than 1 under load).  The workqueue layer
# sleeps instead.  A user's explicit NUMBA_THREADING_LAYER wins.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

def renamed(fn, suffix):
    """A copy of `fn` under another qualified name, so numba's on-disk cache keeps the serial
    and the parallel build apart (its cache key does not include the `parallel` flag)."""
    code = fn.__code__.replace(co_name=fn.__name__ + suffix,
                               co_qualname=fn.__qualname__ + suffix)
    copy = types.FunctionType(code, fn.__globals__, fn.__name__ + suffix, fn.__defaults__,
                              fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + suffix
    return copy



def builds(sources: dict, fastmath: dict = None, parallel: bool = False) -> types.SimpleNamespace:
    """A namespace of jitted builds of `sources` (name -> plain function): serial, or
    `parallel=True`; `fastmath` maps a name to its fastmath flags (default none)."""
    fastmath = fastmath or {}
    suffix = "_parallel" if parallel else "_serial"
    return types.SimpleNamespace(**{
        name: numba.njit(cache=True, nogil=True, parallel=parallel,
                         fastmath=fastmath.get(name, False))(renamed(fn, suffix))
        for name, fn in sources.items()})


# Numba's workqueue threading layer aborts the process when two Python threads enter parallel
# regions at once ("Concurrent access has been detected").  So at most one parallel region
# runs at a time in this process: a call that finds the region taken runs the serial build of
# the same kernel instead of waiting.  The serial and parallel builds compute every output
# element with the same loop body (prange only splits the outer loop), so the results are the
# same bits either way (tests/test_threads.py checks it).
PARALLEL_REGION = threading.Lock()


def guarded(parallel_fn, serial_fn):
    """`parallel_fn` when no other thread is inside a parallel region, else `serial_fn`."""
    def run(*args):
        if PARALLEL_REGION.acquire(blocking=False):
            try:
                return parallel_fn(*args)
            finally:
                PARALLEL_REGION.release()
        return serial_fn(*args)
    run.__name__ = getattr(parallel_fn, "__name__", "kernel")
    run.parallel_build, run.serial_build = parallel_fn, serial_fn
    return run


def guarded_namespace(parallel_builds, serial_builds):
    return types.SimpleNamespace(**{
        name: guarded(fn, getattr(serial_builds, name))
        for name, fn in vars(parallel_builds).items()})


_num_threads = None  # None: numba's default (NUMBA_NUM_THREADS, all cores)


def set_num_threads(n: int | None) -> None:
    """Use `n` threads for the kernels (1 selects the serial builds); None restores the default."""
    global _num_threads
    if n is None:
        _num_threads = None
        return
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise SettingError(f"threads must be an integer or None, got {n!r}")
    n = int(n)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise SettingError(f"threads must be in 1..{numba.config.NUMBA_NUM_THREADS} "
                           f"(NUMBA_NUM_THREADS), got {n}")
    _num_threads = n


def get_num_threads() -> int:
    return numba.config.NUMBA_NUM_THREADS if _num_threads is None else _num_threads




def threads_wanted() -> bool:
    """True when the kernels should use threads (and sets numba's thread count for them)."""
    n = get_num_threads()
    if n == 1:
        return False
    numba.set_num_threads(n)
    return True
