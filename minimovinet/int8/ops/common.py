"""What the op compilers share: the compile context and a tensor's quantization.

An op compiler turns one `OpSpec` into a runner `run(ws, ki)`: `ws` is the workspace (a list
indexed by tensor id, then the op's scratch arrays), `ki` the kernel namespace
(`kernels.SERIAL` or `kernels.PARALLEL`).  Everything that depends only on the file (weights
in the kernels' layouts, multipliers, tables) is computed once, at compile time.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, List, Optional, Tuple

import numpy as np

from ..program import TensorSpec

Runner = Callable[[list, object], None]


@dataclasses.dataclass
class CompileContext:
    """The program's tensors, the extra workspace arrays compiled ops ask for, and the form of
    the 1x1 convs (None: `ops.conv.pointwise_form()`)."""
    tensors: List[TensorSpec]
    pointwise_form: Optional[str] = None
    scratch: List[Tuple[tuple, type, int]] = dataclasses.field(default_factory=list)

    def scratch_slot(self, shape, dtype, fill=0) -> int:
        """A workspace array of its own for an op, allocated once per thread and filled with
        `fill` (a padded border keeps it): its index in the workspace."""
        self.scratch.append((tuple(shape), dtype, fill))
        return len(self.tensors) + len(self.scratch) - 1


def quantization(t: TensorSpec) -> Tuple[float, int]:
    """(scale rounded to float32, as TFLite stores it; zero point)."""
    return float(np.float32(t.scale)), int(t.zero_point)


def num_elements(t: TensorSpec) -> int:
    return int(np.prod(t.shape))
