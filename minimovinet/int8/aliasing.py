"""Stream buffers without copies: which tensors of an `Int8Program` can live inside another's
memory, so that CONCATENATION and SLICE move nothing.

A causal conv's stream buffer is, in the file's graph, CONCATENATION(buffer, x) along time
[1, kt-1 + T, ...], the temporal conv over it, and SLICE(last kt-1 frames) as the next buffer.
With time the outer axis and a batch of 1, each part of the concatenation is one contiguous
run of the output's memory, and so is the slice.  So:

  * a part of a CONCATENATION is stored inside the output (its producer writes it there; the
    op then copies only the parts that could not be placed: graph inputs, constants, ...);
  * a SLICE that is one contiguous run of its input is a view of it (nothing to do).

A part can be placed when a kernel op writes it (the ones the runner gives an array of its own),
it is no graph output, and it is no part of another placed concatenation.  A slice is a view
when its output is no graph output (the caller keeps those).  Both hold within a step: the
concatenation's memory is written only by the parts' producers, which run before the
CONCATENATION, and read after it.  Every tensor still holds its own value after the step
(tests/test_int8_litert.py compares each op's output with LiteRT's).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Set, Tuple

import numpy as np

from .program import Int8Program


@dataclasses.dataclass(frozen=True)
class Placement:
    """ws[tensor] = ws[base].reshape(-1)[start:stop].reshape(shape)."""
    tensor: int
    base: int
    start: int
    stop: int
    shape: tuple


def contiguous_run(shape, slices) -> Optional[Tuple[int, int]]:
    """(start, stop) in the flat input when `slices` ([start, stop, step] per axis) select
    one contiguous run of a C-ordered array of `shape`, else None."""
    ranges = [range(*slice(*s).indices(n)) for s, n in zip(slices, shape)]
    if len(ranges) != len(shape) or any(len(r) == 0 or (r.step != 1 and len(r) > 1)
                                        for r in ranges):
        return None
    # the last axis not taken whole: every axis before it has one element taken (and every
    # axis after it is taken whole)
    partial = [k for k, (r, n) in enumerate(zip(ranges, shape)) if len(r) != n]
    if not partial:
        return 0, int(np.prod(shape))
    cut = partial[-1]
    if any(len(r) != 1 for r in ranges[:cut]):
        return None
    strides = np.cumprod((list(shape[1:]) + [1])[::-1])[::-1]       # elements per step
    start = sum(r.start * int(s) for r, s in zip(ranges, strides))
    return start, start + len(ranges[cut]) * int(np.prod(shape[cut + 1:]))


def plan(program: Int8Program, produced: Set[int], keep: Set[int],
         views: Dict[int, int]) -> Tuple[List[Placement], Dict[int, List[int]], Set[int]]:
    """The placements, in the order they must be made (a slice of a placed part after it).

    produced: the tensors a kernel op writes into an array of its own; keep: graph inputs and
    outputs (never placed, never views); views: RESHAPE output -> input (static views).  A
    placement's base has its array when the placement is made (an own array, or an earlier
    placement); static views are made after all placements.
    Returns (placements, concatenation op index -> the input positions still to copy, the
    indices of the SLICE ops that became views)."""
    T = program.tensors
    placements: List[Placement] = []
    placed: Set[int] = set()
    anchored: Set[int] = set()           # tensors views were taken of: never placed after
    to_copy: Dict[int, List[int]] = {}
    as_views: Set[int] = set()

    def storage(t):                      # the tensor whose memory a static view shows
        while t in views:
            t = views[t]
        return t

    for i, op in enumerate(program.ops):
        if op.kind == "concat":
            o = op.outputs[0]
            axis = op.attrs["axis"]
            if o not in produced or o in keep or o in placed or \
                    int(np.prod(T[o].shape[:axis])) != 1:
                continue
            start, remaining = 0, []
            for k, x in enumerate(op.inputs):
                size = int(np.prod(T[x].shape))
                base = storage(x)
                if base in produced and base not in keep and base not in placed and \
                        base not in anchored and base != o:
                    placements.append(Placement(base, o, start, start + size,
                                                tuple(T[base].shape)))
                    placed.add(base)
                else:
                    remaining.append(k)
                start += size
            if len(remaining) < len(op.inputs):
                anchored.add(o)
            to_copy[i] = remaining
        elif op.kind == "slice":
            x, o = op.inputs[0], op.outputs[0]
            run = contiguous_run(T[x].shape, op.attrs["slices"])
            base = storage(x)                # a RESHAPE keeps the flat order
            if run is None or o not in produced or o in keep or o in placed or o in anchored \
                    or not (base in produced or base in placed):
                continue
            placements.append(Placement(o, base, run[0], run[1], tuple(T[o].shape)))
            placed.add(o)
            anchored.add(base)
            as_views.add(i)
    return placements, to_copy, as_views
