"""Whether Numba's on-disk cache already holds the kernels for this CPU (`cache=True`).

The first run after installing (or on another CPU: the cache is keyed by CPU model and
features) compiles every kernel, 10-15 s on a desktop, about a minute on a Pi; later runs load
the machine code.  The command line says so on stderr instead of staying silent.
"""
from __future__ import annotations

import types


def compiled_for_this_cpu(*namespaces: types.SimpleNamespace) -> bool:
    """True when each of `namespaces` has kernels in the cache for this CPU (a model uses only
    some of a namespace's kernels, so one compiled kernel says that a model ran here before).
    Reads Numba's cache index (an internal format): when it cannot tell, it answers True (no
    notice rather than a wrong one)."""
    try:
        from numba.core.registry import cpu_target
        this_cpu = cpu_target.target_context.codegen().magic_tuple()
        for namespace in namespaces:
            if not any(_cached(kernel, this_cpu) for kernel in vars(namespace).values()):
                return False
        return True
    except Exception:                      # noqa: BLE001 (Numba internals changed: stay quiet)
        return True


def _cached(kernel, this_cpu) -> bool:
    build = getattr(kernel, "serial_build", kernel)          # threads.guarded wrappers
    index = build._cache._cache_file._load_index()
    return any(key[1] == this_cpu for key in index)

