"""Calibration: the range of every tensor of the quantization graph, states included, recorded
by streaming calibration clips through the float graph frame by frame with the states carried
forward (what the official `quantize_movinet.py` does with its representative dataset), and
the choice of each tensor's quantization range from them.

    stats = record(graph, clips)                        # clips: float32 [T, H, W, 3] arrays
    ranges = choose_ranges(graph, stats, "minmax")      # tensor id -> (lo, hi)

Range methods:
    minmax      the smallest and largest value seen (the TFLite converter's choice)
    percentile  the `percentile`-th and (100 - percentile)-th percentiles of the values seen:
                a rare outlier no longer stretches the scale of every other value
    mse         the clipping of [min, max] (scaled towards 0 by 0.3 .. 1) that minimizes the
                mean squared quantization error (rounding plus clipping) over the values seen

Tensors that must share one quantization (`Graph.same`) get one range, from all their values.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from .float_graph import FloatGraphRunner
from .graph import Graph

METHODS = ("minmax", "percentile", "mse")
SAMPLES_PER_FRAME = 512         # values kept per tensor and frame for percentile / mse
DEFAULT_PERCENTILE = 0.01       # per cent of the values clipped at each end
MSE_FRACTIONS = np.linspace(0.3, 1.0, 36)


@dataclasses.dataclass
class TensorStats:
    lo: float = np.inf
    hi: float = -np.inf
    samples: List[np.ndarray] = dataclasses.field(default_factory=list)

    def add(self, value: np.ndarray, rng) -> None:
        flat = value.reshape(-1)
        self.lo = min(self.lo, float(flat.min()))
        self.hi = max(self.hi, float(flat.max()))
        if flat.size > SAMPLES_PER_FRAME:
            flat = flat[rng.integers(0, flat.size, SAMPLES_PER_FRAME)]
        self.samples.append(flat.astype(np.float32))


def frames_needed(graph: Graph) -> int:
    """Calibration frames needed: twice the longest temporal kernel (the stream buffers fill
    after kt - 1 frames; their ranges are those of a filled buffer), at least 8."""
    kt = max([b["kernel"][0] for b in graph.blocks] + [1])
    return max(8, 2 * kt)


def check_clips(clips: Sequence[np.ndarray], graph: Graph) -> None:
    """Float32 clips [T, H, W, 3] of the graph's frame size, finite, in [0, 1], enough frames."""
    H, W = graph.height, graph.width
    for i, clip in enumerate(clips):
        if clip.ndim != 4 or clip.shape[1:] != (H, W, 3):
            raise InputError(f"calibration clip {i} has shape {tuple(clip.shape)}, expected "
                             f"[T, {H}, {W}, 3] frames")
        if not np.all(np.isfinite(clip)):
            bad = int(np.argmax(~np.isfinite(clip).reshape(clip.shape[0], -1).all(axis=1)))
            raise InputError(f"calibration clip {i} has NaN or infinite values (frame {bad})")
    total = sum(int(c.shape[0]) for c in clips)
    needed = frames_needed(graph)
    if total < needed:
        raise InputError(f"calibration data has {total} frame(s); at least {needed} are needed "
                         f"(streamed frame by frame: the stream buffers hold up to "
                         f"{needed // 2 - 1} frames and their ranges are those of filled "
                         f"buffers)")


def record(graph: Graph, clips: Iterable[np.ndarray], seed: int = 0,
           progress=None) -> Dict[int, TensorStats]:
    """Stream each clip from zero states through the float graph: stats of every int8 tensor."""
    runner = FloatGraphRunner(graph)
    rng = np.random.default_rng(seed)
    wanted = [i for i, r in enumerate(graph.roles) if r == "act"]
    stats = {i: TensorStats() for i in wanted}
    for clip in clips:
        states = runner.init_states()
        for t in range(clip.shape[0]):
            _, states, values = runner.step(clip[None, t:t + 1], states)
            for i in wanted:
                if values[i] is not None:
                    stats[i].add(np.asarray(values[i], np.float32), rng)
            if progress is not None:
                progress(1)
    return stats


def groups(graph: Graph) -> List[List[int]]:
    """The tensors that share a quantization, as disjoint groups (union-find over Graph.same)."""
    parent = list(range(len(graph.tensors)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for group in graph.same:
        for t in group[1:]:
            parent[find(t)] = find(group[0])
    out: Dict[int, List[int]] = {}
    for i, role in enumerate(graph.roles):
        if role == "act":
            out.setdefault(find(i), []).append(i)
    return list(out.values())


def fake_quant_error(x: np.ndarray, lo: float, hi: float) -> float:
    """Mean squared error of quantizing x to 256 levels over [lo, hi] (0 included)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0:
        return float(np.mean(x * x))
    scale = (hi - lo) / 255.0
    zp = np.clip(np.round(-128 - lo / scale), -128, 127)
    q = np.clip(np.round(x / scale) + zp, -128, 127)
    return float(np.mean(((q - zp) * scale - x) ** 2))


def _range_of(samples: np.ndarray, lo: float, hi: float, method: str,
              percentile: float) -> Tuple[float, float]:
    if method == "minmax" or samples.size == 0:
        return lo, hi
    if method == "percentile":
        a, b = np.percentile(samples, [percentile, 100.0 - percentile])
        return float(min(a, 0.0) if lo < 0 else lo), float(b if hi > 0 else hi)
    errors = [fake_quant_error(samples, f * lo, f * hi) for f in MSE_FRACTIONS]
    best = MSE_FRACTIONS[int(np.argmin(errors))]
    return float(best * lo), float(best * hi)


def choose_ranges(graph: Graph, stats: Dict[int, TensorStats], method: str = "minmax",
                  percentile: float = DEFAULT_PERCENTILE,
                  keep_minmax: Optional[set] = None) -> Dict[int, Tuple[float, float]]:
    """tensor id -> (lo, hi) for every int8 activation; one range per group of `Graph.same`.
    Tensors in `keep_minmax` (and their groups) keep their min / max whatever the method."""
    if method not in METHODS:
        raise InputError(f"ranges must be one of {', '.join(METHODS)}, got {method!r}")
    keep_minmax = keep_minmax or set()
    ranges: Dict[int, Tuple[float, float]] = {}
    for group in groups(graph):
        members = [stats[t] for t in group if t in stats and stats[t].samples]
        if not members:
            lo, hi = 0.0, 1.0                     # never computed (fixed quantization)
        else:
            lo = min(s.lo for s in members)
            hi = max(s.hi for s in members)
            m = "minmax" if keep_minmax & set(group) else method
            if m != "minmax":
                samples = np.concatenate([x for s in members for x in s.samples])
                lo, hi = _range_of(samples.astype(np.float64), lo, hi, m, percentile)
        for t in group:
            ranges[t] = (lo, hi)
    return ranges
