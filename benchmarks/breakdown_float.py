"""Where the time of one float32 stream frame goes: per layer role and per compiled kernel.

    python benchmarks/breakdown_float.py [--model a0] [--size 172] [--frames 40] [--warmup 5]
                                          [--threads 1]

A random-weight stream model (timing does not depend on the weights) runs one frame per call.
Every layer object of the model (stem, block parts, head, classifier) is timed by its role
(e.g. 'block.feature.spatial'; all blocks summed), exclusive of the layers it calls; every
compiled kernel call (the functions in float32.kernels' SERIAL / PARALLEL namespaces, and
np.matmul, the BLAS 1x1 convs) is timed too.  'python' is the frame time outside compiled kernels: argument checks, state dicts,
array allocation, NumPy glue and the timing itself (a few us per wrapped call, so it is an
upper bound).  Per-frame ms, median over the timed frames.
"""
from __future__ import annotations

import argparse
import sys
import time
import types
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import minimovinet as mm                                   # noqa: E402
from minimovinet.float32 import kernels, layers           # noqa: E402

_stack = []          # roles of the layers being called, innermost last
_layer_time = defaultdict(float)    # role -> exclusive seconds this frame
_kernel_time = defaultdict(float)   # (role, kernel) -> seconds this frame
_calls = defaultdict(int)


def _wrap_layer_class(cls):
    original = cls.__call__
    if getattr(original, "_timed", False):
        return

    def timed(self, *args, **kwargs):
        role = getattr(self, "_bd_role", cls.__name__)
        _stack.append([role, 0.0])                 # [role, time spent in child layers]
        t0 = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent = time.perf_counter() - t0
            _, children = _stack.pop()
            _layer_time[role] += spent - children
            if _stack:
                _stack[-1][1] += spent
    timed._timed = True
    cls.__call__ = timed


def _wrap_kernels(namespace):
    for name, fn in list(vars(namespace).items()):
        if not callable(fn) or getattr(fn, "_timed", False):
            continue

        def timed(*args, _fn=fn, _name=name, **kwargs):
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                role = _stack[-1][0] if _stack else "-"
                _kernel_time[(role, _name)] += time.perf_counter() - t0
                _calls[_name] += 1
        timed._timed = True
        setattr(namespace, name, timed)


def _label(obj, role, seen):
    """Give every layer object under `obj` its role path (attributes that hold layers)."""
    if id(obj) in seen or not type(obj).__module__.startswith("minimovinet.float32"):
        return
    seen.add(id(obj))
    if callable(obj) and hasattr(type(obj), "__call__"):
        obj._bd_role = role
        _wrap_layer_class(type(obj))
    for attr, value in vars(obj).items():
        if attr.startswith("_"):
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            _label(item, f"{role}.{attr}", seen)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="a0")
    parser.add_argument("--size", type=int, default=172)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    mm.set_num_threads(args.threads)
    model = mm.random_model(args.model, "stream", seed=1)
    seen = set()
    _label(model.stem, "stem", seen)
    for block in model.blocks:
        _label(block, "block", seen)
    _label(model.head, "head", seen)
    _label(model.classifier, "classifier", seen)
    for namespace in {id(n): n for n in _namespaces()}.values():
        _wrap_kernels(namespace)
    blas_calls = types.SimpleNamespace(matmul=np.matmul)      # BLAS 1x1 convs count as compiled
    _wrap_kernels(blas_calls)
    layers.np = types.SimpleNamespace(**{**vars(np), "matmul": blas_calls.matmul})

    rng = np.random.default_rng(0)
    frames = rng.random((args.warmup + args.frames, 1, 1, args.size, args.size, 3),
                        dtype=np.float32)
    states = model.init_states(1, args.size, args.size)
    totals, per_layer, per_kernel = [], defaultdict(list), defaultdict(list)
    for i, frame in enumerate(frames):
        _layer_time.clear()
        _kernel_time.clear()
        _calls.clear()
        t0 = time.perf_counter()
        _, states = model(frame, states)
        total = time.perf_counter() - t0
        if i < args.warmup:
            continue
        totals.append(total)
        for role, t in _layer_time.items():
            per_layer[role].append(t)
        for key, t in _kernel_time.items():
            per_kernel[key].append(t)
        calls = dict(_calls)

    med = lambda v: float(np.median(v)) * 1000   # noqa: E731
    total = med(totals)
    compiled = med([sum(t[i] for t in per_kernel.values()) for i in range(len(totals))])
    print(f"{args.model} stream {args.size}x{args.size}, {args.threads} thread(s), "
          f"median of {len(totals)} frames: {total:.2f} ms per frame (timers included)")
    print(f"  compiled kernels {compiled:.2f} ms, python and glue {total - compiled:.2f} ms "
          f"({100 * (total - compiled) / total:.0f}%), kernel calls per frame "
          f"{sum(calls.values())}: {dict(sorted(calls.items()))}")
    print(f"\n  {'layer role (exclusive, all blocks)':<44}{'ms':>8}{'%':>6}")
    for role, ts in sorted(per_layer.items(), key=lambda kv: -med(kv[1])):
        print(f"  {role:<44}{med(ts):>8.2f}{100 * med(ts) / total:>6.1f}")
    print(f"\n  {'role / compiled kernel':<60}{'ms':>8}{'%':>6}")
    for (role, name), ts in sorted(per_kernel.items(), key=lambda kv: -med(kv[1])):
        print(f"  {role + ' / ' + name:<60}{med(ts):>8.2f}{100 * med(ts) / total:>6.1f}")


def _namespaces():
    found = [getattr(kernels, name) for name in dir(kernels)
             if name.isupper() and hasattr(getattr(kernels, name), "__dict__")
             and not isinstance(getattr(kernels, name), (dict, np.ndarray))]
    return [n for n in found if type(n).__name__ == "SimpleNamespace"]


if __name__ == "__main__":
    layers.__name__   # the layer classes are wrapped on first use through _label
    main()
